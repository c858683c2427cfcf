//! The end of a message, shared by DATA and BDAT: the header checks (size, hops, exactly
//! one From), the send-as decision (and `originator`'s checks of the resent fields and
//! display names), the rewrite of the header block in the headroom in
//! front of the body (the body is neither moved nor copied), the Message-ID record, and the
//! durable write before `250`.

use super::originator::{self, Originators};
use super::reply;
use super::session::{Next, Session};
use crate::archive::owners;
use crate::config::Purpose;
use crate::metrics::Reject;
use crate::policy::{self, Decision};
use crate::rewrite::{self, date, received_field, Inspected, Plan, ReceivedInfo};
use crate::spool::{now_ms, show_id, Envelope, Keep, QueueId};
use crate::store::{MessageRecord, Verdicts};
use std::io;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

/// Room left in front of the client's message for the rewritten header block.
pub const HEADROOM: usize = 8192;

/// A message buffer: `HEADROOM` zero bytes; the client's message is appended after them.
pub fn buffer() -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADROOM + 16 * 1024);
    buf.resize(HEADROOM, 0);
    buf
}

/// The `Received` field for message `queue_id` of this session, received at `date`.
fn trace_field<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &Session<S>,
    queue_id: &str,
    date: &str,
) -> String {
    let state = &session.state;
    received_field(&ReceivedInfo {
        helo: state.helo.as_deref().unwrap_or(""),
        peer: session.peer.ip(),
        hostname: &session.shared.hostname,
        tls: state.tls,
        authenticated: state.principal.is_some(),
        esmtp: state.esmtp,
        utf8: state.tx.as_ref().is_some_and(|tx| tx.smtputf8),
        queue_id,
        date,
    })
}

/// What the accepted message becomes.
struct Outcome {
    start: usize,
    mail_from: String,
    upstream: String,
    message_id: String,
    account: Option<u64>,
    /// Message-IDs the message replies to (submission only).
    thread_refs: Vec<String>,
    /// Authentication verdicts (inbound only).
    verdicts: Option<Verdicts>,
    /// Whose mail the archive keeps it as.
    keep: Option<Keep>,
}

