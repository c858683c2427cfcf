//! The "set your password" page (SPEC §7): `GET /password/{token}` shows a small HTML form,
//! `POST /password/{token}` (an ordinary form post, no JavaScript) sets the password of the
//! user the link was made for and uses the link up. No bearer token: the link is the
//! credential, kept hashed; an unknown, used or expired link gets a 404 page.
//!
//! Pages are not cached, not framed, send no referrer (the token is in the URL) and load
//! nothing from elsewhere.

use super::extract::blocking;
use super::users::MIN_PASSWORD;
use super::{Api, Problem};
use crate::policy::{digest_secret, hash_password};
use crate::store::UserStatus;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

/// The form's fields.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    password: String,
    confirm: String,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:sans-serif;max-width:28em;margin:3em auto;padding:0 1em}}\
         label{{display:block;margin:1em 0 .3em}}input{{width:100%;padding:.4em}}\
         button{{margin-top:1.2em;padding:.5em 1.5em}}.error{{color:#a00}}</style></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>\n",
        title = escape(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
            ),
        ],
        html,
    )
        .into_response()
}

fn form(login: &str, error: Option<&str>) -> String {
    let error = error.map_or_else(String::new, |e| {
        format!("<p class=\"error\">{}</p>", escape(e))
    });
    format!(
        "<p>Choose a password for <strong>{login}</strong>.</p>{error}\
         <form method=\"post\"><label for=\"password\">New password (at least {MIN_PASSWORD} characters)</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"{MIN_PASSWORD}\">\
         <label for=\"confirm\">Repeat it</label>\
         <input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" required>\
         <button type=\"submit\">Set password</button></form>",
        login = escape(login)
    )
}

fn gone() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<p>This link was already used or has expired. Ask the helpdesk for a new one.</p>",
    )
}

/// `GET /password/{token}`.
pub async fn show(State(api): State<Api>, Path(token): Path<String>) -> Response {
    let now = crate::spool::now_ms() / 1000;
    let link = match api
        .store()
        .password_links()
        .get(&digest_secret(&token), now)
    {
        Ok(Some(link)) => link,
        Ok(None) => return gone(),
        Err(error) => return Problem::from(error).into_response(),
    };
    match api.store().users().by_id(link.user) {
        Ok(Some(user)) if user.status == UserStatus::Active => page(
            StatusCode::OK,
            "Set your password",
            &form(&user.login, None),
        ),
        Ok(_) => gone(),
        Err(error) => Problem::from(error).into_response(),
    }
}

/// `POST /password/{token}` with `password` and `confirm`.
pub async fn set(
    State(api): State<Api>,
    Path(token): Path<String>,
    Form(fields): Form<PasswordForm>,
) -> Response {
    let now = crate::spool::now_ms() / 1000;
    let digest = digest_secret(&token);
    let user = match api.store().password_links().get(&digest, now) {
        Ok(Some(link)) => api.store().users().by_id(link.user),
        Ok(None) => return gone(),
        Err(error) => return Problem::from(error).into_response(),
    };
    let user = match user {
        Ok(Some(user)) if user.status == UserStatus::Active => user,
        Ok(_) => return gone(),
        Err(error) => return Problem::from(error).into_response(),
    };
    let refusal = match (&fields.password, &fields.confirm) {
        (p, _) if p.chars().count() < MIN_PASSWORD => Some("The password is too short."),
        (p, c) if p != c => Some("The two passwords differ."),
        _ => None,
    };
    if let Some(refusal) = refusal {
        let body = form(&user.login, Some(refusal));
        return page(StatusCode::UNPROCESSABLE_ENTITY, "Set your password", &body);
    }
    let password = fields.password;
    let hash = match blocking(move || Ok(hash_password(&password)?)).await {
        Ok(hash) => hash,
        Err(problem) => return problem.into_response(),
    };
    // Under the API's write lock, with the user read again: a block (or any change) made
    // while the password was hashed is kept, and a user blocked meanwhile gets nothing.
    let _change = api.write_lock().await;
    let work = api.clone();
    let id = user.id;
    let result = blocking(move || {
        // Used up first: a link never sets two passwords, even when two posts race.
        if work.store().password_links().take(&digest, now)?.is_none() {
            return Ok(false);
        }
        let Some(mut user) = work.store().users().by_id(id)? else {
            return Ok(false);
        };
        if user.status != UserStatus::Active {
            return Ok(false);
        }
        user.password_hash = Some(hash);
        work.store().users().update(&user)?;
        work.reload()?;
        tracing::info!(login = %user.login, "password set through a password link");
        Ok(true)
    })
    .await;
    match result {
        Ok(true) => page(
            StatusCode::OK,
            "Password set",
            "<p>Your password is set. You can now sign in.</p>",
        ),
        Ok(false) => gone(),
        Err(problem) => problem.into_response(),
    }
}
