//! The audit log (`/console/audit`): newest first, filtered by actor, action (exact, or a
//! resource prefix such as `user.`) and target, paged on the server, through
//! `api::audit::list` (permission `admin`, as the API decides). Each entry shows the
//! object before and after the change, secrets already redacted by the API.

use super::people::{body, given, when};
use super::render::{html, problem_page, Chrome, Errors};
use super::Viewer;
use crate::api::extract::QueryOf;
use crate::api::{audit, Api};
use crate::store::AuditEntry;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;

/// Entries on one page.
const PAGE: usize = 50;

/// The routes of this file.
pub fn routes() -> Router<Api> {
    Router::new().route("/console/audit", get(list))
}

/// The filters and page.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    before: Option<u64>,
}

/// One entry as shown.
pub struct Row {
    pub id: u64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: String,
    pub after: String,
}

#[derive(Template)]
#[template(path = "console/audit/list.html")]
struct ListPage {
    chrome: Chrome,
    actor: String,
    action: String,
    target: String,
    rows: Vec<Row>,
    errors: Errors,
    next: Option<u64>,
    first_page: bool,
}

impl ListPage {
    fn filters(&self) -> String {
        serde_urlencoded::to_string([
            ("actor", self.actor.as_str()),
            ("action", self.action.as_str()),
            ("target", self.target.as_str()),
        ])
        .unwrap_or_default()
    }
}

/// `GET /console/audit`.
pub async fn list(
    State(api): State<Api>,
    viewer: Viewer,
    Query(query): Query<ListQuery>,
) -> Response {
    let asked = json!({
        "actor": given(&query.actor),
        "action": given(&query.action),
        "target": given(&query.target),
        "before": query.before.unwrap_or(u64::MAX),
        "limit": PAGE + 1,
    });
    let mut page = ListPage {
        chrome: Chrome::new(&viewer, "Audit log", "/console/audit"),
        actor: given(&query.actor).unwrap_or_default(),
        action: given(&query.action).unwrap_or_default(),
        target: given(&query.target).unwrap_or_default(),
        rows: Vec::new(),
        errors: Errors::none(),
        next: None,
        first_page: query.before.is_none(),
    };
    let listed = match body(asked) {
        Ok(asked) => audit::list(viewer.caller(), State(api), QueryOf(asked)).await,
        Err(problem) => Err(problem),
    };
    let mut found = match listed {
        Ok(found) => found.0,
        Err(problem) if problem.status == 403 => return problem_page(&viewer, &problem),
        Err(problem) => {
            page.errors = Errors::from_problem(&problem);
            return html(StatusCode::OK, &page);
        }
    };
    if found.len() > PAGE {
        found.truncate(PAGE);
        page.next = found.last().map(|e| e.id);
    }
    page.rows = found.into_iter().map(row).collect();
    html(StatusCode::OK, &page)
}

fn row(entry: AuditEntry) -> Row {
    let pretty = |value: Option<serde_json::Value>| {
        value
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_default()
    };
    Row {
        id: entry.id,
        at: when(Some(entry.at)),
        actor: entry.actor,
        action: entry.action,
        target: entry.target,
        before: pretty(entry.before),
        after: pretty(entry.after),
    }
}