/// Checks, decides, rewrites and spools a complete message: `buf[start..]` is the client's
/// message, `buf[..start]` is headroom.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    id: QueueId,
    mut buf: Vec<u8>,
    start: usize,
) -> io::Result<Next> {
    let started = Instant::now();
    // One date for the trace field and a submitted message's `Date`.
    let now = date::now_rfc5322();
    let queue_id = show_id(id);
    let trace = trace_field(session, &queue_id, &now);
    let Some(mut tx) = session.state.tx.take() else {
        return Ok(session.refuse(Reject::BadSequence, reply::BAD_SEQUENCE));
    };
    let outcome = match session.shared.listener.purpose {
        Purpose::Submission => {
            let inspected = match rewrite::inspect(&buf[start..]) {
                Ok(inspected) => inspected,
                Err(error) => return Ok(session.refuse(Reject::BadHeader, error.reply())),
            };
            if let Some(refusal) = check_limits(session, inspected.header_len, inspected.received) {
                return Ok(refusal);
            }
            // A malformed Resent-From/Resent-Sender is refused like a bad From (on
            // submission only: an inbound listener ignores it).
            if let Err(error) = &inspected.resent {
                return Ok(session.refuse(Reject::BadHeader, error.reply()));
            }
            let received = Received {
                queue_id: &queue_id,
                trace: &trace,
                date: &now,
            };
            let outcome = match submission(session, &mut buf, start, &inspected, &received) {
                Ok(outcome) => outcome,
                Err(text) => return Ok(session.refuse(Reject::PolicyRefused, &text)),
            };
            let size = buf.len() - outcome.start;
            if let Some(text) =
                super::fits::at_end(&session.shared, &outcome.upstream, &outcome.mail_from, size)
            {
                tracing::info!(queue_id = %queue_id, size, "message refused: too big for the account's upstream");
                return Ok(session.refuse(Reject::MessageTooBig, &text));
            }
            outcome
        }
        Purpose::Inbound => {
            let inspected = match rewrite::inspect(&buf[start..]) {
                Ok(inspected) => inspected,
                Err(error) => return Ok(session.refuse(Reject::BadHeader, error.reply())),
            };
            if let Some(refusal) = check_limits(session, inspected.header_len, inspected.received) {
                return Ok(refusal);
            }
            // Boxed: the checks' future is large and only inbound listeners await it, so
            // it stays out of every submission's DATA future (which is moved as a whole).
            let checked = super::inbound::end_of_data(session, &mut tx, &buf[start..], &inspected);
            let checked = match Box::pin(checked).await {
                Ok(checked) => checked,
                Err(refusal) => return Ok(refusal),
            };
            // Authentication-Results right under our Received field; both always fit the
            // headroom (the field is bounded).
            let begin = match &checked {
                Some(checked) if checked.field.len() + trace.len() < start => {
                    prepend(&mut buf, start, checked.field.as_bytes())
                }
                _ => start,
            };
            Outcome {
                start: prepend(&mut buf, begin, trace.as_bytes()),
                mail_from: tx.mail_from.clone(),
                upstream: crate::inbound::UPSTREAM.to_string(),
                message_id: String::new(),
                account: None,
                thread_refs: Vec::new(),
                verdicts: checked.map(|c| c.verdicts),
                keep: match session.shared.archive {
                    true => owners::inbound(&session.shared.policy.snapshot(), &tx.rcpts),
                    false => None,
                },
            }
        }
    };
    record_message_id(session, &outcome, &queue_id);
    let mail_from = match tx.mail_from.is_empty() {
        true => String::new(),
        false => outcome.mail_from,
    };
    let envelope = Envelope {
        mail_from,
        rcpts: tx.rcpts,
        upstream: outcome.upstream,
        principal: session.state.principal.as_ref().map(|p| p.login.clone()),
        smtputf8: tx.smtputf8,
        eight_bit: tx.eight_bit,
        is_dsn: false,
        verdicts: outcome.verdicts,
        keep: outcome.keep,
    };
    // The buffer becomes the message's bytes without a copy (the headroom in front of
    // the rewritten header block is sliced off).
    let data = bytes::Bytes::from(buf).slice(outcome.start..);
    let size = data.len();
    let rcpt_count = envelope.rcpts.len();
    let from = envelope.mail_from.clone();
    if let Err(error) = session.shared.spool.enqueue(id, envelope, data).await {
        if let crate::spool::SpoolError::NoRoom(short) = error {
            tracing::warn!(queue_id = %queue_id, free = short.free, needed = short.needed, "message refused: free disk space below the reserve");
            return Ok(session.refuse(Reject::DiskFull, reply::NO_ROOM));
        }
        tracing::error!(queue_id = %queue_id, %error, "message not stored");
        return Ok(session.refuse(Reject::StoreFailed, reply::STORE_FAILED));
    }
    let metrics = &session.shared.metrics;
    metrics.messages_accepted.increment(1);
    metrics.recent.count(crate::metrics::Event::Accepted);
    metrics.message_bytes.increment(size as u64);
    metrics
        .accept_latency
        .record(started.elapsed().as_secs_f64());
    tracing::info!(queue_id = %queue_id, from = %from, rcpts = rcpt_count, size, peer = %session.peer, "queued");
    session.conn.reply(&reply::queued(&queue_id));
    Ok(Next::Continue)
}

/// The header-block limits: size and `Received` hops; the refusal if one is exceeded.
fn check_limits<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    header_len: usize,
    received: usize,
) -> Option<Next> {
    let limits = &session.shared.limits;
    if header_len > limits.header_block {
        return Some(session.refuse(Reject::HeaderTooLarge, reply::HEADER_TOO_BIG));
    }
    if received + 1 > limits.received_hops {
        return Some(session.refuse(Reject::TooManyHops, reply::TOO_MANY_HOPS));
    }
    None
}

