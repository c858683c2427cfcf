//! Helpers of the multi-node tests: in-process nodes sharing one PostgreSQL database,
//! a config file for the real binary as a node, and polling until a condition holds.

use super::{http, Gateway, TOKEN};
use postern::config::{Config, StoreBackend};
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Starts an in-process node `name` of the store at `url` (notifications `notify`) on
/// the test configuration, after `configure` has adjusted it.
pub async fn node(
    url: &str,
    name: &str,
    notify: bool,
    configure: impl FnOnce(&mut Config),
) -> Gateway {
    Gateway::start(|c| {
        c.store.backend = StoreBackend::Postgres;
        c.store.url = url.into();
        c.store.node = name.into();
        c.store.notify = notify;
        configure(c)
    })
    .await
}

/// `method path` on the API at `api` as the bootstrap admin: status and parsed answer.
pub async fn call(api: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = http(api, method, path, Some(TOKEN), body.as_deref()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`; panics with
/// `what` otherwise.
pub async fn until<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A config file (`postern.toml` in `dir`) for the real binary as node `name` of the
/// store at `url`: an inbound listener on `inbound`, a plain submission listener on
/// `smtp`, the API on `api`, the default upstream `relay` at `upstream_port`, webhook
/// calls timing out after `webhook_timeout` seconds and retried every second.
pub struct BinaryNode<'a> {
    pub dir: &'a Path,
    pub name: &'a str,
    pub url: &'a str,
    pub smtp: u16,
    pub inbound: u16,
    pub api: u16,
    pub upstream_port: u16,
    pub webhook_timeout: u64,
}

impl BinaryNode<'_> {
    pub fn write(&self) -> PathBuf {
        let text = format!(
            r#"data_dir = "{data}"
hostname = "gw.test"
default_upstream = "relay"
[api]
bind = "127.0.0.1:{api}"
[tls]
cert = "{dir}/cert.pem"
key = "{dir}/key.pem"
[store]
backend = "postgres"
url = "{url}"
node = "{name}"
[inbound]
authenticate = false
[webhooks]
timeout_secs = {timeout}
retry_intervals_secs = [1]
[[listener]]
name = "plain"
bind = "127.0.0.1:{smtp}"
tls = "none"
allow_plaintext_auth = true
[[listener]]
name = "inbound"
purpose = "inbound"
bind = "127.0.0.1:{inbound}"
tls = "none"
[queue]
retry_intervals_secs = [1]
[upstream.relay]
kind = "smtp"
host = "127.0.0.1"
port = {upstream}
tls = "none"
timeout_secs = 5
"#,
            data = self.dir.join("data").display(),
            dir = self.dir.display(),
            url = self.url,
            name = self.name,
            timeout = self.webhook_timeout,
            smtp = self.smtp,
            inbound = self.inbound,
            api = self.api,
            upstream = self.upstream_port,
        );
        let path = self.dir.join("postern.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// min / median / max of `samples`, in milliseconds, as text.
pub fn spread(samples: &[Duration]) -> (Duration, Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    (
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
    )
}
