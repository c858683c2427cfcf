//! BDAT (RFC 3030 CHUNKING): chunks of exact size, no dot-stuffing. Every announced chunk
//! is read, even when the transaction is refused, so the stream stays in step. The whole
//! message is checked for bare CR/LF and line length at `LAST`. A chunk must come at the
//! minimum data rate (`deadline`).
//!
//! The command is parsed here, not by smtp-proto: smtp-proto 0.2 reads a size of more
//! digits than a `u64` holds as some small number, which would put the server out of step
//! with the client. A size that cannot be read gets `501` and the session closes, since
//! nobody knows where the chunk after it ends.

use super::io::check_lines;
use super::session::{Next, Session};
use super::{message, reply};
use crate::metrics::Reject;
use crate::spool::QueueId;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};

/// The chunks of a message received so far.
#[derive(Debug)]
pub struct Chunks {
    pub id: QueueId,
    pub buf: Vec<u8>,
    /// Where the client's message starts in `buf` (after the rewrite's headroom).
    pub start: usize,
    pub too_big: bool,
}

/// Reads what follows `BDAT` on its line (CRLF excluded): ` <size> [LAST]`, the size a
/// decimal number that fits in a `u64` (and a `usize`).
pub fn parse(args: &[u8]) -> Option<(usize, bool)> {
    let text = std::str::from_utf8(args).ok()?;
    if !text.starts_with([' ', '\t']) {
        return None;
    }
    let mut words = text.split([' ', '\t']).filter(|w| !w.is_empty());
    let size = words.next()?;
    if !size.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let size = usize::try_from(size.parse::<u64>().ok()?).ok()?;
    let last = match words.next() {
        None => false,
        Some(word) if word.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return None,
    };
    words.next().is_none().then_some((size, last))
}

/// Handles a `BDAT` line: parses it, then reads the chunk.
pub async fn command<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    args: &[u8],
) -> io::Result<Next> {
    let Some((size, last)) = parse(args) else {
        session.state.tx = None;
        tracing::debug!(peer = %session.peer, "unreadable BDAT size; closing");
        return session
            .close_with(Reject::Syntax, reply::BAD_CHUNK_SIZE)
            .await;
    };
    bdat(session, size, last).await
}

/// Handles `BDAT <size> [LAST]`.
async fn bdat<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    size: usize,
    last: bool,
) -> io::Result<Next> {
    let refusal = match session.state.tx.as_ref() {
        None => Some(reply::NEED_MAIL),
        Some(tx) if tx.rcpts.is_empty() => Some(reply::NEED_RCPT),
        Some(_) => None,
    };
    if let Some(text) = refusal {
        if !session.conn.read_chunk(None, size).await? {
            return Ok(Next::Close);
        }
        return Ok(session.refuse(Reject::BadSequence, text));
    }
    if let Err(text) = start_chunks(session) {
        let _ = session.conn.read_chunk(None, size).await?;
        session.state.tx = None;
        return Ok(session.refuse(Reject::StoreFailed, text));
    }
    let max = session.shared.limits.message_size;
    if size > max {
        // One chunk past the limit: reading it to stay in step could take for ever.
        session.state.tx = None;
        return session
            .close_with(Reject::MessageTooBig, reply::TOO_BIG)
            .await;
    }
    let Session { conn, state, .. } = session;
    let Some(chunks) = state.tx.as_mut().and_then(|tx| tx.bdat.as_mut()) else {
        return Ok(Next::Close);
    };
    // Compared without adding: the client's size may be near `usize::MAX` (fuzz F2).
    chunks.too_big |= size > max.saturating_sub(chunks.buf.len() - chunks.start);
    let sink = (!chunks.too_big).then_some(&mut chunks.buf);
    if !conn.read_chunk(sink, size).await? {
        return Ok(Next::Close);
    }
    if !last {
        conn.reply(&reply::chunk_ok(size));
        return Ok(Next::Continue);
    }
    finish(session).await
}

fn start_chunks<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
) -> Result<(), &'static str> {
    if session
        .state
        .tx
        .as_ref()
        .is_some_and(|tx| tx.bdat.is_some())
    {
        return Ok(());
    }
    let id = session
        .shared
        .spool
        .new_id()
        .map_err(|_| reply::STORE_FAILED)?;
    let buf = message::buffer();
    let start = buf.len();
    if let Some(tx) = session.state.tx.as_mut() {
        tx.bdat = Some(Chunks {
            id,
            buf,
            start,
            too_big: false,
        });
    }
    Ok(())
}

async fn finish<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
) -> io::Result<Next> {
    let Some(mut chunks) = session.state.tx.as_mut().and_then(|tx| tx.bdat.take()) else {
        return Ok(Next::Close);
    };
    if chunks.too_big {
        session.state.tx = None;
        return Ok(session.refuse(Reject::MessageTooBig, reply::TOO_BIG));
    }
    let (clean, longest) = check_lines(&chunks.buf[chunks.start..]);
    if !clean {
        session.state.tx = None;
        return Ok(session.refuse(Reject::BareNewline, reply::BARE_NEWLINE));
    }
    if longest > session.shared.limits.text_line {
        session.state.tx = None;
        return Ok(session.refuse(Reject::LineTooLong, reply::TEXT_LINE_TOO_LONG));
    }
    if chunks.buf.len() > chunks.start && !chunks.buf.ends_with(b"\r\n") {
        chunks.buf.extend_from_slice(b"\r\n");
    }
    message::accept(session, chunks.id, chunks.buf, chunks.start).await
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sizes_that_do_not_fit_are_unreadable() {
        assert_eq!(parse(b" 5"), Some((5, false)));
        assert_eq!(parse(b" 0 LAST"), Some((0, true)));
        assert_eq!(parse(b" 12 last"), Some((12, true)));
        assert_eq!(
            parse(b" 18446744073709551615 LAST"),
            Some((usize::MAX, true))
        );
        assert_eq!(parse(b" 18446744073709551616 LAST"), None);
        assert_eq!(parse(b" 1000000000000000000005 LAST"), None);
        assert_eq!(parse(b" +5"), None);
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b" "), None);
        assert_eq!(parse(b"5"), None);
        assert_eq!(parse(b" 5 LAST x"), None);
        assert_eq!(parse(b" 5 FIRST"), None);
    }
}
