//! DKIM keys (admin only): `GET /api/v1/dkim-keys`, `POST /api/v1/dkim-keys {"domain",
//! "algorithm", "selector", "activate"}`, and under `/api/v1/dkim-keys/{domain}/{selector}`
//! `GET`, `DELETE` and `POST .../activate`. Every answer carries the TXT record to publish;
//! none carries the private key. Changes are audited and reach the relay's signers at once.
//!
//! A key is generated `pending`: publish its record, then activate it. `activate: true`
//! at creation is for a record published beforehand or a domain nobody verifies yet.

use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::relay::dkim::keys;
use crate::store::{DkimAlgorithm, DkimKey, DkimStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Body of `POST /api/v1/dkim-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDkimKey {
    /// The signing domain: mail whose `From` is at it (or at a subdomain without keys of
    /// its own) is signed.
    domain: String,
    /// `rsa-2048` (the default) or `ed25519`.
    #[serde(default)]
    algorithm: Option<DkimAlgorithm>,
    /// Defaults to `rsa-YYYYMMDD` or `ed25519-YYYYMMDD`.
    #[serde(default)]
    selector: Option<String>,
    /// Sign with it at once (its record is already published).
    #[serde(default)]
    activate: bool,
}

/// The TXT record that publishes a key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DnsRecord {
    /// `{selector}._domainkey.{domain}`
    pub name: String,
    /// Always `TXT`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `v=DKIM1; k=…; p=…`
    pub value: String,
}

/// A key as the API shows it: everything but the private key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DkimKeyView {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub status: DkimStatus,
    pub created_at: u64,
    pub created_by: String,
    pub activated_at: Option<u64>,
    pub dns: DnsRecord,
}

impl From<&DkimKey> for DkimKeyView {
    fn from(key: &DkimKey) -> DkimKeyView {
        DkimKeyView {
            domain: key.domain.clone(),
            selector: key.selector.clone(),
            algorithm: key.algorithm,
            status: key.status,
            created_at: key.created_at,
            created_by: key.created_by.clone(),
            activated_at: key.activated_at,
            dns: DnsRecord {
                name: keys::record_name(key),
                kind: "TXT",
                value: keys::record_value(key),
            },
        }
    }
}

/// `GET /api/v1/dkim-keys` — admin.
#[utoipa::path(
    get, path = "/api/v1/dkim-keys", tag = "dkim",
    responses((status = 200, body = [DkimKeyView]), Problems)
)]
pub async fn list(
    caller: Caller,
    State(api): State<Api>,
) -> Result<Json<Vec<DkimKeyView>>, Problem> {
    caller.require("admin")?;
    let keys = api.store().dkim_keys().all()?;
    Ok(Json(keys.iter().map(DkimKeyView::from).collect()))
}

/// `GET /api/v1/dkim-keys/{domain}/{selector}` — admin.
#[utoipa::path(
    get, path = "/api/v1/dkim-keys/{domain}/{selector}", tag = "dkim",
    params(("domain" = String, Path), ("selector" = String, Path)),
    responses((status = 200, body = DkimKeyView), Problems)
)]
pub async fn show(
    caller: Caller,
    State(api): State<Api>,
    Param((domain, selector)): Param<(String, String)>,
) -> Result<Json<DkimKeyView>, Problem> {
    caller.require("admin")?;
    let (domain, selector) = (normal(&domain), normal(&selector));
    let key = api
        .store()
        .dkim_keys()
        .get(&domain, &selector)?
        .ok_or_else(|| not_found(&domain, &selector))?;
    Ok(Json(DkimKeyView::from(&key)))
}

/// `POST /api/v1/dkim-keys` — admin. 422 for a domain or selector that is no DNS name,
/// 409 if the domain has that selector already.
#[utoipa::path(
    post, path = "/api/v1/dkim-keys", tag = "dkim", request_body = NewDkimKey,
    responses((status = 201, body = DkimKeyView), Problems)
)]
pub async fn create(
    caller: Caller,
    State(api): State<Api>,
    Body(body): Body<NewDkimKey>,
) -> Result<(StatusCode, Json<DkimKeyView>), Problem> {
    caller.require("admin")?;
    let now = crate::spool::now_ms() / 1000;
    let (domain, selector, algorithm) = check(&body, now)?;
    // Generated before the lock: an RSA key takes a moment.
    let generated = blocking(move || {
        keys::generate(algorithm).map_err(|e| Problem::internal(format!("generating: {e}")))
    })
    .await?;
    let key = DkimKey {
        domain,
        selector,
        algorithm,
        status: match body.activate {
            true => DkimStatus::Active,
            false => DkimStatus::Pending,
        },
        public_key: generated.public_key,
        private_key: generated.private_key,
        created_at: now,
        created_by: caller.name().to_string(),
        activated_at: body.activate.then_some(now),
    };
    let _change = api.write_lock().await;
    let (work, saved) = (api.clone(), key.clone());
    let retired = blocking(move || {
        let retired = work.store().dkim_keys().add(&saved)?;
        reload(&work)?;
        Ok(retired)
    })
    .await?;
    let target = format!("dkim-keys/{}/{}", key.domain, key.selector);
    let view = DkimKeyView::from(&key);
    api.audit(&caller, "dkim.create", target, None::<&()>, Some(&view))
        .await?;
    let retired = retired.map(|k| k.selector);
    tracing::info!(domain = %key.domain, selector = %key.selector, algorithm = ?key.algorithm, status = ?key.status, ?retired, by = caller.name(), "DKIM key created");
    Ok((StatusCode::CREATED, Json(view)))
}

/// `POST /api/v1/dkim-keys/{domain}/{selector}/activate` — admin. The domain's active key
/// of the same algorithm, if any, is retired.
#[utoipa::path(
    post, path = "/api/v1/dkim-keys/{domain}/{selector}/activate", tag = "dkim",
    params(("domain" = String, Path), ("selector" = String, Path)),
    responses((status = 200, body = DkimKeyView), Problems)
)]
pub async fn activate(
    caller: Caller,
    State(api): State<Api>,
    Param((domain, selector)): Param<(String, String)>,
) -> Result<Json<DkimKeyView>, Problem> {
    caller.require("admin")?;
    let (domain, selector) = (normal(&domain), normal(&selector));
    let _change = api.write_lock().await;
    let key = activate_now(&api, &caller, &domain, &selector).await?;
    Ok(Json(DkimKeyView::from(&key)))
}

/// `DELETE /api/v1/dkim-keys/{domain}/{selector}` — admin. Deleting the active key stops
/// signing with it at once.
#[utoipa::path(
    delete, path = "/api/v1/dkim-keys/{domain}/{selector}", tag = "dkim",
    params(("domain" = String, Path), ("selector" = String, Path)),
    responses((status = 204), Problems)
)]
pub async fn remove(
    caller: Caller,
    State(api): State<Api>,
    Param((domain, selector)): Param<(String, String)>,
) -> Result<StatusCode, Problem> {
    caller.require("admin")?;
    let (domain, selector) = (normal(&domain), normal(&selector));
    let _change = api.write_lock().await;
    let (work, d, s) = (api.clone(), domain.clone(), selector.clone());
    let removed = blocking(move || {
        let removed = work.store().dkim_keys().remove(&d, &s)?;
        reload(&work)?;
        Ok(removed)
    })
    .await?
    .ok_or_else(|| not_found(&domain, &selector))?;
    let target = format!("dkim-keys/{domain}/{selector}");
    let view = DkimKeyView::from(&removed);
    api.audit(&caller, "dkim.delete", target, Some(&view), None::<&()>)
        .await?;
    tracing::info!(%domain, %selector, by = caller.name(), "DKIM key deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Activates a key (the caller holds the write lock), reloads the signers, audits.
async fn activate_now(
    api: &Api,
    caller: &Caller,
    domain: &str,
    selector: &str,
) -> Result<DkimKey, Problem> {
    let now = crate::spool::now_ms() / 1000;
    let (work, d, s) = (api.clone(), domain.to_string(), selector.to_string());
    let (key, retired) = blocking(move || {
        let activated = work.store().dkim_keys().activate(&d, &s, now)?;
        reload(&work)?;
        Ok(activated)
    })
    .await?
    .ok_or_else(|| not_found(domain, selector))?;
    let target = format!("dkim-keys/{domain}/{selector}");
    let retired_selector = retired.as_ref().map(|k| k.selector.clone());
    let after = serde_json::json!({"status": key.status, "retired": retired_selector});
    api.audit(caller, "dkim.activate", target, None::<&()>, Some(&after))
        .await?;
    tracing::info!(%domain, %selector, retired = ?retired_selector, by = caller.name(), "DKIM key activated");
    Ok(key)
}

/// Hands the stored keys to the relay's signers (which read them under their own lock, so
/// the newest change always wins).
fn reload(api: &Api) -> Result<(), Problem> {
    Ok(api.state.relays.signers().reload(api.store().dkim_keys())?)
}

/// The normalised domain, selector and algorithm of a new key.
fn check(body: &NewDkimKey, now: u64) -> Result<(String, String, DkimAlgorithm), Problem> {
    let domain = normal(&body.domain);
    if !domain.contains('.') || !super::names::is_host_name(&domain, false) {
        return Err(Problem::invalid(
            "domain",
            "a domain name in ASCII (example.com; xn-- for internationalised ones)",
        ));
    }
    let algorithm = body.algorithm.unwrap_or(DkimAlgorithm::Rsa2048);
    let selector = match &body.selector {
        Some(selector) => normal(selector),
        None => {
            let prefix = match algorithm {
                DkimAlgorithm::Rsa2048 => "rsa",
                DkimAlgorithm::Ed25519 => "ed25519",
            };
            format!("{prefix}-{}", crate::rewrite::date::yyyymmdd(now))
        }
    };
    if selector.len() > 63 || !super::names::is_host_name(&selector, false) {
        return Err(Problem::invalid(
            "selector",
            "letters, digits, hyphens and dots, at most 63 characters",
        ));
    }
    // The record's name, `{selector}._domainkey.{domain}`, must be a DNS name too.
    if selector.len() + "._domainkey.".len() + domain.len() > 253 {
        return Err(Problem::invalid(
            "selector",
            "selector._domainkey.domain is longer than 253 characters",
        ));
    }
    Ok((domain, selector, algorithm))
}

/// A domain or selector as keys are stored: trimmed, no final dot, lower case.
fn normal(name: &str) -> String {
    name.trim().trim_end_matches('.').to_lowercase()
}

fn not_found(domain: &str, selector: &str) -> Problem {
    Problem::not_found(format!("DKIM key {selector:?} of {domain:?}"))
}
