//! Users (`/console/users`): the list (filters by kind, status and text, paged on the
//! server) and the form that creates a user. Both go through `api::users`, so
//! `manage_users` and every rule of creating a user are the API's. The user's page is
//! `user_edit`; its tokens and sessions `user_tokens`.

use super::people::{body, given, word};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::extract::{Body, QueryOf};
use crate::api::users::{self, UserView};
use crate::api::{Api, Problem};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

/// Users on one page of the list.
const PAGE: usize = 50;

/// The routes of this file.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/users", get(list))
        .route("/console/users/new", get(new).post(create))
}

/// The filters of the list (empty fields are absent).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    kind: Option<String>,
    status: Option<String>,
    q: Option<String>,
    after: Option<u64>,
}

/// One row of the list.
pub struct Row {
    pub id: u64,
    pub login: String,
    pub display_name: String,
    pub email: String,
    pub kind: String,
    pub status: String,
    pub roles: String,
}

#[derive(Template)]
#[template(path = "console/people/users.html")]
struct ListPage {
    chrome: Chrome,
    kind: String,
    status: String,
    q: String,
    rows: Vec<Row>,
    errors: Errors,
    /// The query of the next page, if there is one.
    next: Option<String>,
    first_page: bool,
}

/// `GET /console/users`.
pub async fn list(
    State(api): State<Api>,
    viewer: Viewer,
    Query(query): Query<ListQuery>,
) -> Response {
    let filter = json!({
        "kind": given(&query.kind),
        "status": given(&query.status),
        "q": given(&query.q),
        "after": query.after,
        "limit": PAGE + 1,
    });
    let mut page = ListPage {
        chrome: Chrome::new(&viewer, "Users", "/console/users"),
        kind: given(&query.kind).unwrap_or_default(),
        status: given(&query.status).unwrap_or_default(),
        q: given(&query.q).unwrap_or_default(),
        rows: Vec::new(),
        errors: Errors::none(),
        next: None,
        first_page: query.after.is_none(),
    };
    let listed = match body(filter) {
        Ok(filter) => users::list(viewer.caller(), State(api), QueryOf(filter)).await,
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
        let last = found.last().map_or(0, |u| u.id);
        let next = serde_urlencoded::to_string([
            ("kind", page.kind.as_str()),
            ("status", page.status.as_str()),
            ("q", page.q.as_str()),
            ("after", &last.to_string()),
        ])
        .unwrap_or_default();
        page.next = Some(next);
    }
    page.rows = found.into_iter().map(row).collect();
    html(StatusCode::OK, &page)
}

fn row(user: UserView) -> Row {
    Row {
        id: user.id,
        login: user.login,
        display_name: user.display_name,
        email: user.email,
        kind: word(&user.kind),
        status: word(&user.status),
        roles: user.roles.join(", "),
    }
}

/// The new-user form.
#[derive(Debug, Default, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "console/people/user_new.html")]
struct NewPage {
    chrome: Chrome,
    form: NewUserForm,
    errors: Errors,
}

/// `GET /console/users/new`. The API decides on submission; a viewer who may not list
/// users is told so here already.
pub async fn new(State(api): State<Api>, viewer: Viewer) -> Response {
    if let Err(problem) = may_manage(&api, &viewer).await {
        return problem_page(&viewer, &problem);
    }
    let page = NewPage {
        chrome: Chrome::new(&viewer, "New user", "/console/users"),
        form: NewUserForm {
            kind: "staff".into(),
            ..NewUserForm::default()
        },
        errors: Errors::none(),
    };
    html(StatusCode::OK, &page)
}

/// Whether the API lets the viewer read users (the same check as the list's).
async fn may_manage(api: &Api, viewer: &Viewer) -> Result<(), Problem> {
    let filter = body(json!({"limit": 1}))?;
    users::list(viewer.caller(), State(api.clone()), QueryOf(filter))
        .await
        .map(|_| ())
}

/// `POST /console/users/new`: `POST /api/v1/users`, then the new user's page.
pub async fn create(
    State(api): State<Api>,
    viewer: Viewer,
    Form(form): Form<NewUserForm>,
) -> Response {
    let password = match form.password.is_empty() {
        true => None,
        false => Some(form.password.clone()),
    };
    let request = json!({
        "login": form.login.trim(),
        "email": form.email.trim(),
        "kind": form.kind,
        "password": password,
        "display_name": given(&Some(form.display_name.clone())),
    });
    let created = match body(request) {
        Ok(request) => users::create(viewer.caller(), State(api.clone()), Body(request)).await,
        Err(problem) => Err(problem),
    };
    match created {
        Ok((_, user)) if user.0.secret.is_some() => {
            let user = user.0;
            let page = super::user_tokens::ShownOnce {
                chrome: Chrome::new(&viewer, "User created", "/console/users"),
                what: format!("The secret of {}", user.login),
                value: user.secret.unwrap_or_default(),
                back: format!("/console/users/{}", user.id),
            };
            html(StatusCode::CREATED, &page)
        }
        Ok((_, user)) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/users/{}", user.0.id),
            &format!("User {} created", user.0.login),
        ),
        Err(problem) if problem.status == 403 => problem_page(&viewer, &problem),
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            let page = NewPage {
                chrome: Chrome::new(&viewer, "New user", "/console/users"),
                errors: Errors::from_problem(&problem),
                form: NewUserForm {
                    password: String::new(),
                    ..form
                },
            };
            html(status, &page)
        }
    }
}
