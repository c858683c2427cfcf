//! SMTP upstream (a provider's submission host, a smarthost): the `Deliver` implementation
//! for `kind = "smtp"`.
//!
//! - `session`     — connect, implicit TLS / STARTTLS, EHLO (HELO fallback), AUTH.
//! - `transaction` — MAIL / RCPT / DATA (BDAT with CHUNKING), pipelined when offered;
//!   per-recipient outcomes.
//! - `conn`        — framing: command buffer, smtp-proto reply parser, timeouts.
//! - `dot`         — dot-stuffing by slices.
//! - `pool`        — idle connections kept for reuse.
//! - `stop`        — deliveries whose envelope rides behind another message's data.
//! - `stream`      — TCP or TLS stream, certificate verification.
//!
//! A delivery first looks for a message of the same upstream waiting for its `354` on a
//! pipelining connection, and rides behind it (`stop`); else it takes a pooled connection,
//! else opens one. At the connection limit it queues for the next stop that opens, or the
//! next free slot, whichever comes first. A failure on a pooled (or ridden) connection
//! before the upstream accepted MAIL FROM (dead socket, 421, refused RSET) is retried
//! once, at once, on a fresh connection. Every log line carries the queue id; credentials
//! are never logged. This module never touches the spool.

mod conn;
mod dot;
mod error;
mod pool;
mod reply;
mod session;
mod stop;
mod stream;
mod transaction;

use self::conn::Connection;
use self::pool::Pool;
use self::session::Settings;
use self::stop::{Boarding, Ride, Stops};
use self::stream::TlsTarget;
use self::transaction::Start;
use crate::config::{SmtpUpstream as SmtpConfig, UpstreamAuth, UpstreamTls};
use crate::relay::oauth::TokenSource;
use crate::relay::{BoxFuture, Deliver, ErrorKind, Outgoing, RcptOutcome, RelayError, Retry, Side};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One configured SMTP upstream with its pool of idle connections.
pub struct SmtpUpstream {
    name: String,
    settings: Settings,
    pool: Pool,
    /// Connections waiting for a `354` that a delivery may ride behind.
    stops: Stops,
    /// One permit per connection that may be open at once (`max_connections`).
    slots: Arc<Semaphore>,
}

impl SmtpUpstream {
    /// Prepares the upstream `name` from its configuration: reads `ca_file` and builds the
    /// TLS client configuration now, so a bad setting fails at start, not at first delivery.
    /// No connection is opened here. `helo_name` is sent with EHLO (empty = the local
    /// address as an address literal). Without the shared HTTP client, an upstream cannot
    /// get OAuth2 tokens (`with_shared`).
    pub fn new(name: &str, cfg: &SmtpConfig, helo_name: &str) -> Result<SmtpUpstream, RelayError> {
        SmtpUpstream::build(name, cfg, helo_name, None)
    }

    /// As `new`, with what every upstream shares: the HTTP client its OAuth2 tokens are
    /// fetched with, and where warnings about its credentials go.
    pub fn with_shared(
        name: &str,
        cfg: &SmtpConfig,
        helo_name: &str,
        shared: &crate::relay::Shared,
    ) -> Result<SmtpUpstream, RelayError> {
        SmtpUpstream::build(name, cfg, helo_name, Some(shared))
    }

