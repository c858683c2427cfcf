//! One SMTP client connection of the generator: greeting and EHLO, one mail transaction
//! (lockstep or pipelined), RSET after a refusal, QUIT. Replies are parsed in place in a
//! reused read buffer; text is copied out only for replies that are not what was expected.
//!
//! It does not decide what to send next or keep statistics beyond one transaction.

use crate::message::Envelope;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How one transaction ended.
#[derive(Debug)]
pub enum Outcome {
    /// `250` to the final dot: `sent` is when the dot was written, `latency` until the 250.
    Accepted { sent: Instant, latency: Duration },
    /// A reply that was not the expected one; the transaction was reset.
    Refused(String),
}

/// An open SMTP connection.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Where the last reply read is in `buf` (valid until the next read).
    last: Range<usize>,
}

impl Client {
    /// Connects, reads the greeting and says EHLO. `Ok(Err(text))` is a refusal.
    pub async fn open(addr: SocketAddr) -> io::Result<Result<Client, String>> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut client = Client {
            stream,
            buf: vec![0; 8192],
            start: 0,
            end: 0,
            last: 0..0,
        };
        if let Err(text) = client.expect(220).await? {
            return Ok(Err(text));
        }
        client.stream.write_all(b"EHLO load.bench\r\n").await?;
        Ok(client.expect(250).await?.map(|()| client))
    }

    /// One transaction for the envelope and message already patched for this message.
    pub async fn transaction(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        pipelining: bool,
    ) -> io::Result<Outcome> {
        let envelope_ok = match pipelining {
            true => self.envelope_pipelined(envelope).await?,
            false => self.envelope_lockstep(envelope).await?,
        };
        if let Err(text) = envelope_ok {
            self.reset().await?;
            return Ok(Outcome::Refused(text));
        }
        self.stream.write_all(message).await?;
        let sent = Instant::now();
        let code = self.read_reply().await?;
        let latency = sent.elapsed();
        match code {
            250 => Ok(Outcome::Accepted { sent, latency }),
            _ => Ok(Outcome::Refused(self.last_text())),
        }
    }

    /// MAIL, RCPT and DATA in one write, then their three replies.
    async fn envelope_pipelined(&mut self, envelope: &Envelope) -> io::Result<Result<(), String>> {
        self.stream.write_all(envelope.all()).await?;
        let (mut refusal, mut code) = (None, 0);
        for expected in [250, 250, 354] {
            code = self.read_reply().await?;
            if code != expected && refusal.is_none() {
                refusal = Some(self.last_text());
            }
        }
        let Some(text) = refusal else {
            return Ok(Ok(()));
        };
        // A server that (wrongly) said 354 anyway gets an empty message.
        if code == 354 {
            self.stream.write_all(b".\r\n").await?;
            self.read_reply().await?;
        }
        Ok(Err(text))
    }

    /// MAIL, RCPT and DATA each waiting for its reply.
    async fn envelope_lockstep(&mut self, envelope: &Envelope) -> io::Result<Result<(), String>> {
        for (line, expected) in envelope.lines().into_iter().zip([250, 250, 354]) {
            self.stream.write_all(line).await?;
            if let Err(text) = self.expect(expected).await? {
                return Ok(Err(text));
            }
        }
        Ok(Ok(()))
    }

    /// RSET after a refusal; its reply is read but not judged.
    async fn reset(&mut self) -> io::Result<()> {
        self.stream.write_all(b"RSET\r\n").await?;
        self.read_reply().await.map(drop)
    }

    /// QUIT and its reply; errors do not matter any more.
    pub async fn quit(mut self) {
        if self.stream.write_all(b"QUIT\r\n").await.is_ok() {
            let _ = self.read_reply().await;
        }
    }

    /// Reads a reply: `Ok(Err(text))` when its code is not `code`.
    async fn expect(&mut self, code: u16) -> io::Result<Result<(), String>> {
        match self.read_reply().await? {
            got if got == code => Ok(Ok(())),
            _ => Ok(Err(self.last_text())),
        }
    }

    /// The code of the next complete (possibly multi-line) reply.
    async fn read_reply(&mut self) -> io::Result<u16> {
        loop {
            if let Some((code, len)) = parse_reply(&self.buf[self.start..self.end])? {
                self.last = self.start..self.start + len;
                self.start += len;
                return Ok(code);
            }
            self.fill().await?;
        }
    }

    /// The last reply read, as text on one line.
    fn last_text(&self) -> String {
        String::from_utf8_lossy(&self.buf[self.last.clone()])
            .trim_end()
            .replace("\r\n", " | ")
    }

    /// Reads more bytes, first moving what is unread to the front (or growing the buffer).
    async fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        match self.stream.read(&mut self.buf[self.end..]).await? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.end += n;
                Ok(())
            }
        }
    }
}

/// (code, length) of the first complete reply in `buf`, if there is one.
fn parse_reply(buf: &[u8]) -> io::Result<Option<(u16, usize)>> {
    let mut pos = 0;
    while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
        let line = &buf[pos..pos + nl + 1];
        let code = reply_code(line)?;
        pos += nl + 1;
        if line.get(3) != Some(&b'-') {
            return Ok(Some((code, pos)));
        }
    }
    Ok(None)
}

fn reply_code(line: &[u8]) -> io::Result<u16> {
    match line.get(..3) {
        Some(digits) if digits.iter().all(u8::is_ascii_digit) => Ok(digits
            .iter()
            .fold(0, |code, d| code * 10 + u16::from(d - b'0'))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an SMTP reply: {:?}", String::from_utf8_lossy(line)),
        )),
    }
}
