//! `/api/v1/accounts`: email accounts (SPEC §2) — listing, showing, creating, deleting
//! and the status of one. Changes to an existing account are in `account_edit`; the
//! rules (who may see, create, change; what is valid) are in `account_rules`.

use super::account_rules::{
    may_see, require_create, require_inbound, require_setup, tidy, validate,
};
use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::store::{Account, AccountStatus, DefaultSendMode, Grant, Inbound, Scope, SentCopy};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Body of `POST /api/v1/accounts`. Left out: `scope` is `all_staff`,
/// `default_send_mode` is `none` (only the owner and explicit grants send), `upstream` is
/// the default account's.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    address: String,
    from_address: Option<String>,
    display_name: Option<String>,
    reply_to: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    upstream: Option<String>,
    owner: Option<u64>,
    #[serde(default, rename = "default", alias = "is_default")]
    is_default: bool,
    scope: Option<Scope>,
    #[serde(default)]
    grants: Vec<Grant>,
    default_send_mode: Option<DefaultSendMode>,
    /// Set: a helpdesk mailbox (SPEC §7).
    inbound: Option<Inbound>,
    /// Set: each message sent is filed in the mailbox's Sent folder (IMAP).
    sent_copy: Option<SentCopy>,
}

/// `GET /api/v1/accounts/{id}/status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusView {
    id: u64,
    name: String,
    upstream: String,
    #[serde(flatten)]
    status: AccountStatus,
    /// What will stop this account's mail or fails beside it (`relay::warnings`); any
    /// makes a healthy account `degraded`.
    warnings: Vec<crate::relay::warnings::Warning>,
    /// Set when the account fetches its mail (`GET /api/v1/accounts/{id}/fetch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    fetch: Option<super::account_fetch_status::FetchView>,
}

/// `GET /api/v1/accounts` — any authenticated caller: `admin` and `shared_account_setup`
/// see every account, others those they own or hold a grant on.
#[utoipa::path(
    get, path = "/api/v1/accounts", tag = "accounts",
    responses((status = 200, body = [Account]), Problems)
)]
pub async fn list(caller: Caller, State(api): State<Api>) -> Result<Json<Vec<Account>>, Problem> {
    let accounts = api.store().accounts().all()?;
    Ok(Json(
        accounts
            .into_iter()
            .filter(|a| may_see(&caller, a))
            .map(Account::without_secrets)
            .collect(),
    ))
}

/// `GET /api/v1/accounts/{id}` — as for the list; an account the caller may not see is 404.
#[utoipa::path(
    get, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = u64, Path, description = "numeric id")),
    responses((status = 200, body = Account), Problems)
)]
pub async fn show(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<Account>, Problem> {
    visible(&caller, &api, id).map(|a| Json(a.without_secrets()))
}

/// `GET /api/v1/accounts/{id}/status` — as for showing the account.
#[utoipa::path(
    get, path = "/api/v1/accounts/{id}/status", tag = "accounts", params(("id" = u64, Path, description = "numeric id")),
    responses((status = 200, body = StatusView), Problems)
)]
pub async fn status(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<StatusView>, Problem> {
    let account = visible(&caller, &api, id)?;
    let fetch = super::account_fetch_status::view(&api, &account)?;
    let warnings = api
        .state
        .relays
        .shared()
        .warnings
        .about(account.id, &account.upstream);
    let mut status = account.status;
    if !warnings.is_empty() && status.health == crate::store::Health::Healthy {
        status.health = crate::store::Health::Degraded;
    }
    Ok(Json(StatusView {
        id: account.id,
        name: account.name,
        upstream: account.upstream,
        status,
        warnings,
        fetch,
    }))
}

/// The account `id` if it exists and `caller` may see it; 404 otherwise.
pub fn visible(caller: &Caller, api: &Api, id: u64) -> Result<Account, Problem> {
    api.store()
        .accounts()
        .get(id)?
        .filter(|a| may_see(caller, a))
        .ok_or_else(|| Problem::not_found(format!("account {id}")))
}

/// `POST /api/v1/accounts` — a shared account (no `owner`) needs `shared_account_setup`;
/// a personal account is created by its owner while `allow_personal_accounts` is on, or
/// by an admin; `default: true` needs `admin`. 422 for invalid fields, 409 for a name or
/// address already in use.
#[utoipa::path(
    post, path = "/api/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = Account), Problems)
)]
pub async fn create(
    caller: Caller,
    State(api): State<Api>,
    Body(body): Body<NewAccount>,
) -> Result<(StatusCode, Json<Account>), Problem> {
    let _change = api.write_lock().await;
    let settings = api.store().settings()?;
    require_create(&caller, &settings, body.owner, body.is_default)?;
    if body.inbound.is_some() {
        require_inbound(&caller)?;
    }
    let upstream = match body.upstream {
        Some(upstream) => upstream,
        None => api
            .store()
            .accounts()
            .keys()?
            .iter()
            .find(|a| a.is_default)
            .map(|a| a.upstream.clone())
            .ok_or_else(|| Problem::invalid("upstream", "is required"))?,
    };
    let mut account = Account {
        id: 0,
        name: body.name,
        description: body.description,
        address: body.address,
        from_address: body.from_address,
        display_name: body.display_name,
        reply_to: body.reply_to,
        aliases: body.aliases,
        upstream,
        owner: body.owner,
        is_default: body.is_default,
        scope: body.scope.unwrap_or(Scope::AllStaff),
        grants: body.grants,
        default_send_mode: body.default_send_mode.unwrap_or(DefaultSendMode::None),
        status: AccountStatus::default(),
        inbound: body.inbound,
        sent_copy: body.sent_copy,
    };
    tidy(&mut account);
    validate(api.store(), &api.state.relays, &caller, &account)?;
    let work = api.clone();
    let account = blocking(move || {
        let account = work.store().accounts().create(account)?;
        work.reload()?;
        Ok(account)
    })
    .await?;
    let target = format!("account/{}", account.id);
    api.audit(
        &caller,
        "account.create",
        target,
        None::<&()>,
        Some(&account),
    )
    .await?;
    tracing::info!(account = %account.name, id = account.id, "account created");
    Ok((StatusCode::CREATED, Json(account.without_secrets())))
}

/// `DELETE /api/v1/accounts/{id}` — the account's `setup` right. The default account
/// cannot be deleted (409).
#[utoipa::path(
    delete, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = u64, Path, description = "numeric id")),
    responses((status = 204), Problems)
)]
pub async fn remove(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<StatusCode, Problem> {
    let _change = api.write_lock().await;
    let account = visible(&caller, &api, id)?;
    require_setup(&caller, &account)?;
    if account.is_default {
        return Err(Problem::conflict(format!(
            "account {:?} is the default account and cannot be deleted",
            account.name
        )));
    }
    let work = api.clone();
    blocking(move || {
        work.store().accounts().remove(id)?;
        work.reload()
    })
    .await?;
    let target = format!("account/{id}");
    api.audit(
        &caller,
        "account.delete",
        target,
        Some(&account),
        None::<&()>,
    )
    .await?;
    tracing::info!(account = %account.name, id, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}