/// The send-as decision and the rewrite for a submitted message; the refusal's reply text
/// on failure.
fn submission<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &Session<S>,
    buf: &mut Vec<u8>,
    start: usize,
    inspected: &Inspected,
    received: &Received<'_>,
) -> Result<Outcome, String> {
    let Some(principal) = session.state.principal.as_ref() else {
        return Err(reply::AUTH_REQUIRED.to_string());
    };
    let snapshot = session.shared.policy.snapshot();
    let from = inspected.from.address.as_str();
    let decision = policy::admit(&snapshot, principal.id, from, inspected.account_hint.as_deref())
        .map_err(|refusal| {
            tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name, principal = %principal.login,
                from, rule = %refusal.rule, "submission refused");
            refusal.reply
        })?;
    let originators = originator::check(&snapshot, principal, &decision, inspected).map_err(|reply| {
        tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name, principal = %principal.login,
            from, %reply, "submission refused");
        reply
    })?;
    // Read before the rewrite (which may overwrite the client's header block); only where a
    // helpdesk exists.
    let thread_refs = match session.shared.tickets.any() {
        true => rewrite::thread_refs(&buf[start..], inspected),
        false => Vec::new(),
    };
    let plan = plan(&decision, &originators, received);
    let (new_start, message_id) = rewrite::apply(buf, start, inspected, &plan);
    let queue_id = received.queue_id;
    tracing::debug!(queue_id, account = %decision.account.name, right = policy::right_name(decision.right), "send-as decision");
    Ok(Outcome {
        start: new_start,
        mail_from: decision.envelope_from().to_string(),
        upstream: decision.account.upstream.clone(),
        message_id,
        account: Some(decision.account.id),
        thread_refs,
        verdicts: None,
        keep: match session.shared.archive {
            true => owners::outbound(&snapshot, principal.id, decision.account),
            false => None,
        },
    })
}

/// How an accepted message was received: its queue id, trace field and date.
struct Received<'a> {
    queue_id: &'a str,
    trace: &'a str,
    date: &'a str,
}

fn plan<'a>(
    decision: &'a Decision<'a>,
    originators: &'a Originators<'a>,
    received: &Received<'a>,
) -> Plan<'a> {
    let from_address = decision.from_address();
    Plan {
        from_display: originators.from_display,
        from_address,
        sender: originators.sender,
        resent: originators.resent.as_deref(),
        reply_to: decision
            .account
            .reply_to
            .as_deref()
            .filter(|r| !r.is_empty()),
        message_id_domain: from_address.rsplit('@').next().unwrap_or("localhost"),
        unique: received.queue_id,
        date: received.date,
        trace: received.trace,
    }
}

/// Writes `field` into the headroom just before `start` (inbound mail only gets a trace
/// field and its authentication results); returns the new start. The message itself is
/// not moved.
pub(super) fn prepend(buf: &mut [u8], start: usize, field: &[u8]) -> usize {
    // A trace field is a few hundred octets (the HELO name in it is capped): it always fits.
    let new_start = start - field.len();
    buf[new_start..start].copy_from_slice(field);
    new_start
}

fn record_message_id<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &Session<S>,
    outcome: &Outcome,
    queue_id: &str,
) {
    let (Some(account), false) = (outcome.account, outcome.message_id.is_empty()) else {
        return;
    };
    let record = MessageRecord {
        account,
        queue_id: queue_id.to_string(),
        direction: "outbound".into(),
        ticket: ticket_of(session, &outcome.thread_refs),
        at: now_ms() / 1000,
    };
    if let Err(error) = session
        .shared
        .message_ids
        .record(&outcome.message_id, &record)
    {
        tracing::warn!(queue_id, %error, "Message-ID not recorded");
    }
}

/// The ticket a reply belongs to: the first of its referenced Message-IDs the ticket store
/// knows (so the requester's answer to it threads to that ticket too).
fn ticket_of<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &Session<S>,
    refs: &[String],
) -> Option<u64> {
    refs.iter()
        .find_map(|id| match session.shared.tickets.ticket_of(id) {
            Ok(ticket) => ticket,
            Err(error) => {
                tracing::warn!(%error, "ticket store not read");
                None
            }
        })
}
