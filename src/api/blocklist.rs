//! The blocklist: `GET /api/v1/blocklist`, `POST /api/v1/blocklist {"entry", "reason"}`
//! and `DELETE /api/v1/blocklist/{entry}`, all with permission `block_unwanted_email`. An
//! entry with an `@` blocks that address; without, a domain and its subdomains. Changes
//! are audited and reach the policy snapshot, where the SMTP side looks them up. Entries
//! are stored in canonical form (`policy::address`), so `"Ann"@X.example` and `ann@x.example`
//! are one entry, and a U-label domain is stored as its A-labels. A domain entry that
//! would block one of the organisation's own domains (`org_domains`) is refused (422).

use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::policy::address::{self, Address};
use crate::smtp::params::check_mailbox;
use crate::store::{BlockEntry, BlockKind, StoreError};
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
    if kind == BlockKind::Domain {
        not_own_domain(&entry, &api.store().settings()?.org_domains)?;
    }
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
        let list = work.store().blocklist();
        // An entry stored under older rules (`"ann"@x`) is the same entry.
        if list.all()?.iter().any(|e| same_entry(e, &saved.entry)) {
            return Err(StoreError::Conflict(format!("blocklist entry {:?}", saved.entry)).into());
        }
        list.add(&saved)?;
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
        let list = work.store().blocklist();
        let mut removed = list.remove(&key)?;
        if removed.is_none() {
            // Stored under older rules: found by its canonical form, removed as stored.
            let old = list.all()?.into_iter().find(|e| same_entry(e, &key));
            if let Some(old) = old {
                removed = list.remove(&old.entry)?;
            }
        }
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

/// An entry as stored: an address's canonical key (`policy::address`: quotes only where
/// needed, lower case, domain in A-labels), or a canonical domain (lower case, A-labels,
/// no trailing dot). Brackets, display names and comments do not count.
fn normalize_entry(raw: &str) -> String {
    match Address::parse(raw) {
        Some(address) => address.key(),
        None => address::domain_key(raw),
    }
}

/// True if the stored `entry` (perhaps under older rules) is the canonical `key`.
fn same_entry(entry: &BlockEntry, key: &str) -> bool {
    normalize_entry(&entry.entry) == key
}

/// 422 when blocking the domain `entry` (and its subdomains) would block one of the
/// organisation's own domains (`org_domains`): its staff's mail to the helpdesk.
fn not_own_domain(entry: &str, org_domains: &[String]) -> Result<(), Problem> {
    let own = org_domains
        .iter()
        .map(|d| address::domain_key(d))
        .find(|d| {
            d == entry
                || d.strip_suffix(entry)
                    .is_some_and(|head| head.ends_with('.'))
        });
    match own {
        Some(domain) => Err(Problem::invalid(
            "entry",
            format!("would block {domain}, one of the organisation's own domains (org_domains)"),
        )),
        None => Ok(()),
    }
}

/// The normalized entry and what it blocks.
fn classify(raw: &str) -> Result<(String, BlockKind), Problem> {
    let entry = normalize_entry(raw);
    if raw.contains('@') {
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
