//! SMTP upstream (a provider's submission host, a smarthost): the `Deliver` implementation
//! for `kind = "smtp"`.
//!
//! - `session`     — connect, implicit TLS / STARTTLS, EHLO (HELO fallback), AUTH.
//! - `transaction` — MAIL / RCPT / DATA, pipelined when offered; per-recipient outcomes.
//! - `conn`        — framing: command buffer, smtp-proto reply parser, timeouts.
//! - `dot`         — dot-stuffing by slices.
//! - `pool`        — idle connections kept for reuse.
//! - `stream`      — TCP or TLS stream, certificate verification.
//!
//! A failure on a pooled connection before the upstream accepted MAIL FROM (dead socket,
//! 421, refused RSET) is retried once, at once, on a fresh connection. Every log line
//! carries the queue id; credentials are never logged. This module never touches the spool.

mod conn;
mod dot;
mod error;
mod pool;
mod reply;
mod session;
mod stream;
mod transaction;

use self::conn::Connection;
use self::pool::Pool;
use self::session::Settings;
use self::stream::TlsTarget;
use crate::config::{SmtpUpstream as SmtpConfig, UpstreamAuth, UpstreamTls};
use crate::relay::oauth::TokenSource;
use crate::relay::{BoxFuture, Deliver, ErrorKind, Outgoing, RcptOutcome, RelayError, Retry, Side};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// One configured SMTP upstream with its pool of idle connections.
pub struct SmtpUpstream {
    name: String,
    settings: Settings,
    pool: Pool,
    /// One permit per connection that may be open at once (`max_connections`).
    slots: Semaphore,
}

impl SmtpUpstream {
    /// Prepares the upstream `name` from its configuration: reads `ca_file` and builds the
    /// TLS client configuration now, so a bad setting fails at start, not at first delivery.
    /// No connection is opened here. `helo_name` is sent with EHLO (empty = the local
    /// address as an address literal).
    pub fn new(name: &str, cfg: &SmtpConfig, helo_name: &str) -> Result<SmtpUpstream, RelayError> {
        let local = |e: error::SmtpError| e.into_relay(name, false);
        if cfg.host.is_empty() {
            return Err(local(error::SmtpError::Config("host is empty".into())));
        }
        let target = match cfg.tls {
            UpstreamTls::Opportunistic => TlsTarget::opportunistic(&cfg.host),
            _ => TlsTarget::new(&cfg.host, cfg.ca_file.as_deref()),
        }
        .map_err(local)?;
        if cfg.auth != UpstreamAuth::None && cfg.tls == UpstreamTls::None {
            tracing::warn!(
                upstream = name,
                "AUTH is configured without TLS: the password crosses the network in clear"
            );
        }
        let oauth = match (cfg.auth, &cfg.oauth) {
            (UpstreamAuth::Xoauth2 | UpstreamAuth::Oauthbearer, Some(oauth)) => Some(Arc::new(
                TokenSource::new(oauth, Duration::from_secs(cfg.timeout_secs.max(1)))
                    .map_err(|e| local(error::SmtpError::Config(e.to_string())))?,
            )),
            (UpstreamAuth::Xoauth2 | UpstreamAuth::Oauthbearer, None) => {
                return Err(local(error::SmtpError::Config(
                    "auth xoauth2/oauthbearer needs an [oauth] section".into(),
                )))
            }
            _ => None,
        };
        let settings = Settings {
            oauth,
            host: cfg.host.clone(),
            port: cfg.port,
            tls: cfg.tls,
            auth: cfg.auth,
            username: cfg.username.clone(),
            password: cfg.password.clone(),
            target,
            helo_name: helo_name.to_string(),
            timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
        };
        Ok(SmtpUpstream {
            name: name.to_string(),
            settings,
            pool: Pool::new(cfg.pool_size, Duration::from_secs(cfg.pool_idle_secs)),
            slots: Semaphore::new(cfg.max_connections.max(1)),
        })
    }

