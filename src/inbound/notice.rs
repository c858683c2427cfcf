//! The "set your password" message to a requester created from mail (SPEC §7): a
//! single-use link `{public_url}/password/{token}`, valid `LINK_LIFETIME_SECS`, the token
//! kept only as its SHA-256 digest. It goes out through a `system` account (the first one
//! by id, else the default account), spooled like any message, and carries our `X-Loop`
//! marker and `Auto-Submitted: auto-generated` so that no auto-responder answers it.

use super::loops::marker;
use super::InboundError;
use crate::policy::new_secret;
use crate::policy::{digest_secret, Policy};
use crate::rewrite::date;
use crate::spool::{show_id, Envelope, QueueId, Spool};
use crate::store::{PasswordLink, Scope, Store, User};

/// How long a link works.
pub const LINK_LIFETIME_SECS: u64 = 72 * 3600;

/// Creates a link for `user` and queues the message that carries it.
pub async fn send_password_link(
    store: &Store,
    policy: &Policy,
    spool: &Spool,
    hostname: &str,
    user: &User,
) -> Result<QueueId, InboundError> {
    let token = new_secret();
    let now = crate::spool::now_ms() / 1000;
    let link = PasswordLink {
        user: user.id,
        expires_at: now + LINK_LIFETIME_SECS,
    };
    let digest = digest_secret(&token);
    let work = store.clone();
    tokio::task::spawn_blocking(move || work.password_links().create(&digest, &link))
        .await
        .map_err(|e| InboundError::Task(e.to_string()))??;
    let public_url = store.settings()?.public_url;
    let snapshot = policy.snapshot();
    let account = snapshot
        .accounts()
        .into_iter()
        .find(|a| a.scope == Scope::System && !a.address.is_empty())
        .or_else(|| snapshot.default_account())
        .ok_or(InboundError::NoSender)?;
    let from = [
        account.from_address.as_deref(),
        Some(account.address.as_str()),
    ]
    .into_iter()
    .flatten()
    .find(|a| !a.is_empty())
    .map_or_else(|| format!("postern@{hostname}"), str::to_string);
    let id = spool.new_id()?;
    let url = format!("{}/password/{token}", public_url.trim_end_matches('/'));
    let message = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: Set your password\r\nDate: {date}\r\n\
         Message-ID: <{msgid}.password@{hostname}>\r\nAuto-Submitted: auto-generated\r\n\
         X-Loop: {marker}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello,\r\n\r\nan account was created for {to} when you wrote to us.\r\n\
         To set its password, open this link (it works once, for {hours} hours):\r\n\r\n\
         {url}\r\n",
        to = user.email,
        date = date::now_rfc5322(),
        msgid = show_id(id),
        marker = marker(hostname),
        hours = LINK_LIFETIME_SECS / 3600,
    );
    let envelope = Envelope {
        mail_from: from,
        rcpts: vec![user.email.clone()],
        upstream: account.upstream.clone(),
        principal: None,
        smtputf8: !user.email.is_ascii(),
        eight_bit: false,
        is_dsn: false,
        verdicts: None,
        keep: None,
    };
    spool
        .enqueue(id, envelope, message.into_bytes().into())
        .await?;
    tracing::info!(login = %user.login, queue_id = %show_id(id), "password link sent");
    Ok(id)
}
