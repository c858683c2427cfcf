//! Explain (`/console/accounts/explain`): "may user U send as address F?" — the verdict of
//! `api::explain::explain` (permission `shared_account_setup`), read from the policy in
//! force: allowed or refused, the rule, the SMTP reply, the account chosen, the rule trail
//! and the rewrite (From, Sender, Reply-To, envelope sender) it would apply.
//!
//! Nothing changes, so the form is a GET: an explanation can be linked to (each account
//! links here with its address filled in).

use super::accounts::{body_of, choices};
use super::accounts_form::status_of;
use super::render::{html, Chrome, Errors};
use super::Viewer;
use crate::api::{explain, Api};
use crate::policy::Explanation;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

/// `?user=&from=&account=`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExplainQuery {
    user: String,
    from: String,
    account: String,
}

#[derive(Template)]
#[template(path = "console/accounts/explain.html")]
struct ExplainPage {
    chrome: Chrome,
    user: String,
    from: String,
    account: String,
    /// Logins offered as suggestions.
    logins: Vec<String>,
    answer: Option<Explanation>,
    errors: Errors,
}

/// `GET /console/accounts/explain`.
pub async fn show(
    State(api): State<Api>,
    viewer: Viewer,
    Query(query): Query<ExplainQuery>,
) -> Response {
    let logins = choices(&api, &viewer)
        .await
        .users
        .into_iter()
        .map(|u| u.login)
        .collect();
    let mut page = ExplainPage {
        chrome: Chrome::new(&viewer, "Explain a sending decision", "/console/accounts"),
        user: query.user.clone(),
        from: query.from.clone(),
        account: query.account.clone(),
        logins,
        answer: None,
        errors: Errors::none(),
    };
    if query.user.trim().is_empty() || query.from.trim().is_empty() {
        return html(StatusCode::OK, &page);
    }
    let user = query.user.trim();
    let user = match user.parse::<u64>() {
        Ok(id) => json!(id),
        Err(_) => json!(user),
    };
    let account = match query.account.trim() {
        "" => Value::Null,
        hint => json!(hint),
    };
    let request = json!({ "user": user, "from": query.from, "account": account });
    let answer = match body_of(request) {
        Ok(body) => explain::explain(viewer.caller(), State(api.clone()), body).await,
        Err(problem) => Err(problem),
    };
    match answer {
        Ok(answer) => {
            page.answer = Some(answer.0);
            html(StatusCode::OK, &page)
        }
        Err(problem) => {
            // The API's one 404 here is the user it could not find (its documented answer).
            page.errors = match problem.status {
                404 => Errors::field_error("user", problem.detail.clone()),
                _ => Errors::from_problem(&problem),
            };
            html(status_of(&problem), &page)
        }
    }
}
