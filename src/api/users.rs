//! `/api/v1/users`: creating principals (SPEC §1). Staff and requesters get argon2id
//! password hashes (computed off the async workers); system principals get a high-entropy
//! secret stored as a SHA-256 digest, generated and returned once when none is given.

use super::auth::Admin;
use super::{ApiState, Problem};
use crate::policy::{digest_secret, hash_password};
use crate::store::{NewUser, StoreError, User, UserKind, UserStatus};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Shortest password accepted for a human.
const MIN_PASSWORD: usize = 8;
/// Shortest secret accepted for a system principal.
const MIN_SECRET: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    login: String,
    email: String,
    kind: UserKind,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

/// A user as the API shows it: never a hash.
#[derive(Debug, Serialize)]
pub struct UserView {
    id: u64,
    login: String,
    email: String,
    display_name: String,
    kind: UserKind,
    status: UserStatus,
    created_at: u64,
    /// Only in the response that created a system principal without a given secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl From<User> for UserView {
    fn from(user: User) -> UserView {
        UserView {
            id: user.id,
            login: user.login,
            email: user.email,
            display_name: user.display_name,
            kind: user.kind,
            status: user.status,
            created_at: user.created_at,
            secret: None,
        }
    }
}

/// `POST /api/v1/users`.
pub async fn create(
    _: Admin,
    State(state): State<ApiState>,
    body: Result<Json<CreateUser>, JsonRejection>,
) -> Result<(StatusCode, Json<UserView>), Problem> {
    let Json(body) = body.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    validate(&body)?;
    let (password_hash, secret_sha256, generated) = credentials(&body).await?;
    let new = NewUser {
        display_name: body
            .display_name
            .clone()
            .unwrap_or_else(|| body.login.clone()),
        login: body.login,
        email: body.email,
        kind: Some(body.kind),
        password_hash,
        secret_sha256,
        ..NewUser::default()
    };
    let store = state.store.clone();
    let now = crate::spool::now_ms() / 1000;
    let user = tokio::task::spawn_blocking(move || store.users().create(new, now))
        .await
        .map_err(Problem::internal)?
        .map_err(|e| match e {
            StoreError::Conflict(what) => {
                Problem::new(StatusCode::CONFLICT, format!("{what} already exists"))
            }
            other => Problem::internal(other),
        })?;
    tracing::info!(login = %user.login, kind = ?user.kind, "user created");
    let mut view = UserView::from(user);
    view.secret = generated;
    Ok((StatusCode::CREATED, Json(view)))
}

fn validate(body: &CreateUser) -> Result<(), Problem> {
    let login = body.login.trim();
    if login.is_empty() || login.len() > 254 || login.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Problem::invalid(
            "login",
            "must be 1-254 characters, no spaces or control characters",
        ));
    }
    if crate::smtp::params::check_mailbox(&body.email).is_err() {
        return Err(Problem::invalid(
            "email",
            "is not a valid mailbox (local@domain)",
        ));
    }
    match (body.kind, &body.password) {
        (UserKind::System, Some(secret)) if secret.len() < MIN_SECRET => Err(Problem::invalid(
            "password",
            format!("a system principal's secret needs at least {MIN_SECRET} characters"),
        )),
        (UserKind::Staff | UserKind::Requester, None) => {
            Err(Problem::invalid("password", "is required"))
        }
        (UserKind::Staff | UserKind::Requester, Some(p)) if p.chars().count() < MIN_PASSWORD => {
            Err(Problem::invalid(
                "password",
                format!("needs at least {MIN_PASSWORD} characters"),
            ))
        }
        _ => Ok(()),
    }
}

type Hashed = (Option<String>, Option<String>, Option<String>);

/// (argon2 hash, secret digest, generated secret to return once).
async fn credentials(body: &CreateUser) -> Result<Hashed, Problem> {
    if body.kind == UserKind::System {
        return Ok(match &body.password {
            Some(secret) => (None, Some(digest_secret(secret)), None),
            None => {
                let mut bytes = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut bytes);
                let secret = URL_SAFE_NO_PAD.encode(bytes);
                (None, Some(digest_secret(&secret)), Some(secret))
            }
        });
    }
    let password = body.password.clone().unwrap_or_default();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(Problem::internal)?
        .map_err(Problem::internal)?;
    Ok((Some(hash), None, None))
}
