//! What a helpdesk mailbox's fetching is doing (SPEC §7, `fetch`):
//! `GET /api/v1/accounts/{id}/fetch` — the state of the fetcher on this node (from
//! `fetch::StatusBook`), how far it got and the messages set aside (from the stored fetch
//! state) — and the two things one may ask of a set-aside message:
//! `POST …/fetch/set_aside/{key}/retry` and `POST …/fetch/set_aside/{key}/move`. The
//! requests are written to the store (`FetchStates::request`) and carried out by the node
//! that fetches the mailbox; this node's fetcher is woken for them. Nothing here talks to
//! the mail server.

use super::account_fetch::{is_folder, FOLDER_RULE};
use super::account_rules::require_setup;
use super::accounts::visible;
use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::fetch::Phase;
use crate::store::{Account, FetchKind, SetAside, SetAsideRequest};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

/// The fetcher's state as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FetchPhase {
    Connecting,
    /// Connected, reading new messages.
    Fetching,
    /// Waiting in IMAP IDLE.
    Idle,
    /// Waiting for the next look (no IDLE, POP3, Graph).
    Polling,
    /// The last session failed (`last_error`); waiting to try again.
    Failing,
    /// Another node holds the mailbox's lease and fetches it.
    Standby,
    /// No fetcher runs on this node (just started or changed: it starts within seconds).
    Stopped,
}

impl From<Phase> for FetchPhase {
    fn from(phase: Phase) -> FetchPhase {
        match phase {
            Phase::Connecting => FetchPhase::Connecting,
            Phase::Fetching => FetchPhase::Fetching,
            Phase::Idle => FetchPhase::Idle,
            Phase::Polling => FetchPhase::Polling,
            Phase::Failing => FetchPhase::Failing,
            Phase::Standby => FetchPhase::Standby,
        }
    }
}

/// `GET /api/v1/accounts/{id}/fetch` (and the `fetch` member of the account's status).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FetchView {
    pub state: FetchPhase,
    /// Unix seconds since the state holds (none when stopped).
    pub since: Option<u64>,
    /// Why the last session failed, kept until the next failure.
    pub last_error: Option<String>,
    /// Unix seconds of the last message taken on this node.
    pub last_message_at: Option<u64>,
    /// Messages taken since this node started.
    pub messages: u64,
    /// IMAP: the folder's UIDVALIDITY and the highest UID recorded or set aside.
    pub uidvalidity: Option<u32>,
    pub last_uid: Option<u32>,
    /// The messages that could not be fetched or read, tried again with backoff.
    pub set_aside: Vec<SetAsideView>,
}

/// A set-aside message, and what was asked of it and not yet carried out.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SetAsideView {
    #[serde(flatten)]
    pub message: SetAside,
    /// A retry or move asked through the API, waiting for the fetcher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<SetAsideRequest>,
}

/// Body of `POST …/move`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveTo {
    /// The folder at the server (created when missing).
    pub folder: String,
}

/// The answer of a retry or move: asked, carried out by the fetching node.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Requested {
    pub key: String,
    pub requested: SetAsideRequest,
}

/// What `account`'s fetching is doing; `None` when it has no `inbound.fetch`. Blocking
/// (store reads).
pub fn view(api: &Api, account: &Account) -> Result<Option<FetchView>, Problem> {
    let Some(fetch) = account.inbound.as_ref().and_then(|i| i.fetch.as_ref()) else {
        return Ok(None);
    };
    let status = api.state.fetchers.status().get(account.id);
    let states = api.store().fetch_states();
    // A state kept for other settings (another server, login or folder) is started afresh.
    let stored = states
        .get(account.id)?
        .filter(|s| Some(&s.source) == account.fetch_source().as_ref())
        .unwrap_or_default();
    let requests = states.requests(account.id)?;
    let imap = fetch.kind == FetchKind::Imap && stored.uidvalidity != 0;
    let set_aside = stored
        .set_aside
        .into_iter()
        .map(|message| SetAsideView {
            requested: requests
                .iter()
                .find(|(key, _)| *key == message.key)
                .map(|(_, r)| r.clone()),
            message,
        })
        .collect();
    Ok(Some(FetchView {
        state: status
            .as_ref()
            .map_or(FetchPhase::Stopped, |s| s.state.into()),
        since: status.as_ref().map(|s| s.since),
        last_error: status.as_ref().and_then(|s| s.last_error.clone()),
        last_message_at: status.as_ref().and_then(|s| s.last_message_at),
        messages: status.as_ref().map_or(0, |s| s.messages),
        uidvalidity: imap.then_some(stored.uidvalidity),
        last_uid: imap.then_some(stored.last_uid),
        set_aside,
    }))
}

