//! Framing for the SMTP server: command lines, DATA and BDAT payloads, and buffered replies.
//!
//! Strictness lives here, not in smtp-proto: a line must end in CRLF and hold no other CR or
//! LF; command lines are capped (512 octets by default) and text lines too (1000); only a
//! line `.` CRLF ends DATA — also as the very first line. Replies are buffered and written
//! only when the next read would block, which is what makes PIPELINING cheap.
//!
//! Every read and write runs under a deadline (`deadline`): one per command line, one that
//! moves with the data rate per payload, all capped by the session's end.

use super::deadline::{Deadline, Limit, Timing, LAST_REPLY_MAX};
use bytes::{Buf, BytesMut};
use memchr::{memchr, memchr2};
use std::io;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One command line as read.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line ending in CRLF, CRLF included.
    Ok(BytesMut),
    /// Longer than allowed; everything up to its LF was discarded.
    TooLong,
    /// A CR or LF not part of the final CRLF.
    BareNewline,
    /// The client closed the connection.
    Eof,
}

/// How a DATA payload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataEnd {
    /// `CRLF . CRLF` seen.
    Complete,
    /// A bare CR or LF: the stream cannot be trusted to be in step any more.
    BareNewline,
    /// The client closed the connection.
    Eof,
}

/// What was wrong with a payload that was nevertheless read to its end.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DataFlags {
    pub line_too_long: bool,
    pub too_big: bool,
}

/// Caps applied while reading a payload.
#[derive(Debug, Clone, Copy)]
pub struct DataLimits {
    pub max_size: usize,
    pub max_line: usize,
}

/// A stream with a read buffer and a reply buffer.
pub struct Conn<S> {
    stream: S,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    /// Discarding an overlong line until its LF.
    skipping: bool,
    timing: Timing,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(stream: S, timing: Timing) -> Conn<S> {
        Conn {
            stream,
            rbuf: BytesMut::with_capacity(8192),
            wbuf: Vec::with_capacity(1024),
            skipping: false,
            timing,
        }
    }

    /// The session's time limits.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// Gives the stream back (for the TLS upgrade); unread input is dropped on purpose.
    pub fn into_stream(self) -> S {
        self.stream
    }

    /// Queues a reply line (CRLF appended).
    pub fn reply(&mut self, text: &str) {
        self.wbuf.extend_from_slice(text.as_bytes());
        self.wbuf.extend_from_slice(b"\r\n");
    }

    /// Writes every queued reply; the client must take them within the idle timeout.
    pub async fn flush(&mut self) -> io::Result<()> {
        let deadline = self.timing.line();
        deadline
            .run(write_out(&mut self.stream, &mut self.wbuf))
            .await
    }

    /// Writes the session's last replies, waiting at most `LAST_REPLY_MAX` (also when the
    /// session's time is already up).
    pub async fn flush_last(&mut self) -> io::Result<()> {
        let deadline = Deadline {
            at: Instant::now() + self.timing.idle.min(LAST_REPLY_MAX),
            limit: Limit::Idle,
        };
        deadline
            .run(write_out(&mut self.stream, &mut self.wbuf))
            .await
    }

    /// True if the client has sent bytes not yet consumed.
    pub fn has_pending_input(&self) -> bool {
        !self.rbuf.is_empty()
    }

