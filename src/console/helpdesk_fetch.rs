//! Fetching a helpdesk mailbox's mail from the provider, on the inbound settings page
//! (`/console/accounts/{id}/inbound`): the `inbound.fetch` fields of the form (turned into
//! the API's JSON; the password write-only: blank keeps the stored one), the fetch status
//! and the set-aside messages with their Retry and Move buttons
//! (`POST /console/accounts/{id}/fetch/retry|move`, carried out by
//! `api::account_fetch_status`). It decides nothing: the API's checks do.

use super::helpdesk_inbound::{page, InboundForm};
use super::render::{redirect_with_notice, when, Errors};
use super::Viewer;
use crate::api::account_fetch_status::{self as status, FetchView, MoveTo};
use crate::api::extract::{Body, Param};
use crate::api::{Api, Problem};
use crate::store::{Fetch, FetchKind, SetAsideRequest};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use axum_extra::extract::Form;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The routes of the set-aside buttons.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/accounts/{id}/fetch/retry", post(retry))
        .route("/console/accounts/{id}/fetch/move", post(move_to))
}

/// The form's fetch fields, as posted (`kind` empty: no fetching).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct FetchForm {
    pub fetch_kind: String,
    pub fetch_host: String,
    pub fetch_port: String,
    pub fetch_tls: String,
    pub fetch_auth: String,
    pub fetch_username: String,
    pub fetch_password: String,
    pub fetch_folder: String,
    pub fetch_after: String,
    pub fetch_move_to: String,
    pub fetch_on_blocked: String,
    pub fetch_blocked_folder: String,
    pub fetch_authserv_id: String,
    pub fetch_poll_secs: String,
    pub fetch_ca_file: String,
}