/// `GET /api/v1/accounts/{id}/fetch` — whoever may see the account. 404 when the account
/// fetches nothing. The state is this node's fetcher's (`stopped` when none runs here;
/// `standby` when another node fetches).
#[utoipa::path(
    get, path = "/api/v1/accounts/{id}/fetch", tag = "accounts", params(("id" = u64, Path, description = "numeric id")),
    responses((status = 200, body = FetchView), Problems)
)]
pub async fn show(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<FetchView>, Problem> {
    let account = visible(&caller, &api, id)?;
    view(&api, &account)?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("fetch settings of account {id}")))
}

/// `POST /api/v1/accounts/{id}/fetch/set_aside/{key}/retry` — the account's `setup`
/// right. 202: the fetcher tries the message again at its next look (now, on this node).
#[utoipa::path(
    post, path = "/api/v1/accounts/{id}/fetch/set_aside/{key}/retry", tag = "accounts",
    params(("id" = u64, Path, description = "numeric id"), ("key" = String, Path, description = "the set-aside message's key")),
    responses((status = 202, body = Requested), Problems)
)]
pub async fn retry(
    caller: Caller,
    State(api): State<Api>,
    Param((id, key)): Param<(u64, String)>,
) -> Result<(StatusCode, Json<Requested>), Problem> {
    ask(&caller, &api, id, key, SetAsideRequest::Retry).await
}

/// `POST /api/v1/accounts/{id}/fetch/set_aside/{key}/move` — the account's `setup` right.
/// 202: the fetcher moves the message to `folder` at the server and forgets it. Not for
/// POP3 (422: no folders).
#[utoipa::path(
    post, path = "/api/v1/accounts/{id}/fetch/set_aside/{key}/move", tag = "accounts",
    params(("id" = u64, Path, description = "numeric id"), ("key" = String, Path, description = "the set-aside message's key")),
    request_body = MoveTo,
    responses((status = 202, body = Requested), Problems)
)]
pub async fn move_to(
    caller: Caller,
    State(api): State<Api>,
    Param((id, key)): Param<(u64, String)>,
    Body(body): Body<MoveTo>,
) -> Result<(StatusCode, Json<Requested>), Problem> {
    let folder_name = body.folder.trim().to_string();
    let request = SetAsideRequest::Move {
        folder: folder_name,
    };
    ask(&caller, &api, id, key, request).await
}

/// Checks and writes one request, audits it and wakes the fetcher.
async fn ask(
    caller: &Caller,
    api: &Api,
    id: u64,
    key: String,
    request: SetAsideRequest,
) -> Result<(StatusCode, Json<Requested>), Problem> {
    let _change = api.write_lock().await;
    let account = visible(caller, api, id)?;
    require_setup(caller, &account)?;
    let view = view(api, &account)?
        .ok_or_else(|| Problem::not_found(format!("fetch settings of account {id}")))?;
    let Some(entry) = view.set_aside.iter().find(|s| s.message.key == key) else {
        return Err(Problem::not_found(format!("set-aside message {key:?}")));
    };
    if let SetAsideRequest::Move { folder: name } = &request {
        let kind = account.inbound.as_ref().and_then(|i| i.fetch.as_ref());
        if kind.is_some_and(|f| f.kind == FetchKind::Pop3) {
            return Err(Problem::invalid(
                "folder",
                "POP3 has no folders: retry the message instead",
            ));
        }
        if !is_folder(name) {
            return Err(Problem::invalid("folder", FOLDER_RULE));
        }
    }
    let work = api.clone();
    let (written_key, written) = (key.clone(), request.clone());
    blocking(move || {
        work.store()
            .fetch_states()
            .request(id, &written_key, &written)?;
        Ok(())
    })
    .await?;
    let target = format!("account/{id}/fetch/{key}");
    let action = match request {
        SetAsideRequest::Retry => "account.fetch.retry",
        SetAsideRequest::Move { .. } => "account.fetch.move",
    };
    api.audit(caller, action, target, Some(&entry.message), Some(&request))
        .await?;
    api.state.fetchers.wake(id);
    tracing::info!(account = %account.name, id, key, action, "set-aside message request");
    let answer = Requested {
        key,
        requested: request,
    };
    Ok((StatusCode::ACCEPTED, Json(answer)))
}
