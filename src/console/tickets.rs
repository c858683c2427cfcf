//! Tickets for staff (`/console/tickets`): the list with its filters (status, mailbox,
//! requester, text) and pages, one ticket with its articles and attachment downloads,
//! closing or reopening it, and deleting it. Every read and change is the API's
//! (`api::tickets`), called as the session's user: what a viewer may see or do is decided
//! there, and a refusal is shown with the API's reason.

use super::helpdesk::Pager;
use super::helpdesk::{body_of, number, page_number, paginate, query_string, staff_only, when};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::extract::{Param, QueryOf};
use crate::api::{accounts, tickets, Api, Problem};
use crate::store::{Article, ArticleKind, TicketStatus};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

/// The routes of this page group.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/tickets", get(list))
        .route("/console/tickets/{id}", get(show))
        .route("/console/tickets/{id}/status", post(set_status))
        .route("/console/tickets/{id}/delete", post(remove))
        .route(
            "/console/tickets/{id}/articles/{article}/attachments/{n}",
            get(attachment),
        )
}

/// The list's filters, as the GET form sends them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Filters {
    status: String,
    mailbox: String,
    requester: String,
    q: String,
    page: String,
}

/// One row of the list.
pub struct Row {
    pub id: u64,
    pub subject: String,
    pub requester: String,
    pub mailbox: String,
    pub status: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "console/helpdesk/tickets.html")]
struct ListPage {
    chrome: Chrome,
    errors: Errors,
    status: String,
    mailbox: String,
    requester: String,
    q: String,
    /// (id, name) of the inbound mailboxes the viewer can see.
    mailboxes: Vec<(u64, String)>,
    rows: Vec<Row>,
    pager: Pager,
}

/// `GET /console/tickets`.
async fn list(State(api): State<Api>, viewer: Viewer, Query(f): Query<Filters>) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    let mailboxes = mailboxes(&api, &viewer).await;
    let mut errors = Errors::none();
    let query = query_of(&f).unwrap_or_else(|problem| {
        errors = Errors::from_problem(&problem);
        json!({})
    });
    let listed = match body_of(query) {
        Ok(query) => tickets::list(viewer.caller(), State(api.clone()), QueryOf(query)).await,
        Err(problem) => Err(problem),
    };
    let found = match listed {
        Ok(found) => found.0,
        Err(problem) => return problem_page(&viewer, &problem),
    };
    let name = |id: u64| {
        mailboxes
            .iter()
            .find(|(m, _)| *m == id)
            .map_or_else(|| format!("account {id}"), |(_, n)| n.clone())
    };
    let mut rows: Vec<Row> = found
        .into_iter()
        .map(|r| Row {
            id: r.ticket.id,
            subject: r.ticket.subject,
            requester: r.requester_address,
            mailbox: name(r.ticket.mailbox),
            status: status_name(r.ticket.status).into(),
            updated: when(r.ticket.updated_at),
        })
        .collect();
    rows.reverse();
    let filters = query_string(&[
        ("status", &f.status),
        ("mailbox", &f.mailbox),
        ("requester", &f.requester),
        ("q", &f.q),
    ]);
    let (rows, pager) = paginate(rows, page_number(&f.page), "/console/tickets", &filters);
    let page = ListPage {
        chrome: Chrome::new(&viewer, "Tickets", "/console/tickets"),
        errors,
        status: f.status,
        mailbox: f.mailbox,
        requester: f.requester,
        q: f.q,
        mailboxes,
        rows,
        pager,
    };
    html(StatusCode::OK, &page)
}

/// The API's query from the form's filters (empty ones left out).
fn query_of(f: &Filters) -> Result<serde_json::Value, Problem> {
    let mut query = serde_json::Map::new();
    if !f.status.is_empty() {
        query.insert("status".into(), json!(f.status));
    }
    if let Some(m) = number("mailbox", &f.mailbox)? {
        query.insert("mailbox".into(), json!(m));
    }
    if let Some(r) = number("requester", &f.requester)? {
        query.insert("requester".into(), json!(r));
    }
    if !f.q.trim().is_empty() {
        query.insert("q".into(), json!(f.q.trim()));
    }
    Ok(query.into())
}

/// The inbound mailboxes the viewer may see, by name.
async fn mailboxes(api: &Api, viewer: &Viewer) -> Vec<(u64, String)> {
    let Ok(all) = accounts::list(viewer.caller(), State(api.clone())).await else {
        return Vec::new();
    };
    all.0
        .into_iter()
        .filter(|a| a.inbound.is_some())
        .map(|a| (a.id, a.name))
        .collect()
}

fn status_name(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Open => "open",
        TicketStatus::Closed => "closed",
    }
}

