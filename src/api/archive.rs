//! The archive (SPEC §8, §9): `GET /api/v1/archive` lists kept messages (filters:
//! `account`, `direction`, `address`, `ticket`, `since`/`until`; paging with `after` and
//! `limit`), `GET /api/v1/archive/{id}` shows one message's metadata and
//! `GET /api/v1/archive/{id}/raw` downloads it as `message/rfc822`.
//!
//! Who may read a kept message: admins, holders of the `access` grant on the account it
//! went through or arrived for (the account rules' `may_access`: its owner, an `access`
//! grant to the user or one of its roles), and the users whose mail it is (its `owners`).
//! A message the caller may not read is left out of listings, and is a 404 on its own
//! (its existence is not revealed).
//!
//! Ids are the 16 hex digits of the queue id the message was accepted under (`250 2.0.0
//! queued as <id>`); times are Unix seconds.

use super::account_rules::may_access;
use super::extract::{blocking, page_limit, Param, QueryOf};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::archive::read::{self, Filter};
use crate::archive::ArchiveError;
use crate::policy::Snapshot;
use crate::spool::{show_id, QueueId};
use crate::store::{ArchivedMessage, Direction};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// A kept message as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArchivedView {
    /// The queue id it was accepted under (16 hex digits).
    pub id: String,
    pub direction: Direction,
    /// The users whose mail it is.
    pub owners: Vec<u64>,
    /// The email account it went through (outbound) or arrived for (inbound).
    pub account: Option<u64>,
    /// Envelope sender (empty for `<>`) and recipients.
    pub mail_from: String,
    pub rcpts: Vec<String>,
    /// Header fields.
    pub from: String,
    pub subject: String,
    pub date: Option<String>,
    pub message_id: Option<String>,
    /// Tickets it is linked to.
    pub tickets: Vec<u64>,
    /// When it was accepted, and when its retention ends (`null`: never); Unix seconds.
    pub received_at: u64,
    pub expires_at: Option<u64>,
    /// Octets of the message.
    pub size: u64,
}

impl From<ArchivedMessage> for ArchivedView {
    fn from(m: ArchivedMessage) -> ArchivedView {
        ArchivedView {
            id: show_id(m.id),
            direction: m.direction,
            owners: m.owners,
            account: m.account,
            mail_from: m.mail_from,
            rcpts: m.rcpts,
            from: m.from,
            subject: m.subject,
            date: m.date,
            message_id: m.message_id,
            tickets: m.tickets,
            received_at: m.received_at / 1000,
            expires_at: m.expires_at.map(|at| at / 1000),
            size: m.size,
        }
    }
}

/// Query of `GET /api/v1/archive`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ArchiveQuery {
    /// Account id: the messages that went through (or arrived for) it.
    account: Option<u64>,
    direction: Option<Direction>,
    /// The envelope sender, header `From` or a recipient is this address.
    address: Option<String>,
    /// Ticket id: the messages linked to it.
    ticket: Option<u64>,
    /// Accepted at or after (Unix seconds).
    since: Option<u64>,
    /// Accepted before (Unix seconds).
    until: Option<u64>,
    /// The last id of the previous page.
    after: Option<String>,
    limit: Option<usize>,
}

/// Whether `caller` may read `message`: admin, one of its owners, or the `access` right on
/// its account.
fn may_read(caller: &Caller, snapshot: &Snapshot, message: &ArchivedMessage) -> bool {
    caller.is_admin()
        || caller.id().is_some_and(|id| message.owners.contains(&id))
        || message
            .account
            .and_then(|id| snapshot.account(id))
            .is_some_and(|account| may_access(caller, account))
}

/// An id from the path (404 for one that cannot be an id).
fn parse_id(text: &str) -> Result<QueueId, Problem> {
    QueueId::from_str_radix(text, 16)
        .map_err(|_| Problem::not_found(format!("archived message {text:?}")))
}

fn gone(id: &str) -> Problem {
    Problem::not_found(format!("archived message {id}"))
}

