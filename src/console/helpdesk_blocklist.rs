//! The blocklist (`/console/blocklist`): the entries (filter, pages), adding an address or
//! a domain with a reason, removing one. All through `api::blocklist` as the session's
//! user; a refused entry is shown beside its field with the API's reason.

use super::helpdesk::{body_of, page_number, paginate, query_string, staff_only, when, Pager};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::extract::{Body, Param};
use crate::api::{blocklist, Api};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

/// The routes of this page group.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/blocklist", get(list).post(add))
        .route("/console/blocklist/remove", post(remove))
}

/// The list's filter.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Filters {
    q: String,
    page: String,
}

/// One entry.
pub struct Row {
    pub entry: String,
    pub kind: String,
    pub reason: String,
    pub by: String,
    pub created: String,
}

/// The add form (kept when refused).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AddForm {
    entry: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "console/helpdesk/blocklist.html")]
struct ListPage {
    chrome: Chrome,
    errors: Errors,
    q: String,
    rows: Vec<Row>,
    pager: Pager,
    form: AddForm,
}

/// `GET /console/blocklist`.
async fn list(State(api): State<Api>, viewer: Viewer, Query(f): Query<Filters>) -> Response {
    page(
        &api,
        &viewer,
        f,
        AddForm::default(),
        StatusCode::OK,
        Errors::none(),
    )
    .await
}

async fn page(
    api: &Api,
    viewer: &Viewer,
    f: Filters,
    form: AddForm,
    status: StatusCode,
    errors: Errors,
) -> Response {
    if let Some(refused) = staff_only(viewer) {
        return refused;
    }
    let found = match blocklist::list(viewer.caller(), State(api.clone())).await {
        Ok(found) => found.0,
        Err(problem) => return problem_page(viewer, &problem),
    };
    let text = f.q.trim().to_lowercase();
    let rows: Vec<Row> = found
        .into_iter()
        .filter(|e| {
            text.is_empty() || e.entry.contains(&text) || e.reason.to_lowercase().contains(&text)
        })
        .map(|e| Row {
            kind: format!("{:?}", e.kind).to_lowercase(),
            entry: e.entry,
            reason: e.reason,
            by: e.created_by,
            created: when(e.created_at),
        })
        .collect();
    let filters = query_string(&[("q", &f.q)]);
    let (rows, pager) = paginate(rows, page_number(&f.page), "/console/blocklist", &filters);
    let page = ListPage {
        chrome: Chrome::new(viewer, "Blocklist", "/console/blocklist"),
        errors,
        q: f.q,
        rows,
        pager,
        form,
    };
    html(status, &page)
}

/// `POST /console/blocklist`: adds an entry.
async fn add(State(api): State<Api>, viewer: Viewer, Form(form): Form<AddForm>) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    let added = match body_of(json!({"entry": form.entry.trim(), "reason": form.reason})) {
        Ok(body) => blocklist::add(viewer.caller(), State(api.clone()), Body(body)).await,
        Err(problem) => Err(problem),
    };
    match added {
        Ok((_, entry)) => redirect_with_notice(
            &api.state.console.settings,
            "/console/blocklist",
            &format!("{} is blocked", entry.0.entry),
        ),
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            let errors = Errors::from_problem(&problem);
            page(&api, &viewer, Filters::default(), form, status, errors).await
        }
    }
}

/// The remove form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RemoveForm {
    entry: String,
}

/// `POST /console/blocklist/remove`.
async fn remove(State(api): State<Api>, viewer: Viewer, Form(form): Form<RemoveForm>) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    let entry = form.entry.clone();
    match blocklist::remove(viewer.caller(), State(api.clone()), Param(form.entry)).await {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            "/console/blocklist",
            &format!("{entry} is no longer blocked"),
        ),
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            let errors = Errors::from_problem(&problem);
            let f = Filters::default();
            page(&api, &viewer, f, AddForm::default(), status, errors).await
        }
    }
}
