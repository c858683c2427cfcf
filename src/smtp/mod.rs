//! The SMTP server. `serve` runs one connection: implicit TLS or plain text, a `Session`
//! until it ends or asks for STARTTLS, then a fresh session over TLS (state reset, every
//! byte pipelined behind STARTTLS discarded).
//!
//! Commands are classified by smtp-proto, except MAIL and RCPT, whose arguments Postern
//! reads itself (`params`) to close smtp-proto's gaps. Framing is strict (`io`). The
//! server decides nothing about policy: it asks `policy` and hands messages to `spool`.
//!
//! Time limits are deadlines (`deadline`): per command line, per payload at a minimum data
//! rate, per TLS handshake, and one for the whole session, which STARTTLS does not reset.

mod auth;
mod bdat;
mod data;
pub mod deadline;
mod ehlo;
mod fits;
mod inbound;
pub mod io;
mod mail;
mod message;
mod originator;
pub mod params;
mod rcpt;
pub mod reply;
mod session;

pub use session::{Next, Session, State, Transaction};

use crate::config::{Limits, ListenerConfig, TlsMode};
use crate::metrics::Metrics;
use crate::policy::{principal, Credentials, Policy, Principal};
use crate::spool::Spool;
use crate::store::{MessageIds, Tickets, UserKind, UserStatus};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
    #[error("TLS handshake: {}", .0.reason())]
    HandshakeTimeout(deadline::Limit),
}

/// What every session of one listener shares.
pub struct Shared {
    pub listener: ListenerConfig,
    pub limits: Limits,
    pub hostname: String,
    pub tls: Option<TlsAcceptor>,
    pub credentials: Credentials,
    pub spool: Arc<Spool>,
    pub metrics: Arc<Metrics>,
    /// The send-as policy.
    pub policy: Arc<Policy>,
    /// Where Message-IDs of sent mail are recorded.
    pub message_ids: MessageIds,
    /// The ticket store (a reply sent through Postern is recorded for its ticket).
    pub tickets: Tickets,
    /// Upstream for mail no account routes (inbound, for now).
    pub upstream: String,
    /// SPF, DKIM, DMARC and ARC checks of an inbound listener (`None`: not checked).
    pub verifier: Option<Arc<crate::inbound::Verifier>>,
    /// Whether accepted messages of non-private users are marked for the archive.
    pub archive: bool,
    /// The upstreams, asked for the largest message an account's upstream takes (`None`:
    /// no such check).
    pub relays: Option<Arc<crate::relay::Relays>>,
}

impl Shared {
    /// AUTH is offered over TLS, or in plain text only on a loopback listener that allows it.
    pub fn auth_allowed(&self, tls: bool) -> bool {
        tls || (self.listener.allow_plaintext_auth && self.listener.bind.ip().is_loopback())
    }

    fn trusted_principal(&self, peer: &SocketAddr) -> Option<Principal> {
        let ip = peer.ip();
        if !self
            .listener
            .trusted_networks
            .iter()
            .any(|net| net.contains(&ip))
        {
            return None;
        }
        let login = &self.listener.trusted_principal;
        match self.policy.snapshot().user_by_login(login) {
            Some(user) if user.kind == UserKind::System && user.status == UserStatus::Active => {
                Some(principal(user))
            }
            _ => {
                tracing::warn!(listener = %self.listener.name, principal = %login,
                    "trusted_principal is not an active system user; trusted client must authenticate");
                None
            }
        }
    }

    /// The state a new session from `peer` starts in (trusted networks already applied);
    /// `serve` uses it, and so do harnesses that run a `Session` over another stream.
    pub fn fresh_state(&self, tls: bool, peer: &SocketAddr, deadline: Instant) -> State {
        State {
            tls,
            helo: None,
            esmtp: false,
            principal: self.trusted_principal(peer),
            tx: None,
            errors: 0,
            auth_failures: 0,
            deadline,
        }
    }
}

/// Runs one SMTP connection to its end.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> Result<(), SmtpError> {
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + Duration::from_secs(shared.limits.session_timeout_secs);
    let greeting = reply::greeting(&shared.hostname);
    if shared.listener.tls == TlsMode::Implicit {
        let tls = handshake(&shared, stream, &peer, deadline).await?;
        let state = shared.fresh_state(true, &peer, deadline);
        let mut session = Session::new(tls, shared.clone(), peer, state);
        session.conn.reply(&greeting);
        session.run().await?;
        return Ok(());
    }
    let state = shared.fresh_state(false, &peer, deadline);
    let mut session = Session::new(stream, shared.clone(), peer, state);
    session.conn.reply(&greeting);
    if session.run().await? != Next::StartTls {
        return Ok(());
    }
    let (errors, auth_failures) = (session.state.errors, session.state.auth_failures);
    let tls = handshake(&shared, session.conn.into_stream(), &peer, deadline).await?;
    let mut state = shared.fresh_state(true, &peer, deadline);
    state.errors = errors;
    state.auth_failures = auth_failures;
    Session::new(tls, shared.clone(), peer, state).run().await?;
    Ok(())
}

/// The TLS handshake, within `idle_timeout_secs` (at most 30 s) and the session's end. A
/// client that runs out of time gets no reply (there is no channel for one) but is counted
/// and logged like every other time limit.
async fn handshake(
    shared: &Shared,
    stream: TcpStream,
    peer: &SocketAddr,
    session_end: Instant,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, SmtpError> {
    let acceptor = shared.tls.clone().ok_or_else(|| {
        SmtpError::Handshake(std::io::Error::other("listener has no certificate"))
    })?;
    let deadline = deadline::Timing::new(&shared.limits, session_end).handshake();
    match tokio::time::timeout_at(deadline.at.into(), acceptor.accept(stream)).await {
        Ok(done) => done.map_err(SmtpError::Handshake),
        Err(_) => {
            let limit = deadline.limit;
            shared.metrics.reject(limit.reject());
            tracing::info!(%peer, listener = %shared.listener.name, limit = limit.reject().as_str(),
                "{}; closing the connection", limit.reason());
            Err(SmtpError::HandshakeTimeout(limit))
        }
    }
}
