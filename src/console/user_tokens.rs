//! A user's API tokens and console sessions, on the user's page: create a token (shown
//! once, on the answer page), revoke one, revoke all (`api::tokens`, whose check decides:
//! the user itself or `manage_users` covering the user); the console sessions listed and
//! ended, one or all (`api::sessions`, the same check).

use super::people::{body, when};
use super::render::{html, redirect_with_notice, Chrome};
use super::user_edit::with_errors;
use super::Viewer;
use crate::api::extract::{Body, Param};
use crate::api::{sessions, tokens, Api};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

/// The routes of this file.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/users/{id}/tokens", post(create))
        .route("/console/users/{id}/tokens/revoke-all", post(revoke_all))
        .route("/console/users/{id}/tokens/{token}/revoke", post(revoke))
        .route(
            "/console/users/{id}/sessions/revoke-all",
            post(revoke_sessions),
        )
        .route(
            "/console/users/{id}/sessions/{session}/revoke",
            post(revoke_session),
        )
}

/// A secret shown once (a new token, a generated system secret).
#[derive(Template)]
#[template(path = "console/people/shown_once.html")]
pub struct ShownOnce {
    pub chrome: Chrome,
    pub what: String,
    pub value: String,
    /// Where to go on.
    pub back: String,
}

/// One console session of a user.
pub struct SessionRow {
    pub id: String,
    pub created: String,
    pub expires: String,
    pub ip: String,
    pub user_agent: String,
}

/// The user's console sessions, when the API lets the viewer see them.
pub async fn sessions(api: &Api, viewer: &Viewer, id: u64) -> Option<Vec<SessionRow>> {
    let listed = sessions::list(viewer.caller(), State(api.clone()), Param(id))
        .await
        .ok()?;
    Some(
        listed
            .0
            .into_iter()
            .map(|s| SessionRow {
                id: s.id.to_string(),
                created: when(Some(s.created_at)),
                expires: when(Some(s.expires_at)),
                ip: s.ip,
                user_agent: s.user_agent,
            })
            .collect(),
    )
}

/// `POST /console/users/{id}/sessions/{session}/revoke`: ends one console session.
pub async fn revoke_session(
    State(api): State<Api>,
    viewer: Viewer,
    Param((id, session)): Param<(u64, u64)>,
) -> Response {
    match sessions::revoke(viewer.caller(), State(api.clone()), Param((id, session))).await {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/users/{id}"),
            "Session ended",
        ),
        Err(problem) => with_errors(&api, &viewer, id, &problem).await,
    }
}

/// `POST /console/users/{id}/sessions/revoke-all`: ends every console session of the user.
pub async fn revoke_sessions(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
) -> Response {
    match sessions::revoke_all(viewer.caller(), State(api.clone()), Param(id)).await {
        Ok(ended) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/users/{id}"),
            &format!("{} session(s) ended", ended.0.ended),
        ),
        Err(problem) => with_errors(&api, &viewer, id, &problem).await,
    }
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    label: String,
    /// Days until it expires; empty: until revoked.
    #[serde(default)]
    days: String,
}

/// `POST /console/users/{id}/tokens`: the token, shown once.
pub async fn create(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<TokenForm>,
) -> Response {
    let expires_at = match form.days.trim() {
        "" => None,
        days => match days.parse::<u64>() {
            Ok(days) => Some(crate::spool::now_ms() / 1000 + days.saturating_mul(86_400)),
            Err(_) => {
                let problem = crate::api::Problem::invalid("expires_at", "a number of days");
                return with_errors(&api, &viewer, id, &problem).await;
            }
        },
    };
    let request = json!({"label": form.label.trim(), "expires_at": expires_at});
    let issued = match body(request) {
        Ok(request) => {
            tokens::create(
                viewer.caller(),
                State(api.clone()),
                Param(id),
                Body(request),
            )
            .await
        }
        Err(problem) => Err(problem),
    };
    match issued {
        Ok((_, issued)) => {
            let issued = issued.0;
            let label = match issued.label.is_empty() {
                true => String::new(),
                false => format!(" ({})", issued.label),
            };
            let page = ShownOnce {
                chrome: Chrome::new(&viewer, "API token created", "/console/users"),
                what: format!("The new API token{label}"),
                value: issued.token,
                back: format!("/console/users/{id}"),
            };
            html(StatusCode::CREATED, &page)
        }
        Err(problem) => with_errors(&api, &viewer, id, &problem).await,
    }
}

/// `POST /console/users/{id}/tokens/{token}/revoke`.
pub async fn revoke(
    State(api): State<Api>,
    viewer: Viewer,
    Param((id, token)): Param<(u64, String)>,
) -> Response {
    match tokens::revoke(viewer.caller(), State(api.clone()), Param((id, token))).await {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/users/{id}"),
            "Token revoked",
        ),
        Err(problem) => with_errors(&api, &viewer, id, &problem).await,
    }
}

/// `POST /console/users/{id}/tokens/revoke-all`.
pub async fn revoke_all(State(api): State<Api>, viewer: Viewer, Param(id): Param<u64>) -> Response {
    match tokens::revoke_all(viewer.caller(), State(api.clone()), Param(id)).await {
        Ok(revoked) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/users/{id}"),
            &format!("{} token(s) revoked", revoked.0.revoked),
        ),
        Err(problem) => with_errors(&api, &viewer, id, &problem).await,
    }
}
