//! The grant grid of an account (`/console/accounts/{id}/grants`): a row per staff user
//! and per role (and per other grantee the account already names), columns Access emails,
//! Send emails — send as / send on behalf — and Setup mailbox, as checkboxes. Saving
//! replaces the account's grants through `api::account_edit::put_grants` (its checks: the
//! `setup` right, no rights given to oneself without `shared_account_setup`).
//!
//! Each checkbox column repeats one field name (`access`, `send_as`, `send_on_behalf`,
//! `setup`) whose values name the grantee (`user:7`, `role:agents`). A row with both send
//! boxes ticked gets `send_as`, the more permissive mode (as SPEC §3 ranks them).

use super::accounts::{choices, fetch};
use super::accounts_form::status_of;
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::account_choices::AccountChoices;
use crate::api::account_edit::{self, GrantList};
use crate::api::extract::{Body, Param};
use crate::api::{Api, Problem};
use crate::store::{Account, Grant, Grantee, SendMode};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::Form;
use serde::Deserialize;

/// The grid as posted: each column lists the grantees ticked in it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GridForm {
    access: Vec<String>,
    send_as: Vec<String>,
    send_on_behalf: Vec<String>,
    setup: Vec<String>,
}

/// One row of the grid.
pub struct GridRow {
    /// `user:7` or `role:agents`: the value of its checkboxes.
    pub key: String,
    pub label: String,
    /// `User` or `Role`.
    pub kind: &'static str,
    pub note: &'static str,
    pub access: bool,
    pub send_as: bool,
    pub send_on_behalf: bool,
    pub setup: bool,
}

#[derive(Template)]
#[template(path = "console/accounts/grants.html")]
struct GridPage {
    chrome: Chrome,
    id: u64,
    rows: Vec<GridRow>,
    errors: Errors,
}

/// The checkbox value naming a grantee.
fn key_of(grantee: &Grantee) -> String {
    match grantee {
        Grantee::User(id) => format!("user:{id}"),
        Grantee::Role(role) => format!("role:{role}"),
    }
}

/// The grantee a checkbox value names.
fn grantee_of(key: &str) -> Result<Grantee, Problem> {
    let bad = || Problem::invalid("grants", format!("{key:?} names no user or role"));
    match key.split_once(':') {
        Some(("user", id)) => id.parse().map(Grantee::User).map_err(|_| bad()),
        Some(("role", role)) if !role.is_empty() => Ok(Grantee::Role(role.to_string())),
        _ => Err(bad()),
    }
}

/// The rows: staff users, then roles, then any other grantee of the account, each with
/// the boxes `grants` ticks.
fn rows(choices: &AccountChoices, grants: &[Grant]) -> Vec<GridRow> {
    let mut rows: Vec<GridRow> = Vec::new();
    let mut add = |grantee: Grantee, label: String, note: &'static str| {
        let key = key_of(&grantee);
        if rows.iter().any(|r| r.key == key) {
            return;
        }
        let grant = grants.iter().find(|g| g.grantee == grantee);
        rows.push(GridRow {
            kind: match grantee {
                Grantee::User(_) => "User",
                Grantee::Role(_) => "Role",
            },
            key,
            label,
            note,
            access: grant.is_some_and(|g| g.access),
            send_as: grant.is_some_and(|g| g.send == Some(SendMode::SendAs)),
            send_on_behalf: grant.is_some_and(|g| g.send == Some(SendMode::SendOnBehalf)),
            setup: grant.is_some_and(|g| g.setup),
        });
    };
    for user in &choices.users {
        let label = match user.display_name.is_empty() || user.display_name == user.login {
            true => user.login.clone(),
            false => format!("{} ({})", user.display_name, user.login),
        };
        let note = if user.active { "" } else { "not active" };
        add(Grantee::User(user.id), label, note);
    }
    for role in &choices.roles {
        add(Grantee::Role(role.clone()), role.clone(), "");
    }
    for grant in grants {
        let label = match &grant.grantee {
            Grantee::User(id) => format!("user {id}"),
            Grantee::Role(role) => role.clone(),
        };
        add(grant.grantee.clone(), label, "");
    }
    rows
}

/// The grant list the posted grid describes (rows with no box ticked give none).
fn grants_of(form: &GridForm) -> Result<Vec<Grant>, Problem> {
    let mut keys: Vec<&String> = Vec::new();
    for key in [
        &form.access,
        &form.send_as,
        &form.send_on_behalf,
        &form.setup,
    ]
    .into_iter()
    .flatten()
    {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|key| {
            let send = match (
                form.send_as.contains(key),
                form.send_on_behalf.contains(key),
            ) {
                (true, _) => Some(SendMode::SendAs),
                (false, true) => Some(SendMode::SendOnBehalf),
                (false, false) => None,
            };
            Ok(Grant {
                grantee: grantee_of(key)?,
                access: form.access.contains(key),
                send,
                setup: form.setup.contains(key),
            })
        })
        .collect()
}

async fn page(api: &Api, viewer: &Viewer, account: &Account, grants: &[Grant]) -> GridPage {
    let choices = choices(api, viewer).await;
    GridPage {
        chrome: Chrome::new(
            viewer,
            format!("Grants of {}", account.name),
            "/console/accounts",
        ),
        id: account.id,
        rows: rows(&choices, grants),
        errors: Errors::none(),
    }
}

/// `GET /console/accounts/{id}/grants`.
pub async fn show(State(api): State<Api>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    match fetch(&api, &viewer, &raw).await {
        Ok(account) => html(
            StatusCode::OK,
            &page(&api, &viewer, &account, &account.grants).await,
        ),
        Err(problem) => problem_page(&viewer, &problem),
    }
}

/// `POST /console/accounts/{id}/grants`.
pub async fn save(
    State(api): State<Api>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(form): Form<GridForm>,
) -> Response {
    let account = match fetch(&api, &viewer, &raw).await {
        Ok(account) => account,
        Err(problem) => return problem_page(&viewer, &problem),
    };
    let grants = match grants_of(&form) {
        Ok(grants) => grants,
        Err(problem) => return problem_page(&viewer, &problem),
    };
    let body = Body(GrantList::Bare(grants.clone()));
    let param = Param(account.id);
    match account_edit::put_grants(viewer.caller(), State(api.clone()), param, body).await {
        Ok(saved) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/accounts/{}/grants", saved.id),
            "Grants saved",
        ),
        Err(problem) => {
            let mut shown = page(&api, &viewer, &account, &grants).await;
            shown.errors = Errors::from_problem(&problem);
            html(status_of(&problem), &shown)
        }
    }
}
