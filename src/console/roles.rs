//! Roles (`/console/roles`: list, create, the permissions of one as checkboxes of
//! `api::PERMISSIONS`, delete), skill groups (`/console/skill-groups`) and groups
//! (`/console/groups`: list, create, delete), through `api::roles` and `api::directory`,
//! whose checks decide (`admin` for roles, `manage_users` for the others) and whose
//! refusals (a name taken, a role or group still in use) are shown with their reason.

use super::people::body;
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::extract::{Body, Param};
use crate::api::{directory, roles, Api, Problem, PERMISSIONS};
use crate::store::{Group, Role, SkillGroup};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::Form;
use serde::Deserialize;
use serde_json::json;

/// The routes of this file.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/roles", get(list).post(create))
        .route("/console/roles/{name}", get(show).post(save))
        .route("/console/roles/{name}/delete", post(remove))
        .route(
            "/console/skill-groups",
            get(entries::<SkillGroup>).post(add::<SkillGroup>),
        )
        .route(
            "/console/skill-groups/{name}/delete",
            post(delete::<SkillGroup>),
        )
        .route("/console/groups", get(entries::<Group>).post(add::<Group>))
        .route("/console/groups/{name}/delete", post(delete::<Group>))
}

/// A permission checkbox.
pub struct Permission {
    pub name: &'static str,
    pub chosen: bool,
}

#[derive(Template)]
#[template(path = "console/people/roles.html")]
struct RolesPage {
    chrome: Chrome,
    roles: Vec<Role>,
    name: String,
    permissions: Vec<Permission>,
    errors: Errors,
}

#[derive(Template)]
#[template(path = "console/people/role.html")]
struct RolePage {
    chrome: Chrome,
    role: Role,
    permissions: Vec<Permission>,
    errors: Errors,
}

fn boxes(chosen: &[String]) -> Vec<Permission> {
    PERMISSIONS
        .iter()
        .map(|&name| Permission {
            name,
            chosen: chosen.iter().any(|c| c == name),
        })
        .collect()
}

/// The role form: a name (creation only) and the permissions ticked.
#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    permissions: Vec<String>,
}

/// `GET /console/roles`.
pub async fn list(State(api): State<Api>, viewer: Viewer) -> Response {
    roles_page(&api, &viewer, String::new(), Vec::new(), None).await
}

async fn roles_page(
    api: &Api,
    viewer: &Viewer,
    name: String,
    chosen: Vec<String>,
    problem: Option<&Problem>,
) -> Response {
    let all = match roles::list(viewer.caller(), State(api.clone())).await {
        Ok(all) => all.0,
        Err(problem) => return problem_page(viewer, &problem),
    };
    let page = RolesPage {
        chrome: Chrome::new(viewer, "Roles", "/console/users"),
        roles: all,
        name,
        permissions: boxes(&chosen),
        errors: problem.map(Errors::from_problem).unwrap_or_default(),
    };
    html(status_of(problem), &page)
}

fn status_of(problem: Option<&Problem>) -> StatusCode {
    problem
        .and_then(|p| StatusCode::from_u16(p.status).ok())
        .unwrap_or(StatusCode::OK)
}

/// `POST /console/roles`: a new role.
pub async fn create(
    State(api): State<Api>,
    viewer: Viewer,
    Form(form): Form<RoleForm>,
) -> Response {
    let request = json!({"name": form.name.trim(), "permissions": form.permissions});
    let created = match body(request) {
        Ok(request) => roles::create(viewer.caller(), State(api.clone()), Body(request)).await,
        Err(problem) => Err(problem),
    };
    match created {
        Ok((_, role)) => redirect_with_notice(
            &api.state.console.settings,
            "/console/roles",
            &format!("Role {} created", role.0.name),
        ),
        Err(problem) => {
            roles_page(&api, &viewer, form.name, form.permissions, Some(&problem)).await
        }
    }
}

/// `GET /console/roles/{name}`.
pub async fn show(State(api): State<Api>, viewer: Viewer, Param(name): Param<String>) -> Response {
    role_page(&api, &viewer, name, None).await
}

async fn role_page(
    api: &Api,
    viewer: &Viewer,
    name: String,
    problem: Option<&Problem>,
) -> Response {
    let role = match roles::show(viewer.caller(), State(api.clone()), Param(name)).await {
        Ok(role) => role.0,
        Err(problem) => return problem_page(viewer, &problem),
    };
    let page = RolePage {
        chrome: Chrome::new(viewer, format!("Role {}", role.name), "/console/users"),
        permissions: boxes(&role.permissions),
        role,
        errors: problem.map(Errors::from_problem).unwrap_or_default(),
    };
    html(status_of(problem), &page)
}

/// `POST /console/roles/{name}`: the role's permissions.
pub async fn save(
    State(api): State<Api>,
    viewer: Viewer,
    Param(name): Param<String>,
    Form(form): Form<RoleForm>,
) -> Response {
    let request = json!({"permissions": form.permissions});
    let saved = match body(request) {
        Ok(request) => {
            roles::replace(
                viewer.caller(),
                State(api.clone()),
                Param(name.clone()),
                Body(request),
            )
            .await
        }
        Err(problem) => Err(problem),
    };
    match saved {
        Ok(role) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/roles/{}", encode(&role.0.name)),
            "Saved",
        ),
        Err(problem) => role_page(&api, &viewer, name, Some(&problem)).await,
    }
}

