//! Webhooks of the inbound hook (SPEC §7), for admins: `GET`/`POST /api/v1/webhooks`,
//! `DELETE /api/v1/webhooks/{id}` (409 while a mailbox posts to it), the deliveries of one
//! (`GET /api/v1/webhooks/{id}/deliveries`: status, attempts, the last answer) and
//! `POST /api/v1/webhooks/{id}/deliveries/{delivery}/retry` for a dead one.
//!
//! The signing secret is shown once, in the answer that created the webhook.

use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::net::http::parse_url;
use crate::policy::new_secret;
use crate::store::{Delivery, DeliveryStatus, Webhook, DEFAULT_MAX_ATTEMPTS};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Shortest secret a caller may choose.
const MIN_SECRET: usize = 16;

/// Body of `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    name: String,
    /// `http://` or `https://` URL.
    url: String,
    /// Signing secret (at least 16 characters); generated when left out.
    secret: Option<String>,
    /// Attempts before a delivery is dead (default 10).
    max_attempts: Option<u32>,
}

/// A webhook as the API shows it (never its secret, except once at creation).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: u64,
    pub name: String,
    pub url: String,
    pub max_attempts: u32,
    pub created_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<Webhook> for WebhookView {
    fn from(hook: Webhook) -> WebhookView {
        WebhookView {
            id: hook.id,
            name: hook.name,
            url: hook.url,
            max_attempts: hook.max_attempts,
            created_at: hook.created_at,
            secret: None,
        }
    }
}

/// `GET /api/v1/webhooks` — `admin`.
#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = [WebhookView]), Problems)
)]
pub async fn list(
    caller: Caller,
    State(api): State<Api>,
) -> Result<Json<Vec<WebhookView>>, Problem> {
    caller.require("admin")?;
    let all = api.store().webhooks().all()?;
    Ok(Json(all.into_iter().map(WebhookView::from).collect()))
}

/// `POST /api/v1/webhooks` — `admin`. The answer carries the secret, once.
#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = WebhookView), Problems)
)]
pub async fn create(
    caller: Caller,
    State(api): State<Api>,
    Body(body): Body<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), Problem> {
    caller.require("admin")?;
    let name = super::roles::check_name("name", &body.name)?;
    parse_url(&body.url).map_err(|e| Problem::invalid("url", e.to_string()))?;
    let secret = match body.secret {
        Some(secret)
            if secret.chars().count() < MIN_SECRET || secret.chars().any(char::is_control) =>
        {
            return Err(Problem::invalid(
                "secret",
                format!("at least {MIN_SECRET} characters, no control characters"),
            ));
        }
        Some(secret) => secret,
        None => format!("whs_{}", new_secret()),
    };
    let max_attempts = body.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if !(1..=100).contains(&max_attempts) {
        return Err(Problem::invalid("max_attempts", "1-100"));
    }
    let hook = Webhook {
        id: 0,
        name,
        url: body.url,
        secret: secret.clone(),
        max_attempts,
        created_at: crate::spool::now_ms() / 1000,
    };
    let work = api.clone();
    let hook = blocking(move || Ok(work.store().webhooks().create(hook)?)).await?;
    let target = format!("webhook/{}", hook.id);
    api.audit(&caller, "webhook.create", target, None::<&()>, Some(&hook))
        .await?;
    let mut view = WebhookView::from(hook);
    view.secret = Some(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

/// `DELETE /api/v1/webhooks/{id}` — `admin`; 409 while a mailbox posts to it.
#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = u64, Path, description = "webhook id")),
    responses((status = 204), Problems)
)]
pub async fn remove(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<StatusCode, Problem> {
    caller.require("admin")?;
    let _change = api.write_lock().await;
    let hook = api
        .store()
        .webhooks()
        .get(id)?
        .ok_or_else(|| Problem::not_found(format!("webhook {id}")))?;
    let snapshot = api.snapshot();
    if let Some(account) = snapshot
        .accounts()
        .into_iter()
        .find(|a| a.inbound.as_ref().is_some_and(|i| i.webhooks.contains(&id)))
    {
        return Err(Problem::conflict(format!(
            "webhook {id} is still used by account {:?}",
            account.name
        )));
    }
    let work = api.clone();
    blocking(move || Ok(work.store().webhooks().remove(id)?)).await?;
    let target = format!("webhook/{id}");
    api.audit(&caller, "webhook.delete", target, Some(&hook), None::<&()>)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/webhooks/{id}/deliveries` — `admin`; oldest first.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = u64, Path, description = "webhook id")),
    responses((status = 200, body = [Delivery]), Problems)
)]
pub async fn deliveries(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<Vec<Delivery>>, Problem> {
    caller.require("admin")?;
    if api.store().webhooks().get(id)?.is_none() {
        return Err(Problem::not_found(format!("webhook {id}")));
    }
    Ok(Json(api.store().webhooks().deliveries(id)?))
}

/// `POST /api/v1/webhooks/{id}/deliveries/{delivery}/retry` — `admin`: a dead delivery
/// is tried again from its first attempt (409 unless it is dead); audited.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/retry", tag = "webhooks",
    params(("id" = u64, Path, description = "webhook id"), ("delivery" = u64, Path, description = "delivery id")),
    responses((status = 200, body = Delivery), Problems)
)]
pub async fn retry(
    caller: Caller,
    State(api): State<Api>,
    Param((id, delivery)): Param<(u64, u64)>,
) -> Result<Json<Delivery>, Problem> {
    caller.require("admin")?;
    let before = api
        .store()
        .webhooks()
        .delivery(delivery)?
        .filter(|d| d.webhook == id)
        .ok_or_else(|| Problem::not_found(format!("delivery {delivery} of webhook {id}")))?;
    if before.status != DeliveryStatus::Dead {
        return Err(Problem::conflict(format!(
            "delivery {delivery} is not dead"
        )));
    }
    let mut after = before.clone();
    after.status = DeliveryStatus::Pending;
    after.attempts = 0;
    after.next_at = crate::spool::now_ms();
    let work = api.clone();
    let saved = after.clone();
    let previous = before.clone();
    blocking(move || Ok(work.store().webhooks().update(&before, &saved)?)).await?;
    let target = format!("webhook/{id}/delivery/{delivery}");
    api.audit(
        &caller,
        "webhook.retry",
        target,
        Some(&previous),
        Some(&after),
    )
    .await?;
    Ok(Json(after))
}
