//! The helpdesk path (SPEC §7). Inbound mail is accepted by the SMTP server (blocklist at
//! MAIL FROM and on the header From, helpdesk mailboxes only at RCPT), made durable by the
//! spool like any other message, and then delivered by the spool worker to the `Hook`: a
//! `relay::Deliver` under the reserved upstream name `UPSTREAM`, so inbound mail gets the
//! spool's guarantees (durable before `250`, retried after a crash or a store failure)
//! without a second queue. Mail fetched from a mailbox at the provider (`fetch`) enters
//! through `Hook::fetched` instead: not spooled (it stays at the provider until recorded),
//! processed at once with a mark naming it at the server.
//!
//! - `verdicts`  — SPF, DKIM, DMARC and ARC (the SMTP session runs them; the verdicts
//!   reach the hook in the spool's metadata).
//! - `parse`     — what the hook reads from a message (mail-parser, cleaned text).
//! - `loops`     — auto-reply and loop detection.
//! - `requester` — sender lookup and auto-creation.
//! - `thread`    — which ticket a message joins.
//! - `process`   — one message for one mailbox: marks, requester, loops; `plan` decides the
//!   one atomic change of the ticket store, with the webhook deliveries of its event
//!   (`event`).
//! - `notice`    — the "set your password" message to a new requester.
//! - `webhook`   — the `Dispatcher` that calls webhooks, signed, with durable retries.
//!
//! The hook never bounces (refusals that need an answer happen in the SMTP dialogue), never
//! sends mail back for automatic mail, and records each (message, mailbox) once: a
//! redelivery or a resend finds its idempotence mark.

mod event;
mod loops;
mod notice;
pub(crate) mod parse;
mod plan;
mod process;
mod requester;
mod thread;
mod verdicts;
mod webhook;

pub use loops::marker as loop_marker;
pub use notice::{send_password_link, LINK_LIFETIME_SECS};
pub use parse::{clean, Parsed};
pub use process::{process, Context, Incoming, Processed, Recorded};
pub use requester::login_for;
pub use thread::{knows, subject_tag};
pub use verdicts::{Checked, Verifier};
pub use webhook::{sign, Dispatcher};

use crate::policy::{Policy, PolicyError};
use crate::relay::{BoxFuture, Deliver, ErrorKind, Outgoing, RcptOutcome, RelayError, Retry, Side};
use crate::spool::Spool;
use crate::store::{Store, StoreError, User, Verdicts};
use std::sync::Arc;

/// The upstream name inbound messages are queued for. Not a valid upstream name in the
/// config or the API (`@` is refused there), so it cannot be shadowed.
pub const UPSTREAM: &str = "@inbound";

/// Why processing an inbound message failed.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("DNS resolver: {0}")]
    Dns(String),
    #[error("{0}")]
    Spool(#[from] crate::spool::SpoolError),
    #[error("no system or default account to send notices from")]
    NoSender,
    #[error("task failed: {0}")]
    Task(String),
    #[error("unreadable message: {0}")]
    Parse(String),
    /// Nothing to record, on purpose (the reason).
    #[error("skipped: {0}")]
    Skip(String),
    /// Recorded before (found under the store's writer lock).
    #[error("recorded before")]
    Duplicate,
}

/// A message fetched from a helpdesk mailbox's server, for `Hook::fetched`.
pub struct Fetched {
    /// The mailbox's address.
    pub mailbox: String,
    /// `f/<account id>/…`: the message's name at the server.
    pub mark: String,
    /// The `Return-Path` the provider recorded (empty for the null sender), else the
    /// header `From` address.
    pub mail_from: String,
    pub data: Vec<u8>,
    /// Taken from the provider's trusted `Authentication-Results` field, if any.
    pub verdicts: Option<Verdicts>,
}

/// The ticketing hook: turns queued inbound messages into tickets.
#[derive(Clone)]
pub struct Hook {
    store: Store,
    policy: Arc<Policy>,
    hostname: String,
    /// Woken when webhook deliveries were queued.
    webhooks: Arc<tokio::sync::Notify>,
    /// Where notices to new requesters are queued.
    spool: Arc<Spool>,
    /// Serialises requester creation (see `Context::creating`).
    creating: Arc<std::sync::Mutex<()>>,
}

impl Hook {
    pub fn new(
        store: Store,
        policy: Arc<Policy>,
        hostname: String,
        webhooks: Arc<tokio::sync::Notify>,
        spool: Arc<Spool>,
    ) -> Hook {
        Hook {
            store,
            policy,
            hostname,
            webhooks,
            spool,
            creating: Arc::default(),
        }
    }

    /// Sends each requester created for this message its "set your password" link. A
    /// failure is logged: the requester exists, and an administrator can set a password.
    async fn welcome(&self, created: Vec<User>) {
        for user in created {
            let sent = send_password_link(
                &self.store,
                &self.policy,
                &self.spool,
                &self.hostname,
                &user,
            )
            .await;
            if let Err(error) = sent {
                tracing::error!(login = %user.login, %error, "password link not sent");
            }
        }
    }

