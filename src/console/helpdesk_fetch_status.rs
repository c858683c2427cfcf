//! What fetching a helpdesk mailbox's mail is doing, on the inbound settings page
//! (`/console/accounts/{id}/inbound`): the state, the last error and the set-aside
//! messages with their Retry and Move buttons (`POST /console/accounts/{id}/fetch/retry`
//! and `…/move`, the message's key in the form), carried out by
//! `api::account_fetch_status`, which decides who may.

use super::helpdesk_fetch::name_of;
use super::helpdesk_inbound::{page, InboundForm};
use super::render::{redirect_with_notice, when, Errors};
use super::Viewer;
use crate::api::account_fetch_status::{self as status, FetchView, MoveTo};
use crate::api::extract::{Body, Param};
use crate::api::{Api, Problem};
use crate::store::{Fetch, FetchKind, SetAsideRequest};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use axum_extra::extract::Form;
use serde::Deserialize;

/// The routes of the set-aside buttons.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/accounts/{id}/fetch/retry", post(retry))
        .route("/console/accounts/{id}/fetch/move", post(move_to))
}

/// What fetching is doing, as the page shows it.
pub struct FetchShown {
    pub state: String,
    pub since: String,
    pub last_error: Option<String>,
    pub last_message: String,
    pub messages: u64,
    /// IMAP: `UIDVALIDITY 7, last UID 42`.
    pub position: Option<String>,
    pub set_aside: Vec<SetAsideRow>,
}

/// One set-aside message on the page.
pub struct SetAsideRow {
    pub key: String,
    pub reason: String,
    pub attempts: u32,
    pub since: String,
    pub next_try: String,
    /// `retry asked`, `move to X asked`.
    pub requested: Option<String>,
}

impl From<FetchView> for FetchShown {
    fn from(view: FetchView) -> FetchShown {
        let state = name_of(view.state);
        let position = view
            .uidvalidity
            .zip(view.last_uid)
            .map(|(validity, uid)| format!("UIDVALIDITY {validity}, last UID {uid}"));
        let set_aside = view
            .set_aside
            .into_iter()
            .map(|s| SetAsideRow {
                requested: s.requested.map(|r| match r {
                    SetAsideRequest::Retry => "retry asked".to_string(),
                    SetAsideRequest::Move { folder } => format!("move to {folder} asked"),
                }),
                key: s.message.key,
                reason: s.message.reason,
                attempts: s.message.attempts,
                since: when(s.message.since),
                next_try: when(s.message.next_try),
            })
            .collect();
        FetchShown {
            state,
            since: view.since.map(when).unwrap_or_default(),
            last_error: view.last_error,
            last_message: view.last_message_at.map_or_else(|| "none yet".into(), when),
            messages: view.messages,
            position,
            set_aside,
        }
    }
}

/// The fetch status of account `id` as the viewer may see it (`None`: no fetching, or
/// not for this viewer).
pub async fn status_of(api: &Api, viewer: &Viewer, id: u64) -> Option<FetchShown> {
    status::show(viewer.caller(), State(api.clone()), Param(id))
        .await
        .ok()
        .map(|v| v.0.into())
}

/// Whether the stored settings can move messages (not POP3), for the Move buttons.
pub fn can_move(fetch: Option<&Fetch>) -> bool {
    fetch.is_some_and(|f| f.kind != FetchKind::Pop3)
}

/// The form of a set-aside button.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SetAsideForm {
    key: String,
    folder: String,
}

/// `POST /console/accounts/{id}/fetch/retry`.
async fn retry(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<SetAsideForm>,
) -> Response {
    let param = Param((id, form.key.clone()));
    let done = status::retry(viewer.caller(), State(api.clone()), param).await;
    answer(&api, &viewer, id, done.map(drop), "Retry asked").await
}

/// `POST /console/accounts/{id}/fetch/move`.
async fn move_to(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<SetAsideForm>,
) -> Response {
    let param = Param((id, form.key.clone()));
    let body = Body(MoveTo {
        folder: form.folder.clone(),
    });
    let done = status::move_to(viewer.caller(), State(api.clone()), param, body).await;
    answer(&api, &viewer, id, done.map(drop), "Move asked").await
}

async fn answer(
    api: &Api,
    viewer: &Viewer,
    id: u64,
    done: Result<(), Problem>,
    notice: &str,
) -> Response {
    match done {
        Ok(()) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/accounts/{id}/inbound"),
            notice,
        ),
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            let errors = Errors::from_problem(&problem);
            page(api, viewer, id, None::<InboundForm>, status, errors).await
        }
    }
}
