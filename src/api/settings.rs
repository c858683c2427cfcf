//! `/api/v1/settings`: the organisation settings (`allow_personal_accounts`,
//! `org_domains`, `public_url`, `max_users`, `display_name_addresses`). A patch is validated as a whole and saved
//! in one write; the policy snapshot (which carries the settings) is rebuilt after it.

use super::extract::{blocking, nullable, Body};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::store::{DisplayNameAddresses, Settings};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;

/// Body of `PATCH`: every field optional; `max_users: null` removes the limit.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    allow_personal_accounts: Option<bool>,
    org_domains: Option<Vec<String>>,
    public_url: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    max_users: Option<Option<u64>>,
    display_name_addresses: Option<DisplayNameAddresses>,
}

/// `GET /api/v1/settings` — permission `admin`.
#[utoipa::path(
    get, path = "/api/v1/settings", tag = "settings",
    responses((status = 200, body = Settings), Problems)
)]
pub async fn show(caller: Caller, State(api): State<Api>) -> Result<Json<Settings>, Problem> {
    caller.require("admin")?;
    Ok(Json(api.store().settings()?))
}

/// `PATCH /api/v1/settings` — permission `admin`. 422 for a malformed domain or URL, or a
/// `max_users` below the number of users already stored.
#[utoipa::path(
    patch, path = "/api/v1/settings", tag = "settings", request_body = SettingsPatch,
    responses((status = 200, body = Settings), Problems)
)]
pub async fn patch(
    caller: Caller,
    State(api): State<Api>,
    Body(patch): Body<SettingsPatch>,
) -> Result<Json<Settings>, Problem> {
    caller.require("admin")?;
    let _change = api.write_lock().await;
    let mut settings = api.store().settings()?;
    let previous = settings.clone();
    if let Some(allow) = patch.allow_personal_accounts {
        settings.allow_personal_accounts = allow;
    }
    if let Some(domains) = patch.org_domains {
        settings.org_domains = check_domains(domains)?;
    }
    if let Some(mode) = patch.display_name_addresses {
        settings.display_name_addresses = mode;
    }
    if let Some(url) = patch.public_url {
        settings.public_url = check_url(&url)?;
    }
    if let Some(max) = patch.max_users {
        if let Some(max) = max {
            let users = api.store().users().all()?.len() as u64;
            if max < users {
                return Err(Problem::invalid(
                    "max_users",
                    format!("{users} users already exist"),
                ));
            }
        }
        settings.max_users = max;
    }
    let work = api.clone();
    let saved = settings.clone();
    blocking(move || {
        work.store().save_settings(&saved)?;
        work.reload()
    })
    .await?;
    let target = "settings".to_string();
    api.audit(
        &caller,
        "settings.update",
        target,
        Some(&previous),
        Some(&settings),
    )
    .await?;
    tracing::info!(?settings, "settings changed");
    Ok(Json(settings))
}

/// Lower-cased, de-duplicated domain names; 422 for one that is not a host name.
fn check_domains(domains: Vec<String>) -> Result<Vec<String>, Problem> {
    let mut clean: Vec<String> = Vec::new();
    for domain in domains {
        let domain = domain.trim().trim_end_matches('.').to_lowercase();
        if !super::names::is_host_name(&domain, true) {
            return Err(Problem::invalid(
                "org_domains",
                format!("{domain:?} is not a domain name"),
            ));
        }
        if !clean.contains(&domain) {
            clean.push(domain);
        }
    }
    Ok(clean)
}

/// An `http://` or `https://` URL with a host, without a trailing slash.
fn check_url(url: &str) -> Result<String, Problem> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    let valid = host.is_some_and(|h| {
        !h.is_empty()
            && !h
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    });
    match valid && !url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        true => Ok(url.to_string()),
        false => Err(Problem::invalid(
            "public_url",
            "must be an http:// or https:// URL with a host",
        )),
    }
}
