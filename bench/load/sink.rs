//! The counting SMTP sink that Postern relays to, and its refusing twin (the "blackhole"
//! that holds `--prefill` messages in Postern's spool by answering every RCPT with 451).
//!
//! Minimal and fast: EHLO with PIPELINING, MAIL, RCPT, DATA, RSET, NOOP, QUIT; replies to
//! pipelined commands are written in one batch when the input runs dry; the data phase is
//! scanned for the `.` line without keeping the message. Each message is counted with its
//! octets when its final dot arrives, and its arrival time is stored under the sequence
//! number carried by the first recipient (`rcpt+NNNNNNNNNN@...`). It never judges syntax.
//!
//! `Style` makes it look like a provider: CHUNKING offered (BDAT chunks are skipped by
//! their size, the message counted at `LAST`), and a round trip: each batch of replies
//! goes out that much later.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the server answers RCPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Accept and count every message.
    Accept,
    /// `451 4.3.0 later` to every RCPT: nothing is ever delivered.
    Refuse,
}

/// How the sink looks to its client.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Offer CHUNKING and take BDAT.
    pub chunking: bool,
    /// Delay before each batch of replies: a round trip to a distant server.
    pub round_trip: Duration,
}

/// What the sink has seen; shared with the generator, which polls it.
#[derive(Debug)]
pub struct Counters {
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    /// Messages whose sequence number had arrived before.
    pub duplicates: AtomicU64,
    /// RCPT commands refused (blackhole).
    pub refused: AtomicU64,
    /// Arrival per sequence number: nanoseconds since `base`, plus one (0: not yet).
    arrivals: Vec<AtomicU64>,
    base: Instant,
}

impl Counters {
    fn new(base: Instant, capacity: u64) -> Counters {
        Counters {
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            arrivals: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            base,
        }
    }

    /// When message `seq` arrived, if it did.
    pub fn arrival(&self, seq: u64) -> Option<Instant> {
        let at = self.arrivals.get(seq as usize)?.load(Ordering::Relaxed);
        (at != 0).then(|| self.base + Duration::from_nanos(at - 1))
    }

    fn record(&self, seq: Option<u64>, octets: usize) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(octets as u64, Ordering::Relaxed);
        let Some(slot) = seq.and_then(|seq| self.arrivals.get(seq as usize)) else {
            return;
        };
        let now = self.base.elapsed().as_nanos() as u64 + 1;
        if slot
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A running sink: its port and counters. The accept loop ends with the runtime.
pub struct Sink {
    pub port: u16,
    pub counters: Arc<Counters>,
}

/// Binds 127.0.0.1:`port` (0: any) and serves every connection on its own task.
/// `capacity` is the number of sequence numbers whose arrival is recorded.
pub async fn start(
    port: u16,
    mode: Mode,
    style: Style,
    base: Instant,
    capacity: u64,
) -> io::Result<Sink> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    let counters = Arc::new(Counters::new(base, capacity));
    let shared = counters.clone();
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let counters = shared.clone();
                    tokio::spawn(async move { serve(stream, mode, style, &counters).await });
                }
                // Out of descriptors, most likely: wait for some to close.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    Ok(Sink { port, counters })
}

/// One connection's state.
struct Conn<'a> {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    mode: Mode,
    style: Style,
    counters: &'a Counters,
    /// Sequence number of the transaction's first recipient; recipients accepted.
    seq: Option<u64>,
    rcpts: usize,
    /// Octets of the message's BDAT chunks so far.
    chunked: usize,
}

/// Where the input is: commands, or the data phase of a message.
enum Phase {
    Command,
    /// In the message: octets so far, and whether the unread input starts a line.
    Data {
        octets: usize,
        line_start: bool,
    },
    /// In a BDAT chunk: octets still to come, and whether this chunk is the last.
    Chunk {
        left: usize,
        last: bool,
    },
}

