//! Mail users (`/console/mail-users`), the leaver workflow of SPEC §8: staff users with
//! their account type, mailbox, lock state (and who locked it) and latest backup; **Lock
//! configuration** / **Unlock configuration** (`api::mail_config`), **Back up data** and
//! **Latest backup** (`api::backups::create`). Every refusal of the API is shown with its
//! reason; the API decides (admins only, the lock rules, the backup rules). A backup's own
//! page is `backups`.

use super::people::{body, given, when, word};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::extract::{Body, Param, QueryOf};
use crate::api::{backups, mail_config, users, Api, Problem};
use crate::store::{Backup, BackupStatus};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

/// Staff users on one page.
const PAGE: usize = 50;

/// The routes of this file.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/mail-users", get(list))
        .route("/console/mail-users/{id}/lock", post(lock))
        .route("/console/mail-users/{id}/unlock", post(unlock))
        .route("/console/mail-users/{id}/backup", post(backup))
}

/// One staff user's row.
pub struct Row {
    pub id: u64,
    pub login: String,
    pub display_name: String,
    pub status: String,
    pub account_type: String,
    pub mailbox: String,
    pub locked: bool,
    pub locked_by: String,
    pub locked_at: String,
    /// The user's newest backup: (id, status).
    pub backup: Option<(u64, String)>,
}

#[derive(Template)]
#[template(path = "console/people/mail_users.html")]
struct ListPage {
    chrome: Chrome,
    q: String,
    rows: Vec<Row>,
    errors: Errors,
    next: Option<u64>,
}

/// The filter and page of the list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<u64>,
}

/// `GET /console/mail-users`.
pub async fn list(
    State(api): State<Api>,
    viewer: Viewer,
    Query(query): Query<ListQuery>,
) -> Response {
    page(&api, &viewer, query, None).await
}

async fn page(api: &Api, viewer: &Viewer, query: ListQuery, problem: Option<&Problem>) -> Response {
    match rows(api, viewer, &query).await {
        Ok((rows, next)) => {
            let page = ListPage {
                chrome: Chrome::new(viewer, "Mail users", "/console/mail-users"),
                q: given(&query.q).unwrap_or_default(),
                rows,
                errors: problem.map(Errors::from_problem).unwrap_or_default(),
                next,
            };
            let status = problem
                .and_then(|p| StatusCode::from_u16(p.status).ok())
                .unwrap_or(StatusCode::OK);
            html(status, &page)
        }
        Err(problem) => problem_page(viewer, &problem),
    }
}

/// The rows of one page and the `after` of the next, all read through the API.
async fn rows(
    api: &Api,
    viewer: &Viewer,
    query: &ListQuery,
) -> Result<(Vec<Row>, Option<u64>), Problem> {
    let filter = body(json!({
        "kind": "staff",
        "q": given(&query.q),
        "after": query.after,
        "limit": PAGE + 1,
    }))?;
    let mut staff = users::list(viewer.caller(), State(api.clone()), QueryOf(filter))
        .await?
        .0;
    let next = match staff.len() > PAGE {
        true => {
            staff.truncate(PAGE);
            staff.last().map(|u| u.id)
        }
        false => None,
    };
    let jobs: Vec<Backup> = backups::list(viewer.caller(), State(api.clone())).await?.0;
    let mut rows = Vec::with_capacity(staff.len());
    for user in staff {
        let config = mail_config::show(viewer.caller(), State(api.clone()), Param(user.id))
            .await?
            .0;
        // Newest first: the first job of the user is its latest.
        let backup = jobs
            .iter()
            .find(|b| b.user == user.id)
            .map(|b| (b.id, word(&b.status)));
        rows.push(Row {
            id: user.id,
            login: user.login,
            display_name: user.display_name,
            status: word(&user.status),
            account_type: word(&config.account_type),
            mailbox: config.mailbox,
            locked: config.locked,
            locked_by: config.locked_by.unwrap_or_default(),
            locked_at: when(config.locked_at),
            backup,
        });
    }
    Ok((rows, next))
}

/// `POST /console/mail-users/{id}/lock`.
pub async fn lock(State(api): State<Api>, viewer: Viewer, Param(id): Param<u64>) -> Response {
    let done = mail_config::lock(viewer.caller(), State(api.clone()), Param(id)).await;
    after(
        &api,
        &viewer,
        done.map(|_| "Configuration locked".to_string()),
    )
    .await
}

/// `POST /console/mail-users/{id}/unlock`.
pub async fn unlock(State(api): State<Api>, viewer: Viewer, Param(id): Param<u64>) -> Response {
    let done = mail_config::unlock(viewer.caller(), State(api.clone()), Param(id)).await;
    after(
        &api,
        &viewer,
        done.map(|_| "Configuration unlocked".to_string()),
    )
    .await
}

/// The backup form: who may read it, and whether only the mail since the last backup.
#[derive(Debug, Deserialize)]
pub struct BackupForm {
    #[serde(default)]
    grant_to: String,
    #[serde(default)]
    latest: String,
}

/// `POST /console/mail-users/{id}/backup`: **Back up data** or **Latest backup**; on to
/// the job's page.
pub async fn backup(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<BackupForm>,
) -> Response {
    let grant_to: Vec<&str> = form
        .grant_to
        .split([',', ' '])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .collect();
    let request = json!({"grant_to": grant_to, "latest": form.latest == "true"});
    let asked = match body(request) {
        Ok(request) => {
            backups::create(
                viewer.caller(),
                State(api.clone()),
                Param(id),
                Body(request),
            )
            .await
        }
        Err(problem) => Err(problem),
    };
    match asked {
        Ok((_, job)) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/mail-users/backups/{}", job.0.id),
            "Backup started",
        ),
        Err(problem) => page(&api, &viewer, ListQuery::default(), Some(&problem)).await,
    }
}

/// Back to the list with a notice, or the list with the API's refusal.
async fn after(api: &Api, viewer: &Viewer, done: Result<String, Problem>) -> Response {
    match done {
        Ok(notice) => {
            redirect_with_notice(&api.state.console.settings, "/console/mail-users", &notice)
        }
        Err(problem) => page(api, viewer, ListQuery::default(), Some(&problem)).await,
    }
}

/// Whether a job is still under way (its page refreshes itself).
pub fn under_way(status: BackupStatus) -> bool {
    matches!(status, BackupStatus::Pending | BackupStatus::Running)
}
