//! AUTH PLAIN and AUTH LOGIN (RFC 4954, 4616). Offered only over TLS, or on a loopback
//! listener that explicitly allows plaintext; failures are capped per session.

use super::io::Line;
use super::reply;
use super::session::{Next, Session};
use crate::metrics::Reject;
use crate::policy::{Blocked, PolicyError};
use crate::store::UserStatus;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN};
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};

/// Longest AUTH response line (RFC 4954 §4).
const MAX_AUTH_LINE: usize = 12288;

/// What the client answered to a challenge.
enum Answer {
    Text(String),
    Cancelled,
    Invalid,
    Closed,
}

/// Handles `AUTH <mechanism> [initial-response]`.
pub async fn auth<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    mechanism: u64,
    initial: &str,
) -> io::Result<Next> {
    if !session.shared.auth_allowed(session.state.tls) {
        return Ok(session.refuse(Reject::TlsRequired, reply::AUTH_NEEDS_TLS));
    }
    if session.state.principal.is_some() {
        return Ok(session.refuse(Reject::BadSequence, reply::AUTH_ALREADY));
    }
    if session.state.tx.is_some() {
        return Ok(session.refuse(Reject::BadSequence, reply::BAD_SEQUENCE));
    }
    let credentials = match mechanism {
        AUTH_PLAIN => plain(session, initial).await?,
        AUTH_LOGIN => login(session, initial).await?,
        _ => return Ok(session.refuse(Reject::Syntax, reply::AUTH_MECHANISM)),
    };
    match credentials {
        Answer::Closed => Ok(Next::Close),
        Answer::Cancelled => Ok(session.refuse(Reject::AuthFailed, reply::AUTH_CANCELLED)),
        Answer::Invalid => Ok(session.refuse(Reject::Syntax, reply::AUTH_BAD_BASE64)),
        Answer::Text(pair) => verify(session, &pair).await,
    }
}

/// `pair` is "login\0secret".
async fn verify<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    pair: &str,
) -> io::Result<Next> {
    let (login, secret) = pair.split_once('\0').unwrap_or((pair, ""));
    match session.shared.credentials.verify(login, secret).await {
        Ok(principal) => {
            tracing::info!(peer = %session.peer, login = %principal.login, "authenticated");
            session.state.principal = Some(principal);
            session.conn.reply(reply::AUTH_OK);
            Ok(Next::Continue)
        }
        Err(PolicyError::InvalidCredentials) => {
            session.state.auth_failures += 1;
            let snapshot = session.shared.policy.snapshot();
            let blocked = snapshot
                .user_by_login(login)
                .filter(|u| u.status == UserStatus::Blocked)
                .map(Blocked::User);
            match blocked {
                // The same 535 as any failure (no hint to the client); the log says why.
                Some(rule) => {
                    session.shared.metrics.reject(Reject::Blocked);
                    tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name, login, %rule, "authentication refused: blocked user");
                }
                None => {
                    tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name, login, "authentication failed")
                }
            }
            if session.state.auth_failures >= session.shared.limits.auth_failures {
                session.shared.metrics.reject(Reject::AuthFailed);
                return session
                    .close_with(Reject::TooManyErrors, reply::TOO_MANY_AUTH_FAILURES)
                    .await;
            }
            Ok(session.refuse(Reject::AuthFailed, reply::AUTH_FAILED))
        }
        Err(error) => {
            tracing::error!(%error, "credential check failed");
            Ok(session.refuse(Reject::AuthFailed, reply::AUTH_TEMP))
        }
    }
}

async fn plain<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    initial: &str,
) -> io::Result<Answer> {
    let answer = match initial {
        "" => challenge(session, reply::AUTH_CONTINUE).await?,
        "=" => Answer::Text(String::new()),
        text => decode(text),
    };
    let Answer::Text(message) = answer else {
        return Ok(answer);
    };
    // authzid \0 authcid \0 passwd; an authzid other than the authcid is not allowed.
    let mut parts = message.splitn(3, '\0');
    let (Some(authz), Some(authc), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(Answer::Invalid);
    };
    if !authz.is_empty() && authz != authc {
        return Ok(Answer::Text(format!("{authc}\0")));
    }
    Ok(Answer::Text(format!("{authc}\0{password}")))
}

async fn login<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    initial: &str,
) -> io::Result<Answer> {
    let user = match initial {
        "" => challenge(session, reply::AUTH_USERNAME).await?,
        text => decode(text),
    };
    let Answer::Text(user) = user else {
        return Ok(user);
    };
    Ok(match challenge(session, reply::AUTH_PASSWORD).await? {
        Answer::Text(password) => Answer::Text(format!("{user}\0{password}")),
        other => other,
    })
}

/// Sends a 334 challenge and reads the client's base64 answer.
async fn challenge<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    text: &str,
) -> io::Result<Answer> {
    session.conn.reply(text);
    Ok(match session.conn.read_line(MAX_AUTH_LINE).await? {
        Line::Eof => Answer::Closed,
        Line::TooLong | Line::BareNewline => Answer::Invalid,
        Line::Ok(line) => match &line[..line.len() - 2] {
            b"*" => Answer::Cancelled,
            raw => decode(&String::from_utf8_lossy(raw)),
        },
    })
}

fn decode(text: &str) -> Answer {
    match STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    {
        Some(decoded) => Answer::Text(decoded),
        None => Answer::Invalid,
    }
}
