//! A POP3 client session over `wire::Wire` (RFC 1939, with RFC 2449 `CAPA` and RFC 2595
//! `STLS`), for fetching helpdesk mail: connect with implicit TLS, `STLS` or (loopback
//! only, checked by the callers' validation) clear text, read the greeting, log in with
//! `USER`/`PASS`, list the messages with their `UIDL`, `RETR` one (dot-unstuffed, at most
//! [`MAX_MESSAGE`] octets), `DELE`, and `QUIT`, which commits the deletions (a session
//! dropped without it deletes nothing). Every read and write has a time limit ([`STEP`]):
//! a multi-line answer may take longer as a whole, as long as it keeps coming. The
//! password is never logged, nor put in an error.
//!
//! Hand-written: the crates on crates.io were measured against what this needs and none
//! fits — `async-pop` (the maintained one) has no `STLS`, brings its TLS through
//! async-native-tls (OpenSSL) or an older rustls, re-parses its whole buffer at each read
//! of a large `RETR`, and traces every command line it sends, `PASS` included; `mailme`
//! and `async-pop3` are unmaintained (tokio 0.3, async-std). The protocol needed is a
//! handful of commands.

use super::imap::Server;
use super::wire::{self, Wire};
use crate::store::SentCopyTls;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest a connection, a command or one read of an answer may take.
pub const STEP: Duration = Duration::from_secs(60);
/// The largest message `retr` returns (larger ones are `TooLarge`).
pub const MAX_MESSAGE: usize = 64 << 20;
/// The largest `UIDL` or `CAPA` listing.
const MAX_LISTING: usize = 16 << 20;
/// The longest single-line answer read (RFC 1939 allows 512 octets).
const MAX_LINE: usize = 8192;
/// How much of a multi-line answer is read at once (a longer line comes in pieces).
const PIECE: u64 = 64 * 1024;

/// Why a POP3 session could not be had or a command failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Pop3Error {
    #[error("cannot reach the POP3 server {0}")]
    Connect(String),
    #[error("TLS with the POP3 server: {0}")]
    Tls(String),
    #[error("POP3 login refused by {0}")]
    Login(String),
    #[error("POP3 server {0}")]
    Refused(String),
    /// The message is larger than the limit (read to its end and thrown away: the
    /// session goes on).
    #[error("POP3 server {0}")]
    TooLarge(String),
}

/// A logged-in POP3 session.
#[derive(Debug)]
pub struct Session {
    io: BufReader<Wire>,
    /// `host:port`, for messages.
    name: String,
}

/// Connects to `server` and logs in as `username` with `password`.
pub async fn connect(
    server: Server<'_>,
    username: &str,
    password: &str,
) -> Result<Session, Pop3Error> {
    let name = format!("{}:{}", server.host, server.port);
    let tcp = step(&name, "connect", TcpStream::connect(&name))
        .await?
        .map_err(|e| Pop3Error::Connect(format!("{name}: {e}")))?;
    let wire = match server.tls {
        SentCopyTls::Implicit => Wire::Tls(Box::new(handshake(server, tcp).await?)),
        SentCopyTls::Starttls | SentCopyTls::None => Wire::Plain(tcp),
    };
    let mut session = Session {
        io: BufReader::new(wire),
        name,
    };
    session.greeting().await?;
    if server.tls == SentCopyTls::Starttls {
        session = session.stls(server).await?;
    }
    session.login(username, password).await?;
    Ok(session)
}

