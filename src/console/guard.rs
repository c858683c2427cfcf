//! What every console request passes through before its page: security headers on every
//! answer, cross-site refusal and the CSRF token on unsafe requests, and the session.
//!
//! An unsafe request (anything but GET/HEAD/OPTIONS) is refused with 403 when the browser
//! says it came from another site (`Sec-Fetch-Site: cross-site` or `same-site`), or, when
//! that header is absent, when its `Origin` is neither the console's public origin nor
//! the `Host` it was sent to. Past the login page, it must also carry the session's CSRF
//! token, as the form field `csrf` (urlencoded forms) or the header `X-CSRF-Token`,
//! compared in constant time.

use super::render;
use super::session::{self, NOTICE_COOKIE};
use crate::api::Api;
use crate::config::ConsoleConfig;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

/// The most an urlencoded console form may hold.
const FORM_LIMIT: usize = 1 << 20;

/// The policy of every console page: our own script and stylesheet only, no inline code,
/// no framing, forms posting only to ourselves.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The middleware.
pub async fn guard(State(api): State<Api>, request: Request, next: Next) -> Response {
    let mut response = admit(&api, request, next).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn admit(api: &Api, request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe {
        if let Err(why) = same_origin(request.headers(), &api.state.console.settings) {
            tracing::warn!(path = %request.uri().path(), why, "console: cross-site request refused");
            return render::refusal(StatusCode::FORBIDDEN, why);
        }
    }
    let path = request.uri().path();
    if is_public(path) {
        return next.run(request).await;
    }
    let viewer = match session::resolve(api, request.headers()) {
        Ok(Some(viewer)) => viewer,
        Ok(None) => return to_login(&request),
        Err(problem) => return render::refusal_of(&problem),
    };
    let request = match safe {
        true => request,
        false => match check_token(request, viewer.csrf()).await {
            Ok(request) => request,
            Err(response) => return response,
        },
    };
    let had_notice = viewer.notice.is_some();
    let mut request = request;
    request.extensions_mut().insert(viewer);
    let mut response = next.run(request).await;
    if had_notice && !response.headers().contains_key(header::SET_COOKIE) {
        let clear = session::set_cookie(&api.state.console.settings, NOTICE_COOKIE, "", 0);
        if let Ok(value) = HeaderValue::from_str(&clear) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Pages anyone may open: the login page and the embedded assets.
fn is_public(path: &str) -> bool {
    path == "/"
        || path == "/console"
        || path == "/console/login"
        || path.starts_with("/console/static/")
}

/// Off to the login page, coming back here afterwards (GET only; a form posted without a
/// session is not replayed).
fn to_login(request: &Request) -> Response {
    if request.method() != Method::GET {
        return render::refusal(
            StatusCode::UNAUTHORIZED,
            "your session has ended; log in again",
        );
    }
    let here = request
        .uri()
        .path_and_query()
        .map_or("/console/", |p| p.as_str());
    let next: String = url_encode(here);
    Redirect::to(&format!("/console/login?next={next}")).into_response()
}

fn url_encode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// Err with the reason when an unsafe request comes from another site.
pub fn same_origin(headers: &HeaderMap, settings: &ConsoleConfig) -> Result<(), &'static str> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site") {
        return match site.to_ascii_lowercase().as_str() {
            "same-origin" | "none" => Ok(()),
            _ => Err("a request from another site is refused"),
        };
    }
    let Some(origin) = value("origin") else {
        return Ok(());
    };
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    let public = settings
        .public_url
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let host = value("host").unwrap_or_default().to_ascii_lowercase();
    let own = !public.is_empty() && origin == public
        || origin
            .split_once("://")
            .is_some_and(|(_, authority)| !host.is_empty() && authority == host);
    match own {
        true => Ok(()),
        false => Err("a request whose Origin is not this console is refused"),
    }
}

/// Reads the body (a form) and checks its `csrf` field (or the `X-CSRF-Token` header)
/// against the session's; gives the request back with its body intact.
async fn check_token(request: Request, expected: &str) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| render::refusal(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"))?;
    let from_header = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let from_form = || {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()?
            .into_iter()
            .find(|(key, _)| key == "csrf")
            .map(|(_, value)| value)
    };
    let given = from_header.or_else(from_form).unwrap_or_default();
    match bool::from(given.as_bytes().ct_eq(expected.as_bytes())) && !expected.is_empty() {
        true => Ok(Request::from_parts(parts, Body::from(bytes))),
        false => Err(render::refusal(
            StatusCode::FORBIDDEN,
            "the form's security token is missing or stale; reload the page and try again",
        )),
    }
}
