//! A requester's own tickets (`/console/my/tickets`, `/console/my/tickets/{id}`): the
//! tickets they requested and the messages in them, nothing else, read through
//! `api::my_tickets` (which answers 404 for any ticket that is not theirs).

use super::helpdesk::{page_number, paginate, when, Pager};
use super::render::{html, problem_page, Chrome};
use super::tickets::ArticleRow;
use super::Viewer;
use crate::api::extract::Param;
use crate::api::my_tickets::MyMessage;
use crate::api::{my_tickets, Api};
use crate::store::TicketStatus;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

/// The routes of these pages.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/my/tickets", get(list))
        .route("/console/my/tickets/{id}", get(show))
        .route(
            "/console/my/tickets/{id}/articles/{article}/attachments/{n}",
            get(attachment),
        )
}

/// `?page=`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PageQuery {
    page: String,
}

/// One of the viewer's tickets.
pub struct Row {
    pub id: u64,
    pub subject: String,
    pub status: &'static str,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "console/helpdesk/my_tickets.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    pager: Pager,
}

fn status_name(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Open => "open",
        TicketStatus::Closed => "closed",
    }
}

/// `GET /console/my/tickets`.
async fn list(State(api): State<Api>, viewer: Viewer, Query(q): Query<PageQuery>) -> Response {
    let mine = match my_tickets::list(viewer.caller(), State(api)).await {
        Ok(mine) => mine.0,
        Err(problem) => return problem_page(&viewer, &problem),
    };
    let rows = mine
        .into_iter()
        .map(|t| Row {
            id: t.id,
            subject: t.subject,
            status: status_name(t.status),
            updated: when(t.updated_at),
        })
        .collect();
    let (rows, pager) = paginate(rows, page_number(&q.page), "/console/my/tickets", "");
    let page = ListPage {
        chrome: Chrome::new(&viewer, "My tickets", "/console/my/tickets"),
        rows,
        pager,
    };
    html(StatusCode::OK, &page)
}

impl From<MyMessage> for ArticleRow {
    fn from(m: MyMessage) -> ArticleRow {
        ArticleRow {
            id: m.id,
            kind: "message",
            from: m.from,
            to: m.to.join(", "),
            cc: m.cc.join(", "),
            subject: m.subject,
            date: when(m.created_at),
            text: m.text,
            attachments: m
                .attachments
                .into_iter()
                .enumerate()
                .map(|(n, info)| (n, info.name, info.size))
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/helpdesk/my_ticket.html")]
struct TicketPage {
    chrome: Chrome,
    status: &'static str,
    created: String,
    articles: Vec<ArticleRow>,
    /// Where the attachment links start.
    attachment_base: String,
}

/// `GET /console/my/tickets/{id}`.
async fn show(State(api): State<Api>, viewer: Viewer, Param(id): Param<u64>) -> Response {
    let view = match my_tickets::show(viewer.caller(), State(api), Param(id)).await {
        Ok(view) => view.0,
        Err(problem) => return problem_page(&viewer, &problem),
    };
    let articles = view.messages.into_iter().map(ArticleRow::from).collect();
    let page = TicketPage {
        chrome: Chrome::new(
            &viewer,
            format!("Ticket #{id}: {}", view.ticket.subject),
            "/console/my/tickets",
        ),
        status: status_name(view.ticket.status),
        created: when(view.ticket.created_at),
        articles,
        attachment_base: format!("/console/my/tickets/{id}"),
    };
    html(StatusCode::OK, &page)
}

/// `GET /console/my/tickets/{id}/articles/{article}/attachments/{n}`.
async fn attachment(
    State(api): State<Api>,
    viewer: Viewer,
    Param(path): Param<(u64, u64, u64)>,
) -> Response {
    match my_tickets::attachment(viewer.caller(), State(api), Param(path)).await {
        Ok(bytes) => bytes.into_response(),
        Err(problem) => problem_page(&viewer, &problem),
    }
}
