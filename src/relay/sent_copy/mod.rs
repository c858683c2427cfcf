//! Sent copies (SPEC §5): an account on an SMTP-based upstream (`smtp`, `microsoft365`,
//! `google`) with `sent_copy` set has each message sent through it filed in its mailbox's
//! Sent folder by IMAP `APPEND` — once per message, after the upstream accepted it.
//!
//! - `Copying` wraps those upstreams (in `relay::build`): after a delivery in which at
//!   least one recipient was accepted, a message whose envelope sender is an account with
//!   `sent_copy` gets a durable job. That write (only for such accounts) is all it adds to
//!   the delivery path; it never fails or delays a delivery.
//! - `jobs` — the per-node directory queue (`data_dir/sent-copies/`), one job per message.
//! - `appender` — the task that files the jobs and retries failures with backoff, showing
//!   them as the account's `sent_copy` warning until the next success.
//! - `imap` — the IMAP client side (async-imap over tokio-rustls).
//!
//! Microsoft Graph saves to Sent Items itself and Gmail files what it sends over SMTP, so
//! neither needs this.
//!
//! XOAUTH2 reuses the OAuth settings of the account's upstream, so its token must also
//! grant IMAP: for Microsoft 365, `IMAP.AccessAsUser.All` beside `SMTP.Send` (refresh
//! token) or `IMAP.AccessAsApp` (client credentials, `https://outlook.office365.com/.default`,
//! the app's service principal given access to the mailbox) — see
//! <https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth>.

mod appender;
mod imap;
pub mod jobs;

pub use appender::Appender;

use super::warnings::{Subject, Warnings};
use super::{BoxFuture, Deliver, Outgoing, RcptOutcome, RelayError};
use crate::policy::Policy;
use jobs::{JobHead, Jobs};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Notify;

/// Why a copy could not be recorded or filed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SentCopyError {
    #[error("sent-copy queue: {0}")]
    Io(String),
    #[error("sent-copy job unreadable: {0}")]
    Corrupt(String),
    #[error("cannot reach the IMAP server {0}")]
    Connect(String),
    #[error("TLS with the IMAP server: {0}")]
    Tls(String),
    #[error("IMAP login refused by {0}")]
    Login(String),
    #[error("IMAP server {0}")]
    Refused(String),
    #[error("no OAuth token for XOAUTH2: {0}")]
    Token(String),
}

impl From<crate::net::imap::ImapError> for SentCopyError {
    fn from(error: crate::net::imap::ImapError) -> SentCopyError {
        use crate::net::imap::ImapError;
        match error {
            ImapError::Connect(e) => SentCopyError::Connect(e),
            ImapError::Tls(e) => SentCopyError::Tls(e),
            ImapError::Login(e) => SentCopyError::Login(e),
            ImapError::Refused(e) => SentCopyError::Refused(e),
        }
    }
}

/// What the wrapper and the appender share: the queue, the accounts, a wake-up call.
pub struct SentCopies {
    jobs: Arc<Jobs>,
    policy: Arc<Policy>,
    warnings: Arc<Warnings>,
    wake: Notify,
}

impl SentCopies {
    /// Opens the queue in `dir`; accounts are looked up in `policy`'s snapshot, failures
    /// shown in `warnings`.
    pub fn open(
        dir: &Path,
        policy: Arc<Policy>,
        warnings: Arc<Warnings>,
    ) -> Result<Arc<SentCopies>, SentCopyError> {
        Ok(Arc::new(SentCopies {
            jobs: Arc::new(Jobs::open(dir)?),
            policy,
            warnings,
            wake: Notify::new(),
        }))
    }

    /// Records the copy of `msg` when its envelope sender is an account with `sent_copy`
    /// (the rest cost one snapshot look-up). A failure is logged and raised as the
    /// account's `sent_copy` warning (cleared by its next copy filed); the delivery stands.
    async fn record(&self, msg: &Outgoing<'_>) {
        if msg.mail_from.is_empty() {
            return;
        }
        let account = {
            let snapshot = self.policy.snapshot();
            match snapshot.account_by_address(msg.mail_from) {
                Some(account) if account.sent_copy.is_some() => account.id,
                _ => return,
            }
        };
        let head = JobHead {
            account,
            message_id: message_id(msg.data),
            queue_id: msg.id.to_string(),
        };
        let data = msg.data.to_vec();
        let jobs = self.jobs.clone();
        let added = tokio::task::spawn_blocking(move || jobs.add(&head, &data))
            .await
            .unwrap_or_else(|e| Err(SentCopyError::Io(e.to_string())));
        match added {
            Ok(true) => self.wake.notify_one(),
            Ok(false) => {
                tracing::debug!(queue_id = %msg.id, account, "sent copy already recorded")
            }
            Err(error) => {
                tracing::error!(queue_id = %msg.id, account, %error, "sent copy not recorded");
                let message = format!("a sent copy could not be recorded: {error}");
                let subject = Subject::Account(account);
                self.warnings.raise(subject, appender::KIND, message, None);
            }
        }
    }
}

/// The `Message-ID` of `data` (with its angle brackets), read from the header block.
fn message_id(data: &[u8]) -> Option<String> {
    let header = &data[..crate::rewrite::header_block_len(data)];
    let parsed = mail_parser::MessageParser::new().parse_headers(header)?;
    parsed.message_id().map(|id| format!("<{id}>"))
}

/// An upstream whose accepted messages get their sent copy recorded.
pub struct Copying {
    inner: Arc<dyn Deliver>,
    copies: Arc<SentCopies>,
}

impl Copying {
    pub fn new(inner: Arc<dyn Deliver>, copies: Arc<SentCopies>) -> Copying {
        Copying { inner, copies }
    }
}

impl Deliver for Copying {
    fn deliver<'a>(
        &'a self,
        msg: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Vec<RcptOutcome>, RelayError>> {
        Box::pin(async move {
            let result = self.inner.deliver(msg).await;
            let accepted = result.as_ref().is_ok_and(|outcomes| {
                outcomes
                    .iter()
                    .any(|o| matches!(o, RcptOutcome::Delivered(_)))
            });
            if accepted {
                self.copies.record(msg).await;
            }
            result
        })
    }

    fn judges_account(&self) -> bool {
        self.inner.judges_account()
    }

    fn max_message_size(&self) -> Option<usize> {
        self.inner.max_message_size()
    }
}
