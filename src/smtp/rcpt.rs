//! RCPT TO: adds a recipient, within the per-message limit. On an inbound listener only
//! helpdesk mailboxes (accounts with inbound settings) are recipients (SPEC §6).

use super::params::{check_mailbox, rcpt_params, split_path, ParamError};
use super::reply;
use super::session::{Next, Session};
use crate::config::Purpose;
use crate::metrics::Reject;
use tokio::io::{AsyncRead, AsyncWrite};

/// Handles `RCPT TO:<path> [params]`; `line` is the command without CRLF.
pub fn rcpt<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    line: &str,
) -> Next {
    let hostname = session.shared.hostname.clone();
    let max = session.shared.limits.recipients;
    let Some(tx) = session.state.tx.as_ref() else {
        return session.refuse(Reject::BadSequence, reply::NEED_MAIL);
    };
    let smtputf8 = tx.smtputf8;
    let parsed = split_path(line).and_then(|(path, params)| {
        rcpt_params(params)?;
        // RFC 5321 §4.5.1: <Postmaster> without a domain must be accepted.
        let address = match path.eq_ignore_ascii_case("postmaster") {
            true => format!("postmaster@{hostname}"),
            false => path.to_string(),
        };
        check_mailbox(&address)?;
        if !address.is_ascii() && !smtputf8 {
            return Err(ParamError::NeedUtf8);
        }
        Ok(address)
    });
    let address = match parsed {
        Ok(address) => address,
        Err(error) => return session.refuse(Reject::InvalidParameter, error.reply()),
    };
    if session.shared.listener.purpose == Purpose::Inbound
        && session
            .shared
            .policy
            .snapshot()
            .inbound_mailbox(&address)
            .is_none()
    {
        tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name,
            rcpt = %address, rule = "not a helpdesk mailbox", "RCPT TO refused: relaying denied");
        return session.refuse(Reject::RelayDenied, reply::RELAY_DENIED);
    }
    let Some(tx) = session.state.tx.as_mut() else {
        return Next::Continue;
    };
    if tx.rcpts.len() >= max {
        session.shared.metrics.reject(Reject::TooManyRecipients);
        session.conn.reply(reply::TOO_MANY_RCPTS);
        return Next::Continue;
    }
    if !tx.rcpts.iter().any(|r| r.eq_ignore_ascii_case(&address)) {
        tx.rcpts.push(address);
    }
    session.conn.reply(reply::RCPT_OK);
    Next::Continue
}