/// An article as the page shows it.
pub struct ArticleRow {
    pub id: u64,
    pub kind: &'static str,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub subject: String,
    pub date: String,
    pub text: String,
    /// (number, name, size) of each attachment.
    pub attachments: Vec<(usize, String, u64)>,
}

impl From<Article> for ArticleRow {
    fn from(a: Article) -> ArticleRow {
        ArticleRow {
            id: a.id,
            kind: match a.kind {
                ArticleKind::Message => "message",
                ArticleKind::Comment => "comment",
                ArticleKind::Note => "note",
            },
            from: a.from,
            to: a.to.join(", "),
            cc: a.cc.join(", "),
            subject: a.subject,
            date: when(a.created_at),
            text: a.text,
            attachments: a
                .attachments
                .into_iter()
                .enumerate()
                .map(|(n, info)| (n, info.name, info.size))
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/helpdesk/ticket.html")]
struct TicketPage {
    chrome: Chrome,
    errors: Errors,
    id: u64,
    status: String,
    requester: u64,
    created: String,
    articles: Vec<ArticleRow>,
    /// Where the attachment links start.
    attachment_base: String,
    may_delete: bool,
    /// Whether to offer **Block requester** (and **... and delete tickets**).
    may_block: bool,
    may_block_and_delete: bool,
}

/// `GET /console/tickets/{id}`.
async fn show(State(api): State<Api>, viewer: Viewer, Param(id): Param<u64>) -> Response {
    ticket_page(&api, &viewer, id, StatusCode::OK, Errors::none()).await
}

async fn ticket_page(
    api: &Api,
    viewer: &Viewer,
    id: u64,
    status: StatusCode,
    errors: Errors,
) -> Response {
    if let Some(refused) = staff_only(viewer) {
        return refused;
    }
    let view = match tickets::show(viewer.caller(), State(api.clone()), Param(id)).await {
        Ok(view) => view.0,
        Err(problem) => return problem_page(viewer, &problem),
    };
    let page = TicketPage {
        chrome: Chrome::new(
            viewer,
            format!("Ticket #{id}: {}", view.ticket.subject),
            "/console/tickets",
        ),
        errors,
        id,
        status: status_name(view.ticket.status).into(),
        requester: view.ticket.requester,
        created: when(view.ticket.created_at),
        articles: view.articles.into_iter().map(ArticleRow::from).collect(),
        attachment_base: format!("/console/tickets/{id}"),
        may_delete: viewer.has("delete_tickets"),
        may_block: viewer.has("block_unwanted_email"),
        may_block_and_delete: viewer.has("block_unwanted_email") && viewer.has("delete_tickets"),
    };
    html(status, &page)
}

/// The status form.
#[derive(Debug, Deserialize)]
struct StatusForm {
    #[serde(default)]
    status: String,
}

/// `POST /console/tickets/{id}/status`.
async fn set_status(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<StatusForm>,
) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    let changed = match body_of(json!({"status": form.status})) {
        Ok(body) => {
            let body = crate::api::extract::Body(body);
            tickets::patch(viewer.caller(), State(api.clone()), Param(id), body).await
        }
        Err(problem) => Err(problem),
    };
    match changed {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/tickets/{id}"),
            &format!("Ticket #{id} is now {}", form.status),
        ),
        Err(problem) => refused(&api, &viewer, id, &problem).await,
    }
}

/// `POST /console/tickets/{id}/delete`.
async fn remove(State(api): State<Api>, viewer: Viewer, Param(id): Param<u64>) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    match tickets::remove(viewer.caller(), State(api.clone()), Param(id)).await {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            "/console/tickets",
            &format!("Ticket #{id} deleted"),
        ),
        Err(problem) => refused(&api, &viewer, id, &problem).await,
    }
}

/// The ticket page again with the API's refusal (its status), or the refusal alone when
/// the ticket cannot be shown.
async fn refused(api: &Api, viewer: &Viewer, id: u64, problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let shown = tickets::show(viewer.caller(), State(api.clone()), Param(id)).await;
    if status == StatusCode::NOT_FOUND || shown.is_err() {
        return problem_page(viewer, problem);
    }
    ticket_page(api, viewer, id, status, Errors::from_problem(problem)).await
}

/// `GET /console/tickets/{id}/articles/{article}/attachments/{n}`: the bytes, through the
/// API (with the session).
async fn attachment(
    State(api): State<Api>,
    viewer: Viewer,
    Param(path): Param<(u64, u64, u64)>,
) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    match tickets::attachment(viewer.caller(), State(api), Param(path)).await {
        Ok(bytes) => bytes.into_response(),
        Err(problem) => problem_page(&viewer, &problem),
    }
}
