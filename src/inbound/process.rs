//! What one inbound message becomes for one helpdesk mailbox (SPEC §7): requester lookup
//! or creation, loop detection, then the change `plan` decides — written as one atomic
//! change of the ticket store (ticket, article, attachments, Message-ID index, webhook
//! deliveries, idempotence marks).
//!
//! Each (message, mailbox) is recorded once: a mark per queue id and mailbox (a redelivery
//! after a crash, or the mailbox's address and alias both in the envelope; queue ids are
//! a node's own, so with several nodes the mark names the node) and a mark per
//! Message-ID and mailbox (the sending server's resend after a lost `250`). Nothing here
//! bounces: what the hook will not record is dropped with its reason logged (refusals that
//! need an answer happen in the SMTP dialogue, before the `250`).

use super::loops;
use super::parse::{parse, Parsed};
use super::plan::{Plan, DUPLICATE};
use super::requester::{find_or_create, Requester};
use super::InboundError;
use crate::policy::Policy;
use crate::store::{ref_key, Account, Change, Store, User, UserStatus, Verdicts};
use std::sync::Mutex;

/// One message for one mailbox, as the spool hands it over.
pub struct Incoming<'a> {
    pub queue_id: &'a str,
    pub mail_from: &'a str,
    pub rcpt: &'a str,
    pub data: &'a [u8],
    pub verdicts: Option<Verdicts>,
    /// Fetched from the mailbox's server (`fetch`): the mark naming the message there
    /// (`f/…`), recorded instead of the queue id's.
    pub fetched: Option<String>,
}

/// What was recorded for a message, for the events that follow (webhooks, notices).
#[derive(Debug)]
pub struct Recorded {
    pub change: Change,
    pub requester: Requester,
    pub mailbox: Account,
    pub parsed: Parsed,
}

/// What became of it.
#[derive(Debug)]
pub enum Processed {
    /// Recorded now.
    Recorded(Box<Recorded>),
    /// Recorded before (a redelivery or a resend); nothing repeated.
    AlreadyDone,
    /// Nothing recorded, on purpose: why (logged), and the requester created on the way,
    /// if any (it still gets its password link).
    Dropped {
        why: String,
        created: Option<Box<User>>,
    },
}

/// The handles the hook runs with.
pub struct Context<'a> {
    pub store: &'a Store,
    pub policy: &'a Policy,
    pub hostname: &'a str,
    /// Held while a requester is looked up and created, so two messages from one new
    /// sender create one user and the user limits hold.
    pub creating: &'a Mutex<()>,
}

fn dropped(why: impl Into<String>) -> Processed {
    Processed::Dropped {
        why: why.into(),
        created: None,
    }
}

/// The idempotence mark of a fetched message without a Message-ID: its octets' digest.
fn digest_mark(mailbox: u64, data: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(data);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("d/{mailbox}/{hex}")
}

/// The idempotence mark of queued message `queue_id` for `mailbox`.
fn queue_mark(store: &Store, queue_id: &str, mailbox: u64) -> String {
    match store.is_shared() {
        true => format!("q/{}/{queue_id}/{mailbox}", store.node()),
        false => format!("q/{queue_id}/{mailbox}"),
    }
}

/// Processes `msg`. Blocking (store writes end in a sync).
pub fn process(ctx: &Context<'_>, msg: &Incoming<'_>) -> Result<Processed, InboundError> {
    let Some(mailbox) = ctx.policy.snapshot().inbound_mailbox(msg.rcpt).cloned() else {
        tracing::warn!(
            rcpt = msg.rcpt,
            queue_id = msg.queue_id,
            "inbound message dropped: the recipient is no longer a helpdesk mailbox"
        );
        return Ok(dropped("no longer a helpdesk mailbox"));
    };
    let parsed = match parse(msg.data) {
        Ok(parsed) => parsed,
        Err(error) => {
            tracing::warn!(queue_id = msg.queue_id, %error, "inbound message dropped: unreadable");
            return Ok(dropped(error.to_string()));
        }
    };
    let mut marks = vec![match &msg.fetched {
        Some(mark) => mark.clone(),
        None => queue_mark(ctx.store, msg.queue_id, mailbox.id),
    }];
    match &parsed.message_id {
        Some(id) => marks.push(format!("m/{}/{}", mailbox.id, ref_key(id))),
        // Fetched again under other names (a UIDVALIDITY change): the same octets.
        None if msg.fetched.is_some() => marks.push(digest_mark(mailbox.id, msg.data)),
        None => {}
    }
    for mark in &marks {
        if ctx.store.tickets().done(mark)?.is_some() {
            return Ok(Processed::AlreadyDone);
        }
    }
    let automatic = loops::automatic(&parsed, msg.mail_from, ctx.hostname);
    let Some(requester) = requester(ctx, &mailbox, &parsed, automatic.as_deref())? else {
        return Ok(dropped("unknown sender, not created"));
    };
    let created = requester.created.then(|| Box::new(requester.user.clone()));
    if requester.user.status == UserStatus::Blocked {
        return Ok(dropped(format!(
            "sender {} is blocked",
            requester.user.login
        )));
    }
    let inbound = mailbox.inbound.clone().unwrap_or_default();
    let plan = Plan {
        ctx,
        msg,
        mailbox: &mailbox,
        inbound: &inbound,
        parsed: &parsed,
        requester: &requester,
        automatic: automatic.as_deref(),
        marks,
    };
    match plan.change()? {
        Ok(change) => Ok(Processed::Recorded(Box::new(Recorded {
            change,
            requester,
            mailbox,
            parsed,
        }))),
        Err(why) if why == DUPLICATE => Ok(Processed::AlreadyDone),
        Err(why) => Ok(Processed::Dropped { why, created }),
    }
}

/// The sender as a user: found, or created when the mailbox allows it — never for
/// automatic mail. `None` (with the reason logged) when neither.
fn requester(
    ctx: &Context<'_>,
    mailbox: &Account,
    parsed: &Parsed,
    automatic: Option<&str>,
) -> Result<Option<Requester>, InboundError> {
    if let Some(why) = automatic {
        let found = ctx.policy.snapshot().user_by_address(&parsed.from).cloned();
        if found.is_none() {
            tracing::info!(from = %parsed.from, reason = why, "automatic mail from an unknown sender dropped");
        }
        return Ok(found.map(|user| Requester {
            user,
            created: false,
        }));
    }
    let inbound = mailbox.inbound.clone().unwrap_or_default();
    let _one_at_a_time = ctx.creating.lock().unwrap_or_else(|p| p.into_inner());
    let found = find_or_create(
        ctx.store,
        ctx.policy,
        &inbound,
        &parsed.from,
        parsed.from_name.as_deref(),
    )?;
    if found.is_none() {
        tracing::warn!(from = %parsed.from, mailbox = %mailbox.name,
            "inbound message dropped: unknown sender and no requester created");
    }
    Ok(found)
}
