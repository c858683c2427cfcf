//! The archive in the console (`/console/archive`): the kept messages the viewer may read
//! (an administrator everything, an `access` holder a shared mailbox's messages, everyone
//! their own), filtered by account, direction and address and paged on the server; a
//! message's details and its download. All through `api::archive`, which decides who
//! reads what and writes each download into the audit log.

use super::render::{html, problem_page, Chrome};
use super::Viewer;
use crate::api::archive::{self as api_archive, ArchivedView};
use crate::api::extract::{Param, QueryOf};
use crate::api::{me, Api};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

/// Messages per page.
const PAGE: usize = 50;

/// The routes of this file.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/archive", get(list))
        .route("/console/archive/{id}", get(show))
        .route("/console/archive/{id}/raw", get(raw))
}

/// The filter form (every field optional; empty means "any").
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Filters {
    #[serde(default)]
    account: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "console/archive/list.html")]
struct ListPage {
    chrome: Chrome,
    filters: Filters,
    /// (id, name) of the accounts offered in the filter.
    accounts: Vec<(u64, String)>,
    messages: Vec<ArchivedView>,
    /// The query of the next page, when there may be one.
    next: Option<String>,
    error: Option<String>,
}

/// `GET /console/archive`.
async fn list(State(api): State<Api>, viewer: Viewer, Query(filters): Query<Filters>) -> Response {
    let mut query = serde_json::json!({ "limit": PAGE });
    if let Ok(account) = filters.account.parse::<u64>() {
        query["account"] = account.into();
    }
    for (key, value) in [
        ("direction", &filters.direction),
        ("address", &filters.address),
        ("after", &filters.after),
    ] {
        if !value.trim().is_empty() {
            query[key] = value.trim().into();
        }
    }
    let listed = match serde_json::from_value(query) {
        Ok(query) => api_archive::list(viewer.caller(), State(api.clone()), QueryOf(query)).await,
        Err(e) => Err(crate::api::Problem::bad_request(e.to_string())),
    };
    let (messages, error) = match listed {
        Ok(found) => (found.0, None),
        Err(problem) => (Vec::new(), Some(problem.detail)),
    };
    let next = (messages.len() == PAGE).then(|| {
        let last = messages.last().map(|m| m.id.clone()).unwrap_or_default();
        let next = Filters {
            after: last,
            ..filters_clone(&filters)
        };
        serde_urlencoded::to_string(&next).unwrap_or_default()
    });
    let accounts = me::accounts(viewer.caller(), State(api.clone()))
        .await
        .map(|found| found.0.into_iter().map(|a| (a.id, a.name)).collect())
        .unwrap_or_default();
    let status = match error {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    let page = ListPage {
        chrome: Chrome::new(&viewer, "Archive", "/console/archive"),
        filters,
        accounts,
        messages,
        next,
        error,
    };
    html(status, &page)
}

fn filters_clone(f: &Filters) -> Filters {
    Filters {
        account: f.account.clone(),
        direction: f.direction.clone(),
        address: f.address.clone(),
        after: f.after.clone(),
    }
}

#[derive(Template)]
#[template(path = "console/archive/show.html")]
struct ShowPage {
    chrome: Chrome,
    message: ArchivedView,
}

/// `GET /console/archive/{id}`.
async fn show(State(api): State<Api>, viewer: Viewer, Param(id): Param<String>) -> Response {
    match api_archive::show(viewer.caller(), State(api), Param(id)).await {
        Ok(found) => {
            let page = ShowPage {
                chrome: Chrome::new(
                    &viewer,
                    format!("Message {}", found.0.id),
                    "/console/archive",
                ),
                message: found.0,
            };
            html(StatusCode::OK, &page)
        }
        Err(problem) => problem_page(&viewer, &problem),
    }
}

/// `GET /console/archive/{id}/raw`: the download, with the session.
async fn raw(State(api): State<Api>, viewer: Viewer, Param(id): Param<String>) -> Response {
    match api_archive::raw(viewer.caller(), State(api), Param(id)).await {
        Ok(download) => download.into_response(),
        Err(problem) => problem_page(&viewer, &problem),
    }
}
