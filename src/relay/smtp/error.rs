//! Why one conversation with an SMTP upstream failed, and how that becomes the relay's
//! `RelayError` (kind, side, retry decision).
//!
//! This is the one error enum of the SMTP client. It never carries a password: AUTH failures
//! keep only the upstream's reply.

use super::reply::Reply;
use crate::relay::{ErrorKind, RelayError, Retry, Side};
use std::time::Duration;

/// A failure of the connection or of the conversation as a whole (per-recipient refusals are
/// outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SmtpError {
    /// The upstream's configuration cannot work (bad CA file, host name, address in the
    /// envelope that would break the command line).
    #[error("configuration: {0}")]
    Config(String),
    /// The TLS client configuration cannot be built (unreadable or empty `ca_file`).
    #[error("tls setup: {0}")]
    TlsSetup(String),
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    /// No reply, connection or write progress within the configured time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// Reading or writing the socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The upstream closed the connection.
    #[error("connection closed by the upstream")]
    Eof,
    /// TLS could not be set up (handshake, certificate, STARTTLS missing or refused).
    #[error("tls: {0}")]
    Tls(String),
    /// The upstream sent something that is not an SMTP reply, or a reply out of place.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The greeting or EHLO/HELO was refused.
    #[error("upstream refused the session: {0}")]
    Refused(Reply),
    /// The upstream answered 421: it is closing the connection.
    #[error("upstream is closing the connection: {0}")]
    Closing(Reply),
    /// A reused connection did not accept RSET.
    #[error("RSET refused on a reused connection: {0}")]
    Rset(Reply),
    /// Authentication failed or is not offered.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// No OAuth2 token could be obtained for XOAUTH2 / OAUTHBEARER.
    #[error("no OAuth2 token: {0}")]
    Token(crate::relay::oauth::OAuthError),
}

impl SmtpError {
    /// Maps the failure onto the relay's error axes. `reused_untouched` is true when the
    /// connection came from the pool and the upstream had not yet accepted MAIL FROM: such a
    /// failure (dead socket, 421, refused RSET) is worth one immediate retry on a fresh one.
    pub(crate) fn into_relay(self, upstream: &str, reused_untouched: bool) -> RelayError {
        let (kind, side) = match &self {
            SmtpError::Config(_) => (ErrorKind::Protocol, Side::Local),
            SmtpError::TlsSetup(_) => (ErrorKind::Tls, Side::Local),
            SmtpError::Connect { .. } => (ErrorKind::Connect, Side::Upstream),
            SmtpError::Timeout(..) => (ErrorKind::Timeout, Side::Upstream),
            SmtpError::Io(_) | SmtpError::Eof => (ErrorKind::Io, Side::Upstream),
            SmtpError::Tls(_) => (ErrorKind::Tls, Side::Upstream),
            SmtpError::Protocol(_) | SmtpError::Rset(_) => (ErrorKind::Protocol, Side::Upstream),
            SmtpError::Refused(_) | SmtpError::Closing(_) => (ErrorKind::Rejected, Side::Upstream),
            SmtpError::Auth(_) => (ErrorKind::Auth, Side::Upstream),
            // Refused client credentials are the account's problem; an unreachable or
            // failing token endpoint only delays it.
            SmtpError::Token(e) if e.is_permanent() => (ErrorKind::Auth, Side::Local),
            SmtpError::Token(_) => (ErrorKind::Connect, Side::Local),
        };
        let stale = matches!(
            self,
            SmtpError::Io(_) | SmtpError::Eof | SmtpError::Closing(_) | SmtpError::Rset(_)
        );
        let retry = match self {
            SmtpError::Config(_) | SmtpError::TlsSetup(_) => Retry::Never,
            _ if stale && reused_untouched => Retry::IfReused,
            _ => Retry::Later,
        };
        RelayError::new(kind, side, retry, format!("upstream {upstream}: {self}"))
    }
}