    /// One delivery, once a connection slot is free: on a pooled connection if there is
    /// one (with one retry on a fresh connection if that one turns out dead), else on a new
    /// connection. Holding a slot for the whole delivery keeps the open connections within
    /// what the pool can take back, so a busy upstream is not met with connection churn.
    async fn deliver_message(&self, msg: &Outgoing<'_>) -> Result<Vec<RcptOutcome>, RelayError> {
        if msg.rcpts.is_empty() {
            return Ok(Vec::new());
        }
        let _slot = self.slots.acquire().await.map_err(|_| {
            RelayError::new(
                ErrorKind::Protocol,
                Side::Local,
                Retry::Later,
                "upstream closed",
            )
        })?;
        if let Some(conn) = self.pool.take() {
            match self.attempt(conn, msg, true).await {
                Err(e) if e.retry == Retry::IfReused => {
                    tracing::info!(
                        queue_id = msg.id,
                        upstream = %self.name,
                        error = %e,
                        "pooled connection failed; retrying on a fresh connection"
                    );
                }
                done => return done,
            }
        }
        let conn = session::open(&self.settings).await.map_err(|e| {
            let e = e.into_relay(&self.name, false);
            tracing::warn!(queue_id = msg.id, upstream = %self.name, error = %e, "cannot open session");
            e
        })?;
        tracing::debug!(
            queue_id = msg.id,
            upstream = %self.name,
            tls = conn.is_tls(),
            "session opened"
        );
        self.attempt(conn, msg, false).await
    }

    /// Runs one transaction on `conn`; a clean connection goes back to the pool afterwards.
    async fn attempt(
        &self,
        mut conn: Connection,
        msg: &Outgoing<'_>,
        reused: bool,
    ) -> Result<Vec<RcptOutcome>, RelayError> {
        match transaction::run(&mut conn, msg, reused).await {
            Ok(mut done) => {
                if conn.downgraded {
                    done.outcomes = done.outcomes.into_iter().map(tls_wanted).collect();
                } else if done.reusable {
                    self.pool.put(conn);
                }
                log_outcomes(&self.name, msg, &done.outcomes);
                Ok(done.outcomes)
            }
            Err(failed) => {
                let untouched = reused && !failed.mail_accepted;
                let e = failed.error.into_relay(&self.name, untouched);
                if e.retry != Retry::IfReused {
                    tracing::warn!(queue_id = msg.id, upstream = %self.name, error = %e, "delivery failed");
                }
                Err(e)
            }
        }
    }
}

/// On a clear-text connection after a failed opportunistic handshake, "530 must issue
/// STARTTLS" means the upstream wants TLS after all: try again later, not a bounce.
fn tls_wanted(outcome: RcptOutcome) -> RcptOutcome {
    match outcome {
        RcptOutcome::Permanent(text) if text.starts_with("530") => RcptOutcome::Temporary(text),
        other => other,
    }
}

/// One line per recipient that was not delivered, one summary line.
fn log_outcomes(upstream: &str, msg: &Outgoing<'_>, outcomes: &[RcptOutcome]) {
    let mut delivered = 0usize;
    for (rcpt, outcome) in msg.rcpts.iter().zip(outcomes) {
        match outcome {
            RcptOutcome::Delivered(_) => delivered += 1,
            RcptOutcome::Temporary(reply) | RcptOutcome::Permanent(reply) => {
                tracing::info!(queue_id = msg.id, upstream, rcpt = %rcpt, reply = %reply, "recipient not delivered");
            }
        }
    }
    tracing::debug!(
        queue_id = msg.id,
        upstream,
        delivered,
        refused = outcomes.len() - delivered,
        "relayed"
    );
}

impl Deliver for SmtpUpstream {
    fn deliver<'a>(
        &'a self,
        msg: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Vec<RcptOutcome>, RelayError>> {
        Box::pin(self.deliver_message(msg))
    }

    fn judges_account(&self) -> bool {
        true
    }
}

impl fmt::Debug for SmtpUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password stays out of every debug print.
        f.debug_struct("SmtpUpstream")
            .field("name", &self.name)
            .field("host", &self.settings.host)
            .field("port", &self.settings.port)
            .field("tls", &self.settings.tls)
            .field("auth", &self.settings.auth)
            .finish_non_exhaustive()
    }
}
