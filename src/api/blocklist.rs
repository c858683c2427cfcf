//! The blocklist: `GET /api/v1/blocklist`, `POST /api/v1/blocklist {"entry", "reason"}`
//! and `DELETE /api/v1/blocklist/{entry}`, all with permission `block_unwanted_email`. An
//! entry with an `@` blocks that address; without, a domain and its subdomains. Changes
//! are audited and reach the policy snapshot, where the SMTP side looks them up.

use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::smtp::params::check_mailbox;
use crate::store::{BlockEntry, BlockKind};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

const PERMISSION: &str = "block_unwanted_email";
const MAX_REASON: usize = 500;

/// Body of `POST /api/v1/blocklist`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBlock {
    entry: String,
    #[serde(default)]
    reason: String,
}

/// `GET /api/v1/blocklist` — permission `block_unwanted_email`.
#[utoipa::path(
    get, path = "/api/v1/blocklist", tag = "blocklist",
    responses((status = 200, body = [BlockEntry]), Problems)
)]
pub async fn list(
    caller: Caller,
    State(api): State<Api>,
) -> Result<Json<Vec<BlockEntry>>, Problem> {
    caller.require(PERMISSION)?;
    Ok(Json(api.store().blocklist().all()?))
}

/// `POST /api/v1/blocklist` — permission `block_unwanted_email`. 422 for something that
/// is neither an address nor a domain, 409 if already blocked.
#[utoipa::path(
    post, path = "/api/v1/blocklist", tag = "blocklist", request_body = NewBlock,
    responses((status = 201, body = BlockEntry), Problems)
)]
pub async fn add(
    caller: Caller,
    State(api): State<Api>,
    Body(body): Body<NewBlock>,
) -> Result<(StatusCode, Json<BlockEntry>), Problem> {
    caller.require(PERMISSION)?;
    let (entry, kind) = classify(&body.entry)?;
    if body.reason.chars().count() > MAX_REASON || body.reason.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "reason",
            format!("at most {MAX_REASON} characters, no control characters"),
        ));
    }
    let block = BlockEntry {
        entry,
        kind,
        reason: body.reason,
        created_at: crate::spool::now_ms() / 1000,
        created_by: caller.name().to_string(),
    };
    let _change = api.write_lock().await;
    let work = api.clone();
    let saved = block.clone();
    blocking(move || {
        work.store().blocklist().add(&saved)?;
        work.reload()
    })
    .await?;
    let target = format!("blocklist/{}", block.entry);
    api.audit(
        &caller,
        "blocklist.create",
        target,
        None::<&()>,
        Some(&block),
    )
    .await?;
    tracing::info!(entry = %block.entry, kind = ?block.kind, by = caller.name(), "blocklist entry added");
    Ok((StatusCode::CREATED, Json(block)))
}

/// `DELETE /api/v1/blocklist/{entry}` — permission `block_unwanted_email`.
#[utoipa::path(
    delete, path = "/api/v1/blocklist/{entry}", tag = "blocklist", params(("entry" = String, Path, description = "address or domain")),
    responses((status = 204), Problems)
)]
pub async fn remove(
    caller: Caller,
    State(api): State<Api>,
    Param(entry): Param<String>,
) -> Result<StatusCode, Problem> {
    caller.require(PERMISSION)?;
    let _change = api.write_lock().await;
    let work = api.clone();
    let key = normalize_entry(&entry);
    let removed = blocking(move || {
        let removed = work.store().blocklist().remove(&key)?;
        work.reload()?;
        Ok(removed)
    })
    .await?
    .ok_or_else(|| Problem::not_found(format!("blocklist entry {entry:?}")))?;
    let target = format!("blocklist/{}", removed.entry);
    api.audit(
        &caller,
        "blocklist.delete",
        target,
        Some(&removed),
        None::<&()>,
    )
    .await?;
    tracing::info!(entry = %removed.entry, by = caller.name(), "blocklist entry removed");
    Ok(StatusCode::NO_CONTENT)
}

/// An entry as stored: trimmed, without angle brackets, lower-cased.
fn normalize_entry(raw: &str) -> String {
    raw.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_lowercase()
}

/// The normalized entry and what it blocks.
fn classify(raw: &str) -> Result<(String, BlockKind), Problem> {
    let entry = normalize_entry(raw);
    if entry.contains('@') {
        check_mailbox(&entry).map_err(|_| Problem::invalid("entry", "not a valid address"))?;
        return Ok((entry, BlockKind::Address));
    }
    match entry.contains('.') && super::names::is_host_name(&entry, false) {
        true => Ok((entry, BlockKind::Domain)),
        false => Err(Problem::invalid(
            "entry",
            "an address (someone@example.com) or a domain (example.com)",
        )),
    }
}
