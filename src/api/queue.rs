//! The queue: `GET /api/v1/queue` (filters: `upstream`, `sender`, `recipient`,
//! `deferred`; paging with `after` and `limit`) and `GET /api/v1/queue/{id}` need
//! `view_queue`; `POST /api/v1/queue/{id}/retry` and `DELETE /api/v1/queue/{id}` (with
//! `?bounce=true` to report the pending recipients to the sender) need `manage_queue`.
//!
//! Queue ids are the 16 hex digits of `250 2.0.0 queued as <id>`; times are Unix seconds.
//! A message held back by a sending limit (or the provider's throttling) says why in
//! `waiting`; it is not deferred and its `attempts` do not grow while it waits.
//!
//! Each node has its own spool. `GET /api/v1/queue?nodes=all` adds what the other nodes
//! sharing the store last reported of theirs (each its oldest few hundred messages, at
//! most a couple of seconds old; `node` names where each message is); paging applies to
//! this node's messages.

use super::extract::{blocking, page_limit, Param, QueryOf};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::spool::{show_id, Meta, QueueFilter, QueueId, RcptStatus};
use crate::store::QueuedEntry;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// A queued message as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueuedView {
    pub id: String,
    /// The node whose spool holds it.
    pub node: String,
    pub mail_from: String,
    pub upstream: String,
    pub principal: Option<String>,
    pub size: u64,
    pub received_at: u64,
    pub attempts: u32,
    pub next_attempt_at: u64,
    pub expires_at: u64,
    pub is_dsn: bool,
    pub recipients: Vec<RecipientView>,
    /// Why it waits for a sending limit of its upstream or account (`waiting: 30
    /// messages/minute for support@contoso.com`); absent when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

/// One recipient of a queued message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecipientView {
    pub address: String,
    pub status: RcptStatus,
    pub last_reply: Option<String>,
}

impl QueuedView {
    /// A message of this node's spool (`node`), waiting for a limit as `waiting` says.
    fn on(node: &str, meta: Meta, waiting: Option<String>) -> QueuedView {
        QueuedView {
            waiting,
            id: show_id(meta.id),
            node: node.to_string(),
            mail_from: meta.mail_from,
            upstream: meta.upstream,
            principal: meta.principal,
            size: meta.size,
            received_at: meta.received_at / 1000,
            attempts: meta.attempts,
            next_attempt_at: meta.due_at / 1000,
            expires_at: meta.expires_at / 1000,
            is_dsn: meta.is_dsn,
            recipients: meta
                .rcpts
                .into_iter()
                .map(|r| RecipientView {
                    address: r.address,
                    status: r.status,
                    last_reply: r.last_reply,
                })
                .collect(),
        }
    }
}

/// Query of `GET /api/v1/queue`.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    upstream: Option<String>,
    sender: Option<String>,
    recipient: Option<String>,
    #[serde(default)]
    deferred: bool,
    after: Option<String>,
    limit: Option<usize>,
    /// `all`: every node's queue; absent: this node's.
    nodes: Option<String>,
}

impl QueuedView {
    /// A message another node reported.
    fn reported(node: &str, entry: QueuedEntry) -> QueuedView {
        QueuedView {
            id: entry.id,
            node: node.to_string(),
            mail_from: entry.mail_from,
            upstream: entry.upstream,
            principal: None,
            size: 0,
            received_at: entry.received_at,
            attempts: entry.attempts,
            next_attempt_at: entry.next_attempt_at,
            expires_at: 0,
            is_dsn: false,
            waiting: None,
            recipients: entry
                .pending
                .into_iter()
                .map(|address| RecipientView {
                    address,
                    status: RcptStatus::Pending,
                    last_reply: None,
                })
                .collect(),
        }
    }

    /// Whether `filter` (lower-cased: `QueueFilter::lowered`) admits it, as it admits
    /// this node's messages.
    fn admitted_by(&self, filter: &QueueFilter) -> bool {
        let rcpts = self.recipients.iter().map(|r| r.address.as_str());
        filter.admits(&self.upstream, &self.mail_from, rcpts, self.attempts)
    }
}

/// A queue id from the path or a query (404 for one that cannot be an id).
fn parse_id(text: &str) -> Result<QueueId, Problem> {
    QueueId::from_str_radix(text, 16)
        .map_err(|_| Problem::not_found(format!("queued message {text:?}")))
}

