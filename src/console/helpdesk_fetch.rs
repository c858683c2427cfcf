//! The fields of fetching a helpdesk mailbox's mail from the provider, on the inbound
//! settings page (`/console/accounts/{id}/inbound`): the `inbound.fetch` settings as a
//! form, turned into the API's JSON (the password write-only: blank keeps the stored
//! one), each field with the API's reason beside it. It decides nothing: the API's checks
//! do. What fetching is doing is `helpdesk_fetch_status`.

use super::render::Errors;
use crate::api::Problem;
use crate::store::Fetch;
use serde::Deserialize;
use serde_json::{json, Map, Value};

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
pub fn name_of<T: serde::Serialize>(value: T) -> String {
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
        FIELDS
            .iter()
            .map(|&(name, label, kind, hint)| FetchField {
                name,
                label,
                kind,
                value: self.value(name).to_string(),
                hint,
                options: choices(name).to_vec(),
                error: errors
                    .of(&format!("inbound.fetch.{name}"))
                    .map(str::to_string),
            })
            .collect()
    }

    /// What field `name` shows (never the password).
    fn value(&self, name: &str) -> &str {
        match name {
            "kind" => &self.fetch_kind,
            "host" => &self.fetch_host,
            "port" => &self.fetch_port,
            "tls" => &self.fetch_tls,
            "auth" => &self.fetch_auth,
            "username" => &self.fetch_username,
            "folder" => &self.fetch_folder,
            "after" => &self.fetch_after,
            "move_to" => &self.fetch_move_to,
            "on_blocked" => &self.fetch_on_blocked,
            "blocked_folder" => &self.fetch_blocked_folder,
            "authserv_id" => &self.fetch_authserv_id,
            "poll_secs" => &self.fetch_poll_secs,
            "ca_file" => &self.fetch_ca_file,
            _ => "",
        }
    }
}

/// (name, label, input type (empty: a select), hint) of each field, in the page's order.
const FIELDS: [(&str, &str, &str, &str); 15] = [
    ("kind", "Fetch from the provider", "", ""),
    (
        "host",
        "Server",
        "text",
        "IMAP or POP3 host, such as outlook.office365.com",
    ),
    ("port", "Port", "text", "blank: by kind and TLS"),
    ("tls", "TLS", "", ""),
    ("auth", "Login with", "", ""),
    ("username", "Username", "text", ""),
    (
        "password",
        "Password",
        "password",
        "write-only: blank keeps the stored one",
    ),
    ("folder", "Folder fetched", "text", "IMAP, Graph"),
    ("after", "Once a message is taken", "", ""),
    ("move_to", "Move to folder", "text", "with \"Move it\""),
    ("on_blocked", "A blocked sender's message", "", ""),
    ("blocked_folder", "Blocked folder", "text", ""),
    (
        "authserv_id",
        "Trusted Authentication-Results authserv-id",
        "text",
        "blank: none trusted; Google Workspace: mx.google.com",
    ),
    (
        "poll_secs",
        "Seconds between looks without IDLE",
        "text",
        "1-3600",
    ),
    (
        "ca_file",
        "Extra CA certificates (PEM file)",
        "text",
        "absolute path; blank: public roots",
    ),
];

/// The (value, text) options of a select field; none for a text field.
fn choices(name: &str) -> &'static [(&'static str, &'static str)] {
    match name {
        "kind" => &[
            ("", "Not fetched (mail arrives by SMTP only)"),
            ("imap", "IMAP"),
            ("pop3", "POP3"),
            ("graph", "Microsoft Graph (the account's graph upstream)"),
        ],
        "tls" => &[
            ("implicit", "Implicit TLS (993, 995)"),
            ("starttls", "STARTTLS (143, 110)"),
            ("none", "None (loopback hosts only)"),
        ],
        "auth" => &[
            ("password", "Password"),
            (
                "xoauth2",
                "XOAUTH2 with the upstream's OAuth settings (IMAP)",
            ),
        ],
        "after" => &[
            ("seen", "Mark it seen"),
            ("move", "Move it to the folder below"),
            ("delete", "Delete it"),
        ],
        "on_blocked" => &[
            ("", "Default (move; POP3: delete)"),
            ("move", "Move it to the blocked folder"),
            ("delete", "Delete it"),
        ],
        _ => &[],
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

/// Keeps the enum names the form offers in step with the store's (a renamed value fails
/// this module's test instead of the API at the first save).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{After, FetchAuth, FetchKind, OnBlocked, SentCopyTls};

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
