//! People and their passwords outside SMTP: console sessions listed and revoked per user
//! (`/api/v1/users/{id}/sessions`, permission as for the user's tokens: the user itself,
//! or `manage_users` over a user no more powerful than the caller), password login for
//! scripts acting as a person (`POST /api/v1/login`: a bearer token that expires with the
//! console's session lifetime; failures counted by the console's limiter), and changing
//! one's own password (`PUT /api/v1/me/password`, the current one required; every console
//! session of the user ends).

use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::tokens::{self, IssuedToken};
use super::users::MIN_PASSWORD;
use super::{Api, Caller, Problem};
use crate::policy::hash_password;
use crate::store::{Session, UserKind};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A console session as listed (never its token).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: u64,
    pub user_id: u64,
    pub created_at: u64,
    pub expires_at: u64,
    pub ip: String,
    pub user_agent: String,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> SessionView {
        SessionView {
            id: s.id,
            user_id: s.user,
            created_at: s.created_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
        }
    }
}

/// How many sessions were ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ended {
    pub ended: usize,
}

fn now() -> u64 {
    crate::spool::now_ms() / 1000
}

/// `GET /api/v1/users/{id}/sessions` — the user's console sessions that have not expired.
#[utoipa::path(
    get, path = "/api/v1/users/{id}/sessions", tag = "users", params(("id" = u64, Path, description = "numeric id")),
    responses((status = 200, body = [SessionView]), Problems)
)]
pub async fn list(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<Vec<SessionView>>, Problem> {
    tokens::target(&caller, &api, id)?;
    let sessions = api.store().sessions().of_user(id, now())?;
    Ok(Json(sessions.into_iter().map(SessionView::from).collect()))
}

/// `DELETE /api/v1/users/{id}/sessions/{session}` — ends one session (404 if it is not
/// one of the user's).
#[utoipa::path(
    delete, path = "/api/v1/users/{id}/sessions/{session}", tag = "users",
    params(("id" = u64, Path, description = "numeric id"), ("session" = u64, Path, description = "session id")),
    responses((status = 204), Problems)
)]
pub async fn revoke(
    caller: Caller,
    State(api): State<Api>,
    Param((id, session)): Param<(u64, u64)>,
) -> Result<StatusCode, Problem> {
    let ended = end(&caller, &api, id, Some(session)).await?;
    match ended {
        0 => Err(Problem::not_found(format!("session {session}"))),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

/// `DELETE /api/v1/users/{id}/sessions` — ends every session of the user.
#[utoipa::path(
    delete, path = "/api/v1/users/{id}/sessions", tag = "users", params(("id" = u64, Path, description = "numeric id")),
    responses((status = 200, body = Ended), Problems)
)]
pub async fn revoke_all(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<Ended>, Problem> {
    let ended = end(&caller, &api, id, None).await?;
    Ok(Json(Ended { ended }))
}

async fn end(caller: &Caller, api: &Api, id: u64, session: Option<u64>) -> Result<usize, Problem> {
    tokens::target(caller, api, id)?;
    let store = api.store().clone();
    let ended = blocking(move || Ok(store.sessions().revoke(id, session, now())?)).await?;
    if ended > 0 {
        let target = match session {
            Some(s) => format!("user/{id}/sessions/{s}"),
            None => format!("user/{id}/sessions"),
        };
        let after = serde_json::json!({ "ended": ended });
        api.audit(caller, "session.revoke", target, None::<&()>, Some(&after))
            .await?;
    }
    Ok(ended)
}

/// Body of `POST /api/v1/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordLogin {
    pub login: String,
    pub password: String,
    /// The token's label (default `password login`).
    #[serde(default)]
    pub label: Option<String>,
}

/// `POST /api/v1/login` — no bearer token: a staff user's or requester's login and
/// password buy a bearer token that expires with the console's session lifetime (201).
/// A wrong login or password is a 401; too many failures for the login or the client
/// address within 15 minutes, a 429.
#[utoipa::path(
    post, path = "/api/v1/login", tag = "users", request_body = PasswordLogin, security(()),
    responses((status = 201, body = IssuedToken), (status = 429, description = "too many failed logins"), Problems)
)]
pub async fn login(
    State(api): State<Api>,
    ip: crate::console::ClientIp,
    Body(body): Body<PasswordLogin>,
) -> Result<(StatusCode, Json<IssuedToken>), Problem> {
    let ip: IpAddr = ip.0;
    let limiter = &api.state.console.limiter;
    if let Some(wait) = limiter.blocked(&body.login, ip) {
        let minutes = wait.as_secs().div_ceil(60);
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed logins; try again in {minutes} minutes"),
        ));
    }
    let Some(user) = crate::console::check_password(&api, &body.login, &body.password).await else {
        limiter.failed(&body.login, ip);
        return Err(Problem::unauthorized());
    };
    limiter.succeeded(&body.login);
    let caller = Caller::for_user(api.store(), user.clone())?;
    let lifetime = api.state.console.settings.session_lifetime_secs;
    let request = serde_json::json!({
        "label": body.label.unwrap_or_else(|| "password login".into()),
        "expires_at": now() + lifetime,
    });
    let request = serde_json::from_value(request).map_err(Problem::internal)?;
    tokens::create(caller, State(api), Param(user.id), Body(request)).await
}

/// Body of `PUT /api/v1/me/password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub current_password: String,
    pub new_password: String,
}

/// `PUT /api/v1/me/password` — a staff user or requester changes its own password (the
/// current one must be right: 422 on `current_password` otherwise). Every console session
/// of the user ends (204).
#[utoipa::path(
    put, path = "/api/v1/me/password", tag = "me", request_body = NewPassword,
    responses((status = 204), Problems)
)]
pub async fn change_password(
    caller: Caller,
    State(api): State<Api>,
    Body(body): Body<NewPassword>,
) -> Result<StatusCode, Problem> {
    let Some(user) = caller.user.clone().filter(|u| u.kind != UserKind::System) else {
        return Err(Problem::conflict(
            "only people have passwords; this caller is not one",
        ));
    };
    if body.new_password.chars().count() < MIN_PASSWORD {
        let reason = format!("needs at least {MIN_PASSWORD} characters");
        return Err(Problem::invalid("new_password", reason));
    }
    if crate::console::check_password(&api, &user.login, &body.current_password)
        .await
        .is_none()
    {
        return Err(Problem::invalid(
            "current_password",
            "is not your current password",
        ));
    }
    let password = body.new_password;
    let hash = blocking(move || Ok(hash_password(&password)?)).await?;
    let _change = api.write_lock().await;
    let work = api.clone();
    let id = user.id;
    blocking(move || {
        let mut user = work
            .store()
            .users()
            .by_id(id)?
            .ok_or_else(|| Problem::not_found(format!("user {id}")))?;
        user.password_hash = Some(hash);
        work.store().users().update(&user)?;
        work.store().sessions().revoke(id, None, now())?;
        work.reload()
    })
    .await?;
    let target = format!("user/{id}/password");
    api.audit(&caller, "user.password", target, None::<&()>, None::<&()>)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