/// The JSON name of an enum value (`"imap"`, `"starttls"`, …).
fn name_of<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl FetchForm {
    /// The form of the stored settings (never the password).
    pub fn from_settings(fetch: Option<&Fetch>) -> FetchForm {
        let Some(f) = fetch else {
            return FetchForm {
                fetch_folder: "INBOX".into(),
                fetch_blocked_folder: "Blocked".into(),
                fetch_poll_secs: "60".into(),
                ..FetchForm::default()
            };
        };
        FetchForm {
            fetch_kind: name_of(f.kind),
            fetch_host: f.host.clone(),
            fetch_port: f.port.map(|p| p.to_string()).unwrap_or_default(),
            fetch_tls: name_of(f.tls),
            fetch_auth: name_of(f.auth),
            fetch_username: f.username.clone(),
            fetch_password: String::new(),
            fetch_folder: f.folder.clone(),
            fetch_after: name_of(f.after),
            fetch_move_to: f.move_to.clone().unwrap_or_default(),
            fetch_on_blocked: f.on_blocked.map(name_of).unwrap_or_default(),
            fetch_blocked_folder: f.blocked_folder.clone(),
            fetch_authserv_id: f.authserv_id.clone().unwrap_or_default(),
            fetch_poll_secs: f.poll_secs.to_string(),
            fetch_ca_file: f.ca_file.clone().unwrap_or_default(),
        }
    }

    /// The `fetch` member of the API's `inbound` (`null`: no fetching); a number that is
    /// none is a 422 naming its field.
    pub fn json(&self) -> Result<Value, Problem> {
        if self.fetch_kind.trim().is_empty() {
            return Ok(Value::Null);
        }
        let mut out = Map::new();
        let mut text = |key: &str, value: &str, keep_empty: bool| {
            let value = value.trim();
            if keep_empty || !value.is_empty() {
                out.insert(key.to_string(), json!(value));
            }
        };
        text("kind", &self.fetch_kind, true);
        text("host", &self.fetch_host, true);
        text("tls", &self.fetch_tls, false);
        text("auth", &self.fetch_auth, false);
        text("username", &self.fetch_username, true);
        text("folder", &self.fetch_folder, true);
        text("after", &self.fetch_after, false);
        text("move_to", &self.fetch_move_to, false);
        text("on_blocked", &self.fetch_on_blocked, false);
        text("blocked_folder", &self.fetch_blocked_folder, true);
        text("authserv_id", &self.fetch_authserv_id, false);
        text("ca_file", &self.fetch_ca_file, false);
        // Blank keeps the stored password (the API's `keep_password`); never trimmed.
        if !self.fetch_password.is_empty() {
            out.insert("password".into(), json!(self.fetch_password));
        }
        if let Some(port) = number("port", &self.fetch_port, 65_535)? {
            out.insert("port".into(), json!(port));
        }
        if let Some(secs) = number("poll_secs", &self.fetch_poll_secs, u64::MAX)? {
            out.insert("poll_secs".into(), json!(secs));
        }
        Ok(Value::Object(out))
    }

    /// The fields as the page shows them, each with the API's reason beside it.
    pub fn fields(&self, errors: &Errors) -> Vec<FetchField> {
        let kinds = options(&[
            ("", "Not fetched (mail arrives by SMTP only)"),
            ("imap", "IMAP"),
            ("pop3", "POP3"),
            ("graph", "Microsoft Graph (the account's graph upstream)"),
        ]);
        let tls = options(&[
            ("implicit", "Implicit TLS (993, 995)"),
            ("starttls", "STARTTLS (143, 110)"),
            ("none", "None (loopback hosts only)"),
        ]);
        let auth = options(&[
            ("password", "Password"),
            (
                "xoauth2",
                "XOAUTH2 with the upstream's OAuth settings (IMAP)",
            ),
        ]);
        let after = options(&[
            ("seen", "Mark it seen"),
            ("move", "Move it to the folder below"),
            ("delete", "Delete it"),
        ]);
        let blocked = options(&[
            ("", "Default (move; POP3: delete)"),
            ("move", "Move it to the blocked folder"),
            ("delete", "Delete it"),
        ]);
        let f = |name, label, kind, value: &str, hint| {
            FetchField::new(name, label, kind, value, hint, errors)
        };
        vec![
            f("kind", "Fetch from the provider", "", &self.fetch_kind, "").with(kinds),
            f(
                "host",
                "Server",
                "text",
                &self.fetch_host,
                "IMAP or POP3 host, such as outlook.office365.com",
            ),
            f(
                "port",
                "Port",
                "text",
                &self.fetch_port,
                "blank: by kind and TLS",
            ),
            f("tls", "TLS", "", &self.fetch_tls, "").with(tls),
            f("auth", "Login with", "", &self.fetch_auth, "").with(auth),
            f("username", "Username", "text", &self.fetch_username, ""),
            f(
                "password",
                "Password",
                "password",
                "",
                "write-only: blank keeps the stored one",
            ),
            f(
                "folder",
                "Folder fetched",
                "text",
                &self.fetch_folder,
                "IMAP, Graph",
            ),
            f(
                "after",
                "Once a message is taken",
                "",
                &self.fetch_after,
                "",
            )
            .with(after),
            f(
                "move_to",
                "Move to folder",
                "text",
                &self.fetch_move_to,
                "with \"Move it\"",
            ),
            f(
                "on_blocked",
                "A blocked sender's message",
                "",
                &self.fetch_on_blocked,
                "",
            )
            .with(blocked),
            f(
                "blocked_folder",
                "Blocked folder",
                "text",
                &self.fetch_blocked_folder,
                "",
            ),
            f(
                "authserv_id",
                "Trusted Authentication-Results authserv-id",
                "text",
                &self.fetch_authserv_id,
                "blank: none trusted; Google Workspace: mx.google.com",
            ),
            f(
                "poll_secs",
                "Seconds between looks without IDLE",
                "text",
                &self.fetch_poll_secs,
                "1-3600",
            ),
            f(
                "ca_file",
                "Extra CA certificates (PEM file)",
                "text",
                &self.fetch_ca_file,
                "absolute path; blank: public roots",
            ),
        ]
    }
}

/// A whole number typed in field `field` of `inbound.fetch`, at most `max`.
fn number(field: &str, text: &str, max: u64) -> Result<Option<u64>, Problem> {
    let name = format!("inbound.fetch.{field}");
    match super::helpdesk::number(&name, text)? {
        Some(n) if n > max => Err(Problem::invalid(&name, format!("at most {max}"))),
        n => Ok(n),
    }
}

fn options(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    pairs.to_vec()
}

/// One field of the fetch settings: a text input, or a select when it has options.
pub struct FetchField {
    /// The form's name without `fetch_`, and the API's without `inbound.fetch.`.
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub value: String,
    pub hint: &'static str,
    pub options: Vec<(&'static str, &'static str)>,
    pub error: Option<String>,
}

impl FetchField {
    fn new(
        name: &'static str,
        label: &'static str,
        kind: &'static str,
        value: &str,
        hint: &'static str,
        errors: &Errors,
    ) -> FetchField {
        FetchField {
            name,
            label,
            kind,
            value: value.to_string(),
            hint,
            options: Vec::new(),
            error: errors
                .of(&format!("inbound.fetch.{name}"))
                .map(str::to_string),
        }
    }

