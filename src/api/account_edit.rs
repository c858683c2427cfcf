//! Changing an email account: `PATCH /api/v1/accounts/{id}` and
//! `PUT /api/v1/accounts/{id}/grants`. Both need the account's `setup` right; the changed
//! account is validated as a whole (`account_rules::validate`) before the one write, and
//! the policy snapshot is rebuilt after it, so the next SMTP command sees the change.

use super::account_rules::{require_inbound, require_no_new_rights, require_setup, tidy, validate};
use super::accounts::visible;
use super::extract::{blocking, nullable, Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::store::{Account, DefaultSendMode, Grant, Inbound, Scope, SentCopy};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;

/// Body of `PATCH`: every field optional; `null` (or `""`) clears an optional text. The
/// owner of an account is fixed at creation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    name: Option<String>,
    description: Option<String>,
    address: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    from_address: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    reply_to: Option<Option<String>>,
    aliases: Option<Vec<String>>,
    upstream: Option<String>,
    #[serde(rename = "default", alias = "is_default")]
    is_default: Option<bool>,
    scope: Option<Scope>,
    grants: Option<Vec<Grant>>,
    default_send_mode: Option<DefaultSendMode>,
    /// `null` turns the helpdesk mailbox off; a `fetch` password left out keeps the one
    /// stored (same kind, host and username).
    #[serde(default, deserialize_with = "nullable")]
    inbound: Option<Option<Inbound>>,
    /// `null` turns sent copies off; a password left out keeps the one stored.
    #[serde(default, deserialize_with = "nullable")]
    sent_copy: Option<Option<SentCopy>>,
}

/// Body of `PUT /grants`: the new grant list, bare or as `{"grants": [...]}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum GrantList {
    Bare(Vec<Grant>),
    Wrapped { grants: Vec<Grant> },
}

/// `PATCH /api/v1/accounts/{id}` — the account's `setup` right (owner, a `setup` grant,
/// `admin`, or `shared_account_setup` for a shared account); changing `default` needs
/// `admin`.
#[utoipa::path(
    patch, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = u64, Path, description = "numeric id")), request_body = AccountPatch,
    responses((status = 200, body = Account), Problems)
)]
pub async fn patch(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
    Body(mut patch): Body<AccountPatch>,
) -> Result<Json<Account>, Problem> {
    let _change = api.write_lock().await;
    let mut account = visible(&caller, &api, id)?;
    if let Some(Some(inbound)) = &mut patch.inbound {
        let stored = account.inbound.as_ref().and_then(|i| i.fetch.as_ref());
        super::account_fetch::keep_password(inbound.fetch.as_mut(), stored);
    }
    require_setup(&caller, &account)?;
    if patch.is_default.is_some_and(|d| d != account.is_default) && !caller.is_admin() {
        return Err(Problem::forbidden_for(
            "admin",
            "to change the default flag",
        ));
    }
    if patch
        .inbound
        .as_ref()
        .is_some_and(|i| *i != account.inbound)
    {
        require_inbound(&caller)?;
    }
    let previous = account.clone();
    apply(&mut account, patch);
    save(&caller, &api, "account.update", previous, account)
        .await
        .map(|a| Json(a.without_secrets()))
}

/// `PUT /api/v1/accounts/{id}/grants` — the account's `setup` right. Replaces the whole
/// grant list; grantee users and roles must exist (422); a grant that gives the caller (or
/// a role it holds) a right it lacks needs admin or `shared_account_setup` (403).
#[utoipa::path(
    put, path = "/api/v1/accounts/{id}/grants", tag = "accounts", params(("id" = u64, Path, description = "numeric id")), request_body = GrantList,
    responses((status = 200, body = Account), Problems)
)]
pub async fn put_grants(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
    Body(list): Body<GrantList>,
) -> Result<Json<Account>, Problem> {
    let _change = api.write_lock().await;
    let mut account = visible(&caller, &api, id)?;
    require_setup(&caller, &account)?;
    let previous = account.clone();
    account.grants = match list {
        GrantList::Bare(grants) | GrantList::Wrapped { grants } => grants,
    };
    save(&caller, &api, "account.grants", previous, account)
        .await
        .map(|a| Json(a.without_secrets()))
}

fn apply(account: &mut Account, patch: AccountPatch) {
    let AccountPatch {
        name,
        description,
        address,
        from_address,
        display_name,
        reply_to,
        aliases,
        upstream,
        is_default,
        scope,
        grants,
        default_send_mode,
        inbound,
        sent_copy,
    } = patch;
    set(&mut account.name, name);
    set(&mut account.description, description);
    set(&mut account.address, address);
    set(&mut account.from_address, from_address);
    set(&mut account.display_name, display_name);
    set(&mut account.reply_to, reply_to);
    set(&mut account.aliases, aliases);
    set(&mut account.upstream, upstream);
    set(&mut account.is_default, is_default);
    set(&mut account.scope, scope);
    set(&mut account.grants, grants);
    set(&mut account.default_send_mode, default_send_mode);
    set(&mut account.inbound, inbound);
    if let Some(mut sent_copy) = sent_copy {
        super::account_sent_copy::keep_password(&mut sent_copy, &account.sent_copy);
        account.sent_copy = sent_copy;
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// Validates the changed account as a whole, writes it once, reloads the policy, and
/// records `action` in the audit log. The caller holds the write lock.
async fn save(
    caller: &Caller,
    api: &Api,
    action: &str,
    previous: Account,
    mut account: Account,
) -> Result<Account, Problem> {
    tidy(&mut account);
    require_no_new_rights(caller, &previous, &account)?;
    validate(api.store(), &api.state.relays, caller, &account)?;
    let work = api.clone();
    let saved = account.clone();
    blocking(move || {
        work.store().accounts().update(&saved)?;
        work.reload()
    })
    .await?;
    let target = format!("account/{}", account.id);
    api.audit(caller, action, target, Some(&previous), Some(&account))
        .await?;
    tracing::info!(account = %account.name, id = account.id, "account changed");
    Ok(account)
}
