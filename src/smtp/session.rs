//! `Session<S>`: one SMTP conversation over any stream (TCP, TLS, an in-memory duplex).
//! It reads a line, hands it to the command's own file, and keeps the session state and
//! its limits (errors, AUTH failures). Time limits are `deadline`'s: any read or write that
//! runs into one, in any command, ends the session here with `421 4.4.2` naming the limit.

use super::deadline::{self, Expired, Limit, Timing};
use super::io::{Conn, Line};
use super::{auth, bdat, data, ehlo, mail, rcpt, reply, Shared};
use crate::metrics::Reject;
use crate::policy::Principal;
use smtp_proto::Request;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
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
    /// When the session ends (`session_timeout_secs` after the connection was accepted).
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
        let timing = Timing::new(&shared.limits, state.deadline);
        Session {
            conn: Conn::new(stream, timing),
            shared,
            peer,
            state,
        }
    }

    /// Runs commands until the client quits, a limit closes the session, or STARTTLS.
    pub async fn run(&mut self) -> io::Result<Next> {
        match self.commands().await {
            Err(error) => match deadline::expired(&error) {
                Some(limit) => self.expire(limit).await,
                None => Err(error),
            },
            done => done,
        }
    }

    async fn commands(&mut self) -> io::Result<Next> {
        loop {
            if Instant::now() >= self.state.deadline {
                return Err(Expired(Limit::Session).into());
            }
            let max = self.shared.limits.command_line;
            let line = self.conn.read_line(max).await?;
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

    /// Ends a session that ran into a time limit: whatever transaction was in progress is
    /// dropped (nothing of it is queued), the limit is logged and counted.
    async fn expire(&mut self, limit: Limit) -> io::Result<Next> {
        self.state.tx = None;
        tracing::info!(peer = %self.peer, listener = %self.shared.listener.name,
            limit = limit.reject().as_str(), "{}; closing the session", limit.reason());
        self.close_with(limit.reject(), limit.reply()).await
    }

    /// Sends a final reply and ends the session.
    pub async fn close_with(&mut self, reason: Reject, text: &str) -> io::Result<Next> {
        self.shared.metrics.reject(reason);
        self.conn.reply(text);
        self.conn.flush_last().await?;
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
        if verb.starts_with(b"BDAT") && matches!(verb[4], b' ' | b'\t' | b'\r') {
            // Boxed: rare, and its future would otherwise make every command's as large.
            return Box::pin(bdat::command(self, &line[4..line.len() - 2])).await;
        }
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
            // AUTH is boxed: rare, and its future would otherwise make every command's
            // future (moved in whole for each command) as large as its.
            Request::Auth {
                mechanism,
                initial_response,
            } => Box::pin(auth::auth(self, mechanism, &initial_response)).await,
            Request::Data => data::data(self).await,
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