    /// Writes the queued replies, then reads what the client sent, both before `deadline`.
    async fn fill(&mut self, deadline: Deadline) -> io::Result<usize> {
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(16384);
        }
        let Conn {
            stream, rbuf, wbuf, ..
        } = self;
        let work = async {
            write_out(stream, wbuf).await?;
            stream.read_buf(rbuf).await
        };
        deadline.run(work).await
    }

    /// Reads one line of at most `max` octets (CRLF included); the whole line must arrive
    /// within the idle timeout.
    pub async fn read_line(&mut self, max: usize) -> io::Result<Line> {
        let deadline = self.timing.line();
        loop {
            if let Some(pos) = memchr(b'\n', &self.rbuf) {
                let line = self.rbuf.split_to(pos + 1);
                if std::mem::take(&mut self.skipping) || line.len() > max {
                    return Ok(Line::TooLong);
                }
                return Ok(match is_clean_line(&line) {
                    true => Line::Ok(line),
                    false => Line::BareNewline,
                });
            }
            if self.rbuf.len() > max {
                self.skipping = true;
                self.rbuf.clear();
            }
            if self.fill(deadline).await? == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Reads a DATA payload up to `CRLF.CRLF`, un-dot-stuffed, appending to `out`; the
    /// client must keep to the minimum data rate.
    pub async fn read_data(
        &mut self,
        out: &mut Vec<u8>,
        limits: DataLimits,
    ) -> io::Result<(DataEnd, DataFlags)> {
        let mut rate = self.timing.payload();
        let mut scan = DataScan {
            limits,
            flags: DataFlags::default(),
            overlong: false,
        };
        loop {
            let (used, end) = scan.lines(&self.rbuf, out);
            self.rbuf.advance(used);
            if let Some(end) = end {
                return Ok((end, scan.flags));
            }
            if self.rbuf.len() > limits.max_line {
                // Only the last octet may be a CR (the first half of a CRLF split by a read).
                if memchr(b'\r', &self.rbuf[..self.rbuf.len() - 1]).is_some() {
                    return Ok((DataEnd::BareNewline, scan.flags));
                }
                scan.flags.line_too_long = true;
                scan.overlong = true;
                let keep = self.rbuf.len() - 1;
                self.rbuf.advance(keep);
            }
            match self.fill(rate.deadline()).await? {
                0 => return Ok((DataEnd::Eof, scan.flags)),
                n => rate.received(n),
            }
        }
    }

    /// Reads exactly `n` octets (a BDAT chunk), appending them to `out` or, when `out` is
    /// `None`, discarding them; returns false if the client closed the connection first.
    /// The client must keep to the minimum data rate.
    pub async fn read_chunk(
        &mut self,
        mut out: Option<&mut Vec<u8>>,
        mut n: usize,
    ) -> io::Result<bool> {
        let mut rate = self.timing.payload();
        loop {
            let take = n.min(self.rbuf.len());
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(&self.rbuf[..take]);
            }
            self.rbuf.advance(take);
            n -= take;
            if n == 0 {
                return Ok(true);
            }
            match self.fill(rate.deadline()).await? {
                0 => return Ok(false),
                read => rate.received(read),
            }
        }
    }
}

/// Writes and clears `wbuf`.
async fn write_out<S: AsyncWrite + Unpin>(stream: &mut S, wbuf: &mut Vec<u8>) -> io::Result<()> {
    if !wbuf.is_empty() {
        stream.write_all(wbuf).await?;
        stream.flush().await?;
        wbuf.clear();
    }
    Ok(())
}

/// The state of reading one DATA payload across reads.
struct DataScan {
    limits: DataLimits,
    flags: DataFlags,
    /// The line in progress was already flagged too long; its rest is dropped.
    overlong: bool,
}

impl DataScan {
    /// Takes every complete line of `buf`: returns how many octets were used and, if the
    /// payload ended, how. Consecutive lines are copied to `out` in one piece; a line's
    /// stuffing dot splits the piece.
    fn lines(&mut self, buf: &[u8], out: &mut Vec<u8>) -> (usize, Option<DataEnd>) {
        let mut pos = 0;
        let mut piece = 0;
        let end = loop {
            let Some(stop) = memchr2(b'\r', b'\n', &buf[pos..]).map(|i| pos + i) else {
                break None;
            };
            if buf[stop] == b'\n' {
                break Some(DataEnd::BareNewline);
            }
            match buf.get(stop + 1) {
                None => break None,
                Some(b'\n') => {}
                Some(_) => break Some(DataEnd::BareNewline),
            }
            let next = stop + 2;
            if std::mem::take(&mut self.overlong) {
                self.copy(out, &buf[piece..pos]);
                piece = next;
            } else if &buf[pos..next] == b".\r\n" {
                self.copy(out, &buf[piece..pos]);
                return (next, Some(DataEnd::Complete));
            } else {
                if next - pos > self.limits.max_line {
                    self.flags.line_too_long = true;
                }
                if buf[pos] == b'.' {
                    self.copy(out, &buf[piece..pos]);
                    piece = pos + 1;
                }
            }
            pos = next;
        };
        self.copy(out, &buf[piece..pos]);
        (pos, end)
    }

    /// Appends clean lines unless the message is already refused (too big, line too long).
    fn copy(&mut self, out: &mut Vec<u8>, lines: &[u8]) {
        if out.len() + lines.len() > self.limits.max_size {
            self.flags.too_big = true;
        }
        if !self.flags.too_big && !self.flags.line_too_long {
            out.extend_from_slice(lines);
        }
    }
}

/// A line ending in CRLF with no other CR or LF in it.
pub fn is_clean_line(line: &[u8]) -> bool {
    let n = line.len();
    n >= 2
        && line[n - 2] == b'\r'
        && line[n - 1] == b'\n'
        && memchr2(b'\r', b'\n', &line[..n - 2]).is_none()
}