impl Session {
    /// `host:port` of the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every message in the maildrop: its number in this session and its unique id.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>, Pop3Error> {
        self.command("UIDL", "UIDL").await?;
        let listing = self
            .multi_line(MAX_LISTING)
            .await?
            .map_err(|_| self.broken("UIDL listing too long"))?;
        let mut out = Vec::new();
        for line in listing.split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_ascii_whitespace();
            match (
                words.next().and_then(|n| n.parse::<u32>().ok()),
                words.next(),
            ) {
                (Some(number), Some(uidl)) => out.push((number, uidl.to_string())),
                _ => return Err(self.broken(&format!("UIDL line {:?}", clip(line)))),
            }
        }
        Ok(out)
    }

    /// Message `number` as stored (dot-unstuffed, its line ends as the server sent them).
    pub async fn retr(&mut self, number: u32) -> Result<Vec<u8>, Pop3Error> {
        self.retr_within(number, MAX_MESSAGE).await
    }

    /// `retr` with a limit of `cap` octets.
    pub async fn retr_within(&mut self, number: u32, cap: usize) -> Result<Vec<u8>, Pop3Error> {
        self.command(&format!("RETR {number}"), "RETR").await?;
        self.multi_line(cap).await?.map_err(|size| {
            Pop3Error::TooLarge(format!(
                "{}: message {number} is larger than {cap} octets ({size} read)",
                self.name
            ))
        })
    }

    /// Marks message `number` deleted (removed at `quit`).
    pub async fn dele(&mut self, number: u32) -> Result<(), Pop3Error> {
        self.command(&format!("DELE {number}"), "DELE")
            .await
            .map(drop)
    }

    /// Ends the session, removing the messages marked deleted; an error says they may not
    /// all be removed.
    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        self.command("QUIT", "QUIT").await?;
        let _ = step(&self.name, "closing", self.io.get_mut().shutdown()).await;
        Ok(())
    }

    async fn greeting(&mut self) -> Result<(), Pop3Error> {
        match self.answer("greeting").await {
            Ok(_) => Ok(()),
            Err(Pop3Error::Refused(text)) => Err(Pop3Error::Connect(text)),
            Err(other) => Err(other),
        }
    }

    /// Upgrades the session with `STLS` (when `CAPA` answers, it must list `STLS`).
    async fn stls(mut self, server: Server<'_>) -> Result<Session, Pop3Error> {
        if let Some(capabilities) = self.capabilities().await? {
            if !capabilities.iter().any(|c| c == "STLS") {
                return Err(Pop3Error::Tls(format!("{}: STLS not offered", self.name)));
            }
        }
        self.command("STLS", "STLS").await.map_err(|e| match e {
            Pop3Error::Refused(text) => Pop3Error::Tls(text),
            other => other,
        })?;
        // Anything the server sent after its answer would be taken as said under TLS.
        if !self.io.buffer().is_empty() {
            return Err(Pop3Error::Tls(format!(
                "{}: data after the answer to STLS",
                self.name
            )));
        }
        let Wire::Plain(tcp) = self.io.into_inner() else {
            return Err(Pop3Error::Tls(format!("{}: TLS already", self.name)));
        };
        let tls = handshake(server, tcp).await?;
        Ok(Session {
            io: BufReader::new(Wire::Tls(Box::new(tls))),
            name: self.name,
        })
    }

    /// The server's capabilities (RFC 2449), upper case, or `None` without `CAPA`.
    async fn capabilities(&mut self) -> Result<Option<Vec<String>>, Pop3Error> {
        match self.command("CAPA", "CAPA").await {
            Ok(_) => {}
            Err(Pop3Error::Refused(_)) => return Ok(None),
            Err(other) => return Err(other),
        }
        let listing = self
            .multi_line(MAX_LISTING)
            .await?
            .map_err(|_| self.broken("CAPA listing too long"))?;
        Ok(Some(
            String::from_utf8_lossy(&listing)
                .lines()
                .filter_map(|line| line.split_ascii_whitespace().next())
                .map(|word| word.to_ascii_uppercase())
                .collect(),
        ))
    }

    /// `USER` and `PASS`. A refusal is `Login`, unless the server says (RFC 2449/3206
    /// response codes) the maildrop is in use or it failed itself: `Refused`.
    async fn login(&mut self, username: &str, password: &str) -> Result<(), Pop3Error> {
        if [username, password]
            .iter()
            .any(|s| s.contains(['\r', '\n']) || s.is_empty())
        {
            return Err(Pop3Error::Login(format!(
                "{}: the username or password is empty or has a line break",
                self.name
            )));
        }
        let hide = |text: String| text.replace(password, "[redacted]");
        let result = match self.command(&format!("USER {username}"), "USER").await {
            Ok(_) => self.command(&format!("PASS {password}"), "PASS").await,
            Err(error) => Err(error),
        };
        match result {
            Ok(_) => Ok(()),
            Err(Pop3Error::Refused(text)) if transient(&text) => {
                Err(Pop3Error::Refused(hide(text)))
            }
            Err(Pop3Error::Refused(text)) => Err(Pop3Error::Login(hide(text))),
            Err(other) => Err(other),
        }
    }

    /// Sends `line` and reads its `+OK` answer (the text after it); `-ERR` is `Refused`.
    /// `what` names the command in errors (never the line: it may hold the password).
    async fn command(&mut self, line: &str, what: &str) -> Result<String, Pop3Error> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let wire = self.io.get_mut();
        let sent = step(&self.name, what, async {
            wire.write_all(&bytes).await?;
            wire.flush().await
        })
        .await?;
        sent.map_err(|e| Pop3Error::Connect(format!("{}: sending {what}: {e}", self.name)))?;
        self.answer(what).await
    }

    /// Reads a single-line answer.
    async fn answer(&mut self, what: &str) -> Result<String, Pop3Error> {
        let mut line = Vec::new();
        let read = self.piece(MAX_LINE as u64, &mut line, what).await?;
        if read == 0 {
            return Err(self.broken(&format!("closed the connection at {what}")));
        }
        if !line.ends_with(b"\n") {
            return Err(self.broken(&format!("answer to {what} too long")));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if let Some(rest) = text.strip_prefix("+OK") {
            Ok(rest.trim().to_string())
        } else if let Some(rest) = text.strip_prefix("-ERR") {
            Err(Pop3Error::Refused(format!(
                "{}: {what} refused: {}",
                self.name,
                clip(rest.trim())
            )))
        } else {
            Err(self.broken(&format!("answer to {what}: {:?}", clip(&text))))
        }
    }

    /// Reads a multi-line answer's lines up to the line `.`, dot-unstuffed; `Err(size)`
    /// when longer than `cap` (read to its end all the same, so the session goes on).
    async fn multi_line(&mut self, cap: usize) -> Result<Result<Vec<u8>, usize>, Pop3Error> {
        let mut out = Vec::new();
        let mut piece = Vec::new();
        let mut size = 0usize;
        let mut line_start = true;
        loop {
            piece.clear();
            if self.piece(PIECE, &mut piece, "multi-line answer").await? == 0 {
                return Err(self.broken("closed the connection in a multi-line answer"));
            }
            let starts_line = line_start;
            line_start = piece.ends_with(b"\n");
            let mut content = &piece[..];
            if starts_line {
                if content == b".\r\n" || content == b".\n" {
                    break;
                }
                if content.starts_with(b".") {
                    content = &content[1..];
                }
            }
            size += content.len();
            if size <= cap {
                out.extend_from_slice(content);
            } else if !out.is_empty() {
                out = Vec::new();
            }
        }
        Ok(match size <= cap {
            true => Ok(out),
            false => Err(size),
        })
    }

    /// Reads up to the next line end, at most `limit` octets, into `buf`; the count read.
    async fn piece(
        &mut self,
        limit: u64,
        buf: &mut Vec<u8>,
        what: &str,
    ) -> Result<usize, Pop3Error> {
        let mut reader = (&mut self.io).take(limit);
        step(&self.name, what, reader.read_until(b'\n', buf))
            .await?
            .map_err(|e| Pop3Error::Connect(format!("{}: reading {what}: {e}", self.name)))
    }

    /// The server broke the protocol: the session cannot go on.
    fn broken(&self, what: &str) -> Pop3Error {
        Pop3Error::Connect(format!("{}: {what}", self.name))
    }
}

/// Whether a refusal's response code says the server, not the credentials, failed.
fn transient(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    ["[IN-USE]", "[SYS/TEMP]", "[SYS/PERM]"]
        .iter()
        .any(|code| upper.contains(code))
}

/// At most 200 characters of a server's text.
fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Runs one step under the time limit.
async fn step<T>(
    server: &str,
    what: &str,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Pop3Error> {
    tokio::time::timeout(STEP, work)
        .await
        .map_err(|_| Pop3Error::Connect(format!("{server}: no answer to {what} in {STEP:?}")))
}

async fn handshake(
    server: Server<'_>,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Pop3Error> {
    step(
        server.host,
        "TLS handshake",
        wire::tls(server.host, server.ca_file, tcp),
    )
    .await?
    .map_err(Pop3Error::Tls)
}

#[cfg(test)]
#[path = "pop3_tests.rs"]
mod tests;
