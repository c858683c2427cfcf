//! Delivery status notifications (RFC 3464): the `multipart/report` sent when recipients
//! fail for good or the message expires (SPEC §5). Never for the null sender or for a DSN.
//!
//! # Who gets it
//!
//! 1. The principal that submitted the message (`Meta::principal`, a login), at its user's
//!    e-mail address, whatever address the message went out as: a user sending as the
//!    shared `support@` gets its own bounces, and `support@`'s mailbox never collects
//!    another user's failures (the upstream envelope sender is the account's address, so
//!    the envelope sender is the wrong one to tell).
//! 2. Without such a principal — no principal (inbound mail, the gateway's own notices,
//!    records from before principals were kept), an unknown login, or a principal without
//!    an address (a trusted network's `system` user, usually) — the envelope sender, unless
//!    that address is an email account's mailbox that is not the principal's own personal
//!    account. An account's mailbox is shared by whoever may use the account, so a bounce
//!    there would show one sender's failure to all of them; nobody gets a DSN then, the
//!    failure is logged (a warning naming the queue id) and stays in the queue API and the
//!    account's status. Give a `system` user an e-mail address to have its bounces.
//!
//! # Through which account
//!
//! A system account: the first `system`-scope account with an address (as the "set your
//! password" notices), else the global default account, else the configured default
//! upstream. Its upstream carries the DSN and its address is the report's `From`; the
//! envelope sender stays null (RFC 5321 §4.5.5), so a DSN can never cause another.

use super::attempt::Failed;
use super::meta::{show_id, Envelope, Meta, QueueId};
use super::{Spool, SpoolError};
use crate::policy::{normalize, Policy, Snapshot};
use crate::rewrite::{date, header_block_len};
use crate::store::Scope;
use bytes::Bytes;
use std::fmt::Write;
use std::sync::Arc;

/// Writes and queues DSNs: the worker's and an administrator's bounce share one.
pub struct Notices {
    policy: Arc<Policy>,
    hostname: String,
    /// The upstream when no system or default account exists.
    fallback_upstream: String,
}

/// Where one DSN goes and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The one recipient.
    pub to: String,
    /// The report's `From` address.
    pub from: String,
    /// The upstream that carries it.
    pub upstream: String,
}

impl Notices {
    /// `hostname` names the reporting MTA; `fallback_upstream` carries DSNs when no account
    /// does (the configured default upstream).
    pub fn new(policy: Arc<Policy>, hostname: String, fallback_upstream: String) -> Notices {
        Notices {
            policy,
            hostname,
            fallback_upstream,
        }
    }

    /// Builds the DSN for `failed` recipients of `meta`/`original` and queues it to the
    /// submitter (see the module header); returns the DSN's queue id, or `None` when no
    /// DSN is due (null sender, a DSN, nobody to tell).
    pub async fn send(
        &self,
        spool: &Spool,
        meta: &Meta,
        original: &[u8],
        failed: &[Failed],
    ) -> Result<Option<QueueId>, SpoolError> {
        if meta.mail_from.is_empty() || meta.is_dsn || failed.is_empty() {
            return Ok(None);
        }
        let snapshot = self.policy.snapshot();
        let Some(to) = recipient(&snapshot, meta) else {
            tracing::warn!(queue_id = %show_id(meta.id), principal = meta.principal.as_deref().unwrap_or(""),
                sender = %meta.mail_from, failed = failed.len(),
                "no DSN: the sender is a shared account's mailbox and no submitter address is known");
            return Ok(None);
        };
        let route = self.route(&snapshot, to);
        let dsn_id = spool.new_id()?;
        let report = build(&self.hostname, &route, meta, original, failed, dsn_id);
        let envelope = Envelope {
            mail_from: String::new(),
            rcpts: vec![route.to.clone()],
            upstream: route.upstream,
            principal: None,
            smtputf8: meta.smtputf8 || !route.to.is_ascii(),
            eight_bit: false,
            is_dsn: true,
            verdicts: None,
            keep: None,
        };
        spool.enqueue(dsn_id, envelope, Bytes::from(report)).await?;
        spool.metrics().dsn_sent.increment(1);
        tracing::info!(queue_id = %show_id(meta.id), dsn_id = %show_id(dsn_id), to = %route.to, "DSN queued");
        Ok(Some(dsn_id))
    }