/// Checks a whole message (BDAT) line by line; returns (clean, longest line). A last line
/// without CRLF is allowed (the caller completes it); a CR or LF elsewhere is not.
pub fn check_lines(message: &[u8]) -> (bool, usize) {
    let mut longest = 0;
    let mut start = 0;
    while start < message.len() {
        let Some(end) = memchr(b'\n', &message[start..]).map(|p| start + p + 1) else {
            let tail = &message[start..];
            return (!tail.contains(&b'\r'), longest.max(tail.len() + 2));
        };
        let line = &message[start..end];
        if !is_clean_line(line) {
            return (false, longest);
        }
        longest = longest.max(line.len());
        start = end;
    }
    (true, longest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timing() -> Timing {
        Timing {
            session_end: Instant::now() + Duration::from_secs(60),
            idle: Duration::from_secs(5),
            min_data_rate: 500,
        }
    }

    #[test]
    fn clean_lines() {
        assert!(is_clean_line(b"NOOP\r\n"));
        assert!(!is_clean_line(b"NOOP\n"));
        assert!(!is_clean_line(b"NO\rOP\r\n"));
        assert!(!is_clean_line(b".\r\r\n"));
        assert_eq!(check_lines(b"a\r\nbb\r\n"), (true, 4));
        assert!(!check_lines(b"a\r\nb\nc\r\n").0);
        assert_eq!(check_lines(b"a\r\nno end"), (true, 8));
        assert!(!check_lines(b"a\r\nno end\r").0);
    }

    async fn data_of(input: &[u8]) -> (DataEnd, DataFlags, Vec<u8>) {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        client.write_all(input).await.unwrap();
        drop(client);
        let mut conn = Conn::new(server, timing());
        let mut out = Vec::new();
        let limits = DataLimits {
            max_size: 1 << 20,
            max_line: 1000,
        };
        let (end, flags) = conn.read_data(&mut out, limits).await.unwrap();
        (end, flags, out)
    }

    #[tokio::test]
    async fn dot_alone_on_first_line_ends_data() {
        let (end, _, out) = data_of(b".\r\nMAIL FROM:<x@y>\r\n").await;
        assert_eq!(end, DataEnd::Complete);
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn only_crlf_dot_crlf_ends_data() {
        let (end, _, _) = data_of(b"a\r\n.\r\r\nb\r\n.\r\n").await;
        assert_eq!(end, DataEnd::BareNewline);
        let (end, _, _) = data_of(b"a\r\n.\nb\r\n").await;
        assert_eq!(end, DataEnd::BareNewline);
        let (end, _, out) = data_of(b"a\r\n..b\r\n.\r\n").await;
        assert_eq!(end, DataEnd::Complete);
        assert_eq!(out, b"a\r\n.b\r\n");
    }

    /// The payload split into two reads at every possible point gives the same result as
    /// one read: a CRLF or a stuffing dot cut in half by a read is still seen.
    #[test]
    fn any_read_boundary_gives_the_same_payload() {
        let input = b"Subject: x\r\n\r\n..dot\r\nline\r\n.\r\nafter\r\n";
        let limits = DataLimits {
            max_size: 1 << 20,
            max_line: 1000,
        };
        for cut in 0..=input.len() {
            let mut scan = DataScan {
                limits,
                flags: DataFlags::default(),
                overlong: false,
            };
            let mut out = Vec::new();
            let mut rbuf = input[..cut].to_vec();
            let (used, end) = scan.lines(&rbuf, &mut out);
            let end = end.or_else(|| {
                rbuf.drain(..used);
                rbuf.extend_from_slice(&input[cut..]);
                scan.lines(&rbuf, &mut out).1
            });
            assert_eq!(end, Some(DataEnd::Complete), "cut at {cut}");
            assert_eq!(out, b"Subject: x\r\n\r\n.dot\r\nline\r\n", "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn bare_cr_before_the_end_of_a_line_is_refused() {
        let (end, _, _) = data_of(b"a\rb\r\n.\r\n").await;
        assert_eq!(end, DataEnd::BareNewline);
        let (end, _, _) = data_of(b"a\r\r\n.\r\n").await;
        assert_eq!(end, DataEnd::BareNewline);
    }

    #[tokio::test]
    async fn oversized_message_is_flagged_not_buffered() {
        let mut input = b"x\r\n".repeat(400);
        input.extend_from_slice(b".\r\n");
        let (mut client, server) = tokio::io::duplex(1 << 16);
        client.write_all(&input).await.unwrap();
        let mut conn = Conn::new(server, timing());
        let mut out = Vec::new();
        let limits = DataLimits {
            max_size: 1000,
            max_line: 1000,
        };
        let (end, flags) = conn.read_data(&mut out, limits).await.unwrap();
        assert_eq!(end, DataEnd::Complete);
        assert!(flags.too_big);
        assert!(out.len() <= 1000);
    }

    #[tokio::test]
    async fn long_lines_are_flagged_not_buffered() {
        let mut input = vec![b'x'; 5000];
        input.extend_from_slice(b"\r\n.\r\n");
        let (end, flags, out) = data_of(&input).await;
        assert_eq!(end, DataEnd::Complete);
        assert!(flags.line_too_long);
        assert!(out.is_empty());
    }
}
