//! Networking shared by every listener: the accept loop with its connection limits, and
//! TLS configuration (the server certificate, generated for development when missing), and
//! the small HTTP client for outgoing calls (webhooks, OAuth2 token endpoints), and the
//! resolver settings (`dns`); `wire`, the clear or TLS stream of mail client sessions, and
//! `imap`, the IMAP client session (connect, TLS, login) sent copies and fetching share;
//! `pop3`, the POP3 client session (connect, TLS, login, UIDL, RETR, DELE) of fetching.

pub mod dns;
pub mod http;
pub mod imap;
pub mod listener;
pub mod pop3;
pub mod tls;
pub mod wire;

/// Why a listener or its TLS setup failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("certificate {path}: {reason}")]
    Certificate { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Tls(String),
}
