//! The nodes sharing the store: `GET /api/v1/nodes` (permission `view_queue`) lists each
//! node's last record (when it was last seen, whether it drains, its queue depth);
//! `POST /api/v1/nodes/{node}/drain` and `POST /api/v1/nodes/{node}/resume` (permission
//! `manage_queue`, audited) ask a node to drain — accept no mail and hand its queue to the
//! other nodes — or to take mail again. The node follows within a second or two.

use super::extract::{blocking, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::store::NodeRecord;
use axum::extract::State;
use axum::Json;
use serde::Serialize;

/// A node as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NodeView {
    pub node: String,
    pub started_at: u64,
    pub seen_at: u64,
    /// Seconds since it last wrote its record (a node not seen for a while is down).
    pub seen_secs_ago: u64,
    pub draining: bool,
    pub queue_depth: u64,
    /// This is the node answering.
    pub this_node: bool,
}

fn view(record: NodeRecord, this: &str, now: u64) -> NodeView {
    NodeView {
        this_node: record.node == this,
        seen_secs_ago: now.saturating_sub(record.seen_at),
        node: record.node,
        started_at: record.started_at,
        seen_at: record.seen_at,
        draining: record.draining,
        queue_depth: record.queue_depth,
    }
}

/// `GET /api/v1/nodes` — permission `view_queue`.
#[utoipa::path(
    get, path = "/api/v1/nodes", tag = "queue",
    responses((status = 200, body = [NodeView]), Problems)
)]
pub async fn list(caller: Caller, State(api): State<Api>) -> Result<Json<Vec<NodeView>>, Problem> {
    caller.require("view_queue")?;
    let store = api.store().clone();
    let records = blocking(move || Ok(store.nodes().all()?)).await?;
    let (this, now) = (
        api.store().node().to_string(),
        crate::spool::now_ms() / 1000,
    );
    Ok(Json(
        records.into_iter().map(|r| view(r, &this, now)).collect(),
    ))
}

/// `POST /api/v1/nodes/{node}/drain` — permission `manage_queue`. 404 for a node that
/// never ran on this store.
#[utoipa::path(
    post, path = "/api/v1/nodes/{node}/drain", tag = "queue", params(("node" = String, Path, description = "node name")),
    responses((status = 200, body = NodeView), Problems)
)]
pub async fn drain(
    caller: Caller,
    State(api): State<Api>,
    Param(node): Param<String>,
) -> Result<Json<NodeView>, Problem> {
    set(caller, api, node, true).await
}

/// `POST /api/v1/nodes/{node}/resume` — permission `manage_queue`.
#[utoipa::path(
    post, path = "/api/v1/nodes/{node}/resume", tag = "queue", params(("node" = String, Path, description = "node name")),
    responses((status = 200, body = NodeView), Problems)
)]
pub async fn resume(
    caller: Caller,
    State(api): State<Api>,
    Param(node): Param<String>,
) -> Result<Json<NodeView>, Problem> {
    set(caller, api, node, false).await
}

async fn set(
    caller: Caller,
    api: Api,
    node: String,
    draining: bool,
) -> Result<Json<NodeView>, Problem> {
    caller.require("manage_queue")?;
    let store = api.store().clone();
    let name = node.clone();
    let record = blocking(move || Ok(store.nodes().set_draining(&name, draining)?))
        .await?
        .ok_or_else(|| Problem::not_found(format!("node {node:?}")))?;
    let action = match draining {
        true => "node.drain",
        false => "node.resume",
    };
    let after = serde_json::json!({ "draining": draining });
    api.audit(
        &caller,
        action,
        format!("node/{node}"),
        None::<&()>,
        Some(&after),
    )
    .await?;
    tracing::warn!(%node, draining, by = caller.name(), "node drain asked");
    let (this, now) = (
        api.store().node().to_string(),
        crate::spool::now_ms() / 1000,
    );
    Ok(Json(view(record, &this, now)))
}