    /// Processes one message fetched from helpdesk mailbox `mailbox`'s server (`fetch`),
    /// `mark` naming it there (the mailbox, and UIDVALIDITY and UID, UIDL or Graph id), so
    /// that fetching it again, under the same name or (by its Message-ID, else its octets'
    /// digest) another one, records nothing twice. Webhooks are woken and new requesters
    /// sent their link as for mail that came by SMTP.
    pub async fn fetched(&self, message: Fetched) -> Result<Processed, InboundError> {
        let hook = self.clone();
        let (result, created) = tokio::task::spawn_blocking(move || {
            let ctx = Context {
                store: &hook.store,
                policy: &hook.policy,
                hostname: &hook.hostname,
                creating: &hook.creating,
            };
            let incoming = Incoming {
                queue_id: "fetched",
                mail_from: &message.mail_from,
                rcpt: &message.mailbox,
                data: &message.data,
                verdicts: message.verdicts,
                fetched: Some(message.mark),
            };
            let result = process(&ctx, &incoming);
            let created = match &result {
                Ok(Processed::Recorded(recorded)) => {
                    if !recorded.change.deliveries.is_empty() {
                        hook.webhooks.notify_one();
                    }
                    recorded
                        .requester
                        .created
                        .then(|| recorded.requester.user.clone())
                }
                Ok(Processed::Dropped {
                    created: Some(user),
                    ..
                }) => Some(User::clone(user)),
                _ => None,
            };
            (result, created)
        })
        .await
        .map_err(|e| InboundError::Task(e.to_string()))?;
        self.welcome(created.into_iter().collect()).await;
        result
    }

    /// Processes one message for each of its recipients; the outcomes and the requesters
    /// created. Blocking.
    fn run(
        &self,
        verdicts: Option<Verdicts>,
        queue_id: &str,
        mail_from: &str,
        rcpts: &[String],
        data: &[u8],
    ) -> (Vec<RcptOutcome>, Vec<User>) {
        let ctx = Context {
            store: &self.store,
            policy: &self.policy,
            hostname: &self.hostname,
            creating: &self.creating,
        };
        let mut created = Vec::new();
        let outcomes = rcpts
            .iter()
            .map(|rcpt| {
                let incoming = Incoming {
                    queue_id,
                    mail_from,
                    rcpt,
                    data,
                    verdicts: verdicts.clone(),
                    fetched: None,
                };
                let result = process(&ctx, &incoming);
                match &result {
                    Ok(Processed::Recorded(recorded)) => {
                        if !recorded.change.deliveries.is_empty() {
                            self.webhooks.notify_one();
                        }
                        if recorded.requester.created {
                            created.push(recorded.requester.user.clone());
                        }
                    }
                    Ok(Processed::Dropped {
                        created: Some(user),
                        ..
                    }) => created.push(User::clone(user)),
                    _ => {}
                }
                outcome(queue_id, rcpt, result)
            })
            .collect();
        (outcomes, created)
    }
}

/// The spool's view of what processing did.
fn outcome(queue_id: &str, rcpt: &str, result: Result<Processed, InboundError>) -> RcptOutcome {
    match result {
        Ok(Processed::Recorded(recorded)) => {
            let done = recorded
                .change
                .marks
                .first()
                .map(|(_, done)| done.clone())
                .unwrap_or_default();
            tracing::info!(queue_id, rcpt, ticket = ?done.ticket, article = ?done.article,
                knowledge = ?done.knowledge, "inbound message recorded");
            RcptOutcome::Delivered(format!("recorded {done:?}"))
        }
        Ok(Processed::AlreadyDone) => RcptOutcome::Delivered("recorded before".into()),
        Ok(Processed::Dropped { why, .. }) => {
            tracing::info!(queue_id, rcpt, reason = %why, "inbound message not recorded");
            RcptOutcome::Delivered(format!("not recorded: {why}"))
        }
        Err(error) => {
            tracing::error!(queue_id, rcpt, %error, "inbound message not processed; will retry");
            RcptOutcome::Temporary(format!("451 4.3.0 {error}"))
        }
    }
}

impl Deliver for Hook {
    fn deliver<'a>(
        &'a self,
        msg: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Vec<RcptOutcome>, RelayError>> {
        Box::pin(async move {
            let (hook, id, from, rcpts, data) = (
                self.clone(),
                msg.id.to_string(),
                msg.mail_from.to_string(),
                msg.rcpts.to_vec(),
                msg.data.to_vec(),
            );
            // The verdicts found before the 250 are in the message's spool metadata.
            let verdicts = u64::from_str_radix(&id, 16)
                .ok()
                .and_then(|queue_id| self.spool.meta(queue_id))
                .and_then(|meta| meta.verdicts);
            let (outcomes, created) =
                tokio::task::spawn_blocking(move || hook.run(verdicts, &id, &from, &rcpts, &data))
                    .await
                    .map_err(|e| {
                        RelayError::new(ErrorKind::Io, Side::Local, Retry::Later, e.to_string())
                    })?;
            self.welcome(created).await;
            Ok(outcomes)
        })
    }
}
