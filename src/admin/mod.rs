//! `postern admin`: the control API from the command line, for administrators' scripts.
//! The server comes from `POSTERN_API` (default `http://127.0.0.1:8025`), the bearer token
//! from `POSTERN_TOKEN`. Lists print as tables and single objects as `key: value` lines;
//! `--json` prints the API's JSON as it came. An API error prints its problem document on
//! stderr and exits with status 1.
//!
//! - `args`    — the command line (clap).
//! - `http`    — one HTTP/1.1 request over TCP.
//! - `table`   — the text output.
//! - `command` — the subcommands, each turned into one (or, for `accounts grant`, two) calls;
//!   `helpdesk` — those of tickets, webhooks, requesters and mail configurations; `dkim` —
//!   those of DKIM keys; `archive` — those of kept messages.

mod archive;
mod args;
mod command;
mod dkim;
mod helpdesk;
mod http;
mod table;

pub use args::{AdminArgs, Resource};
pub use http::HttpError;

use serde_json::Value;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("POSTERN_TOKEN (or --token) is required")]
    NoToken,
    #[error("{status}: {detail}")]
    Api { status: u16, detail: String },
    #[error("{0}")]
    Usage(String),
}

/// How a successful answer is printed.
#[derive(Debug, Clone, Copy)]
pub enum View {
    /// A JSON array, as these columns.
    Table(&'static [&'static str]),
    /// A JSON object.
    Record,
    /// Nothing to print but "ok".
    Done,
    /// The body exactly as received (a download).
    Raw,
    /// A DKIM key's DNS record as a zone-file line.
    Zone,
}

/// One API call of a command.
#[derive(Debug)]
pub struct Call {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
    pub view: View,
}

/// Runs the command; returns what to print on stdout.
pub fn run(args: &AdminArgs) -> Result<Vec<u8>, AdminError> {
    let token = args.token.clone().ok_or(AdminError::NoToken)?;
    let api = Api {
        base: &args.api,
        token: &token,
    };
    let call = command::plan(&args.resource, &api)?;
    if let View::Raw = call.view {
        return api.download(&call.path);
    }
    let answer = api.call(call.method, &call.path, call.body.as_ref())?;
    Ok(render(&answer, call.view, args.json).into_bytes())
}

/// The server and the credential of one run.
pub struct Api<'a> {
    base: &'a str,
    token: &'a str,
}

impl Api<'_> {
    /// Calls the API; a non-2xx answer is an error carrying the problem's detail.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, AdminError> {
        let body = body.map(Value::to_string);
        let response = http::request(self.base, self.token, method, path, body.as_deref())?;
        let parsed: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
        check(&response, &parsed)?;
        Ok(parsed)
    }

    /// `GET path`: the body's octets as received.
    pub fn download(&self, path: &str) -> Result<Vec<u8>, AdminError> {
        let response = http::request(self.base, self.token, "GET", path, None)?;
        let parsed: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
        check(&response, &parsed)?;
        Ok(response.bytes)
    }
}

/// A non-2xx answer as an error carrying the problem's detail.
fn check(response: &http::Response, parsed: &Value) -> Result<(), AdminError> {
    if (200..300).contains(&response.status) {
        return Ok(());
    }
    let detail = parsed
        .get("detail")
        .or_else(|| parsed.get("title"))
        .and_then(Value::as_str)
        .map_or_else(|| response.body.clone(), str::to_string);
    Err(AdminError::Api {
        status: response.status,
        detail,
    })
}

fn render(answer: &Value, view: View, json: bool) -> String {
    if json {
        return match answer {
            Value::Null => "{}\n".into(),
            other => format!("{other}\n"),
        };
    }
    match (view, answer) {
        (View::Table(columns), Value::Array(items)) => table::table(items, columns),
        (View::Done, _) | (_, Value::Null) => "ok\n".into(),
        (View::Zone, key) => table::zone(key),
        (_, other) => table::record(other),
    }
}