/// `POST /console/roles/{name}/delete`.
pub async fn remove(
    State(api): State<Api>,
    viewer: Viewer,
    Param(name): Param<String>,
) -> Response {
    match roles::remove(viewer.caller(), State(api.clone()), Param(name.clone())).await {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            "/console/roles",
            &format!("Role {name} deleted"),
        ),
        Err(problem) if problem.status == 404 || problem.status == 403 => {
            problem_page(&viewer, &problem)
        }
        Err(problem) => role_page(&api, &viewer, name, Some(&problem)).await,
    }
}

/// A name as one path segment.
fn encode(name: &str) -> String {
    serde_urlencoded::to_string([("", name)])
        .map(|s| s.trim_start_matches('=').replace('+', "%20"))
        .unwrap_or_default()
}

/// A skill group or group as listed.
pub struct Entry {
    pub name: String,
    pub path: String,
    pub description: String,
    pub max_users: String,
}

/// What the directory pages need of a kind.
pub trait Listed: directory::Kind {
    const TITLE: &'static str;
    const HREF: &'static str;
    const HAS_LIMIT: bool;
    fn entry(&self) -> Entry;
}

impl Listed for SkillGroup {
    const TITLE: &'static str = "Skill groups";
    const HREF: &'static str = "/console/skill-groups";
    const HAS_LIMIT: bool = false;
    fn entry(&self) -> Entry {
        Entry {
            path: encode(&self.name),
            name: self.name.clone(),
            description: self.description.clone(),
            max_users: String::new(),
        }
    }
}

impl Listed for Group {
    const TITLE: &'static str = "Groups";
    const HREF: &'static str = "/console/groups";
    const HAS_LIMIT: bool = true;
    fn entry(&self) -> Entry {
        Entry {
            path: encode(&self.name),
            name: self.name.clone(),
            description: self.description.clone(),
            max_users: self.max_users.map(|m| m.to_string()).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/people/directory.html")]
struct DirectoryPage {
    chrome: Chrome,
    href: &'static str,
    has_limit: bool,
    entries: Vec<Entry>,
    form: EntryForm,
    errors: Errors,
}

/// The form of a new skill group or group.
#[derive(Debug, Default, Deserialize)]
pub struct EntryForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    max_users: String,
}

/// `GET /console/skill-groups`, `GET /console/groups`.
pub async fn entries<T: Listed>(State(api): State<Api>, viewer: Viewer) -> Response {
    directory_page::<T>(&api, &viewer, EntryForm::default(), None).await
}

async fn directory_page<T: Listed>(
    api: &Api,
    viewer: &Viewer,
    form: EntryForm,
    problem: Option<&Problem>,
) -> Response {
    let all = match directory::list::<T>(viewer.caller(), State(api.clone())).await {
        Ok(all) => all.0,
        Err(problem) => return problem_page(viewer, &problem),
    };
    let page = DirectoryPage {
        chrome: Chrome::new(viewer, T::TITLE, "/console/users"),
        href: T::HREF,
        has_limit: T::HAS_LIMIT,
        entries: all.iter().map(T::entry).collect(),
        form,
        errors: problem.map(Errors::from_problem).unwrap_or_default(),
    };
    html(status_of(problem), &page)
}

/// `POST /console/skill-groups`, `POST /console/groups`.
pub async fn add<T: Listed>(
    State(api): State<Api>,
    viewer: Viewer,
    Form(form): Form<EntryForm>,
) -> Response {
    let max_users = match form.max_users.trim() {
        "" => Ok(None),
        text => text
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Problem::invalid("max_users", "a whole number")),
    };
    let created = match max_users {
        Ok(max_users) => {
            let request = json!({"name": form.name.trim(), "description": form.description.trim(), "max_users": max_users});
            match body(request) {
                Ok(request) => {
                    directory::create::<T>(viewer.caller(), State(api.clone()), Body(request))
                        .await
                        .map(|_| ())
                }
                Err(problem) => Err(problem),
            }
        }
        Err(problem) => Err(problem),
    };
    match created {
        Ok(()) => redirect_with_notice(
            &api.state.console.settings,
            T::HREF,
            &format!("{} created", form.name.trim()),
        ),
        Err(problem) => directory_page::<T>(&api, &viewer, form, Some(&problem)).await,
    }
}

/// `POST /console/skill-groups/{name}/delete`, `POST /console/groups/{name}/delete`.
pub async fn delete<T: Listed>(
    State(api): State<Api>,
    viewer: Viewer,
    Param(name): Param<String>,
) -> Response {
    match directory::remove::<T>(viewer.caller(), State(api.clone()), Param(name.clone())).await {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            T::HREF,
            &format!("{name} deleted"),
        ),
        Err(problem) if problem.status == 403 => problem_page(&viewer, &problem),
        Err(problem) => {
            directory_page::<T>(&api, &viewer, EntryForm::default(), Some(&problem)).await
        }
    }
}
