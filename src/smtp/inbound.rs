//! The inbound parts of a transaction (SPEC §4, §6): SPF started at MAIL FROM; at the end
//! of data the header `From` checked against the blocklist and blocked users (as the
//! envelope sender was at MAIL FROM) and against mailboxes that take mail from known
//! requesters only, then DKIM, ARC and DMARC, with the mailboxes' choice to refuse DMARC
//! `reject` failures. What the message becomes is the hook's business, after the spool has
//! made it durable; the verdicts travel with it in the spool's metadata.

use super::reply;
use super::session::{Next, Session, Transaction};
use crate::inbound::Checked;
use crate::metrics::Reject;
use crate::rewrite::Inspected;
use mail_auth::SpfOutput;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

/// An SPF check running since MAIL FROM; dropped with its transaction (RSET, a new
/// session after STARTTLS), it is cancelled.
#[derive(Debug)]
pub struct SpfCheck(JoinHandle<SpfOutput>);

impl Drop for SpfCheck {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the SPF check of `mail_from` when the listener verifies inbound mail.
pub fn start_spf<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &Session<S>,
    mail_from: &str,
) -> Option<SpfCheck> {
    let verifier = session.shared.verifier.clone()?;
    let ip = session.peer.ip();
    let helo = session.state.helo.clone().unwrap_or_default();
    let mail_from = mail_from.to_string();
    Some(SpfCheck(tokio::spawn(async move {
        verifier.spf(ip, &helo, &mail_from).await
    })))
}

/// The end-of-data checks of an inbound message: its header `From` (blocked; unknown to
/// mailboxes that take mail from known requesters only), then its authentication.
pub async fn end_of_data<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    tx: &mut Transaction,
    message: &[u8],
    inspected: &Inspected,
) -> Result<Option<Checked>, Next> {
    if let Some(refusal) = check_from(session, inspected) {
        return Err(refusal);
    }
    if let Some(refusal) = check_known(session, tx, inspected) {
        return Err(refusal);
    }
    authenticate(session, tx, message).await
}

/// Refuses a sender no recipient mailbox would take: unknown, and every mailbox creates no
/// requesters (or none can be created: the installation holds its `max_users`, a temporary
/// refusal). Refused here rather than bounced later, so a forged sender gets no
/// backscatter.
fn check_known<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    tx: &Transaction,
    inspected: &Inspected,
) -> Option<Next> {
    let from = inspected.from.address.as_str();
    let snapshot = session.shared.policy.snapshot();
    if snapshot.user_by_address(from).is_some() {
        return None;
    }
    let creates = tx.rcpts.iter().any(|rcpt| {
        snapshot
            .inbound_mailbox(rcpt)
            .and_then(|a| a.inbound.as_ref())
            .is_some_and(|i| i.auto_create_requesters)
    });
    if !creates {
        tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name,
            from, rule = "unknown sender; no recipient mailbox creates requesters",
            "message refused: unknown sender");
        return Some(session.refuse(Reject::PolicyRefused, &reply::unknown_sender(from)));
    }
    if snapshot.user_limit_reached() {
        // Not lost and not bounced: the sender's server tries again, and the mail comes in
        // once an administrator raises the limit.
        tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name,
            from, rule = "max_users reached", "message deferred: no requester can be created");
        return Some(session.refuse(Reject::PolicyRefused, reply::USER_LIMIT));
    }
    None
}

/// The refusal of a message whose header `From` is blocked; logged as a warning with the
/// address, listener and rule.
fn check_from<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    inspected: &Inspected,
) -> Option<Next> {
    let from = inspected.from.address.as_str();
    let snapshot = session.shared.policy.snapshot();
    let rule = snapshot.blocked(from)?.to_string();
    tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name,
        from, %rule, "message refused: blocked header From");
    Some(session.refuse(Reject::Blocked, &reply::blocked(from)))
}

/// DKIM, ARC and DMARC of `message` (with the SPF result of MAIL FROM): the checks, or the
/// refusal when DMARC failed under `p=reject` and a recipient mailbox refuses that.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    tx: &mut Transaction,
    message: &[u8],
) -> Result<Option<Checked>, Next> {
    let (Some(verifier), Some(spf)) = (session.shared.verifier.clone(), tx.spf.take()) else {
        return Ok(None);
    };
    let ip = session.peer.ip();
    let helo = session.state.helo.clone().unwrap_or_default();
    let mut spf = spf;
    let spf = match (&mut spf.0).await {
        Ok(spf) => spf,
        Err(_) => verifier.spf(ip, &helo, &tx.mail_from).await,
    };
    let checked = verifier
        .check(message, ip, &helo, &tx.mail_from, &spf)
        .await;
    let snapshot = session.shared.policy.snapshot();
    let refusing = tx.rcpts.iter().find(|rcpt| {
        snapshot
            .inbound_mailbox(rcpt)
            .and_then(|a| a.inbound.as_ref())
            .is_some_and(|i| i.refuse_dmarc_reject)
    });
    if let (true, Some(rcpt)) = (checked.dmarc_reject, refusing) {
        tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name,
            from = %tx.mail_from, rcpt = %rcpt, rule = "DMARC fail with p=reject",
            "message refused: DMARC");
        return Err(session.refuse(Reject::AuthVerdict, reply::DMARC_REJECT));
    }
    Ok(Some(checked))
}
