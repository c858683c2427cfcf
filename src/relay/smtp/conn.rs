//! Framing of one upstream connection: a reused write buffer for commands, a read buffer fed
//! to smtp-proto's `ResponseReceiver`, the message writer (dot-stuffed, in large slices),
//! and per-step timeouts.
//!
//! It knows what a reply looks like, not what a reply means: the session and transaction
//! modules decide that.

use super::dot::DotStuffed;
use super::error::SmtpError;
use super::reply::Reply;
use super::stream::{Stream, TlsTarget};
use smtp_proto::response::parser::ResponseReceiver;
use smtp_proto::EhloResponse;
use std::io::Write as _;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// Bytes gathered before a write while streaming a message.
const WRITE_CHUNK: usize = 64 * 1024;
/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 4096;

/// What the upstream's last EHLO said it supports.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Capabilities {
    /// smtp-proto `EXT_*` bits.
    pub(crate) extensions: u32,
    /// smtp-proto `AUTH_*` bits.
    pub(crate) auth: u64,
}

impl Capabilities {
    /// True if the `EXT_*` bit `ext` was advertised.
    pub(crate) fn has(&self, ext: u32) -> bool {
        self.extensions & ext != 0
    }
}

/// One open upstream connection with its buffers.
pub(crate) struct Connection {
    stream: Stream,
    rbuf: Vec<u8>,
    rpos: usize,
    receiver: ResponseReceiver,
    /// Commands are written here, then sent with one `flush`.
    pub(crate) wbuf: Vec<u8>,
    timeout: Duration,
    /// Extensions offered after the last EHLO.
    pub(crate) caps: Capabilities,
    /// When this connection last finished a transaction (for the pool's idle limit).
    pub(crate) idle_since: Instant,
    /// Clear text after a failed opportunistic TLS handshake: used for one delivery, never
    /// pooled, and a "530 must issue STARTTLS" on it is not final.
    pub(crate) downgraded: bool,
}

impl Connection {
    /// Wraps a connected stream; `timeout` bounds every reply and every write.
    pub(crate) fn new(stream: Stream, timeout: Duration) -> Self {
        Connection {
            stream,
            rbuf: Vec::with_capacity(READ_CHUNK),
            rpos: 0,
            receiver: ResponseReceiver::default(),
            wbuf: Vec::with_capacity(1024),
            timeout,
            caps: Capabilities::default(),
            idle_since: Instant::now(),
            downgraded: false,
        }
    }

    /// True once TLS is up.
    pub(crate) fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Reads the next complete reply (a pipelined batch may already be buffered).
    pub(crate) async fn read_reply(&mut self) -> Result<Reply, SmtpError> {
        self.read_reply_raw().await.map(|(reply, _)| reply)
    }

    /// Reads an EHLO reply: on 250 the capabilities are replaced by what it lists.
    pub(crate) async fn read_ehlo(&mut self) -> Result<Reply, SmtpError> {
        let (reply, start) = self.read_reply_raw().await?;
        if reply.code == 250 {
            let raw = &self.rbuf[start..self.rpos];
            let ehlo = EhloResponse::parse(&mut raw.iter())
                .map_err(|e| SmtpError::Protocol(format!("unreadable EHLO reply: {e}")))?;
            self.caps = Capabilities {
                extensions: ehlo.capabilities,
                auth: ehlo.auth_mechanisms,
            };
        } else {
            self.caps = Capabilities::default();
        }
        Ok(reply)
    }

    /// Reads one reply and returns it with the offset where its raw bytes start in `rbuf`
    /// (they end at `rpos`).
    async fn read_reply_raw(&mut self) -> Result<(Reply, usize), SmtpError> {
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
        let start = self.rpos;
        let limit = self.timeout;
        match timeout(limit, self.parse_reply()).await {
            Ok(result) => result.map(|reply| (reply, start)),
            Err(_) => Err(SmtpError::Timeout(limit, "a reply")),
        }
    }