    /// The system account's upstream and address (see the module header).
    fn route(&self, snapshot: &Snapshot, to: String) -> Route {
        let account = snapshot
            .accounts()
            .into_iter()
            .find(|a| a.scope == Scope::System && !a.address.is_empty())
            .or_else(|| snapshot.default_account());
        let from = account
            .and_then(|a| {
                [a.from_address.as_deref(), Some(a.address.as_str())]
                    .into_iter()
                    .flatten()
                    .find(|address| !address.is_empty())
            })
            .map_or_else(
                || format!("MAILER-DAEMON@{}", self.hostname),
                str::to_string,
            );
        Route {
            to,
            from,
            upstream: account
                .map_or_else(|| self.fallback_upstream.clone(), |a| a.upstream.clone()),
        }
    }
}

/// Who is told of the failures of `meta` (see the module header); `None`: nobody.
fn recipient(snapshot: &Snapshot, meta: &Meta) -> Option<String> {
    let principal = meta
        .principal
        .as_deref()
        .and_then(|login| snapshot.user_by_login(login));
    if let Some(user) = principal.filter(|u| !u.email.trim().is_empty()) {
        return Some(user.email.trim().to_string());
    }
    let sender = normalize(&meta.mail_from);
    match snapshot.account_by_address(&sender) {
        None => Some(meta.mail_from.clone()),
        Some(account) if account.owner.is_some() && account.owner == principal.map(|u| u.id) => {
            Some(meta.mail_from.clone())
        }
        Some(_) => None,
    }
}

