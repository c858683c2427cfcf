//! Requesters (SPEC §4): `GET /api/v1/requesters`, and blocking one that sends unwanted
//! mail — `POST /api/v1/requesters/{id}/block {"delete_tickets": bool}` and
//! `POST /api/v1/requesters/{id}/unblock`.
//!
//! Blocking needs `block_unwanted_email` (and `delete_tickets` to delete its tickets); a
//! `system` user, the default admin or the caller itself is never blocked (403), and only a requester that
//! opened at least one ticket by e-mail can be blocked this way (409). A blocked user
//! cannot log in anywhere and its mail is refused at SMTP.

use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::users::UserView;
use super::{Api, Caller, Problem};
use crate::store::{Origin, User, UserKind, UserStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Body of `POST .../block`.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// Also delete every ticket the requester opened (needs `delete_tickets`).
    #[serde(default)]
    delete_tickets: bool,
}

/// The answer to a block.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Blocked {
    pub user: UserView,
    /// Ids of the tickets deleted with it.
    pub deleted_tickets: Vec<u64>,
}

/// `GET /api/v1/requesters` — permission `manage_users` or `block_unwanted_email`.
#[utoipa::path(
    get, path = "/api/v1/requesters", tag = "requesters",
    responses((status = 200, body = [UserView]), Problems)
)]
pub async fn list(caller: Caller, State(api): State<Api>) -> Result<Json<Vec<UserView>>, Problem> {
    if !caller.has("manage_users") {
        caller.require("block_unwanted_email")?;
    }
    let users = api.store().users().all()?;
    Ok(Json(
        users
            .into_iter()
            .filter(|u| u.kind == UserKind::Requester)
            .map(UserView::from)
            .collect(),
    ))
}

/// The user `id` if the rules of SPEC §4 let `caller` block it.
fn blockable(caller: &Caller, api: &Api, id: u64) -> Result<User, Problem> {
    let user = api
        .store()
        .users()
        .by_id(id)?
        .ok_or_else(|| Problem::not_found(format!("user {id}")))?;
    if user.kind == UserKind::System || user.is_default_admin {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} is a system user or the default admin and can never be blocked",
                user.login
            ),
        ));
    }
    let by_email = api
        .store()
        .tickets()
        .all()?
        .iter()
        .any(|t| t.requester == id && t.origin == Origin::Email);
    if user.kind != UserKind::Requester || !by_email {
        return Err(Problem::conflict(format!(
            "{} is not a requester that opened a ticket by e-mail",
            user.login
        )));
    }
    if caller.id() == Some(id) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "you cannot block yourself",
        ));
    }
    Ok(user)
}

/// `POST /api/v1/requesters/{id}/block`.
#[utoipa::path(
    post, path = "/api/v1/requesters/{id}/block", tag = "requesters", params(("id" = u64, Path, description = "user id")), request_body = BlockRequest,
    responses((status = 200, body = Blocked), Problems)
)]
pub async fn block(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
    Body(body): Body<BlockRequest>,
) -> Result<Json<Blocked>, Problem> {
    caller.require("block_unwanted_email")?;
    if body.delete_tickets {
        caller.require("delete_tickets")?;
    }
    let _change = api.write_lock().await;
    let previous = blockable(&caller, &api, id)?;
    let mut user = previous.clone();
    user.status = UserStatus::Blocked;
    let work = api.clone();
    let saved = user.clone();
    let deleted_tickets = blocking(move || {
        let store = work.store();
        store.users().update(&saved)?;
        work.reload()?;
        let mut deleted = Vec::new();
        if body.delete_tickets {
            deleted = store
                .tickets()
                .all()?
                .iter()
                .filter(|t| t.requester == id)
                .map(|t| t.id)
                .collect();
            store.tickets().delete(&deleted)?;
        }
        Ok(deleted)
    })
    .await?;
    let target = format!("user/{id}");
    api.audit(
        &caller,
        "requester.block",
        target,
        Some(&previous),
        Some(&user),
    )
    .await?;
    tracing::warn!(login = %user.login, by = %caller.name(), deleted = deleted_tickets.len(), "requester blocked");
    Ok(Json(Blocked {
        user: UserView::from(user),
        deleted_tickets,
    }))
}

/// `POST /api/v1/requesters/{id}/unblock` — permission `block_unwanted_email`; restores
/// login (409 if the user is not blocked).
#[utoipa::path(
    post, path = "/api/v1/requesters/{id}/unblock", tag = "requesters", params(("id" = u64, Path, description = "user id")),
    responses((status = 200, body = UserView), Problems)
)]
pub async fn unblock(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<UserView>, Problem> {
    caller.require("block_unwanted_email")?;
    let _change = api.write_lock().await;
    let previous = api
        .store()
        .users()
        .by_id(id)?
        .ok_or_else(|| Problem::not_found(format!("user {id}")))?;
    if previous.status != UserStatus::Blocked {
        return Err(Problem::conflict(format!(
            "{} is not blocked",
            previous.login
        )));
    }
    let mut user = previous.clone();
    user.status = UserStatus::Active;
    let work = api.clone();
    let saved = user.clone();
    blocking(move || {
        work.store().users().update(&saved)?;
        work.reload()
    })
    .await?;
    let target = format!("user/{id}");
    api.audit(
        &caller,
        "requester.unblock",
        target,
        Some(&previous),
        Some(&user),
    )
    .await?;
    Ok(Json(UserView::from(user)))
}