    async fn parse_reply(&mut self) -> Result<Reply, SmtpError> {
        loop {
            if self.rpos < self.rbuf.len() {
                let mut bytes = self.rbuf[self.rpos..].iter();
                let parsed = self.receiver.parse(&mut bytes);
                self.rpos = self.rbuf.len() - bytes.len();
                match parsed {
                    Ok(response) => {
                        self.receiver.reset();
                        return Ok(Reply::from(response));
                    }
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => {}
                    Err(e) => {
                        self.receiver.reset();
                        return Err(SmtpError::Protocol(format!("bad reply: {e}")));
                    }
                }
            }
            self.rbuf.reserve(READ_CHUNK);
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(SmtpError::Eof);
            }
        }
    }

    /// Sends everything in `wbuf` and empties it.
    pub(crate) async fn flush(&mut self) -> Result<(), SmtpError> {
        let limit = self.timeout;
        let write = async {
            self.stream.write_all(&self.wbuf).await?;
            self.stream.flush().await
        };
        match timeout(limit, write).await {
            Ok(result) => result?,
            Err(_) => return Err(SmtpError::Timeout(limit, "the upstream to take data")),
        }
        self.wbuf.clear();
        Ok(())
    }

    /// Writes `slice` through `wbuf`: small slices are gathered, large ones go out directly.
    async fn write_slice(&mut self, slice: &[u8]) -> Result<(), SmtpError> {
        if slice.len() >= WRITE_CHUNK {
            self.flush().await?;
            let limit = self.timeout;
            return match timeout(limit, self.stream.write_all(slice)).await {
                Ok(result) => Ok(result?),
                Err(_) => Err(SmtpError::Timeout(limit, "the upstream to take data")),
            };
        }
        self.wbuf.extend_from_slice(slice);
        if self.wbuf.len() >= WRITE_CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends the message after a 354: dot-stuffed, ending in CRLF, then `.` CRLF.
    pub(crate) async fn send_message(&mut self, data: &[u8]) -> Result<(), SmtpError> {
        self.send_message_then(data, b"").await
    }

    /// Like `send_message`, with `then` (pipelined commands) in the same write as the dot.
    pub(crate) async fn send_message_then(
        &mut self,
        data: &[u8],
        then: &[u8],
    ) -> Result<(), SmtpError> {
        for slice in DotStuffed::new(data) {
            self.write_slice(slice).await?;
        }
        if !data.is_empty() && !data.ends_with(b"\r\n") {
            self.wbuf.extend_from_slice(b"\r\n");
        }
        self.wbuf.extend_from_slice(b".\r\n");
        self.wbuf.extend_from_slice(then);
        self.flush().await
    }

    /// Sends `wbuf` and the message as one `BDAT <size> LAST` chunk (RFC 3030): not
    /// dot-stuffed, and ending in CRLF like a message sent with DATA (a missing one is added
    /// and counted in the size).
    pub(crate) async fn send_last_chunk(&mut self, data: &[u8]) -> Result<(), SmtpError> {
        let add_crlf = !data.is_empty() && !data.ends_with(b"\r\n");
        let size = data.len() + if add_crlf { 2 } else { 0 };
        // Writing to a Vec cannot fail.
        let _ = write!(self.wbuf, "BDAT {size} LAST\r\n");
        self.write_slice(data).await?;
        if add_crlf {
            self.wbuf.extend_from_slice(b"\r\n");
        }
        self.flush().await
    }

    /// Replaces the plain stream by TLS after the upstream's 220 to STARTTLS.
    pub(crate) async fn start_tls(self, target: &TlsTarget) -> Result<Self, SmtpError> {
        let Stream::Plain(tcp) = self.stream else {
            return Err(SmtpError::Protocol("STARTTLS on a TLS connection".into()));
        };
        if self.rpos != self.rbuf.len() {
            return Err(SmtpError::Tls(
                "upstream sent data after its STARTTLS reply".into(),
            ));
        }
        let limit = self.timeout;
        let stream = match timeout(limit, target.handshake(tcp)).await {
            Ok(stream) => stream?,
            Err(_) => return Err(SmtpError::Timeout(limit, "the TLS handshake")),
        };
        Ok(Connection::new(stream, limit))
    }
}
