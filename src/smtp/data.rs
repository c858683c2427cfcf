//! DATA: reads the message up to `CRLF.CRLF` (strictly; see `io`) behind the headroom the
//! rewrite writes the new header block into.
//! A bare CR or LF closes the session: after one, the client and server may no longer agree
//! where the message ends, which is how messages get smuggled.
//! The client must keep to the minimum data rate (`deadline`) while it sends the message.

use super::io::{DataEnd, DataLimits};
use super::session::{Next, Session};
use super::{message, reply};
use crate::metrics::Reject;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};

/// Handles `DATA`.
pub async fn data<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
) -> io::Result<Next> {
    let Some(tx) = session.state.tx.as_ref() else {
        return Ok(session.refuse(Reject::BadSequence, reply::NEED_MAIL));
    };
    if tx.bdat.is_some() {
        return Ok(session.refuse(Reject::BadSequence, reply::MIXED_DATA));
    }
    if tx.rcpts.is_empty() {
        return Ok(session.refuse(Reject::BadSequence, reply::NEED_RCPT));
    }
    let id = match session.shared.spool.new_id() {
        Ok(id) => id,
        Err(error) => {
            tracing::error!(%error, "no queue id");
            return Ok(session.refuse(Reject::StoreFailed, reply::STORE_FAILED));
        }
    };
    let mut buf = message::buffer();
    let start = buf.len();
    session.conn.reply(reply::START_DATA);
    let limits = DataLimits {
        max_size: session.shared.limits.message_size + start,
        // the transmitted line may carry one stuffing dot
        max_line: session.shared.limits.text_line + 1,
    };
    // A deadline that passes here ends the session in `Session::run` (nothing is queued).
    let (end, flags) = session.conn.read_data(&mut buf, limits).await?;
    match end {
        DataEnd::Eof => return Ok(Next::Close),
        DataEnd::BareNewline => {
            session.state.tx = None;
            tracing::warn!(peer = %session.peer, "bare CR or LF in message data; closing");
            return session
                .close_with(Reject::BareNewline, reply::BARE_NEWLINE)
                .await;
        }
        DataEnd::Complete => {}
    }
    if flags.too_big {
        session.state.tx = None;
        return Ok(session.refuse(Reject::MessageTooBig, reply::TOO_BIG));
    }
    if flags.line_too_long {
        session.state.tx = None;
        return Ok(session.refuse(Reject::LineTooLong, reply::TEXT_LINE_TOO_LONG));
    }
    message::accept(session, id, buf, start).await
}