async fn serve(stream: TcpStream, mode: Mode, style: Style, counters: &Counters) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        stream,
        buf: vec![0; 64 * 1024],
        start: 0,
        end: 0,
        out: Vec::with_capacity(1024),
        mode,
        style,
        counters,
        seq: None,
        rcpts: 0,
        chunked: 0,
    };
    conn.out
        .extend_from_slice(b"220 sink.bench ESMTP load sink\r\n");
    let mut phase = Phase::Command;
    loop {
        phase = match phase {
            Phase::Command => match conn.command() {
                Some(Step::Quit) => return conn.flush().await,
                Some(Step::Next(next)) => next,
                None => conn.wait().await.map(|()| Phase::Command)?,
            },
            Phase::Data { octets, line_start } => conn.data(octets, line_start).await?,
            Phase::Chunk { left, last } => conn.chunk(left, last).await?,
        };
    }
}

/// What a complete command line leads to.
enum Step {
    Next(Phase),
    Quit,
}

impl Conn<'_> {
    /// Answers the next complete command line, if one has arrived.
    fn command(&mut self) -> Option<Step> {
        let unread = &self.buf[self.start..self.end];
        let nl = unread.iter().position(|&b| b == b'\n')?;
        let line = &unread[..nl + 1];
        let verb = line.get(..4).map(|v| {
            let mut verb = [0; 4];
            verb.copy_from_slice(v);
            verb.make_ascii_uppercase();
            verb
        });
        let seq = recipient_seq(line);
        self.start += nl + 1;
        let bdat = bdat_size(line);
        let reply: &[u8] = match verb.as_ref() {
            Some(b"EHLO") if self.style.chunking => b"250-sink.bench\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250-SIZE 0\r\n250 ENHANCEDSTATUSCODES\r\n",
            Some(b"EHLO") => b"250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 0\r\n250 ENHANCEDSTATUSCODES\r\n",
            Some(b"HELO") => b"250 sink.bench\r\n",
            Some(b"MAIL") => {
                (self.seq, self.rcpts, self.chunked) = (None, 0, 0);
                b"250 2.1.0 ok\r\n"
            }
            Some(b"RCPT") => self.rcpt(seq),
            Some(b"DATA") if self.rcpts == 0 => b"554 5.5.1 no valid recipients\r\n",
            Some(b"DATA") => {
                self.out.extend_from_slice(b"354 go ahead\r\n");
                let data = Phase::Data {
                    octets: 0,
                    line_start: true,
                };
                return Some(Step::Next(data));
            }
            Some(b"BDAT") if self.style.chunking => match bdat {
                Some((left, last)) => return Some(Step::Next(Phase::Chunk { left, last })),
                None => b"501 5.5.4 syntax: BDAT size [LAST]\r\n",
            },
            Some(b"RSET") => {
                (self.seq, self.rcpts, self.chunked) = (None, 0, 0);
                b"250 2.0.0 ok\r\n"
            }
            Some(b"NOOP") => b"250 2.0.0 ok\r\n",
            Some(b"QUIT") => {
                self.out.extend_from_slice(b"221 2.0.0 bye\r\n");
                return Some(Step::Quit);
            }
            _ => b"502 5.5.1 not implemented\r\n",
        };
        self.out.extend_from_slice(reply);
        Some(Step::Next(Phase::Command))
    }

    fn rcpt(&mut self, seq: Option<u64>) -> &'static [u8] {
        if self.mode == Mode::Refuse {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return b"451 4.3.0 later\r\n";
        }
        if self.rcpts == 0 {
            self.seq = seq;
        }
        self.rcpts += 1;
        b"250 2.1.5 ok\r\n"
    }

    /// Consumes message data; at the `.` line counts the message and answers it.
    async fn data(&mut self, octets: usize, line_start: bool) -> io::Result<Phase> {
        match scan_data(&self.buf[self.start..self.end], line_start) {
            Scan::End { octets: last, len } => {
                self.start += len;
                self.counters.record(self.seq, octets + last);
                (self.seq, self.rcpts) = (None, 0);
                self.out.extend_from_slice(b"250 2.0.0 ok\r\n");
                Ok(Phase::Command)
            }
            Scan::More {
                octets: seen,
                line_start,
            } => {
                self.start += seen;
                self.wait().await?;
                Ok(Phase::Data {
                    octets: octets + seen,
                    line_start,
                })
            }
        }
    }

    /// Skips a BDAT chunk's octets; at its end answers it, and counts the message at the
    /// end of the last chunk.
    async fn chunk(&mut self, left: usize, last: bool) -> io::Result<Phase> {
        let here = left.min(self.end - self.start);
        self.start += here;
        self.chunked += here;
        if left > here {
            self.wait().await?;
            return Ok(Phase::Chunk {
                left: left - here,
                last,
            });
        }
        let reply: &[u8] = match (self.rcpts, last) {
            (0, _) => b"554 5.5.1 no valid recipients\r\n",
            (_, false) => return Ok(self.reply(b"250 2.0.0 chunk ok\r\n")),
            (_, true) => {
                self.counters.record(self.seq, self.chunked);
                (self.seq, self.rcpts) = (None, 0);
                b"250 2.0.0 ok\r\n"
            }
        };
        self.chunked = 0;
        Ok(self.reply(reply))
    }

    /// Queues `reply`; the next input is a command.
    fn reply(&mut self, reply: &[u8]) -> Phase {
        self.out.extend_from_slice(reply);
        Phase::Command
    }

    /// Sends the replies gathered so far, then waits for more input.
    async fn wait(&mut self) -> io::Result<()> {
        self.flush().await?;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
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

    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            if !self.style.round_trip.is_zero() {
                tokio::time::sleep(self.style.round_trip).await;
            }
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }
}

