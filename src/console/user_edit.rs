//! A user's page (`/console/users/{id}`): display name, e-mail address, roles, skill
//! groups and group; a new password; deactivate and activate; and (from `user_tokens`) the
//! user's API tokens and console sessions. Every change is `PATCH /api/v1/users/{id}`
//! (`api::user_edit::patch`), whose checks decide (`manage_users`, no reshaping of a more
//! powerful user, no handing out of roles whose permissions the viewer lacks).

use super::people::{body, given, when, word};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::user_tokens::{self, SessionRow};
use super::Viewer;
use crate::api::extract::{Body, Param};
use crate::api::tokens::TokenView;
use crate::api::users::UserView;
use crate::api::{directory, roles, tokens, user_edit, users, Api, Problem};
use crate::store::{Group, SkillGroup, UserStatus};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::Form;
use serde::Deserialize;
use serde_json::{json, Value};

/// The routes of this file.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/users/{id}", get(show).post(save))
        .route("/console/users/{id}/password", post(password))
        .route("/console/users/{id}/status", post(status))
}

/// A checkbox or option: (name, chosen).
pub struct Choice {
    pub name: String,
    pub chosen: bool,
}

/// The user's page.
#[derive(Template)]
#[template(path = "console/people/user.html")]
pub struct UserPage {
    pub chrome: Chrome,
    pub user: UserView,
    pub kind: String,
    pub status: String,
    pub created: String,
    pub roles: Vec<Choice>,
    pub skill_groups: Vec<Choice>,
    pub groups: Vec<Choice>,
    pub tokens: Vec<TokenView>,
    pub sessions: Option<Vec<SessionRow>>,
    pub errors: Errors,
}

impl UserPage {
    /// A time for the template.
    pub fn at(&self, secs: &u64) -> String {
        when(Some(*secs))
    }

    /// An optional time (an expiry) for the template.
    pub fn until(&self, secs: &Option<u64>) -> String {
        when(*secs)
    }

    pub fn is_active(&self) -> bool {
        self.user.status == UserStatus::Active
    }
}

/// The page of user `id` as `viewer` may see it; the API's refusal otherwise.
pub async fn load(api: &Api, viewer: &Viewer, id: u64) -> Result<UserPage, Problem> {
    let user = users::show(viewer.caller(), State(api.clone()), Param(id))
        .await?
        .0;
    // Only admins list roles; anyone else sees the user's own roles to keep or take away.
    let all_roles = match roles::list(viewer.caller(), State(api.clone())).await {
        Ok(all) => all.0.into_iter().map(|r| r.name).collect(),
        Err(_) => user.roles.clone(),
    };
    let skill_groups = directory::list::<SkillGroup>(viewer.caller(), State(api.clone()))
        .await?
        .0;
    let groups = directory::list::<Group>(viewer.caller(), State(api.clone()))
        .await?
        .0;
    let tokens = tokens::list(viewer.caller(), State(api.clone()), Param(id))
        .await
        .map(|t| t.0)
        .unwrap_or_default();
    let sessions = user_tokens::sessions(api, viewer, id).await;
    let has = |list: &[String], name: &str| list.iter().any(|n| n.eq_ignore_ascii_case(name));
    Ok(UserPage {
        chrome: Chrome::new(viewer, format!("User {}", user.login), "/console/users"),
        kind: word(&user.kind),
        status: word(&user.status),
        created: when(Some(user.created_at)),
        roles: choices(all_roles, |n| has(&user.roles, n)),
        skill_groups: choices(skill_groups.into_iter().map(|g| g.name), |n| {
            has(&user.skill_groups, n)
        }),
        groups: choices(groups.into_iter().map(|g| g.name), |n| {
            user.group
                .as_deref()
                .is_some_and(|g| g.eq_ignore_ascii_case(n))
        }),
        tokens,
        sessions,
        errors: Errors::none(),
        user,
    })
}

fn choices(names: impl IntoIterator<Item = String>, chosen: impl Fn(&str) -> bool) -> Vec<Choice> {
    names
        .into_iter()
        .map(|name| Choice {
            chosen: chosen(&name),
            name,
        })
        .collect()
}

/// `GET /console/users/{id}`.
pub async fn show(State(api): State<Api>, viewer: Viewer, Param(id): Param<u64>) -> Response {
    match load(&api, &viewer, id).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(problem) => problem_page(&viewer, &problem),
    }
}

/// The profile form.
#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    skill_groups: Vec<String>,
    #[serde(default)]
    group: Option<String>,
}

/// `POST /console/users/{id}`: the profile.
pub async fn save(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<ProfileForm>,
) -> Response {
    let patch = json!({
        "display_name": form.display_name.trim(),
        "email": form.email.trim(),
        "roles": form.roles,
        "skill_groups": form.skill_groups,
        "group": given(&form.group),
    });
    apply(&api, &viewer, id, patch, "Saved").await
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

/// `POST /console/users/{id}/password`.
pub async fn password(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let patch = json!({"password": form.password});
    apply(&api, &viewer, id, patch, "Password changed").await
}

/// The status form.
#[derive(Debug, Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    status: String,
}

/// `POST /console/users/{id}/status`: deactivate or activate.
pub async fn status(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<StatusForm>,
) -> Response {
    let notice = match form.status.as_str() {
        "active" => "Activated",
        _ => "Deactivated",
    };
    let patch = json!({"status": form.status});
    apply(&api, &viewer, id, patch, notice).await
}

/// Sends `patch` to the API; back to the page with `notice`, or the page with the errors.
async fn apply(api: &Api, viewer: &Viewer, id: u64, patch: Value, notice: &str) -> Response {
    let done = match body(patch) {
        Ok(patch) => {
            user_edit::patch(viewer.caller(), State(api.clone()), Param(id), Body(patch)).await
        }
        Err(problem) => Err(problem),
    };
    match done {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/users/{id}"),
            notice,
        ),
        Err(problem) => with_errors(api, viewer, id, &problem).await,
    }
}

/// The user's page showing `problem` beside its field (or the error page when the user
/// cannot be shown at all).
pub async fn with_errors(api: &Api, viewer: &Viewer, id: u64, problem: &Problem) -> Response {
    match load(api, viewer, id).await {
        Ok(mut page) => {
            page.errors = Errors::from_problem(problem);
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            html(status, &page)
        }
        Err(_) => problem_page(viewer, problem),
    }
}