/// `GET /api/v1/archive` — any authenticated caller; the messages it may read, ascending
/// by id.
#[utoipa::path(
    get, path = "/api/v1/archive", tag = "archive", params(ArchiveQuery),
    responses((status = 200, body = [ArchivedView]), Problems)
)]
pub async fn list(
    caller: Caller,
    State(api): State<Api>,
    QueryOf(query): QueryOf<ArchiveQuery>,
) -> Result<Json<Vec<ArchivedView>>, Problem> {
    let limit = page_limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = match &query.after {
        Some(text) => QueueId::from_str_radix(text, 16)
            .map_err(|_| Problem::invalid("after", "an archived message id (hex digits)"))?,
        None => 0,
    };
    let ms = |secs: u64| secs.saturating_mul(1000);
    let filter = Filter {
        after,
        account: query.account,
        direction: query.direction,
        address: query.address.filter(|a| !a.trim().is_empty()),
        ticket: query.ticket,
        since: query.since.map(ms),
        until: query.until.map(ms),
        limit,
    };
    let (store, snapshot) = (api.store().clone(), api.snapshot());
    let found = blocking(move || {
        let now = crate::spool::now_ms();
        Ok(read::list(&store, &filter, now, |m| {
            may_read(&caller, &snapshot, m)
        })?)
    })
    .await?;
    Ok(Json(found.into_iter().map(ArchivedView::from).collect()))
}

/// `GET /api/v1/archive/{id}` — a kept message's metadata, for those who may read it.
#[utoipa::path(
    get, path = "/api/v1/archive/{id}", tag = "archive",
    params(("id" = String, Path, description = "queue id (16 hex digits)")),
    responses((status = 200, body = ArchivedView), Problems)
)]
pub async fn show(
    caller: Caller,
    State(api): State<Api>,
    Param(text): Param<String>,
) -> Result<Json<ArchivedView>, Problem> {
    let id = parse_id(&text)?;
    let (store, snapshot) = (api.store().clone(), api.snapshot());
    let found = blocking(move || {
        let now = crate::spool::now_ms();
        Ok(read::find(&store, id, now, |m| {
            may_read(&caller, &snapshot, m)
        })?)
    })
    .await?;
    found.map(|m| Json(m.into())).ok_or_else(|| gone(&text))
}

/// `GET /api/v1/archive/{id}/raw` — the message as it was kept (`message/rfc822`), for
/// those who may read it; each download is in the audit log (`archive.read`).
#[utoipa::path(
    get, path = "/api/v1/archive/{id}/raw", tag = "archive",
    params(("id" = String, Path, description = "queue id (16 hex digits)")),
    responses((status = 200, content_type = "message/rfc822", body = Vec<u8>), Problems)
)]
pub async fn raw(
    caller: Caller,
    State(api): State<Api>,
    Param(text): Param<String>,
) -> Result<impl IntoResponse, Problem> {
    let id = parse_id(&text)?;
    let reader = caller.clone();
    let (catalog, snapshot): (_, Arc<Snapshot>) = (api.state.archive.clone(), api.snapshot());
    let found = blocking(move || {
        let now = crate::spool::now_ms();
        read::raw(&catalog, id, now, |m| may_read(&caller, &snapshot, m)).map_err(problem)
    })
    .await?;
    let (message, bytes) = found.ok_or_else(|| gone(&text))?;
    // Reading someone's mail leaves a trace.
    let target = format!("archive/{}", show_id(message.id));
    api.audit(&reader, "archive.read", target, None::<&()>, None::<&()>)
        .await?;
    let name = format!("attachment; filename=\"{}.eml\"", show_id(message.id));
    Ok((
        [
            (header::CONTENT_TYPE, "message/rfc822".to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    ))
}

fn problem(error: ArchiveError) -> Problem {
    match error {
        ArchiveError::Store(store) => store.into(),
        elsewhere @ ArchiveError::OnNode { .. } => Problem::new(
            axum::http::StatusCode::MISDIRECTED_REQUEST,
            elsewhere.to_string(),
        ),
        other => Problem::internal(other),
    }
}
