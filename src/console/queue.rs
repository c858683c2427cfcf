//! The queue (`/console/queue`): pending and deferred messages with filters (upstream,
//! sender, recipient, deferred only), paged on the server; retry or delete one message or
//! a selection (checkboxes, with a select-all box the script drives); a message's page
//! (`/console/queue/{id}`) with its envelope, recipients and their last reply. Through
//! `api::queue`: `view_queue` to look, `manage_queue` to act, as the API decides.

use super::people::{given, when, word};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::extract::{Param, QueryOf};
use crate::api::queue::{self, QueuedView};
use crate::api::{Api, Problem};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::Form;
use serde::Deserialize;
use serde_json::json;

/// Messages on one page.
const PAGE: usize = 50;

/// The routes of this file.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/queue", get(list))
        .route("/console/queue/selection", post(selection))
        .route("/console/queue/{id}", get(show))
        .route("/console/queue/{id}/retry", post(retry_one))
        .route("/console/queue/{id}/delete", post(delete_one))
}

/// The filters and page of the list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    upstream: Option<String>,
    sender: Option<String>,
    recipient: Option<String>,
    deferred: Option<String>,
    after: Option<String>,
}

/// A message as a row or a page shows it.
pub struct Message {
    pub id: String,
    pub mail_from: String,
    pub upstream: String,
    pub principal: String,
    pub size: u64,
    pub received: String,
    pub attempts: u32,
    pub next_attempt: String,
    pub expires: String,
    pub is_dsn: bool,
    pub recipients: Vec<Recipient>,
    /// Why it waits for a sending limit (empty: it does not).
    pub waiting: String,
}

/// One recipient and its last reply.
pub struct Recipient {
    pub address: String,
    pub status: String,
    pub last_reply: String,
}

fn message(view: QueuedView) -> Message {
    Message {
        id: view.id,
        mail_from: view.mail_from,
        upstream: view.upstream,
        principal: view.principal.unwrap_or_default(),
        size: view.size,
        received: when(Some(view.received_at)),
        attempts: view.attempts,
        next_attempt: when(Some(view.next_attempt_at)),
        expires: when(Some(view.expires_at)),
        is_dsn: view.is_dsn,
        waiting: view.waiting.unwrap_or_default(),
        recipients: view
            .recipients
            .into_iter()
            .map(|r| Recipient {
                address: r.address,
                status: word(&r.status),
                last_reply: r.last_reply.unwrap_or_default(),
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "console/queue/list.html")]
struct ListPage {
    chrome: Chrome,
    upstream: String,
    sender: String,
    recipient: String,
    deferred: bool,
    messages: Vec<Message>,
    manage: bool,
    errors: Errors,
    next: Option<String>,
    first_page: bool,
}

impl ListPage {
    /// The filter part of a page address.
    fn filters(&self) -> String {
        let deferred = if self.deferred { "true" } else { "" };
        serde_urlencoded::to_string([
            ("upstream", self.upstream.as_str()),
            ("sender", self.sender.as_str()),
            ("recipient", self.recipient.as_str()),
            ("deferred", deferred),
        ])
        .unwrap_or_default()
    }
}

/// `GET /console/queue`.
pub async fn list(
    State(api): State<Api>,
    viewer: Viewer,
    Query(query): Query<ListQuery>,
) -> Response {
    let deferred = given(&query.deferred).is_some();
    let asked = json!({
        "upstream": given(&query.upstream),
        "sender": given(&query.sender),
        "recipient": given(&query.recipient),
        "deferred": deferred,
        "after": given(&query.after),
        "limit": PAGE + 1,
    });
    let mut page = ListPage {
        chrome: Chrome::new(&viewer, "Queue", "/console/queue"),
        upstream: given(&query.upstream).unwrap_or_default(),
        sender: given(&query.sender).unwrap_or_default(),
        recipient: given(&query.recipient).unwrap_or_default(),
        deferred,
        messages: Vec::new(),
        manage: viewer.has("manage_queue"),
        errors: Errors::none(),
        next: None,
        first_page: given(&query.after).is_none(),
    };
    let listed = match super::people::body(asked) {
        Ok(asked) => queue::list(viewer.caller(), State(api), QueryOf(asked)).await,
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
        page.next = found.last().map(|m| m.id.clone());
    }
    page.messages = found.into_iter().map(message).collect();
    html(StatusCode::OK, &page)
}

/// The selection form: the ids ticked and what to do with them.
#[derive(Debug, Deserialize)]
pub struct SelectionForm {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    action: String,
}

/// `POST /console/queue/selection`: retry or delete every message ticked.
pub async fn selection(
    State(api): State<Api>,
    viewer: Viewer,
    Form(form): Form<SelectionForm>,
) -> Response {
    let delete = form.action == "delete";
    let mut done = 0;
    let mut refused = Vec::new();
    for id in &form.ids {
        match act(&api, &viewer, id.clone(), delete).await {
            Ok(()) => done += 1,
            Err(problem) if problem.status == 403 => return problem_page(&viewer, &problem),
            Err(problem) => refused.push(format!("{id}: {}", problem.detail)),
        }
    }
    let verb = if delete { "deleted" } else { "retried" };
    let mut notice = format!("{done} message(s) {verb}");
    if !refused.is_empty() {
        notice.push_str(&format!("; refused: {}", refused.join("; ")));
    }
    redirect_with_notice(&api.state.console.settings, "/console/queue", &notice)
}

/// Retries or deletes message `id` through the API.
async fn act(api: &Api, viewer: &Viewer, id: String, delete: bool) -> Result<(), Problem> {
    match delete {
        true => {
            let query = super::people::body(json!({}))?;
            queue::delete(
                viewer.caller(),
                State(api.clone()),
                Param(id),
                QueryOf(query),
            )
            .await
            .map(|_| ())
        }
        false => queue::retry(viewer.caller(), State(api.clone()), Param(id))
            .await
            .map(|_| ()),
    }
}

#[derive(Template)]
#[template(path = "console/queue/message.html")]
struct MessagePage {
    chrome: Chrome,
    message: Message,
    manage: bool,
}

/// `GET /console/queue/{id}`.
pub async fn show(State(api): State<Api>, viewer: Viewer, Param(id): Param<String>) -> Response {
    match queue::show(viewer.caller(), State(api), Param(id)).await {
        Ok(view) => {
            let message = message(view.0);
            let page = MessagePage {
                chrome: Chrome::new(
                    &viewer,
                    format!("Queued message {}", message.id),
                    "/console/queue",
                ),
                manage: viewer.has("manage_queue"),
                message,
            };
            html(StatusCode::OK, &page)
        }
        Err(problem) => problem_page(&viewer, &problem),
    }
}

/// `POST /console/queue/{id}/retry`.
pub async fn retry_one(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<String>,
) -> Response {
    match act(&api, &viewer, id.clone(), false).await {
        Ok(()) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/queue/{id}"),
            "Retrying now",
        ),
        Err(problem) => problem_page(&viewer, &problem),
    }
}

/// `POST /console/queue/{id}/delete`.
pub async fn delete_one(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<String>,
) -> Response {
    match act(&api, &viewer, id.clone(), true).await {
        Ok(()) => redirect_with_notice(
            &api.state.console.settings,
            "/console/queue",
            &format!("Message {id} deleted"),
        ),
        Err(problem) => problem_page(&viewer, &problem),
    }
}
