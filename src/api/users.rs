//! `/api/v1/users`: creating, listing and showing principals (SPEC §1); changes are in
//! `user_edit`. Staff and requesters get argon2id password hashes (computed off the async
//! workers); system principals get a high-entropy secret stored as a SHA-256 digest,
//! generated and returned once when none is given. No response ever carries a hash.

use super::extract::{blocking, page_limit, Body, Param, QueryOf};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::policy::new_secret;
use crate::policy::{digest_secret, hash_password};
use crate::store::{CreatedVia, NewUser, User, UserKind, UserStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Shortest password accepted for a human.
pub const MIN_PASSWORD: usize = 8;
/// Shortest secret accepted for a system principal.
pub const MIN_SECRET: usize = 32;
/// The most users one page of the listing holds.
const MAX_PAGE: usize = 1000;

/// Body of `POST /api/v1/users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: u64,
    pub login: String,
    pub email: String,
    pub display_name: String,
    pub kind: UserKind,
    pub status: UserStatus,
    pub roles: Vec<String>,
    pub skill_groups: Vec<String>,
    pub group: Option<String>,
    pub is_default_admin: bool,
    pub created_via: CreatedVia,
    pub created_at: u64,
    /// Only in the response that created a system principal without a given secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
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
            roles: user.roles,
            skill_groups: user.skill_groups,
            group: user.group,
            is_default_admin: user.is_default_admin,
            created_via: user.created_via,
            created_at: user.created_at,
            secret: None,
        }
    }
}

/// Filters of `GET /api/v1/users`.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserFilter {
    kind: Option<UserKind>,
    status: Option<UserStatus>,
    /// Case-insensitive part of the login, e-mail address or display name.
    q: Option<String>,
    /// Only users with a larger id (paging forward).
    after: Option<u64>,
    /// At most this many users (1-1000); absent: every user.
    limit: Option<usize>,
}

impl UserFilter {
    fn admits(&self, user: &User, q: &str) -> bool {
        self.kind.is_none_or(|k| user.kind == k)
            && self.status.is_none_or(|s| user.status == s)
            && self.after.is_none_or(|after| user.id > after)
            && (q.is_empty()
                || [&user.login, &user.email, &user.display_name]
                    .iter()
                    .any(|field| field.to_lowercase().contains(q)))
    }
}

/// `GET /api/v1/users?kind=&status=&q=&after=&limit=` — permission `manage_users`. In id
/// order; page on with `after` = the last id seen.
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users", params(UserFilter),
    responses((status = 200, body = [UserView]), Problems)
)]
pub async fn list(
    caller: Caller,
    State(api): State<Api>,
    QueryOf(filter): QueryOf<UserFilter>,
) -> Result<Json<Vec<UserView>>, Problem> {
    caller.require("manage_users")?;
    let limit = match filter.limit {
        Some(asked) => page_limit(Some(asked), MAX_PAGE, MAX_PAGE)?,
        None => usize::MAX,
    };
    let q = filter
        .q
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let mut users = api.store().users().all()?;
    users.sort_by_key(|u| u.id);
    Ok(Json(
        users
            .into_iter()
            .filter(|u| filter.admits(u, &q))
            .take(limit)
            .map(UserView::from)
            .collect(),
    ))
}

/// `GET /api/v1/users/{id}` — permission `manage_users`.
#[utoipa::path(
    get, path = "/api/v1/users/{id}", tag = "users", params(("id" = u64, Path, description = "numeric id")),
    responses((status = 200, body = UserView), Problems)
)]
pub async fn show(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<UserView>, Problem> {
    caller.require("manage_users")?;
    let user = api
        .store()
        .users()
        .by_id(id)?
        .ok_or_else(|| Problem::not_found(format!("user {id}")))?;
    Ok(Json(UserView::from(user)))
}

/// `POST /api/v1/users` — permission `manage_users`. 409 for a taken login or when
/// `max_users` is reached.
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserView), Problems)
)]
pub async fn create(
    caller: Caller,
    State(api): State<Api>,
    Body(body): Body<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), Problem> {
    caller.require("manage_users")?;
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
    let now = crate::spool::now_ms() / 1000;
    let _change = api.write_lock().await;
    let work = api.clone();
    let by = caller.clone();
    let user = blocking(move || {
        let store = work.store();
        if let Some(max) = store.settings()?.max_users {
            if store.users().all()?.len() as u64 >= max {
                return Err(Problem::conflict(format!(
                    "the installation already holds its maximum of {max} users"
                )));
            }
        }
        // The user and its audit entry are one transaction.
        let (user, _) = store.create_user_audited(new, now, |user| {
            let target = format!("user/{}", user.id);
            super::audit::entry_of(&by, "user.create", target, None::<&()>, Some(user))
        })?;
        work.reload()?;
        Ok(user)
    })
    .await?;
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
    check_email(&body.email)?;
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
                let secret = new_secret();
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

/// 422 on `email` unless it is a valid mailbox.
pub fn check_email(email: &str) -> Result<(), Problem> {
    match crate::smtp::params::check_mailbox(email) {
        Ok(()) => Ok(()),
        Err(_) => Err(Problem::invalid(
            "email",
            "is not a valid mailbox (local@domain)",
        )),
    }
}
