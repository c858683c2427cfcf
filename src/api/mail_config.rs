//! Mail configuration (SPEC §8): a staff user's account type (`private`, `record_level`,
//! `complete`) and mailbox — `GET`/`PUT /api/v1/me/mail-config` for the user itself
//! (`PUT` is refused with 423 while the configuration is locked), `GET
//! /api/v1/users/{id}/mail-config` and `POST .../lock`, `.../unlock` for admins.
//!
//! Lock rules: admins only; a `private` configuration cannot be locked; with more than one
//! admin, an admin cannot lock or unlock its own configuration (another must), while a sole
//! admin can. Every save, lock and unlock is in the audit log.

use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::smtp::params::check_mailbox;
use crate::store::{AccountType, MailConfig, Store, User, UserKind, UserStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

/// Body of `PUT /api/v1/me/mail-config`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailConfigBody {
    account_type: AccountType,
    /// The user's mailbox address.
    mailbox: String,
}

/// The calling staff user (403 for anyone else: the bootstrap token, requesters, system).
fn staff(caller: &Caller) -> Result<&User, Problem> {
    match &caller.user {
        Some(user) if user.kind == UserKind::Staff => Ok(user),
        _ => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "only staff users have a mail configuration",
        )),
    }
}

/// `GET /api/v1/me/mail-config` — the caller's configuration (`saved_at: null` if never
/// saved).
#[utoipa::path(
    get, path = "/api/v1/me/mail-config", tag = "mail-config",
    responses((status = 200, body = MailConfig), Problems)
)]
pub async fn show_mine(
    caller: Caller,
    State(api): State<Api>,
) -> Result<Json<MailConfig>, Problem> {
    let user = staff(&caller)?;
    Ok(Json(api.store().mail_configs().get(user.id)?))
}

/// `PUT /api/v1/me/mail-config` — saves the caller's configuration; 423 while locked.
#[utoipa::path(
    put, path = "/api/v1/me/mail-config", tag = "mail-config", request_body = MailConfigBody,
    responses((status = 200, body = MailConfig), Problems)
)]
pub async fn save_mine(
    caller: Caller,
    State(api): State<Api>,
    Body(body): Body<MailConfigBody>,
) -> Result<Json<MailConfig>, Problem> {
    let user = staff(&caller)?.clone();
    let mailbox = body.mailbox.trim().to_string();
    check_mailbox(&mailbox).map_err(|_| {
        Problem::invalid(
            "mailbox",
            format!("{mailbox:?} is not a valid mailbox (local@domain)"),
        )
    })?;
    let _change = api.write_lock().await;
    let previous = api.store().mail_configs().get(user.id)?;
    if previous.locked {
        return Err(Problem::new(
            StatusCode::LOCKED,
            format!(
                "your mail configuration was locked by {} and cannot be changed until an administrator unlocks it",
                previous.locked_by.as_deref().unwrap_or("an administrator")
            ),
        ));
    }
    let now = crate::spool::now_ms();
    let config = MailConfig {
        account_type: body.account_type,
        mailbox,
        saved_at: Some(now / 1000),
        saved_at_ms: Some(now),
        ..MailConfig::default()
    };
    save(
        &caller,
        &api,
        user.id,
        "mail_config.update",
        previous,
        config,
    )
    .await
}

/// `GET /api/v1/users/{id}/mail-config` — `admin`.
#[utoipa::path(
    get, path = "/api/v1/users/{id}/mail-config", tag = "mail-config", params(("id" = u64, Path, description = "user id")),
    responses((status = 200, body = MailConfig), Problems)
)]
pub async fn show(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<MailConfig>, Problem> {
    caller.require("admin")?;
    staff_user(api.store(), id)?;
    Ok(Json(api.store().mail_configs().get(id)?))
}

/// `POST /api/v1/users/{id}/mail-config/lock` — `admin`.
#[utoipa::path(
    post, path = "/api/v1/users/{id}/mail-config/lock", tag = "mail-config", params(("id" = u64, Path, description = "user id")),
    responses((status = 200, body = MailConfig), Problems)
)]
pub async fn lock(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<MailConfig>, Problem> {
    set_lock(caller, api, id, true).await
}

/// `POST /api/v1/users/{id}/mail-config/unlock` — `admin`.
#[utoipa::path(
    post, path = "/api/v1/users/{id}/mail-config/unlock", tag = "mail-config", params(("id" = u64, Path, description = "user id")),
    responses((status = 200, body = MailConfig), Problems)
)]
pub async fn unlock(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<MailConfig>, Problem> {
    set_lock(caller, api, id, false).await
}

async fn set_lock(
    caller: Caller,
    api: Api,
    id: u64,
    locked: bool,
) -> Result<Json<MailConfig>, Problem> {
    caller.require("admin")?;
    let _change = api.write_lock().await;
    staff_user(api.store(), id)?;
    let verb = if locked { "lock" } else { "unlock" };
    if caller.id() == Some(id) && admins(api.store())? > 1 {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!("with more than one admin, another admin must {verb} your mail configuration"),
        ));
    }
    let previous = api.store().mail_configs().get(id)?;
    if locked && previous.account_type == AccountType::Private {
        return Err(Problem::conflict(
            "a private mail configuration cannot be locked",
        ));
    }
    if previous.locked == locked {
        return Err(Problem::conflict(format!(
            "the mail configuration is already {verb}ed"
        )));
    }
    let mut config = previous.clone();
    config.locked = locked;
    config.locked_by = locked.then(|| caller.name().to_string());
    config.locked_at = locked.then(|| crate::spool::now_ms() / 1000);
    save(
        &caller,
        &api,
        id,
        &format!("mail_config.{verb}"),
        previous,
        config,
    )
    .await
}

/// Writes `config` for user `id` and records `action` in the audit log.
async fn save(
    caller: &Caller,
    api: &Api,
    id: u64,
    action: &str,
    previous: MailConfig,
    config: MailConfig,
) -> Result<Json<MailConfig>, Problem> {
    let work = api.clone();
    let saved = config.clone();
    blocking(move || Ok(work.store().mail_configs().save(id, &saved)?)).await?;
    // The policy snapshot knows whose mail the archive keeps.
    api.reload()?;
    api.audit(
        caller,
        action,
        format!("user/{id}"),
        Some(&previous),
        Some(&config),
    )
    .await?;
    Ok(Json(config))
}

/// The staff user `id` (404 if there is none; 409 for a user of another kind).
fn staff_user(store: &Store, id: u64) -> Result<User, Problem> {
    let user = store
        .users()
        .by_id(id)?
        .ok_or_else(|| Problem::not_found(format!("user {id}")))?;
    match user.kind {
        UserKind::Staff => Ok(user),
        _ => Err(Problem::conflict(format!(
            "{} is not a staff user and has no mail configuration",
            user.login
        ))),
    }
}

/// How many users are admins: the default admin and holders of `admin` through a role
/// (deactivated and blocked users are not counted).
fn admins(store: &Store) -> Result<usize, Problem> {
    let admin_roles: Vec<String> = store
        .roles()
        .all()?
        .into_iter()
        .filter(|r| r.permissions.iter().any(|p| p == "admin"))
        .map(|r| r.name.to_lowercase())
        .collect();
    Ok(store
        .users()
        .all()?
        .iter()
        .filter(|u| u.status == UserStatus::Active)
        .filter(|u| {
            u.is_default_admin
                || u.roles
                    .iter()
                    .any(|r| admin_roles.contains(&r.to_lowercase()))
        })
        .count())
}