    fn with(mut self, options: Vec<(&'static str, &'static str)>) -> FetchField {
        self.options = options;
        self
    }
}

/// What fetching is doing, as the page shows it.
pub struct FetchShown {
    pub state: String,
    pub since: String,
    pub last_error: Option<String>,
    pub last_message: String,
    pub messages: u64,
    /// IMAP: `UIDVALIDITY 7, last UID 42`.
    pub position: Option<String>,
    pub set_aside: Vec<SetAsideRow>,
}

/// One set-aside message on the page.
pub struct SetAsideRow {
    pub key: String,
    pub reason: String,
    pub attempts: u32,
    pub since: String,
    pub next_try: String,
    /// `retry asked`, `move to X asked`.
    pub requested: Option<String>,
}

impl From<FetchView> for FetchShown {
    fn from(view: FetchView) -> FetchShown {
        let state = name_of(view.state);
        let position = view
            .uidvalidity
            .zip(view.last_uid)
            .map(|(validity, uid)| format!("UIDVALIDITY {validity}, last UID {uid}"));
        let set_aside = view
            .set_aside
            .into_iter()
            .map(|s| SetAsideRow {
                requested: s.requested.map(|r| match r {
                    SetAsideRequest::Retry => "retry asked".to_string(),
                    SetAsideRequest::Move { folder } => format!("move to {folder} asked"),
                }),
                key: s.message.key,
                reason: s.message.reason,
                attempts: s.message.attempts,
                since: when(s.message.since),
                next_try: when(s.message.next_try),
            })
            .collect();
        FetchShown {
            state,
            since: view.since.map(when).unwrap_or_default(),
            last_error: view.last_error,
            last_message: view.last_message_at.map_or_else(|| "none yet".into(), when),
            messages: view.messages,
            position,
            set_aside,
        }
    }
}

/// The fetch status of account `id` as the viewer may see it (`None`: no fetching, or
/// not for this viewer).
pub async fn status_of(api: &Api, viewer: &Viewer, id: u64) -> Option<FetchShown> {
    status::show(viewer.caller(), State(api.clone()), Param(id))
        .await
        .ok()
        .map(|v| v.0.into())
}

/// Whether the stored settings can move messages (not POP3), for the Move buttons.
pub fn can_move(fetch: Option<&Fetch>) -> bool {
    fetch.is_some_and(|f| f.kind != FetchKind::Pop3)
}

/// The form of a set-aside button.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SetAsideForm {
    key: String,
    folder: String,
}

/// `POST /console/accounts/{id}/fetch/retry`.
async fn retry(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<SetAsideForm>,
) -> Response {
    let param = Param((id, form.key.clone()));
    let done = status::retry(viewer.caller(), State(api.clone()), param).await;
    answer(&api, &viewer, id, done.map(drop), "Retry asked").await
}

/// `POST /console/accounts/{id}/fetch/move`.
async fn move_to(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<SetAsideForm>,
) -> Response {
    let param = Param((id, form.key.clone()));
    let body = Body(MoveTo {
        folder: form.folder.clone(),
    });
    let done = status::move_to(viewer.caller(), State(api.clone()), param, body).await;
    answer(&api, &viewer, id, done.map(drop), "Move asked").await
}

async fn answer(
    api: &Api,
    viewer: &Viewer,
    id: u64,
    done: Result<(), Problem>,
    notice: &str,
) -> Response {
    match done {
        Ok(()) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/accounts/{id}/inbound"),
            notice,
        ),
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            let errors = Errors::from_problem(&problem);
            page(api, viewer, id, None::<InboundForm>, status, errors).await
        }
    }
}

/// Keeps the enum names the form offers in step with the store's (a renamed value fails
/// this module's test instead of the API at the first save).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{After, FetchAuth, OnBlocked, SentCopyTls};

    #[test]
    fn the_forms_values_are_the_apis() {
        assert_eq!(name_of(FetchKind::Pop3), "pop3");
        assert_eq!(name_of(SentCopyTls::Starttls), "starttls");
        assert_eq!(name_of(FetchAuth::Xoauth2), "xoauth2");
        assert_eq!(name_of(After::Move), "move");
        assert_eq!(name_of(OnBlocked::Delete), "delete");
        let form = FetchForm {
            fetch_kind: "imap".into(),
            fetch_port: "99999".into(),
            ..FetchForm::default()
        };
        let refused = form.json().unwrap_err();
        assert_eq!(refused.errors[0].field, "inbound.fetch.port");
        let none = FetchForm::default().json().unwrap();
        assert_eq!(none, Value::Null);
    }
}
