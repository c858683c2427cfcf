//! Logging in and out. The login form is protected by a double-submit token (a cookie and
//! a hidden field that must match) as well as the guard's cross-site refusal. A login is
//! checked by the same credential check as SMTP AUTH (argon2id on the hashing threads);
//! only active staff users and requesters may log in. Failures are counted per login name
//! and per client IP (`limiter`), and a wrong password sets no cookie.

use super::render::{self, html, Chrome, Errors};
use super::session::{self, cookie, cookie_name, set_cookie, LOGIN_COOKIE};
use super::Viewer;
use crate::api::Api;
use crate::policy::new_secret;
use crate::store::UserKind;
use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use subtle::ConstantTimeEq;

/// Seconds a login form stays usable.
const FORM_LIFETIME: u64 = 3600;

/// The login page.
#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    chrome: Chrome,
    login: String,
    next: String,
    csrf: String,
    errors: Errors,
}

/// `?next=` of the login page.
#[derive(Debug, Deserialize)]
pub struct Next {
    #[serde(default)]
    next: String,
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// The client's address (unspecified when the listener did not record it).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientIp, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(ClientIp(ip))
    }
}

/// `GET /console/login`: the form, with a fresh form token; to the dashboard if the
/// session is still good.
pub async fn show(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(query): Query<Next>,
) -> Response {
    if let Ok(Some(_)) = session::resolve(&api, &headers) {
        return Redirect::to(&landing(&query.next)).into_response();
    }
    form_page(
        &api,
        StatusCode::OK,
        String::new(),
        query.next,
        Errors::none(),
    )
}

fn form_page(
    api: &Api,
    status: StatusCode,
    login: String,
    next: String,
    errors: Errors,
) -> Response {
    let csrf = new_secret();
    let page = LoginPage {
        chrome: Chrome::anonymous("Log in"),
        login,
        next,
        csrf: csrf.clone(),
        errors,
    };
    let mut response = html(status, &page);
    let settings = &api.state.console.settings;
    let cookie = set_cookie(settings, LOGIN_COOKIE, &csrf, FORM_LIFETIME);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `POST /console/login`.
pub async fn submit(
    State(api): State<Api>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let issued = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if issued.is_empty() || !bool::from(issued.as_bytes().ct_eq(form.csrf.as_bytes())) {
        let errors = Errors::field_error("login", "the login form expired; please try again");
        return form_page(&api, StatusCode::FORBIDDEN, form.login, form.next, errors);
    }
    let limiter = &api.state.console.limiter;
    if let Some(wait) = limiter.blocked(&form.login, ip) {
        let minutes = wait.as_secs().div_ceil(60);
        tracing::warn!(login = %form.login, %ip, "console: login refused, too many failures");
        let errors = Errors::field_error(
            "login",
            format!("too many failed logins; try again in {minutes} minutes"),
        );
        return form_page(
            &api,
            StatusCode::TOO_MANY_REQUESTS,
            form.login,
            form.next,
            errors,
        );
    }
    let Some(user) = check_password(&api, &form.login, &form.password).await else {
        limiter.failed(&form.login, ip);
        tracing::warn!(login = %form.login, %ip, "console: failed login");
        let errors = Errors::field_error("password", "wrong login or password");
        return form_page(
            &api,
            StatusCode::UNAUTHORIZED,
            form.login,
            form.next,
            errors,
        );
    };
    limiter.succeeded(&form.login);
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let work = api.clone();
    let ip_text = ip.to_string();
    let agent = agent.to_string();
    let started = tokio::task::spawn_blocking(move || {
        session::start(&work, &user, ip_text, &agent).map(|t| (t, user))
    })
    .await;
    let (token, user) = match started {
        Ok(Ok(started)) => started,
        Ok(Err(problem)) => return render::refusal_of(&problem),
        Err(error) => {
            return render::refusal(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())
        }
    };
    tracing::info!(login = %user.login, %ip, "console: logged in");
    let settings = &api.state.console.settings;
    let lifetime = settings.session_lifetime_secs;
    let mut response = Redirect::to(&landing(&form.next)).into_response();
    for cookie in [
        set_cookie(settings, cookie_name(settings), &token, lifetime),
        set_cookie(settings, LOGIN_COOKIE, "", 0),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The user `login`/`password` names, if the password is right and the user is an active
/// staff user or requester (the check of console and API password logins).
pub async fn check_password(api: &Api, login: &str, password: &str) -> Option<crate::store::User> {
    if login.is_empty() || password.is_empty() {
        return None;
    }
    let principal = api.state.credentials.verify(login, password).await.ok()?;
    if principal.kind == UserKind::System {
        return None;
    }
    api.store().users().by_id(principal.id).ok().flatten()
}

/// Where to go after logging in: `next` if it is a console page, else the dashboard.
fn landing(next: &str) -> String {
    let local = next.starts_with("/console/") && !next.contains("//") && !next.contains('\\');
    match local {
        true => next.to_string(),
        false => "/console/".to_string(),
    }
}

/// `POST /console/logout`: ends the session (durably) and clears the cookie.
pub async fn logout(State(api): State<Api>, viewer: Viewer, headers: HeaderMap) -> Response {
    let settings = &api.state.console.settings;
    if let Some(token) = cookie(&headers, cookie_name(settings)) {
        let digest = crate::policy::digest_secret(token);
        let store = api.store().clone();
        let ended = tokio::task::spawn_blocking(move || store.sessions().remove(&digest)).await;
        if !matches!(ended, Ok(Ok(()))) {
            return render::refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "the session could not be ended; try again",
            );
        }
    }
    tracing::info!(login = %viewer.user.login, "console: logged out");
    let mut response = Redirect::to("/console/login").into_response();
    let clear = set_cookie(settings, cookie_name(settings), "", 0);
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
