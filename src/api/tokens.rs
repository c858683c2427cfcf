//! `/api/v1/users/{id}/tokens`: per-user API bearer tokens. A token is 32 random bytes,
//! returned once; the store keeps only its SHA-256 digest (`store::Tokens`: digest →
//! user id, creation time, label, expiry), so a stolen store yields no usable token.
//! High-entropy tokens need no slow KDF (SPEC §1). A token is listed and revoked by its
//! id, the first 16 hex digits of that digest; an expired token is refused like an
//! unknown one.
//!
//! It issues, finds and revokes tokens; whether the user may log in is `auth`'s check.

use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::policy::digest_secret;
use crate::policy::new_secret;
use crate::store::{Store, StoreError, StoredToken as TokenRecord, User, UserStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Longest label accepted.
const MAX_LABEL: usize = 100;
/// Longest lifetime a token may be given, in days.
const MAX_DAYS: u64 = 3650;

/// Body of `POST /users/{id}/tokens`; may be empty.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    label: String,
    /// Unix seconds after which the token is refused (in the future, at most ten years
    /// ahead); absent: until revoked.
    #[serde(default)]
    expires_at: Option<u64>,
}

/// A token as listed: never the token itself.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub user_id: u64,
    pub created_at: u64,
    pub label: String,
    pub expires_at: Option<u64>,
}

/// The answer of revoking every token of a user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Revoked {
    pub user_id: u64,
    pub revoked: u64,
}

/// The public id of the token whose digest is `digest`.
fn token_id(digest: &str) -> String {
    digest.chars().take(16).collect()
}

/// The response that carries a token, the only time it is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token: String,
    pub id: String,
    pub user_id: u64,
    pub created_at: u64,
    pub label: String,
    pub expires_at: Option<u64>,
}

/// The user a token belongs to and when the token expires, if it is known and unexpired.
pub fn lookup(store: &Store, token: &str) -> Result<Option<(u64, Option<u64>)>, StoreError> {
    let Some(record) = store.tokens().get(&digest_secret(token))? else {
        return Ok(None);
    };
    let now = crate::spool::now_ms() / 1000;
    Ok(match record.expires_at {
        Some(at) if at <= now => None,
        _ => Some((record.user_id, record.expires_at)),
    })
}

/// `POST /api/v1/users/{id}/tokens` — permission: the user itself, or `manage_users`
/// (admin implies it) and every permission the user holds. Returns the token once (201).
/// A token a user issues for itself never outlives the token it was issued with (422 if
/// asked to; without `expires_at` it gets that token's expiry), so an expiring token
/// cannot be turned into a lasting one.
#[utoipa::path(
    post, path = "/api/v1/users/{id}/tokens", tag = "users", params(("id" = u64, Path, description = "numeric id")), request_body = NewToken,
    responses((status = 201, body = IssuedToken), Problems)
)]
pub async fn create(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
    Body(body): Body<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), Problem> {
    let user = target(&caller, &api, id)?;
    if user.status != UserStatus::Active {
        return Err(Problem::conflict(format!(
            "user {} is not active",
            user.login
        )));
    }
    if body.label.chars().count() > MAX_LABEL || body.label.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "label",
            format!("at most {MAX_LABEL} characters, no control characters"),
        ));
    }
    let now = crate::spool::now_ms() / 1000;
    if body
        .expires_at
        .is_some_and(|at| at <= now || at > now + MAX_DAYS * 86_400)
    {
        return Err(Problem::invalid(
            "expires_at",
            format!("in the future, at most {MAX_DAYS} days ahead"),
        ));
    }
    let expires_at = match (
        caller.id() == Some(id),
        caller.token_expires,
        body.expires_at,
    ) {
        (true, Some(limit), Some(at)) if at > limit => {
            return Err(Problem::invalid(
                "expires_at",
                "a token may not outlive the token that issues it",
            ))
        }
        (true, Some(limit), None) => Some(limit),
        (_, _, asked) => asked,
    };
    let token = format!("pst_{}", new_secret());
    let record = TokenRecord {
        user_id: user.id,
        created_at: now,
        label: body.label,
        expires_at,
    };
    let digest = digest_secret(&token);
    let id = token_id(&digest);
    let store = api.state.store.clone();
    let stored = record.clone();
    blocking(move || Ok(store.tokens().insert(&digest, &stored)?)).await?;
    let target = format!("user/{}/tokens", user.id);
    api.audit(&caller, "token.create", target, None::<&()>, Some(&record))
        .await?;
    tracing::info!(login = %user.login, "API token issued");
    let issued = IssuedToken {
        token,
        id,
        user_id: record.user_id,
        created_at: record.created_at,
        label: record.label,
        expires_at: record.expires_at,
    };
    Ok((StatusCode::CREATED, Json(issued)))
}

