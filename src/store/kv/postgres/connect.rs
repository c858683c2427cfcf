//! Reaching the database: the URL (`postgres://user:password@host:port/db?sslmode=...`)
//! parsed by tokio-postgres, TLS (`tls`), and the pool of connections every operation
//! borrows from. A URL without a password takes `PGPASSWORD`.

use super::error::pool_error;
use super::tls;
use crate::store::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Connections the pool keeps at most.
const POOL_SIZE: usize = 16;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an operation waits for a free connection.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The parsed URL and the TLS connector, for the pool and for the listener's connection.
#[derive(Clone)]
pub(super) struct Target {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
}

impl Target {
    /// Parses `url`; `node` names the connections (`application_name`).
    pub(super) fn parse(url: &str, node: &str) -> Result<Target, StoreError> {
        if url.trim().is_empty() {
            return Err(StoreError::Backend(
                "[store] backend = \"postgres\" needs the database's url".into(),
            ));
        }
        let (url, roots) = tls::split_root_file(url);
        let mut config = tokio_postgres::Config::from_str(&url)
            .map_err(|e| StoreError::Backend(format!("store url: {e}")))?;
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_application_name().is_none() {
            config.application_name(format!("postern {node}"));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        Ok(Target {
            config,
            tls: tls::connector(roots.as_deref())?,
        })
    }

    /// The pool of connections (none opened yet).
    pub(super) fn pool(&self) -> Result<Pool, StoreError> {
        let manager = Manager::from_config(
            self.config.clone(),
            self.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("store pool: {e}")))
    }

    /// One connection outside the pool (`application_name` ending in " listen"), driven
    /// by a task of the current runtime that forwards its notifications to `notices`
    /// until the connection ends.
    pub(super) async fn connect(
        &self,
        notices: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), StoreError> {
        let mut config = self.config.clone();
        let name = format!(
            "{} listen",
            config.get_application_name().unwrap_or("postern")
        );
        config.application_name(name);
        let (client, mut connection) = config
            .connect(self.tls.clone())
            .await
            .map_err(|e| pool_error(deadpool_postgres::PoolError::Backend(e)))?;
        let task = tokio::spawn(async move {
            loop {
                let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                match message {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                        if notices.send(n.payload().to_string()).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        });
        Ok((client, task))
    }
}
