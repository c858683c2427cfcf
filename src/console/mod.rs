//! The web console (issue 25): server-rendered HTML for administrators, staff and
//! requesters under `/console/`, served by the API listener (`/` redirects there).
//!
//! The console is a client of the API that lives in the same process. A page handler
//! takes the session's [`Viewer`], builds the API's `Caller` for its user and calls the API
//! handler itself, so every permission check, validation and audit entry is the API's own
//! (the audit names the console user as actor); the console only turns forms into the
//! API's bodies and answers (or problems) into pages. It never decides who may do what.
//!
//! `guard` wraps every console request: security headers (a Content-Security-Policy
//! without `unsafe-inline`), cross-site refusal of unsafe requests, the session cookie, the
//! session's CSRF token on every unsafe request. `session` is the cookie and the [`Viewer`];
//! `login` logs in (argon2id on the hashing threads, failures counted per name and per IP
//! by `limiter`) and out; `render` is what every page shares (the navigation, form errors,
//! notices, the error page); the pages follow, one file per area. Templates are askama
//! files under `templates/console/`; the one stylesheet and the few lines of script are
//! embedded (`static/`).

mod accounts;
mod accounts_explain;
mod accounts_form;
mod accounts_grants;
mod accounts_test;
mod admin;
mod admin_dkim;
mod archive;
mod audit;
mod backups;
mod dashboard;
mod guard;
mod helpdesk;
mod helpdesk_blocklist;
mod helpdesk_fetch;
mod helpdesk_fetch_status;
mod helpdesk_inbound;
mod helpdesk_mine;
mod limiter;
mod login;
mod mail_users;
mod me;
mod people;
mod queue;
pub(crate) mod render;
mod requesters;
mod roles;
pub(crate) mod session;
mod tickets;
mod user_edit;
mod user_tokens;
mod users;
mod webhooks;

pub use limiter::Limiter;
pub use login::{check_password, ClientIp};
pub use session::Viewer;

use crate::api::Api;
use crate::config::ConsoleConfig;
use axum::http::header;
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

/// The console's settings and its failed-login counts (one per API listener).
pub struct Console {
    pub settings: ConsoleConfig,
    pub limiter: Limiter,
}

impl Console {
    pub fn new(settings: ConsoleConfig) -> Console {
        Console {
            limiter: Limiter::new(settings.max_failed_logins),
            settings,
        }
    }
}

/// Every console route, behind the guard; `api` is the router's state (the guard reads
/// sessions from its store).
pub fn router(api: Api) -> Router<Api> {
    pages().route_layer(middleware::from_fn_with_state(api, guard::guard))
}

/// The pages, one router per area (each area's file owns its routes).
fn pages() -> Router<Api> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(dashboard::show))
        .route("/console/login", get(login::show).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/static/console.js", get(script))
        .merge(me::routes())
        .merge(archive::routes())
        .merge(users::routes())
        .merge(user_edit::routes())
        .merge(user_tokens::routes())
        .merge(roles::routes())
        .merge(mail_users::routes())
        .merge(backups::routes())
        .merge(queue::routes())
        .merge(audit::routes())
        .merge(tickets::routes())
        .merge(requesters::routes())
        .merge(helpdesk_blocklist::routes())
        .merge(webhooks::routes())
        .merge(helpdesk_inbound::routes())
        .merge(helpdesk_fetch_status::routes())
        .merge(helpdesk_mine::routes())
        .route("/console/{*rest}", get(missing).post(missing))
        .merge(accounts::routes())
        .merge(admin::routes())
}

/// A console address that names no page.
async fn missing(viewer: Viewer) -> Response {
    let problem = crate::api::Problem::not_found("this page");
    render::problem_page(&viewer, &problem)
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/console.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/console.js"),
    )
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
