//! The end of a message, shared by DATA and BDAT: the checks that need the whole header
//! block (size, `Received` hops), the trace field, and the durable write before `250`.

use super::reply;
use super::session::{Next, Session};
use crate::metrics::Reject;
use crate::rewrite::{date, received_count, received_field, ReceivedInfo};
use crate::spool::{show_id, Envelope, QueueId};
use std::io;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

/// The `Received` field for message `id` of this session.
pub fn trace_field<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &Session<S>,
    id: QueueId,
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
        queue_id: &show_id(id),
        date: &date::now_rfc5322(),
    })
}

/// Checks and spools a complete message; `buf` starts with our trace field of
/// `trace_len` octets, followed by the client's message.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    id: QueueId,
    buf: Vec<u8>,
    trace_len: usize,
) -> io::Result<Next> {
    let started = Instant::now();
    let Some(tx) = session.state.tx.take() else {
        return Ok(session.refuse(Reject::BadSequence, reply::BAD_SEQUENCE));
    };
    let limits = &session.shared.limits;
    let scan = received_count(&buf[trace_len..]);
    if scan.len > limits.header_block {
        return Ok(session.refuse(Reject::HeaderTooLarge, reply::HEADER_TOO_BIG));
    }
    if scan.received + 1 > limits.received_hops {
        return Ok(session.refuse(Reject::TooManyHops, reply::TOO_MANY_HOPS));
    }
    let size = buf.len();
    let rcpt_count = tx.rcpts.len();
    let envelope = Envelope {
        mail_from: tx.mail_from,
        rcpts: tx.rcpts,
        upstream: session.shared.upstream.clone(),
        principal: session.state.principal.as_ref().map(|p| p.login.clone()),
        smtputf8: tx.smtputf8,
        eight_bit: tx.eight_bit,
        is_dsn: false,
    };
    let queue_id = show_id(id);
    let from = envelope.mail_from.clone();
    if let Err(error) = session.shared.spool.enqueue(id, envelope, buf).await {
        tracing::error!(queue_id = %queue_id, %error, "message not stored");
        return Ok(session.refuse(Reject::StoreFailed, reply::STORE_FAILED));
    }
    let metrics = &session.shared.metrics;
    metrics.messages_accepted.increment(1);
    metrics.message_bytes.increment(size as u64);
    metrics
        .accept_latency
        .record(started.elapsed().as_secs_f64());
    tracing::info!(queue_id = %queue_id, from = %from, rcpts = rcpt_count, size, peer = %session.peer, "queued");
    session.conn.reply(&reply::queued(&queue_id));
    Ok(Next::Continue)
}
