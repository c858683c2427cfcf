//! What every console page shares: the frame around it (`Chrome`: title, navigation by
//! the viewer's permissions, the logout form, a notice), the errors of a form (`Errors`,
//! from the API's problem document: each beside its field), the error page, and the
//! notice carried across a redirect in a short-lived cookie.

use super::session::{set_cookie, Viewer, NOTICE_COOKIE};
use crate::api::Problem;
use crate::config::ConsoleConfig;
use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// One link of the navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The frame of a page.
pub struct Chrome {
    pub title: String,
    /// The viewer's name; empty on pages seen without a session.
    pub user: String,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    pub notice: Option<String>,
}

/// The navigation: (address, label, who sees it). The API decides what each page may
/// show or do; this only leaves out links that would end in a 403.
const NAV: &[(&str, &str, Show)] = &[
    ("/console/", "Dashboard", Show::Staff),
    ("/console/my/tickets", "My tickets", Show::Requester),
    ("/console/accounts", "Email accounts", Show::Staff),
    ("/console/tickets", "Tickets", Show::Staff),
    ("/console/requesters", "Requesters", Show::Staff),
    ("/console/archive", "Archive", Show::Staff),
    (
        "/console/blocklist",
        "Blocklist",
        Show::Permission("block_unwanted_email"),
    ),
    ("/console/users", "Users", Show::Permission("manage_users")),
    (
        "/console/mail-users",
        "Mail users",
        Show::Permission("manage_users"),
    ),
    ("/console/queue", "Queue", Show::Permission("view_queue")),
    ("/console/webhooks", "Webhooks", Show::Permission("admin")),
    ("/console/upstreams", "Upstreams", Show::Permission("admin")),
    ("/console/dkim", "DKIM keys", Show::Permission("admin")),
    ("/console/settings", "Settings", Show::Permission("admin")),
    ("/console/audit", "Audit log", Show::Permission("admin")),
    ("/console/me", "My profile", Show::Everyone),
];

#[derive(Clone, Copy)]
enum Show {
    Everyone,
    Staff,
    Requester,
    Permission(&'static str),
}

impl Chrome {
    /// The frame of a page of `viewer`'s, whose navigation entry is `current`.
    pub fn new(viewer: &Viewer, title: impl Into<String>, current: &str) -> Chrome {
        let staff = !viewer.is_requester();
        let nav = NAV
            .iter()
            .filter(|(_, _, show)| match show {
                Show::Everyone => true,
                Show::Staff => staff,
                Show::Requester => !staff,
                Show::Permission(p) => staff && viewer.has(p),
            })
            .map(|&(href, label, _)| NavItem {
                href,
                label,
                current: href == current,
            })
            .collect();
        Chrome {
            title: title.into(),
            user: viewer.user.display_name.clone(),
            csrf: viewer.csrf().to_string(),
            nav,
            notice: viewer.notice.clone(),
        }
    }

    /// The frame of a page seen without a session (login, errors).
    pub fn anonymous(title: impl Into<String>) -> Chrome {
        Chrome {
            title: title.into(),
            user: String::new(),
            csrf: String::new(),
            nav: Vec::new(),
            notice: None,
        }
    }
}

/// A form's errors: the problem's detail, and the reason for each field it names.
#[derive(Debug, Default, Clone)]
pub struct Errors {
    pub summary: Option<String>,
    fields: Vec<(String, String)>,
}

impl Errors {
    /// No errors (a fresh form).
    pub fn none() -> Errors {
        Errors::default()
    }

    /// The API's problem, as the form shows it.
    pub fn from_problem(problem: &Problem) -> Errors {
        Errors {
            summary: Some(problem.detail.clone()),
            fields: problem
                .errors
                .iter()
                .map(|e| (e.field.clone(), e.reason.clone()))
                .collect(),
        }
    }

    /// An error of the console's own (a field that is not a number, say).
    pub fn field_error(field: &str, reason: impl Into<String>) -> Errors {
        let reason = reason.into();
        Errors {
            summary: Some(format!("{field}: {reason}")),
            fields: vec![(field.to_string(), reason)],
        }
    }

    /// The reason `field` was refused, if it was (`field` or a sub-field `field.x`,
    /// `field[0]`).
    pub fn of(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| {
                name == field
                    || name
                        .strip_prefix(field)
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
            .map(|(_, reason)| reason.as_str())
    }
}

/// Renders `page` with `status`.
pub fn html<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "console: a template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "console/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub status: u16,
    pub detail: String,
}

/// An error page for `status` with `detail` (no navigation: it may be shown without a
/// session).
pub fn refusal(status: StatusCode, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let page = ErrorPage {
        chrome: Chrome::anonymous(title),
        status: status.as_u16(),
        detail: detail.to_string(),
    };
    html(status, &page)
}

/// The error page of an API problem.
pub fn refusal_of(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    refusal(status, &problem.detail)
}

/// The error page of an API problem, inside `viewer`'s frame.
pub fn problem_page(viewer: &Viewer, problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let title = status.canonical_reason().unwrap_or("Error");
    let page = ErrorPage {
        chrome: Chrome::new(viewer, title, ""),
        status: problem.status,
        detail: problem.detail.clone(),
    };
    html(status, &page)
}

/// A 303 to `location` with `notice` shown on the page it lands on.
pub fn redirect_with_notice(settings: &ConsoleConfig, location: &str, notice: &str) -> Response {
    let mut response = Redirect::to(location).into_response();
    let value = URL_SAFE_NO_PAD.encode(notice.chars().take(300).collect::<String>());
    let cookie = set_cookie(settings, NOTICE_COOKIE, &value, 60);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The notice a cookie carries.
pub fn decode_notice(value: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
    String::from_utf8(bytes).ok().filter(|s| !s.is_empty())
}

/// A Unix time in seconds as `2026-12-07 00:49 UTC` (`-` for 0, "never").
pub fn when(secs: impl std::borrow::Borrow<u64>) -> String {
    let secs = *secs.borrow();
    if secs == 0 {
        return "-".to_string();
    }
    let days = (secs / 86_400) as i64;
    let (year, month, day) = crate::rewrite::date::civil_from_days(days);
    let rest = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}
