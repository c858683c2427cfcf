//! The session cookie and the [`Viewer`] a page handler gets.
//!
//! The cookie holds a random token; the store keeps only its SHA-256 digest, with the
//! user, the expiry and the session's CSRF token. It is `HttpOnly` and `SameSite=Strict`,
//! scoped to `/`; when the console's public address is `https` it is also `Secure` and
//! named `__Host-postern_session` (which browsers only accept from a secure origin, for the
//! whole host).

use crate::api::{Api, Caller, Problem};
use crate::config::ConsoleConfig;
use crate::policy::{digest_secret, new_secret};
use crate::store::{Session, User, UserKind, UserStatus};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};

/// The session cookie's name over plain HTTP.
pub const COOKIE: &str = "postern_session";
/// Its name when the console is reached over TLS.
pub const SECURE_COOKIE: &str = "__Host-postern_session";
/// The login form's double-submit cookie (CSRF protection before there is a session).
pub const LOGIN_COOKIE: &str = "postern_login";
/// A one-shot notice shown on the next page (after a redirect).
pub const NOTICE_COOKIE: &str = "postern_notice";

/// Who is looking at a console page: the session and its user, who is active.
#[derive(Clone)]
pub struct Viewer {
    pub user: User,
    pub session: Session,
    caller: Caller,
    /// A notice left by the previous request (`render::redirect_with_notice`).
    pub notice: Option<String>,
}

impl Viewer {
    /// The API's caller for this user: what every console action is checked as.
    pub fn caller(&self) -> Caller {
        self.caller.clone()
    }

    /// Whether the user holds `permission` (for what the page offers; the API decides).
    pub fn has(&self, permission: &str) -> bool {
        self.caller.has(permission)
    }

    /// Whether the user is a requester (who sees only their own tickets).
    pub fn is_requester(&self) -> bool {
        self.user.kind == UserKind::Requester
    }

    /// The token unsafe forms of this session must carry.
    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Response;

    /// The guard put the viewer in the request; without one, the login page.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Viewer, Response> {
        parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .ok_or_else(|| Redirect::to("/console/login").into_response())
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// The session cookie's name under these settings.
pub fn cookie_name(settings: &ConsoleConfig) -> &'static str {
    match settings.secure() {
        true => SECURE_COOKIE,
        false => COOKIE,
    }
}

/// A `Set-Cookie` value for `name` (`max_age` 0 removes it). The attributes are those of
/// the session cookie: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` under TLS.
pub fn set_cookie(settings: &ConsoleConfig, name: &str, value: &str, max_age: u64) -> String {
    let secure = match settings.secure() {
        true => "; Secure",
        false => "",
    };
    format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// The viewer of the session whose cookie `headers` carry, if it is valid: known, not
/// expired, of a user who is active and not a system principal.
pub fn resolve(api: &Api, headers: &HeaderMap) -> Result<Option<Viewer>, Problem> {
    let name = cookie_name(&api.state.console.settings);
    let Some(token) = cookie(headers, name).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let store = api.store();
    let now = crate::spool::now_ms() / 1000;
    let Some(session) = store.sessions().get(&digest_secret(token), now)? else {
        return Ok(None);
    };
    let user = store
        .users()
        .by_id(session.user)?
        .filter(|u| u.status == UserStatus::Active && u.kind != UserKind::System);
    let Some(user) = user else {
        return Ok(None);
    };
    let caller = Caller::for_user(store, user.clone())?;
    let notice = cookie(headers, NOTICE_COOKIE).and_then(super::render::decode_notice);
    Ok(Some(Viewer {
        user,
        session,
        caller,
        notice,
    }))
}

/// Starts a session for `user`: stores it (hashed, durable) and returns the cookie's token.
pub fn start(api: &Api, user: &User, ip: String, user_agent: &str) -> Result<String, Problem> {
    let token = new_secret();
    let now = crate::spool::now_ms() / 1000;
    let session = Session {
        id: 0,
        user: user.id,
        csrf: new_secret(),
        created_at: now,
        expires_at: now + api.state.console.settings.session_lifetime_secs,
        ip,
        user_agent: user_agent.chars().take(200).collect(),
    };
    api.store()
        .sessions()
        .create(&digest_secret(&token), session)?;
    Ok(token)
}
