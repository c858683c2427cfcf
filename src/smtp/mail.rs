//! MAIL FROM: starts a transaction. On a submission listener the client must have
//! authenticated (or be on a trusted network) first; on an inbound listener a sender on
//! the blocklist is refused (SPEC §4).

use super::params::{check_mailbox, mail_params, split_path};
use super::reply;
use super::session::{Next, Session, Transaction};
use crate::config::Purpose;
use crate::metrics::Reject;
use tokio::io::{AsyncRead, AsyncWrite};

/// Handles `MAIL FROM:<path> [params]`; `line` is the command without CRLF.
pub fn mail<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    line: &str,
) -> Next {
    if session.state.helo.is_none() {
        return session.refuse(Reject::BadSequence, reply::NEED_HELO);
    }
    if session.state.tx.is_some() {
        return session.refuse(Reject::BadSequence, reply::NESTED_MAIL);
    }
    if session.shared.listener.purpose == Purpose::Submission && session.state.principal.is_none() {
        return session.refuse(Reject::AuthRequired, reply::AUTH_REQUIRED);
    }
    let parsed = split_path(line).and_then(|(path, params)| {
        if !path.is_empty() {
            check_mailbox(path)?;
        }
        let params = mail_params(params, session.shared.limits.message_size)?;
        if !path.is_ascii() && !params.smtputf8 {
            return Err(super::params::ParamError::NeedUtf8);
        }
        Ok((path.to_string(), params))
    });
    let (mail_from, params) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let reason = match error {
                super::params::ParamError::TooBig => Reject::MessageTooBig,
                _ => Reject::InvalidParameter,
            };
            return session.refuse(reason, error.reply());
        }
    };
    if session.shared.listener.purpose == Purpose::Inbound && !mail_from.is_empty() {
        if let Some(rule) = session.shared.policy.snapshot().blocked(&mail_from) {
            tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name,
                from = %mail_from, %rule, "MAIL FROM refused: blocked sender");
            return session.refuse(Reject::Blocked, &reply::blocked(&mail_from));
        }
    }
    if session.shared.listener.purpose == Purpose::Submission {
        if let Some(principal) = &session.state.principal {
            let snapshot = session.shared.policy.snapshot();
            if let Err(refusal) = crate::policy::check_envelope(&snapshot, principal.id, &mail_from)
            {
                tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name,
                    principal = %principal.login, from = %mail_from, rule = %refusal.rule, "MAIL FROM refused");
                return session.refuse(Reject::PolicyRefused, &refusal.reply);
            }
            let size = params.size;
            if let Some(text) =
                super::fits::at_mail(&session.shared, &snapshot, principal.id, &mail_from, size)
            {
                tracing::info!(peer = %session.peer, from = %mail_from, size, "MAIL FROM refused: too big for the account's upstream");
                return session.refuse(Reject::MessageTooBig, &text);
            }
        }
    }
    if let Err(short) = session.shared.spool.has_room(params.size.unwrap_or(0)) {
        tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name,
            free = short.free, needed = short.needed, "MAIL FROM refused: free disk space below the reserve");
        return session.refuse(Reject::DiskFull, reply::NO_ROOM);
    }
    let spf = super::inbound::start_spf(session, &mail_from);
    session.state.tx = Some(Transaction {
        mail_from,
        smtputf8: params.smtputf8,
        eight_bit: params.eight_bit,
        spf,
        ..Transaction::default()
    });
    session.conn.reply(reply::SENDER_OK);
    Next::Continue
}
