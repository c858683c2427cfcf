//! `POST /api/v1/accounts/{id}/test {"to", "timeout_secs"}`: sends a short message from the
//! account's address to `to` through the account's upstream (its pool, TLS and
//! authentication, as real mail goes) and answers what the upstream said, within a
//! timeout. Needs the account's `setup` right. The message is not queued: a test that
//! fails is reported, not retried.

use super::account_rules::require_setup;
use super::accounts::visible;
use super::extract::{Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::relay::{Outgoing, RcptOutcome};
use crate::rewrite::date;
use crate::smtp::params::check_mailbox;
use crate::store::Account;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::time::Duration;

const DEFAULT_TIMEOUT: u64 = 30;
const MAX_TIMEOUT: u64 = 120;

/// Body of the request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    to: String,
    timeout_secs: Option<u64>,
}

/// What the upstream did with the test message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestResult {
    pub account: u64,
    pub upstream: String,
    pub from: String,
    pub to: String,
    /// `accepted`, `temporary` (4xx), `refused` (5xx), `failed` (no answer to the
    /// recipient: connection, TLS, authentication…) or `timeout`.
    pub outcome: &'static str,
    /// The upstream's reply, or the error.
    pub reply: String,
    pub elapsed_ms: u64,
}

/// `POST /api/v1/accounts/{id}/test` — the account's `setup` right.
#[utoipa::path(
    post, path = "/api/v1/accounts/{id}/test", tag = "accounts", params(("id" = u64, Path, description = "numeric id")), request_body = TestRequest,
    responses((status = 200, body = TestResult), Problems)
)]
pub async fn test(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
    Body(body): Body<TestRequest>,
) -> Result<Json<TestResult>, Problem> {
    let account = visible(&caller, &api, id)?;
    require_setup(&caller, &account)?;
    let to = body.to.trim().to_string();
    check_mailbox(&to).map_err(|_| Problem::invalid("to", "not a valid address"))?;
    let timeout = body.timeout_secs.unwrap_or(DEFAULT_TIMEOUT);
    if timeout == 0 || timeout > MAX_TIMEOUT {
        return Err(Problem::invalid(
            "timeout_secs",
            format!("between 1 and {MAX_TIMEOUT}"),
        ));
    }
    let from = sender(&account)?;
    let upstream = api.state.relays.get(&account.upstream).ok_or_else(|| {
        Problem::conflict(format!("upstream {:?} is not configured", account.upstream))
    })?;
    let tag = format!("test-{:x}", crate::spool::now_ms());
    let data = message(
        &account,
        &from,
        &to,
        &tag,
        &api.state.hostname,
        caller.name(),
    );
    let rcpts = [to.clone()];
    let out = Outgoing {
        id: &tag,
        mail_from: &from,
        rcpts: &rcpts,
        data: data.as_bytes(),
        smtputf8: false,
        eight_bit: false,
    };
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(timeout), upstream.deliver(&out)).await;
    let (outcome, reply) = match result {
        Err(_) => ("timeout", format!("no answer within {timeout} s")),
        Ok(Err(error)) => ("failed", error.to_string()),
        Ok(Ok(outcomes)) => match outcomes.into_iter().next() {
            Some(RcptOutcome::Delivered(text)) => ("accepted", text),
            Some(RcptOutcome::Temporary(text)) => ("temporary", text),
            Some(RcptOutcome::Permanent(text)) => ("refused", text),
            None => ("failed", "the upstream reported no recipient".to_string()),
        },
    };
    let result = TestResult {
        account: account.id,
        upstream: account.upstream.clone(),
        from,
        to,
        outcome,
        reply,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    let target = format!("account/{id}");
    api.audit(&caller, "account.test", target, None::<&()>, Some(&result))
        .await?;
    tracing::info!(account = %account.name, outcome, to = %result.to, "account test message");
    Ok(Json(result))
}

/// The address the account sends as (its `from_address`, else its mailbox).
fn sender(account: &Account) -> Result<String, Problem> {
    let from = account.from_address.as_deref().unwrap_or(&account.address);
    match from.is_empty() {
        true => Err(Problem::conflict(format!(
            "account {:?} has no address of its own (it sends as each user)",
            account.name
        ))),
        false => Ok(from.to_string()),
    }
}

/// The test message: plain ASCII text, every name from the account already validated.
fn message(account: &Account, from: &str, to: &str, tag: &str, host: &str, by: &str) -> String {
    let display = account
        .display_name
        .as_deref()
        .filter(|d| d.is_ascii() && !d.contains(['"', '\\', '\r', '\n']))
        .map(|d| format!("\"{d}\" "))
        .unwrap_or_default();
    format!(
        "From: {display}<{from}>\r\nTo: <{to}>\r\nSubject: Postern test message for account {name}\r\n\
         Date: {date}\r\nMessage-ID: <{tag}@{host}>\r\nAuto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         This message tests the outbound path of account {name} (upstream {upstream}).\r\n\
         It was sent by {by} through Postern's control API.\r\n",
        name = account.name.escape_default(),
        date = date::now_rfc5322(),
        upstream = account.upstream.escape_default(),
        by = by.escape_default(),
    )
}
