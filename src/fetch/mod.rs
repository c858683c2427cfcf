//! Fetching helpdesk mail from the provider's mailbox (SPEC §7): for each helpdesk mailbox
//! whose `inbound.fetch` is set, one task on this node (one node at a time: a lease in
//! the store) that reads the mailbox's new messages over IMAP (IDLE where offered),
//! POP3 (UIDL) or Microsoft Graph (delta queries) and hands each to the same inbound path
//! as mail that came by SMTP (`inbound::Hook::fetched`).
//!
//! - `intake`  — one fetched message: blocked senders, the provider's trusted
//!   `Authentication-Results`, then the hook; what became of it (`Taken`).
//! - `imap`, `pop3`, `graph` — one session of each kind, from connection to failure.
//! - `status`  — what each fetcher is doing (connected, idle, polling, failing), for the
//!   API and metrics.
//! - `supervise` — the tasks: started, restarted with backoff, stopped as settings change.
//!
//! Exactly once: a message is recorded (its ticket with the mark naming it at the server,
//! `f/<account>/…`, in one atomic change of the ticket store; then the fetch state, synced)
//! before it is acknowledged at the server (seen, moved, deleted). A crash in between
//! leaves it in the state's `unacked` (acknowledged at the next start) or fetches it again
//! and finds its mark; a UIDVALIDITY change or a second fetch by hand finds its Message-ID
//! mark (or, without one, its digest's).

pub mod graph;
pub mod imap;
pub mod intake;
pub mod pop3;
pub mod state;
pub mod status;
pub mod supervise;

pub use intake::{Intake, Taken};
pub use status::{Phase, Status, StatusBook};
pub use supervise::Fetchers;

use crate::store::StoreError;

/// Why a fetch session ended, or a message could not be handed on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The server could not be reached or the session broke.
    #[error("{0}")]
    Connect(String),
    /// The server refused the credentials (the account turns `failing`).
    #[error("{0}")]
    Login(String),
    /// The server refused a command.
    #[error("{0}")]
    Refused(String),
    #[error("no OAuth token: {0}")]
    Token(String),
    /// The control store or the inbound path failed: nothing acknowledged, tried again.
    #[error("{0}")]
    Store(String),
    /// The settings cannot work (say, XOAUTH2 without OAuth settings on the upstream).
    #[error("{0}")]
    Settings(String),
}

impl From<StoreError> for FetchError {
    fn from(error: StoreError) -> FetchError {
        FetchError::Store(error.to_string())
    }
}

impl From<crate::net::imap::ImapError> for FetchError {
    fn from(error: crate::net::imap::ImapError) -> FetchError {
        use crate::net::imap::ImapError;
        let text = error.to_string();
        match error {
            ImapError::Connect(_) | ImapError::Tls(_) => FetchError::Connect(text),
            ImapError::Login(_) => FetchError::Login(text),
            ImapError::Refused(_) => FetchError::Refused(text),
        }
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
