//! A backup's page (`/console/mail-users/backups/{id}`): status, counts and progress (the
//! page refreshes itself every 3 s while the job is pending or running, by a `Refresh`
//! header: no script, and nothing in the page that reads as a timed redirect; a link turns
//! it off, `?refresh=off`, for readers who need the page to hold still — WCAG 2.2.1), who asked and who may read it, the messages of a completed job,
//! and its mbox download (`.../mbox`), served with the session cookie. All through
//! `api::backups` (admins and the job's grantees; anyone else gets its 404).

use super::mail_users::under_way;
use super::people::{when, word};
use super::render::{html, problem_page, Chrome};
use super::Viewer;
use crate::api::extract::Param;
use crate::api::{backups, Api};
use crate::store::{Backup, BackupItem, BackupStatus, Grantee};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

/// The routes of this file.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/mail-users/backups", get(list))
        .route("/console/mail-users/backups/{id}", get(show))
        .route("/console/mail-users/backups/{id}/mbox", get(mbox))
}

/// One message of a completed backup.
pub struct Item {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub direction: String,
    pub received: String,
    pub size: u64,
}

#[derive(Template)]
#[template(path = "console/people/backup.html")]
struct BackupPage {
    chrome: Chrome,
    job: Backup,
    status: String,
    kind: String,
    account_type: String,
    running: bool,
    /// Whether the page reloads itself (while running, unless turned off: WCAG 2.2.1).
    refresh: bool,
    completed: bool,
    created: String,
    started: String,
    finished: String,
    grantees: String,
    items: Vec<Item>,
}

/// `?refresh=off` stops a running job's page from reloading itself.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    refresh: Option<String>,
}

/// `GET /console/mail-users/backups/{id}`.
pub async fn show(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Query(query): Query<ShowQuery>,
) -> Response {
    let job = match backups::show(viewer.caller(), State(api.clone()), Param(id)).await {
        Ok(job) => job.0,
        Err(problem) => return problem_page(&viewer, &problem),
    };
    let completed = job.status == BackupStatus::Completed;
    let items = match completed {
        true => match backups::messages(viewer.caller(), State(api.clone()), Param(id)).await {
            Ok(items) => items.0.into_iter().map(item).collect(),
            Err(problem) => return problem_page(&viewer, &problem),
        },
        false => Vec::new(),
    };
    let grantees = job
        .grant_to
        .iter()
        .map(|g| match g {
            Grantee::User(id) => format!("user {id}"),
            Grantee::Role(role) => format!("role {role}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let refresh = under_way(job.status) && query.refresh.as_deref() != Some("off");
    let page = BackupPage {
        chrome: Chrome::new(
            &viewer,
            format!("Backup {id} of {}", job.login),
            "/console/mail-users",
        ),
        status: word(&job.status),
        kind: word(&job.kind),
        account_type: word(&job.account_type),
        running: under_way(job.status),
        refresh,
        completed,
        created: when(Some(job.created_at)),
        started: when(job.started_at),
        finished: when(job.finished_at),
        grantees,
        items,
        job,
    };
    let mut response = html(StatusCode::OK, &page);
    if refresh {
        response
            .headers_mut()
            .insert("refresh", axum::http::HeaderValue::from_static("3"));
    }
    response
}

fn item(item: BackupItem) -> Item {
    Item {
        subject: item.subject,
        from: item.from,
        to: item.rcpts.join(", "),
        direction: word(&item.direction),
        received: when(Some(item.received_at / 1000)),
        size: item.size,
    }
}

/// The backups the viewer may read.
#[derive(Template)]
#[template(path = "console/people/backups.html")]
struct ListPage {
    chrome: Chrome,
    jobs: Vec<(u64, String, String, String)>,
}

/// `GET /console/mail-users/backups`: every job the viewer may read, newest first.
pub async fn list(State(api): State<Api>, viewer: Viewer) -> Response {
    let jobs = match backups::list(viewer.caller(), State(api.clone())).await {
        Ok(jobs) => jobs.0,
        Err(problem) => return problem_page(&viewer, &problem),
    };
    let page = ListPage {
        chrome: Chrome::new(&viewer, "Backups", "/console/mail-users"),
        jobs: jobs
            .into_iter()
            .map(|b| (b.id, b.login, word(&b.status), when(Some(b.created_at))))
            .collect(),
    };
    html(StatusCode::OK, &page)
}

/// `GET /console/mail-users/backups/{id}/mbox`: the API's download, as it answers it.
pub async fn mbox(State(api): State<Api>, viewer: Viewer, Param(id): Param<u64>) -> Response {
    match backups::mbox(viewer.caller(), State(api.clone()), Param(id)).await {
        Ok(download) => download.into_response(),
        Err(problem) => problem_page(&viewer, &problem),
    }
}
