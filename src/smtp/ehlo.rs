//! EHLO, HELO and STARTTLS: greeting the client, advertising extensions, and asking for the
//! TLS upgrade (the upgrade itself happens in `smtp::serve`, which starts a fresh session).

use super::session::{Next, Session};
use super::{reply, Shared};
use crate::config::TlsMode;
use crate::metrics::Reject;
use std::fmt::Write;
use tokio::io::{AsyncRead, AsyncWrite};

/// EHLO (`esmtp`) or HELO: resets any transaction and answers with the extensions.
pub fn ehlo<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    host: &str,
    esmtp: bool,
) -> Next {
    session.state.tx = None;
    session.state.helo = Some(host.to_string());
    session.state.esmtp = esmtp;
    let shared = &session.shared;
    if !esmtp {
        let text = format!("250 {}", shared.hostname);
        session.conn.reply(&text);
        return Next::Continue;
    }
    let text = extensions(shared, session.state.tls, session.state.principal.is_some());
    session.conn.reply(&text);
    Next::Continue
}

fn extensions(shared: &Shared, tls: bool, authenticated: bool) -> String {
    let mut lines = vec![
        shared.hostname.clone(),
        "PIPELINING".into(),
        format!("SIZE {}", shared.limits.message_size),
        "8BITMIME".into(),
        "SMTPUTF8".into(),
        "ENHANCEDSTATUSCODES".into(),
        "CHUNKING".into(),
    ];
    if !tls && shared.listener.tls == TlsMode::Starttls && shared.tls.is_some() {
        lines.push("STARTTLS".into());
    }
    if shared.auth_allowed(tls) && !authenticated {
        lines.push("AUTH PLAIN LOGIN".into());
    }
    lines.push("HELP".into());
    let mut text = String::with_capacity(256);
    let last = lines.len() - 1;
    for (i, line) in lines.iter().enumerate() {
        let sep = if i == last { ' ' } else { '-' };
        let _ = write!(text, "250{sep}{line}");
        if i != last {
            text.push_str("\r\n");
        }
    }
    text
}

/// STARTTLS: only on a `starttls` listener, once.
pub fn starttls<S: AsyncRead + AsyncWrite + Unpin + Send>(session: &mut Session<S>) -> Next {
    if session.state.tls {
        return session.refuse(Reject::BadSequence, reply::ALREADY_TLS);
    }
    if session.shared.listener.tls != TlsMode::Starttls || session.shared.tls.is_none() {
        return session.refuse(Reject::Syntax, reply::NO_TLS);
    }
    session.conn.reply(reply::READY_TLS);
    Next::StartTls
}
