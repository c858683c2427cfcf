//! The pages every user has (`/console/me`): who I am, my email accounts (and a personal
//! account of my own when the organisation allows them), my mail configuration (a locked
//! one shows who locked it, and a save is refused with the API's reason), my password, my
//! API tokens (a new one shown once) and my console sessions. Requesters see their
//! profile, password and sessions.

use super::render::{self, html, Chrome, Errors};
use super::Viewer;
use crate::api::extract::{Body, Param};
use crate::api::me::MyAccount;
use crate::api::sessions::SessionView;
use crate::api::tokens::{IssuedToken, TokenView};
use crate::api::{accounts, mail_config, me, sessions, tokens, Api, Problem};
use crate::store::MailConfig;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

/// The routes of this file.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/me", get(show))
        .route("/console/me/password", post(change_password))
        .route("/console/me/mail-config", post(save_mail_config))
        .route("/console/me/tokens", post(create_token))
        .route("/console/me/tokens/{id}/revoke", post(revoke_token))
        .route("/console/me/sessions/{id}/revoke", post(revoke_session))
        .route(
            "/console/me/accounts",
            get(my_accounts).post(create_account),
        )
}

/// Which form of the page failed, and why.
#[derive(Default)]
struct Failed {
    password: Errors,
    mail_config: Errors,
    token: Errors,
}

#[derive(Template)]
#[template(path = "console/me.html")]
struct MePage {
    chrome: Chrome,
    login: String,
    email: String,
    kind: String,
    roles: String,
    permissions: String,
    staff: bool,
    config: Option<MailConfig>,
    tokens: Vec<TokenView>,
    issued: Option<IssuedToken>,
    sessions: Vec<SessionView>,
    current_session: u64,
    failed: Failed,
}

async fn page(
    api: &Api,
    viewer: &Viewer,
    status: StatusCode,
    failed: Failed,
    issued: Option<IssuedToken>,
) -> Response {
    let me = me::show(viewer.caller()).await.0;
    let id = viewer.user.id;
    let staff = !viewer.is_requester();
    let config = match staff {
        true => mail_config::show_mine(viewer.caller(), State(api.clone()))
            .await
            .ok()
            .map(|j| j.0),
        false => None,
    };
    let tokens = match staff {
        true => tokens::list(viewer.caller(), State(api.clone()), Param(id))
            .await
            .map(|j| j.0)
            .unwrap_or_default(),
        false => Vec::new(),
    };
    let sessions = sessions::list(viewer.caller(), State(api.clone()), Param(id))
        .await
        .map(|j| j.0)
        .unwrap_or_default();
    let page = MePage {
        chrome: Chrome::new(viewer, "My profile", "/console/me"),
        login: viewer.user.login.clone(),
        email: viewer.user.email.clone(),
        kind: format!("{:?}", viewer.user.kind).to_lowercase(),
        roles: viewer.user.roles.join(", "),
        permissions: me.permissions.join(", "),
        staff,
        config,
        tokens,
        issued,
        sessions,
        current_session: viewer.session.id,
        failed,
    };
    html(status, &page)
}

fn status_of(problem: &Problem) -> StatusCode {
    StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
}

