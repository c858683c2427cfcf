//! Test account (`/console/accounts/{id}/test`): sends a test message from the account to
//! an address through its whole outbound path (`api::account_test::test`, which needs the
//! account's `setup` right) and shows what the upstream answered: accepted, or its
//! refusal with the reply code and text.

use super::accounts::{body_of, fetch};
use super::accounts_form::status_of;
use super::render::{html, problem_page, Chrome, Errors};
use super::Viewer;
use crate::api::account_test::{self, TestResult};
use crate::api::extract::Param;
use crate::api::Api;
use crate::store::Account;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

/// The form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TestForm {
    to: String,
}

#[derive(Template)]
#[template(path = "console/accounts/test.html")]
struct TestPage {
    chrome: Chrome,
    id: u64,
    address: String,
    upstream: String,
    to: String,
    result: Option<TestResult>,
    errors: Errors,
}

impl TestPage {
    fn new(viewer: &Viewer, account: &Account, to: String) -> TestPage {
        TestPage {
            chrome: Chrome::new(
                viewer,
                format!("Test {}", account.name),
                "/console/accounts",
            ),
            id: account.id,
            address: account
                .from_address
                .clone()
                .unwrap_or_else(|| account.address.clone()),
            upstream: account.upstream.clone(),
            to,
            result: None,
            errors: Errors::none(),
        }
    }
}

/// `GET /console/accounts/{id}/test`.
pub async fn show(State(api): State<Api>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    match fetch(&api, &viewer, &raw).await {
        Ok(account) => html(
            StatusCode::OK,
            &TestPage::new(&viewer, &account, viewer.user.email.clone()),
        ),
        Err(problem) => problem_page(&viewer, &problem),
    }
}

/// `POST /console/accounts/{id}/test`: the page again, with the upstream's answer.
pub async fn run(
    State(api): State<Api>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(form): Form<TestForm>,
) -> Response {
    let account = match fetch(&api, &viewer, &raw).await {
        Ok(account) => account,
        Err(problem) => return problem_page(&viewer, &problem),
    };
    let mut page = TestPage::new(&viewer, &account, form.to.clone());
    let tested = match body_of(serde_json::json!({ "to": form.to })) {
        Ok(body) => {
            let param = Param(account.id);
            account_test::test(viewer.caller(), State(api.clone()), param, body).await
        }
        Err(problem) => Err(problem),
    };
    match tested {
        Ok(result) => {
            page.result = Some(result.0);
            html(StatusCode::OK, &page)
        }
        Err(problem) => {
            page.errors = Errors::from_problem(&problem);
            html(status_of(&problem), &page)
        }
    }
}
