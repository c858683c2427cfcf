//! `/api/v1/users/{id}/tokens`: per-user API bearer tokens. A token is 32 random bytes,
//! returned once; the store keeps only its SHA-256 digest (tree `api_tokens`: digest →
//! user id, creation time, label), so a stolen store yields no usable token. High-entropy
//! tokens need no slow KDF (SPEC §1).
//!
//! It issues, finds and revokes tokens; whether the user may log in is `auth`'s check.

use super::extract::{blocking, Body, Param};
use super::{Api, Caller, Problem};
use crate::policy::digest_secret;
use crate::store::{Store, StoreError, User, UserStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

const TREE: &str = "api_tokens";
/// Longest label accepted.
const MAX_LABEL: usize = 100;

/// One stored token (its key is the digest).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    user_id: u64,
    created_at: u64,
    #[serde(default)]
    label: String,
}

/// Body of `POST /users/{id}/tokens`; may be empty.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    label: String,
}

/// The response that carries a token, the only time it is shown.
#[derive(Debug, Serialize)]
pub struct IssuedToken {
    token: String,
    user_id: u64,
    created_at: u64,
    label: String,
}

/// The user a token belongs to, if the token is known.
pub fn lookup(store: &Store, token: &str) -> Result<Option<u64>, StoreError> {
    let tree = store.tree(TREE)?;
    let Some(raw) = tree.get(digest_secret(token).as_bytes())? else {
        return Ok(None);
    };
    let record: TokenRecord =
        serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(format!("token: {e}")))?;
    Ok(Some(record.user_id))
}

/// `POST /api/v1/users/{id}/tokens` — permission: the user itself, or `manage_users`
/// (admin implies it) and every permission the user holds. Returns the token once (201).
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
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!("pst_{}", URL_SAFE_NO_PAD.encode(bytes));
    let record = TokenRecord {
        user_id: user.id,
        created_at: crate::spool::now_ms() / 1000,
        label: body.label,
    };
    let raw = serde_json::to_vec(&record).map_err(Problem::internal)?;
    let digest = digest_secret(&token);
    let store = api.state.store.clone();
    blocking(move || {
        store
            .tree(TREE)?
            .insert(digest.as_bytes(), raw)
            .map_err(StoreError::from)?;
        Ok(store.flush()?)
    })
    .await?;
    let target = format!("user/{}/tokens", user.id);
    api.audit(&caller, "token.create", target, None::<&()>, Some(&record))
        .await?;
    tracing::info!(login = %user.login, "API token issued");
    let issued = IssuedToken {
        token,
        user_id: record.user_id,
        created_at: record.created_at,
        label: record.label,
    };
    Ok((StatusCode::CREATED, Json(issued)))
}

/// `DELETE /api/v1/users/{id}/tokens` — permission: as for creating one. Revokes every
/// token of the user in one atomic batch; returns how many there were.
pub async fn revoke_all(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<serde_json::Value>, Problem> {
    let user = target(&caller, &api, id)?;
    let store = api.state.store.clone();
    let revoked = blocking(move || {
        let tree = store.tree(TREE)?;
        let mut batch = sled::Batch::default();
        let mut count = 0u64;
        for entry in tree.iter() {
            let (key, raw) = entry.map_err(StoreError::from)?;
            let record: TokenRecord = serde_json::from_slice(&raw)
                .map_err(|e| StoreError::Corrupt(format!("token: {e}")))?;
            if record.user_id == id {
                batch.remove(key);
                count += 1;
            }
        }
        tree.apply_batch(batch).map_err(StoreError::from)?;
        store.flush()?;
        Ok(count)
    })
    .await?;
    let target = format!("user/{id}/tokens");
    let after = serde_json::json!({ "revoked": revoked });
    api.audit(&caller, "token.revoke", target, None::<&()>, Some(&after))
        .await?;
    tracing::info!(login = %user.login, revoked, "API tokens revoked");
    Ok(Json(
        serde_json::json!({ "user_id": id, "revoked": revoked }),
    ))
}

/// The user whose tokens are managed, after the permission check.
fn target(caller: &Caller, api: &Api, id: u64) -> Result<User, Problem> {
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