    fn build(
        name: &str,
        cfg: &SmtpConfig,
        helo_name: &str,
        shared: Option<&crate::relay::Shared>,
    ) -> Result<SmtpUpstream, RelayError> {
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
        let oauth = match (cfg.auth, &cfg.oauth, shared) {
            (UpstreamAuth::Xoauth2 | UpstreamAuth::Oauthbearer, Some(oauth), Some(shared)) => {
                let tokens =
                    TokenSource::new(name, oauth, &cfg.username, shared, cfg.ca_file.as_deref());
                Some(tokens.map_err(|e| local(error::SmtpError::Config(e.to_string())))?)
            }
            (UpstreamAuth::Xoauth2 | UpstreamAuth::Oauthbearer, Some(_), None) => {
                return Err(local(error::SmtpError::Config(
                    "OAuth2 tokens need the shared HTTP client".into(),
                )))
            }
            (UpstreamAuth::Xoauth2 | UpstreamAuth::Oauthbearer, None, _) => {
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
            chunking: cfg.chunking,
        };
        Ok(SmtpUpstream {
            name: name.to_string(),
            settings,
            pool: Pool::new(cfg.pool_size, Duration::from_secs(cfg.pool_idle_secs)),
            stops: Stops::default(),
            slots: Arc::new(Semaphore::new(cfg.max_connections.max(1))),
        })
    }

    /// One delivery: behind another message on its connection if one waits for its `354`
    /// (see `stop`), else once a connection slot is free (or, at the limit, behind the next
    /// message whose stop opens first), on a pooled connection if there is one (with one
    /// retry on a fresh connection if that one turns out dead), else on a new connection.
    /// Holding a slot for the whole delivery keeps the open connections within what the
    /// pool can take back, so a busy upstream is not met with connection churn; a rider is
    /// handed its leader's slot with the connection.
    async fn deliver_message(&self, msg: &Outgoing<'_>) -> Result<Vec<RcptOutcome>, RelayError> {
        if msg.rcpts.is_empty() {
            return Ok(Vec::new());
        }
        let mut slot = None;
        let ride = match self.ride_along(msg).await {
            Some(ride) => Some(ride),
            None => match self.slot_or_seat(msg).await? {
                Turn::Slot(permit) => {
                    slot = Some(permit);
                    None
                }
                Turn::Ride(ride) => Some(*ride),
            },
        };
        if let Some(ride) = ride {
            slot = ride.slot;
            match self.attempt(ride.conn, &mut slot, msg, Start::Riding).await {
                Err(e) if e.retry == Retry::IfReused => self.log_retry(msg, &e),
                done => return done,
            }
        }
        if slot.is_none() {
            slot = Some(self.slot().await?);
        }
        if let Some(conn) = self.pool.take() {
            match self.attempt(conn, &mut slot, msg, Start::Reused).await {
                Err(e) if e.retry == Retry::IfReused => self.log_retry(msg, &e),
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
        self.attempt(conn, &mut slot, msg, Start::Fresh).await
    }

    /// Boards an open stop, if there is one, and waits for the connection its envelope was
    /// sent on. `None`: no stop, or the leader did not send it.
    async fn ride_along(&self, msg: &Outgoing<'_>) -> Option<Ride> {
        let ride = self.stops.board(|| boarding(msg))?;
        ride.await.ok()
    }

    /// A free connection slot, or else whichever comes first: a slot, or a seat at the next
    /// stop that opens (see `stop`). A delivery seated just as a slot came free keeps the
    /// slot until its leader has sent its envelope, and uses it if the leader does not.
    async fn slot_or_seat(&self, msg: &Outgoing<'_>) -> Result<Turn, RelayError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(Turn::Slot(permit));
        }
        // Where connections are not reused, no stop ever opens.
        let ticket = self
            .pool
            .keeps_any()
            .then(|| self.stops.queue(|| boarding(msg)));
        let Some(mut ticket) = ticket.flatten() else {
            return self.slot().await.map(Turn::Slot);
        };
        let permit = tokio::select! {
            ride = &mut ticket.ride => match ride {
                Ok(ride) => return Ok(Turn::Ride(Box::new(ride))),
                Err(_) => return self.slot().await.map(Turn::Slot),
            },
            permit = self.slot() => permit?,
        };
        if ticket.leave() {
            return Ok(Turn::Slot(permit));
        }
        match (&mut ticket.ride).await {
            Ok(ride) => Ok(Turn::Ride(Box::new(ride))),
            Err(_) => Ok(Turn::Slot(permit)),
        }
    }

    /// Waits for one of the `max_connections` connection slots.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, RelayError> {
        self.slots.clone().acquire_owned().await.map_err(|_| {
            RelayError::new(
                ErrorKind::Protocol,
                Side::Local,
                Retry::Later,
                "upstream closed",
            )
        })
    }

    fn log_retry(&self, msg: &Outgoing<'_>, e: &RelayError) {
        tracing::info!(
            queue_id = msg.id,
            upstream = %self.name,
            error = %e,
            "pooled connection failed; retrying on a fresh connection"
        );
    }

    /// Runs one transaction on `conn`; afterwards a clean connection goes to the rider whose
    /// envelope followed this message (with `slot`), or back to the pool.
    async fn attempt(
        &self,
        mut conn: Connection,
        slot: &mut Option<OwnedSemaphorePermit>,
        msg: &Outgoing<'_>,
        start: Start,
    ) -> Result<Vec<RcptOutcome>, RelayError> {
        // No riding where connections are not to be reused at all.
        let stops = (!conn.downgraded && self.pool.keeps_any()).then_some(&self.stops);
        match transaction::run(&mut conn, msg, start, stops).await {
            Ok(mut done) => {
                if conn.downgraded {
                    done.outcomes = done.outcomes.into_iter().map(tls_wanted).collect();
                } else if let Some(rider) = done.rider.take() {
                    rider.hand(Ride {
                        conn,
                        slot: slot.take(),
                    });
                } else if done.reusable {
                    self.pool.put(conn);
                }
                log_outcomes(&self.name, msg, &done.outcomes);
                Ok(done.outcomes)
            }
            Err(failed) => {
                let untouched = start != Start::Fresh && !failed.mail_accepted;
                let e = failed.error.into_relay(&self.name, untouched);
                if e.retry != Retry::IfReused {
                    tracing::warn!(queue_id = msg.id, upstream = %self.name, error = %e, "delivery failed");
                }
                Err(e)
            }
        }
    }
}

/// What a delivery waiting for its turn gets.
enum Turn {
    /// A connection slot: a pooled or new connection follows.
    Slot(OwnedSemaphorePermit),
    /// A connection its envelope was sent on, behind another message (boxed: a connection
    /// is large, a permit small).
    Ride(Box<Ride>),
}

/// The envelope of `msg` for a stop; `None` when it is unfit to be written by another
/// delivery (the leader writes it, so it is checked before it boards).
fn boarding(msg: &Outgoing<'_>) -> Option<Boarding> {
    transaction::check_envelope(msg).ok()?;
    Some(Boarding {
        id: msg.id.to_string(),
        mail_from: msg.mail_from.to_string(),
        rcpts: msg.rcpts.to_vec(),
        smtputf8: msg.smtputf8,
        eight_bit: msg.eight_bit,
    })
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
