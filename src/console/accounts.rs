//! Email accounts (`/console/accounts`): the list (filtered by text and health, paged on
//! the server), deleting an account, and the routes of the whole area — the form
//! (`accounts_form`), the grant grid (`accounts_grants`), Test account (`accounts_test`)
//! and Explain (`accounts_explain`). Every page reads and changes accounts through the
//! API's handlers (`api::accounts`, `api::account_edit`, ...), called as the viewer.

use super::render::{html, problem_page, redirect_with_notice, Chrome};
use super::{accounts_explain, accounts_form, accounts_grants, accounts_test, Viewer};
use crate::api::extract::{Body, Param};
use crate::api::{account_choices, accounts, Api, Problem};
use crate::store::{Account, Scope};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Accounts shown on one page of the list.
const PAGE_SIZE: usize = 25;

/// The area's routes.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/accounts", get(list))
        .route(
            "/console/accounts/new",
            get(accounts_form::new_form).post(accounts_form::create),
        )
        .route("/console/accounts/explain", get(accounts_explain::show))
        .route(
            "/console/accounts/{id}",
            get(accounts_form::edit_form).post(accounts_form::save),
        )
        .route("/console/accounts/{id}/delete", post(remove))
        .route(
            "/console/accounts/{id}/grants",
            get(accounts_grants::show).post(accounts_grants::save),
        )
        .route(
            "/console/accounts/{id}/test",
            get(accounts_test::show).post(accounts_test::run),
        )
}

/// The API body `T` built from `value` (a form turned into JSON), as the API would read
/// it; a value the API would refuse to read is its 400.
pub(super) fn body_of<T: DeserializeOwned>(value: serde_json::Value) -> Result<Body<T>, Problem> {
    serde_json::from_value(value)
        .map(Body)
        .map_err(|e| Problem::bad_request(format!("the form could not be read: {e}")))
}

/// The name a serde enum has on the wire (`send_as`, `all_staff`).
pub(super) fn wire<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}

/// An account id from the path; anything else names no account (404).
pub(super) fn account_id(raw: &str) -> Result<u64, Problem> {
    raw.parse()
        .map_err(|_| Problem::not_found(format!("account {raw:?}")))
}

/// The account `id` as the viewer may see it (the API's 404 otherwise).
pub(super) async fn fetch(api: &Api, viewer: &Viewer, raw: &str) -> Result<Account, Problem> {
    let id = account_id(raw)?;
    accounts::show(viewer.caller(), State(api.clone()), Param(id))
        .await
        .map(|json| json.0)
}

/// The names the account forms choose from; empty when the API refuses the viewer (the
/// form then offers what it can, and the API decides on saving).
pub(super) async fn choices(api: &Api, viewer: &Viewer) -> account_choices::AccountChoices {
    account_choices::choices(viewer.caller(), State(api.clone()))
        .await
        .map(|json| json.0)
        .unwrap_or_default()
}

/// How a scope reads in a list.
pub(super) fn scope_label(scope: &Scope) -> String {
    match scope {
        Scope::Everyone => "Everyone".into(),
        Scope::System => "System".into(),
        Scope::AllStaff => "All staff".into(),
        Scope::Permitted {
            skill_groups,
            roles,
            users,
        } => {
            let mut parts = Vec::new();
            for (n, one, many) in [
                (skill_groups.len(), "skill group", "skill groups"),
                (roles.len(), "role", "roles"),
                (users.len(), "user", "users"),
            ] {
                match n {
                    0 => {}
                    1 => parts.push(format!("1 {one}")),
                    n => parts.push(format!("{n} {many}")),
                }
            }
            match parts.is_empty() {
                true => "Permitted (nobody yet)".into(),
                false => format!("Permitted: {}", parts.join(", ")),
            }
        }
    }
}

/// One row of the list.
pub struct Row {
    pub id: u64,
    pub name: String,
    pub address: String,
    pub personal: bool,
    pub is_default: bool,
    pub scope: String,
    pub upstream: String,
    pub health: String,
    pub last_error: String,
}

/// `?q=&health=&page=` of the list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    health: String,
    #[serde(default)]
    page: Option<usize>,
}

#[derive(Template)]
#[template(path = "console/accounts/list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    q: String,
    health: String,
    /// (value, label) of the health filter.
    healths: Vec<(&'static str, &'static str)>,
    total: usize,
    page: usize,
    pages: usize,
    prev: Option<String>,
    next: Option<String>,
}

/// `GET /console/accounts`.
async fn list(State(api): State<Api>, viewer: Viewer, Query(query): Query<ListQuery>) -> Response {
    let all = match accounts::list(viewer.caller(), State(api.clone())).await {
        Ok(json) => json.0,
        Err(problem) => return problem_page(&viewer, &problem),
    };
    let needle = query.q.trim().to_lowercase();
    let matching: Vec<Account> = all
        .into_iter()
        .filter(|a| needle.is_empty() || haystack(a).contains(&needle))
        .filter(|a| query.health.is_empty() || wire(&a.status.health) == query.health)
        .collect();
    let total = matching.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let rows = matching
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|a| Row {
            id: a.id,
            personal: a.owner.is_some(),
            is_default: a.is_default,
            scope: scope_label(&a.scope),
            health: wire(&a.status.health),
            last_error: a.status.last_error.unwrap_or_default(),
            name: a.name,
            address: a.address,
            upstream: a.upstream,
        })
        .collect();
    let link = |page: usize| {
        let query = [
            ("q", query.q.as_str()),
            ("health", query.health.as_str()),
            ("page", &page.to_string()),
        ];
        let text = serde_urlencoded::to_string(query).unwrap_or_default();
        format!("/console/accounts?{text}")
    };
    let page_view = ListPage {
        chrome: Chrome::new(&viewer, "Email accounts", "/console/accounts"),
        rows,
        healths: vec![
            ("", "Any"),
            ("healthy", "Healthy"),
            ("degraded", "Degraded"),
            ("failing", "Failing"),
        ],
        total,
        page,
        pages,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
        q: query.q,
        health: query.health,
    };
    html(StatusCode::OK, &page_view)
}

/// The text the list's filter searches: name, addresses, description, upstream.
fn haystack(account: &Account) -> String {
    let mut text = format!(
        "{} {} {} {}",
        account.name, account.address, account.description, account.upstream
    );
    for extra in account.from_address.iter().chain(&account.aliases) {
        text.push(' ');
        text.push_str(extra);
    }
    text.to_lowercase()
}

/// `POST /console/accounts/{id}/delete`.
async fn remove(State(api): State<Api>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    let deleted = match account_id(&raw) {
        Ok(id) => accounts::remove(viewer.caller(), State(api.clone()), Param(id)).await,
        Err(problem) => Err(problem),
    };
    match deleted {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            "/console/accounts",
            "Account deleted",
        ),
        Err(problem) => problem_page(&viewer, &problem),
    }
}