/// `GET /api/v1/queue` — permission `view_queue`. Oldest first.
#[utoipa::path(
    get, path = "/api/v1/queue", tag = "queue", params(ListQuery),
    responses((status = 200, body = [QueuedView]), Problems)
)]
pub async fn list(
    caller: Caller,
    State(api): State<Api>,
    QueryOf(query): QueryOf<ListQuery>,
) -> Result<Json<Vec<QueuedView>>, Problem> {
    caller.require("view_queue")?;
    let limit = page_limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = match &query.after {
        Some(text) => QueueId::from_str_radix(text, 16)
            .map_err(|_| Problem::invalid("after", "a queue id (hex digits)"))?,
        None => 0,
    };
    let filter = QueueFilter {
        after,
        upstream: query.upstream,
        sender: query.sender,
        recipient: query.recipient,
        deferred: query.deferred,
        limit,
    };
    let all_nodes = match query.nodes.as_deref() {
        None => false,
        Some("all") => true,
        Some(_) => return Err(Problem::invalid("nodes", "\"all\" or absent")),
    };
    let (queue, store) = (api.state.queue.clone(), api.store().clone());
    let found = blocking(move || {
        let node = store.node().to_string();
        let mut found: Vec<QueuedView> = queue
            .list(&filter)
            .into_iter()
            .map(|m| {
                let waiting = queue.waiting(m.id);
                QueuedView::on(&node, m, waiting)
            })
            .collect();
        if all_nodes {
            let filter = filter.lowered();
            for record in store.nodes().all()?.into_iter().filter(|r| r.node != node) {
                let node = record.node;
                found.extend(
                    record
                        .queue
                        .into_iter()
                        .map(|e| QueuedView::reported(&node, e))
                        .filter(|v| v.admitted_by(&filter)),
                );
            }
        }
        Ok(found)
    })
    .await?;
    Ok(Json(found))
}

/// `GET /api/v1/queue/{id}` — permission `view_queue`: the envelope and where each
/// recipient stands.
#[utoipa::path(
    get, path = "/api/v1/queue/{id}", tag = "queue", params(("id" = String, Path, description = "queue id, 16 hex digits")),
    responses((status = 200, body = QueuedView), Problems)
)]
pub async fn show(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<String>,
) -> Result<Json<QueuedView>, Problem> {
    caller.require("view_queue")?;
    let meta = api
        .state
        .queue
        .show(parse_id(&id)?)
        .ok_or_else(|| Problem::not_found(format!("queued message {id}")))?;
    let waiting = api.state.queue.waiting(meta.id);
    Ok(Json(QueuedView::on(api.store().node(), meta, waiting)))
}

/// `POST /api/v1/queue/{id}/retry` — permission `manage_queue`. 202: the attempt starts
/// now (or is already under way).
#[utoipa::path(
    post, path = "/api/v1/queue/{id}/retry", tag = "queue", params(("id" = String, Path, description = "queue id, 16 hex digits")),
    responses((status = 202, body = Retrying), Problems)
)]
pub async fn retry(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<String>,
) -> Result<(StatusCode, Json<Retrying>), Problem> {
    caller.require("manage_queue")?;
    let queue_id = parse_id(&id)?;
    if !api.state.queue.retry(queue_id) {
        return Err(Problem::not_found(format!("queued message {id}")));
    }
    let target = format!("queue/{}", show_id(queue_id));
    api.audit(&caller, "queue.retry", target, None::<&()>, None::<&()>)
        .await?;
    let body = Retrying {
        id: show_id(queue_id),
        retrying: true,
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// The answer of a retry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Retrying {
    id: String,
    retrying: bool,
}

/// Query of `DELETE /api/v1/queue/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    bounce: bool,
}

/// `DELETE /api/v1/queue/{id}` — permission `manage_queue`. Answers the message as it
/// was; with `bounce=true` its pending recipients were reported to the sender in a DSN.
#[utoipa::path(
    delete, path = "/api/v1/queue/{id}", tag = "queue", params(("id" = String, Path, description = "queue id, 16 hex digits"), DeleteQuery),
    responses((status = 200, body = QueuedView), Problems)
)]
pub async fn delete(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<String>,
    QueryOf(query): QueryOf<DeleteQuery>,
) -> Result<Json<QueuedView>, Problem> {
    caller.require("manage_queue")?;
    let queue_id = parse_id(&id)?;
    let meta = api
        .state
        .queue
        .delete(queue_id, query.bounce)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::not_found(format!("queued message {id}")))?;
    let view = QueuedView::on(api.store().node(), meta, None);
    let action = match query.bounce {
        true => "queue.bounce",
        false => "queue.delete",
    };
    let target = format!("queue/{}", view.id);
    api.audit(&caller, action, target, Some(&view), None::<&()>)
        .await?;
    tracing::info!(queue_id = %view.id, bounce = query.bounce, by = caller.name(), "queued message deleted");
    Ok(Json(view))
}
