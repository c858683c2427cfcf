//! `Session<S>`: one SMTP conversation over any stream (TCP, TLS, an in-memory duplex).
//! It reads a line, hands it to the command's own file, and keeps the session state and
//! its limits (idle and total time, errors, AUTH failures).

use super::io::{timed_out, Conn, Line};
use super::{auth, bdat, data, ehlo, mail, rcpt, reply, Shared};
use crate::metrics::Reject;
use crate::policy::Principal;
use smtp_proto::Request;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};

/// What the session loop does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// Close the connection (after flushing replies).
    Close,
    /// Flush, then hand the stream over for the TLS handshake.
    StartTls,
}

/// The mail transaction between MAIL and the end of the message.
#[derive(Debug, Default)]
pub struct Transaction {
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub smtputf8: bool,
    pub eight_bit: bool,
    /// BDAT chunks received so far, if the message is sent with BDAT.
    pub bdat: Option<bdat::Chunks>,
    /// The SPF check started at MAIL FROM (inbound listeners).
    pub spf: Option<super::inbound::SpfCheck>,
}

/// Everything a session knows about its client.
pub struct State {
    pub tls: bool,
    pub helo: Option<String>,
    pub esmtp: bool,
    pub principal: Option<Principal>,
    pub tx: Option<Transaction>,
    pub errors: u32,
    pub auth_failures: u32,
    pub deadline: Instant,
}

/// One SMTP session.
pub struct Session<S> {
    pub conn: Conn<S>,
    pub shared: Arc<Shared>,
    pub peer: SocketAddr,
    pub state: State,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub fn new(stream: S, shared: Arc<Shared>, peer: SocketAddr, state: State) -> Session<S> {
        Session {
            conn: Conn::new(stream),
            shared,
            peer,
            state,
        }
    }

    /// Runs commands until the client quits, a limit closes the session, or STARTTLS.
    pub async fn run(&mut self) -> io::Result<Next> {
        loop {
            let Some(timeout) = self.read_timeout() else {
                return self.close_with(Reject::Timeout, reply::TIMEOUT).await;
            };
            let max = self.shared.limits.command_line;
            let line = match self.conn.read_line(max, timeout).await {
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return self.close_with(Reject::Timeout, reply::TIMEOUT).await;
                }
                other => other?,
            };
            let next = match line {
                Line::Eof => return Ok(Next::Close),
                Line::TooLong => self.refuse(Reject::LineTooLong, reply::LINE_TOO_LONG),
                Line::BareNewline => self.refuse(Reject::BareNewline, reply::BARE_NEWLINE),
                Line::Ok(line) => self.command(&line).await?,
            };
            if next != Next::Continue {
                self.conn.flush().await?;
                return Ok(next);
            }
            if self.state.errors >= self.shared.limits.errors_per_session {
                return self
                    .close_with(Reject::TooManyErrors, reply::TOO_MANY_ERRORS)
                    .await;
            }
        }
    }

    fn read_timeout(&self) -> Option<Duration> {
        let left = self.state.deadline.checked_duration_since(Instant::now())?;
        let idle = Duration::from_secs(self.shared.limits.idle_timeout_secs);
        Some(left.min(idle)).filter(|d| !d.is_zero())
    }

    /// The time one blocking read may take.
    pub fn timeout(&self) -> io::Result<Duration> {
        self.read_timeout().ok_or_else(timed_out)
    }

    /// Sends a final reply and ends the session.
    pub async fn close_with(&mut self, reason: Reject, text: &str) -> io::Result<Next> {
        self.shared.metrics.reject(reason);
        self.conn.reply(text);
        self.conn.flush().await?;
        Ok(Next::Close)
    }

    /// Refuses a command: counts it, logs it, replies.
    pub fn refuse(&mut self, reason: Reject, text: &str) -> Next {
        self.state.errors += 1;
        self.shared.metrics.reject(reason);
        tracing::debug!(peer = %self.peer, listener = %self.shared.listener.name, reason = reason.as_str(), reply = text, "refused");
        self.conn.reply(text);
        Next::Continue
    }

    async fn command(&mut self, line: &[u8]) -> io::Result<Next> {
        let verb = line.get(..5).unwrap_or(b"").to_ascii_uppercase();
        if verb == b"MAIL " || verb == b"RCPT " {
            let Ok(text) = std::str::from_utf8(&line[..line.len() - 2]) else {
                return Ok(self.refuse(Reject::Syntax, reply::BAD_ADDRESS));
            };
            return Ok(match verb[0] {
                b'M' => mail::mail(self, text),
                _ => rcpt::rcpt(self, text),
            });
        }
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request,
            Err(error) => return Ok(self.parse_error(error)),
        };
        match request {
            Request::Ehlo { host } => Ok(ehlo::ehlo(self, &host, true)),
            Request::Helo { host } => Ok(ehlo::ehlo(self, &host, false)),
            Request::StartTls => Ok(ehlo::starttls(self)),
            // AUTH and BDAT are boxed: rare, and their futures would otherwise make every
            // command's future (moved in whole for each command) as large as theirs.
            Request::Auth {
                mechanism,
                initial_response,
            } => Box::pin(auth::auth(self, mechanism, &initial_response)).await,
            Request::Data => data::data(self).await,
            Request::Bdat {
                chunk_size,
                is_last,
            } => Box::pin(bdat::bdat(self, chunk_size, is_last)).await,
            Request::Rset => {
                self.state.tx = None;
                self.conn.reply(reply::RESET);
                Ok(Next::Continue)
            }
            Request::Noop { .. } => self.ok(reply::OK),
            Request::Vrfy { .. } => self.ok(reply::VRFY),
            Request::Help { .. } => self.ok(reply::HELP),
            Request::Quit => {
                self.conn.reply(reply::BYE);
                Ok(Next::Close)
            }
            _ => Ok(self.refuse(Reject::Syntax, reply::UNKNOWN_COMMAND)),
        }
    }

    fn ok(&mut self, text: &str) -> io::Result<Next> {
        self.conn.reply(text);
        Ok(Next::Continue)
    }

    fn parse_error(&mut self, error: smtp_proto::Error) -> Next {
        match error {
            smtp_proto::Error::UnknownCommand => {
                self.refuse(Reject::Syntax, reply::UNKNOWN_COMMAND)
            }
            smtp_proto::Error::UnsupportedParameter { .. } => {
                self.refuse(Reject::InvalidParameter, reply::UNSUPPORTED_PARAM)
            }
            _ => self.refuse(Reject::Syntax, reply::SYNTAX),
        }
    }
}