/// `GET /console/me`.
async fn show(State(api): State<Api>, viewer: Viewer) -> Response {
    page(&api, &viewer, StatusCode::OK, Failed::default(), None).await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /console/me/password`: every session ends, so it lands on the login page.
async fn change_password(
    State(api): State<Api>,
    viewer: Viewer,
    Form(form): Form<PasswordForm>,
) -> Response {
    if form.new_password != form.confirm {
        let failed = Failed {
            password: Errors::field_error("confirm", "the two new passwords differ"),
            ..Failed::default()
        };
        return page(
            &api,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            failed,
            None,
        )
        .await;
    }
    let body = sessions::NewPassword {
        current_password: form.current_password,
        new_password: form.new_password,
    };
    match sessions::change_password(viewer.caller(), State(api.clone()), Body(body)).await {
        Ok(_) => Redirect::to("/console/login").into_response(),
        Err(problem) => {
            let failed = Failed {
                password: Errors::from_problem(&problem),
                ..Failed::default()
            };
            page(&api, &viewer, status_of(&problem), failed, None).await
        }
    }
}

#[derive(Deserialize)]
struct MailConfigForm {
    #[serde(default)]
    account_type: String,
    #[serde(default)]
    mailbox: String,
}

/// `POST /console/me/mail-config`.
async fn save_mail_config(
    State(api): State<Api>,
    viewer: Viewer,
    Form(form): Form<MailConfigForm>,
) -> Response {
    let body = json!({"account_type": form.account_type, "mailbox": form.mailbox});
    let saved = match serde_json::from_value(body) {
        Ok(body) => mail_config::save_mine(viewer.caller(), State(api.clone()), Body(body))
            .await
            .map(|_| ()),
        Err(_) => Err(Problem::invalid(
            "account_type",
            "choose one of the account types",
        )),
    };
    match saved {
        Ok(()) => render::redirect_with_notice(
            &api.state.console.settings,
            "/console/me",
            "Mail configuration saved.",
        ),
        Err(problem) => {
            let failed = Failed {
                mail_config: Errors::from_problem(&problem),
                ..Failed::default()
            };
            page(&api, &viewer, status_of(&problem), failed, None).await
        }
    }
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    label: String,
}

/// `POST /console/me/tokens`: the page shows the new token once.
async fn create_token(
    State(api): State<Api>,
    viewer: Viewer,
    Form(form): Form<TokenForm>,
) -> Response {
    let body =
        serde_json::from_value(json!({"label": form.label})).expect("a label is a valid body");
    let id = viewer.user.id;
    match tokens::create(viewer.caller(), State(api.clone()), Param(id), Body(body)).await {
        Ok((_, issued)) => {
            page(
                &api,
                &viewer,
                StatusCode::CREATED,
                Failed::default(),
                Some(issued.0),
            )
            .await
        }
        Err(problem) => {
            let failed = Failed {
                token: Errors::from_problem(&problem),
                ..Failed::default()
            };
            page(&api, &viewer, status_of(&problem), failed, None).await
        }
    }
}

/// `POST /console/me/tokens/{id}/revoke`.
async fn revoke_token(
    State(api): State<Api>,
    viewer: Viewer,
    Param(token): Param<String>,
) -> Response {
    let id = viewer.user.id;
    match tokens::revoke(viewer.caller(), State(api.clone()), Param((id, token))).await {
        Ok(_) => render::redirect_with_notice(
            &api.state.console.settings,
            "/console/me",
            "Token revoked.",
        ),
        Err(problem) => render::problem_page(&viewer, &problem),
    }
}

/// `POST /console/me/sessions/{id}/revoke` (the current one logs out).
async fn revoke_session(
    State(api): State<Api>,
    viewer: Viewer,
    Param(session): Param<u64>,
) -> Response {
    let id = viewer.user.id;
    match sessions::revoke(viewer.caller(), State(api.clone()), Param((id, session))).await {
        Ok(_) if session == viewer.session.id => Redirect::to("/console/login").into_response(),
        Ok(_) => render::redirect_with_notice(
            &api.state.console.settings,
            "/console/me",
            "Session ended.",
        ),
        Err(problem) => render::problem_page(&viewer, &problem),
    }
}

#[derive(Template)]
#[template(path = "console/my_accounts.html")]
struct MyAccountsPage {
    chrome: Chrome,
    accounts: Vec<MyAccount>,
    personal_allowed: bool,
    form: AccountForm,
    errors: Errors,
}

/// The personal-account form.
#[derive(Default, Deserialize)]
struct AccountForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    upstream: String,
}

async fn accounts_page(
    api: &Api,
    viewer: &Viewer,
    status: StatusCode,
    form: AccountForm,
    errors: Errors,
) -> Response {
    let accounts = me::accounts(viewer.caller(), State(api.clone()))
        .await
        .map(|j| j.0)
        .unwrap_or_default();
    // What to offer; the API decides whether a creation is allowed.
    let personal_allowed = !viewer.is_requester()
        && api
            .store()
            .settings()
            .map(|s| s.allow_personal_accounts)
            .unwrap_or(false);
    let page = MyAccountsPage {
        chrome: Chrome::new(viewer, "My email accounts", "/console/me"),
        accounts,
        personal_allowed,
        form,
        errors,
    };
    html(status, &page)
}

/// `GET /console/me/accounts`.
async fn my_accounts(State(api): State<Api>, viewer: Viewer) -> Response {
    accounts_page(
        &api,
        &viewer,
        StatusCode::OK,
        AccountForm::default(),
        Errors::none(),
    )
    .await
}

/// `POST /console/me/accounts`: a personal account owned by the viewer.
async fn create_account(
    State(api): State<Api>,
    viewer: Viewer,
    Form(form): Form<AccountForm>,
) -> Response {
    let mut body = json!({
        "name": form.name,
        "address": form.address,
        "owner": viewer.user.id,
        "scope": {"kind": "permitted"},
    });
    if !form.display_name.trim().is_empty() {
        body["display_name"] = json!(form.display_name);
    }
    if !form.upstream.trim().is_empty() {
        body["upstream"] = json!(form.upstream);
    }
    let created = match serde_json::from_value(body) {
        Ok(body) => accounts::create(viewer.caller(), State(api.clone()), Body(body))
            .await
            .map(|_| ()),
        Err(e) => Err(Problem::bad_request(e.to_string())),
    };
    match created {
        Ok(()) => render::redirect_with_notice(
            &api.state.console.settings,
            "/console/me/accounts",
            "Personal account created.",
        ),
        Err(problem) => {
            let status = status_of(&problem);
            accounts_page(&api, &viewer, status, form, Errors::from_problem(&problem)).await
        }
    }
}