/// Builds the DSN for `failed` recipients of the message `meta`/`original`, from and to
/// the addresses of `route`.
/// `dsn_id` (the DSN's own queue id) makes its Message-ID and boundary unique, even for two
/// DSNs about one message after the same attempt (the worker's and an administrator's).
pub fn build(
    hostname: &str,
    route: &Route,
    meta: &Meta,
    original: &[u8],
    failed: &[Failed],
    dsn_id: QueueId,
) -> Vec<u8> {
    let id = show_id(meta.id);
    let own = show_id(dsn_id);
    let boundary = format!("{own}/{hostname}");
    let now = date::now_rfc5322();
    let mut out = String::with_capacity(2048);
    let _ = write!(
        out,
        "From: Mail Delivery System <{from}>\r\n\
         To: <{to}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {now}\r\n\
         Message-ID: <{own}.dsn@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n--{boundary}\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n\
         Your message (queue id {id}) could not be delivered to these recipients:\r\n\r\n",
        from = ascii(&route.from),
        to = ascii(&route.to),
    );
    for f in failed {
        let _ = write!(out, "<{}>: {}\r\n", ascii(&f.address), ascii(&f.reply));
    }
    let _ = write!(
        out,
        "\r\n--{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; {hostname}\r\n\
         X-Postern-Queue-ID: {id}\r\n\
         Arrival-Date: {arrival}\r\n",
        arrival = date::rfc5322(meta.received_at / 1000),
    );
    for f in failed {
        let _ = write!(
            out,
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {}\r\n",
            ascii(&f.address),
            status_code(f),
            ascii(&f.reply)
        );
    }
    let _ = write!(
        out,
        "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    );
    let mut bytes = out.into_bytes();
    let headers = &original[..header_block_len(original)];
    bytes.extend_from_slice(headers);
    if !headers.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

/// The enhanced status code of a failure: the one in the reply if it has one.
fn status_code(failed: &Failed) -> String {
    if failed.expired {
        return "4.4.7".to_string();
    }
    failed
        .reply
        .split_whitespace()
        .nth(1)
        .filter(|code| is_enhanced(code))
        .unwrap_or("5.0.0")
        .to_string()
}

fn is_enhanced(code: &str) -> bool {
    let parts: Vec<&str> = code.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Printable ASCII only: a reply or address can never break the report's structure.
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::meta::Rcpt;

    fn meta() -> Meta {
        Meta {
            id: 7,
            mail_from: "alice@example.com".into(),
            rcpts: vec![Rcpt {
                address: "bob@example.net".into(),
                status: crate::spool::RcptStatus::Failed,
                last_reply: None,
            }],
            upstream: "u".into(),
            principal: None,
            smtputf8: false,
            eight_bit: false,
            is_dsn: false,
            size: 1,
            received_at: 0,
            attempts: 1,
            due_at: 0,
            expires_at: 0,
            verdicts: None,
            keep: None,
        }
    }

    #[test]
    fn report_has_the_three_parts() {
        let meta = meta();
        let failed = vec![Failed {
            address: "bob@example.net".into(),
            reply: "550 5.1.1 no such user\r\nInjected: x".into(),
            expired: false,
        }];
        let route = Route {
            to: "alice@example.com".into(),
            from: "MAILER-DAEMON@gw.example".into(),
            upstream: "u".into(),
        };
        let dsn = build(
            "gw.example",
            &route,
            &meta,
            b"Subject: hi\r\n\r\nbody",
            &failed,
            0x2a,
        );
        let text = String::from_utf8(dsn).unwrap();
        assert!(text.contains("report-type=delivery-status"));
        assert!(text.contains("Status: 5.1.1\r\n"));
        assert!(text.contains("Final-Recipient: rfc822; bob@example.net"));
        assert!(text.contains("text/rfc822-headers\r\n\r\nSubject: hi\r\n"));
        assert!(!text.contains("\r\nInjected"));
        assert!(text.ends_with("--\r\n"));
    }

    /// The rules of the module header, over a real store.
    #[test]
    fn the_submitter_is_told_and_a_shared_mailbox_never() {
        use crate::store::{Account, DefaultSendMode, NewUser, Store, UserKind};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let policy = Policy::load(store.clone(), "local").unwrap();
        let user = |login: &str, kind| {
            let new = NewUser {
                login: login.into(),
                email: format!("{login}@example.com"),
                kind: Some(kind),
                ..NewUser::default()
            };
            store.users().create(new, 1).unwrap()
        };
        let bob = user("bob", UserKind::Staff);
        user("relay-app", UserKind::System);
        let account = |name: &str, owner: Option<u64>| Account {
            id: 0,
            name: name.into(),
            description: String::new(),
            address: format!("{name}@example.com"),
            from_address: None,
            display_name: None,
            reply_to: None,
            aliases: Vec::new(),
            upstream: "local".into(),
            owner,
            is_default: false,
            scope: Scope::AllStaff,
            grants: Vec::new(),
            default_send_mode: DefaultSendMode::SendAs,
            inbound: None,
            sent_copy: None,
            status: Default::default(),
        };
        store.accounts().create(account("support", None)).unwrap();
        store
            .accounts()
            .create(account("bobs-own", Some(bob.id)))
            .unwrap();
        policy.reload().unwrap();
        let snapshot = policy.snapshot();
        let to = |principal: Option<&str>, mail_from: &str| {
            let meta = Meta {
                principal: principal.map(str::to_string),
                mail_from: mail_from.into(),
                ..meta()
            };
            recipient(&snapshot, &meta)
        };
        let some = |address: &str| Some(address.to_string());
        // The submitter, whatever the message went out as; its login in any case.
        assert_eq!(
            to(Some("bob"), "support@example.com"),
            some("bob@example.com")
        );
        assert_eq!(
            to(Some("BOB"), "Support@Example.com"),
            some("bob@example.com")
        );
        assert_eq!(
            to(Some("relay-app"), "support@example.com"),
            some("relay-app@example.com")
        );
        // Nobody known: a shared mailbox is nobody's own; another sender is told.
        assert_eq!(to(None, "support@example.com"), None);
        assert_eq!(to(Some("ghost"), "SUPPORT@example.com"), None);
        assert_eq!(to(None, "bobs-own@example.com"), None);
        assert_eq!(
            to(None, "ann@customer.example"),
            some("ann@customer.example")
        );
    }
}