/// How far a scan of message data got.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// The `.` line ends `len` octets in; `octets` of them are the message.
    End { octets: usize, len: usize },
    /// No end yet: `octets` may be dropped; `line_start` says where the rest begins.
    More { octets: usize, line_start: bool },
}

/// Looks for the line `.` CRLF in `data`, which starts a line when `line_start`.
fn scan_data(data: &[u8], mut line_start: bool) -> Scan {
    let mut pos = 0;
    loop {
        if line_start {
            let rest = &data[pos..];
            if rest.starts_with(b".\r\n") {
                return Scan::End {
                    octets: pos,
                    len: pos + 3,
                };
            }
            if rest.len() < 3 {
                return Scan::More {
                    octets: pos,
                    line_start: true,
                };
            }
        }
        match data[pos..].iter().position(|&b| b == b'\n') {
            Some(nl) => (pos, line_start) = (pos + nl + 1, true),
            None => {
                return Scan::More {
                    octets: data.len(),
                    line_start: false,
                }
            }
        }
    }
}

/// The size of `BDAT <size> [LAST]` and whether it is the last chunk, if the line is one.
fn bdat_size(line: &[u8]) -> Option<(usize, bool)> {
    if !line.get(..5)?.eq_ignore_ascii_case(b"BDAT ") {
        return None;
    }
    let text = std::str::from_utf8(&line[5..]).ok()?;
    let mut words = text.split_ascii_whitespace();
    let size = words.next()?.parse().ok()?;
    let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
    Some((size, last))
}

/// The sequence number in `RCPT TO:<rcpt+NNNNNNNNNN@...>`, if the line is one.
fn recipient_seq(line: &[u8]) -> Option<u64> {
    if !line.get(..4)?.eq_ignore_ascii_case(b"RCPT") {
        return None;
    }
    let plus = line.iter().position(|&b| b == b'+')?;
    let digits = &line[plus + 1..];
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || digits.get(len) != Some(&b'@') {
        return None;
    }
    std::str::from_utf8(&digits[..len]).ok()?.parse().ok()
}