/// `DELETE /api/v1/users/{id}/tokens` — permission: as for creating one. Revokes every
/// token of the user in one atomic batch; returns how many there were.
#[utoipa::path(
    delete, path = "/api/v1/users/{id}/tokens", tag = "users", params(("id" = u64, Path, description = "numeric id")),
    responses((status = 200, body = Revoked), Problems)
)]
pub async fn revoke_all(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<Revoked>, Problem> {
    let user = target(&caller, &api, id)?;
    let store = api.state.store.clone();
    let revoked = blocking(move || Ok(store.tokens().remove_of_user(id)?)).await?;
    let target = format!("user/{id}/tokens");
    let after = serde_json::json!({ "revoked": revoked });
    api.audit(&caller, "token.revoke", target, None::<&()>, Some(&after))
        .await?;
    tracing::info!(login = %user.login, revoked, "API tokens revoked");
    Ok(Json(Revoked {
        user_id: id,
        revoked,
    }))
}

/// `GET /api/v1/users/{id}/tokens` — permission: as for creating one. The user's tokens
/// (ids, labels, times), never the tokens themselves.
#[utoipa::path(
    get, path = "/api/v1/users/{id}/tokens", tag = "users", params(("id" = u64, Path, description = "numeric id")),
    responses((status = 200, body = [TokenView]), Problems)
)]
pub async fn list(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<Vec<TokenView>>, Problem> {
    target(&caller, &api, id)?;
    let store = api.state.store.clone();
    let tokens = blocking(move || Ok(of_user(&store, id)?)).await?;
    Ok(Json(tokens.into_iter().map(|(_, view)| view).collect()))
}

/// `DELETE /api/v1/users/{id}/tokens/{token_id}` — permission: as for creating one.
#[utoipa::path(
    delete, path = "/api/v1/users/{id}/tokens/{token}", tag = "users", params(("id" = u64, Path, description = "numeric id"), ("token" = String, Path, description = "token id")),
    responses((status = 204), Problems)
)]
pub async fn revoke(
    caller: Caller,
    State(api): State<Api>,
    Param((id, token)): Param<(u64, String)>,
) -> Result<StatusCode, Problem> {
    target(&caller, &api, id)?;
    let store = api.state.store.clone();
    let wanted = token.clone();
    let revoked = blocking(move || {
        let Some((key, view)) = of_user(&store, id)?
            .into_iter()
            .find(|(_, v)| v.id == wanted)
        else {
            return Ok(None);
        };
        store.tokens().remove(&key)?;
        Ok(Some(view))
    })
    .await?
    .ok_or_else(|| Problem::not_found(format!("token {token} of user {id}")))?;
    let target = format!("user/{id}/tokens/{}", revoked.id);
    api.audit(&caller, "token.revoke", target, Some(&revoked), None::<&()>)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every token of user `id`: its digest and its listing.
fn of_user(store: &Store, id: u64) -> Result<Vec<(String, TokenView)>, StoreError> {
    let tokens = store.tokens().of_user(id)?;
    Ok(tokens
        .into_iter()
        .map(|(digest, record)| {
            let view = TokenView {
                id: token_id(&digest),
                user_id: id,
                created_at: record.created_at,
                label: record.label,
                expires_at: record.expires_at,
            };
            (digest, view)
        })
        .collect())
}

/// The user whose tokens are managed, after the permission check.
pub(super) fn target(caller: &Caller, api: &Api, id: u64) -> Result<User, Problem> {
    if caller.id() != Some(id) {
        caller.require("manage_users")?;
    }
    let user = api
        .state
        .store
        .users()
        .by_id(id)?
        .ok_or_else(|| Problem::not_found(format!("user {id}")))?;
    if caller.id() != Some(id) {
        caller.require_covers(&user)?;
    }
    Ok(user)
}
