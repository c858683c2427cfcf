//! Requesters (`/console/requesters`): the list (filter, pages) with **Block requester**
//! and **Block requester and delete tickets** (shown only to holders of
//! `block_unwanted_email`, and of `delete_tickets` for the second), and unblocking. The
//! buttons only spare a viewer a refusal: `api::requesters` decides, and each refusal of
//! SPEC §4 (a system user, the default admin, yourself, a user who is not a requester
//! with a ticket from e-mail, a missing permission) is shown on the list with its status.

use super::helpdesk::{body_of, page_number, paginate, query_string, staff_only, when, Pager};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::extract::{Body, Param};
use crate::api::{requesters, Api, Problem};
use crate::store::UserStatus;
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
        .route("/console/requesters", get(list))
        .route("/console/requesters/{id}/block", post(block))
        .route("/console/requesters/{id}/unblock", post(unblock))
}

/// The list's filters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Filters {
    q: String,
    status: String,
    page: String,
}

/// One requester.
pub struct Row {
    pub id: u64,
    pub login: String,
    pub name: String,
    pub group: String,
    pub status: String,
    pub blocked: bool,
    pub created: String,
}

#[derive(Template)]
#[template(path = "console/helpdesk/requesters.html")]
struct ListPage {
    chrome: Chrome,
    errors: Errors,
    q: String,
    status: String,
    rows: Vec<Row>,
    pager: Pager,
    may_block: bool,
    may_delete: bool,
}

/// `GET /console/requesters`.
async fn list(State(api): State<Api>, viewer: Viewer, Query(f): Query<Filters>) -> Response {
    page(&api, &viewer, f, StatusCode::OK, Errors::none()).await
}

async fn page(
    api: &Api,
    viewer: &Viewer,
    f: Filters,
    status: StatusCode,
    errors: Errors,
) -> Response {
    if let Some(refused) = staff_only(viewer) {
        return refused;
    }
    let found = match requesters::list(viewer.caller(), State(api.clone())).await {
        Ok(found) => found.0,
        Err(problem) => return problem_page(viewer, &problem),
    };
    let text = f.q.trim().to_lowercase();
    let rows: Vec<Row> = found
        .into_iter()
        .rev()
        .filter(|u| {
            text.is_empty()
                || u.login.to_lowercase().contains(&text)
                || u.email.to_lowercase().contains(&text)
                || u.display_name.to_lowercase().contains(&text)
        })
        .map(|u| Row {
            id: u.id,
            blocked: u.status == UserStatus::Blocked,
            status: format!("{:?}", u.status).to_lowercase(),
            login: u.login,
            name: u.display_name,
            group: u.group.unwrap_or_default(),
            created: when(u.created_at),
        })
        .filter(|r| f.status.is_empty() || r.status == f.status)
        .collect();
    let filters = query_string(&[("q", &f.q), ("status", &f.status)]);
    let (rows, pager) = paginate(rows, page_number(&f.page), "/console/requesters", &filters);
    let may_block = viewer.has("block_unwanted_email");
    let page = ListPage {
        chrome: Chrome::new(viewer, "Requesters", "/console/requesters"),
        errors,
        q: f.q,
        status: f.status,
        rows,
        pager,
        may_block,
        may_delete: may_block && viewer.has("delete_tickets"),
    };
    html(status, &page)
}

/// The block form: which button was pressed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BlockForm {
    delete_tickets: String,
}

/// `POST /console/requesters/{id}/block`.
async fn block(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<BlockForm>,
) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    let delete = form.delete_tickets == "true";
    let blocked = match body_of(json!({"delete_tickets": delete})) {
        Ok(body) => {
            requesters::block(viewer.caller(), State(api.clone()), Param(id), Body(body)).await
        }
        Err(problem) => Err(problem),
    };
    match blocked {
        Ok(done) => {
            let done = done.0;
            let notice = match delete {
                true => format!(
                    "{} is blocked; {} ticket(s) deleted",
                    done.user.login,
                    done.deleted_tickets.len()
                ),
                false => format!("{} is blocked", done.user.login),
            };
            redirect_with_notice(&api.state.console.settings, "/console/requesters", &notice)
        }
        Err(problem) => refused(&api, &viewer, &problem).await,
    }
}

/// `POST /console/requesters/{id}/unblock`.
async fn unblock(State(api): State<Api>, viewer: Viewer, Param(id): Param<u64>) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    match requesters::unblock(viewer.caller(), State(api.clone()), Param(id)).await {
        Ok(user) => redirect_with_notice(
            &api.state.console.settings,
            "/console/requesters",
            &format!("{} is unblocked", user.0.login),
        ),
        Err(problem) => refused(&api, &viewer, &problem).await,
    }
}

/// The list again, with the API's refusal and its status.
async fn refused(api: &Api, viewer: &Viewer, problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let errors = Errors::from_problem(problem);
    page(api, viewer, Filters::default(), status, errors).await
}
