//! A faithful Microsoft Graph for the tests, on 127.0.0.1 (axum): the Microsoft identity
//! platform's token endpoint (client credentials, scope `https://graph.microsoft.com/.default`)
//! and the mailbox resources Postern uses — `POST /v1.0/users/{mailbox}/sendMail` as
//! documented for MIME content (`Authorization: Bearer`, `Content-Type: text/plain`, the
//! message base64-encoded as the body, `202 Accepted` with no body, a copy kept in Sent
//! Items; `400 ErrorMimeContentInvalidBase64String`; `413` over 4 MB) and
//! `GET …/mailFolders/sentitems/messages?$filter=internetMessageId eq '…'`. Each request is
//! answered as `Mode` says: throttled (`429` with `Retry-After`), send-as denied (`403`),
//! too large (`413`), or slow (the answer comes after the client gave up).
//!
//! For fetching, the mailboxes' messages and folders with the delta query, `$value`,
//! `PATCH`, `move`, `DELETE` and the folder list (`mailbox`); tests put messages in with
//! `FakeGraph::add_message`.

mod mail_routes;
mod mailbox;

pub use mailbox::{Mail, Message};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the fake answers a `sendMail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As documented: 202, the message sent and saved in Sent Items.
    Accept,
    /// `429` with `Retry-After: secs`.
    Throttle(u64),
    /// `403 ErrorSendAsDenied`.
    SendAsDenied,
    /// `413`, whatever the size.
    TooLarge,
    /// Sent and saved, but the 202 comes only after this long.
    SlowAfterSave(Duration),
    /// Nothing sent; a 500 after this long.
    SlowWithoutSave(Duration),
}

/// One message Graph sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub mailbox: String,
    pub mime: Vec<u8>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    /// `<id>` of its Message-ID field.
    pub message_id: String,
}

impl Sent {
    /// Everyone Graph delivered it to (To, Cc and Bcc), sorted.
    pub fn recipients(&self) -> Vec<String> {
        let mut all: Vec<String> = [&self.to, &self.cc, &self.bcc]
            .into_iter()
            .flatten()
            .map(|a| a.to_lowercase())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// What the fake has seen and how it answers.
pub struct Graph {
    /// Modes for the next `sendMail` requests, then `mode`.
    pub next: VecDeque<Mode>,
    pub mode: Mode,
    pub tokens: Vec<String>,
    pub token_requests: usize,
    /// `sendMail` requests received (answered or not).
    pub posts: usize,
    /// Sent Items lookups received.
    pub lookups: usize,
    pub sent: Vec<Sent>,
    /// `http://{addr}/v1.0`.
    pub base: String,
    /// The mailboxes fetched from.
    pub mail: Mail,
}

/// A running fake.
pub struct FakeGraph {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<Graph>>,
}

type Shared = Arc<Mutex<Graph>>;

impl FakeGraph {
    pub async fn start() -> FakeGraph {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(Graph {
            next: VecDeque::new(),
            mode: Mode::Accept,
            tokens: Vec::new(),
            token_requests: 0,
            posts: 0,
            lookups: 0,
            sent: Vec::new(),
            base: format!("http://{addr}/v1.0"),
            mail: Mail::default(),
        }));
        let app = mail_routes::routes(Router::new())
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/users/{mailbox}/sendMail", post(send_mail))
            .route(
                "/v1.0/users/{mailbox}/mailFolders/sentitems/messages",
                get(sent_items),
            )
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeGraph { addr, state }
    }

    /// The `graph` upstream's settings for this fake, with `extra` TOML lines.
    pub fn settings(&self, extra: &str) -> String {
        format!(
            "kind = \"graph\"\ntenant = \"tenant-1\"\nclient_id = \"app-id\"\nclient_secret = \"app-secret\"\n\
             token_url = \"http://{0}/tenant-1/oauth2/v2.0/token\"\ngraph_url = \"http://{0}/v1.0\"\n{extra}",
            self.addr
        )
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.state.lock().unwrap()
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.lock().sent.clone()
    }

    /// Puts `mime` in `mailbox`'s Inbox, unread; the message's id.
    pub fn add_message(&self, mailbox: &str, mime: &str) -> String {
        self.lock().mail.add(mailbox, mime.as_bytes())
    }

    /// Adds a message received long ago and already read (the mailbox's history).
    pub fn add_old_read_message(&self, mailbox: &str, mime: &str) -> String {
        let received = "2020-01-01T00:00:00Z";
        self.lock()
            .mail
            .add_received(mailbox, mime.as_bytes(), true, received)
    }

    /// The messages in `mailbox`'s folder named `folder` (display name, any case).
    pub fn messages_in(&self, mailbox: &str, folder: &str) -> Vec<Message> {
        self.lock().mail.messages_in(mailbox, folder)
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn token(State(state): State<Shared>, Path(tenant): Path<String>, body: String) -> Response {
    let form: Vec<(String, String)> = body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let get = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let mut graph = state.lock().unwrap();
    graph.token_requests += 1;
    let good = tenant == "tenant-1"
        && get("grant_type") == Some("client_credentials")
        && get("client_id") == Some("app-id")
        && get("client_secret") == Some("app-secret")
        && get("scope") == Some("https://graph.microsoft.com/.default");
    if !good {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#;
        return (StatusCode::UNAUTHORIZED, body).into_response();
    }
    let token = format!("graph-token-{}", graph.token_requests);
    graph.tokens.push(token.clone());
    let body =
        serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": token});
    ([("content-type", "application/json")], body.to_string()).into_response()
}

fn authorized(graph: &Graph, headers: &HeaderMap) -> bool {
    let value = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    value
        .strip_prefix("Bearer ")
        .is_some_and(|t| graph.tokens.iter().any(|known| known == t))
}

async fn send_mail(
    State(state): State<Shared>,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mode, decoded) = {
        let mut graph = state.lock().unwrap();
        graph.posts += 1;
        if !authorized(&graph, &headers) {
            return error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            );
        }
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("text/plain") {
            return error(
                StatusCode::BAD_REQUEST,
                "RequestBodyRead",
                "Expected text/plain for MIME content.",
            );
        }
        let mode = graph.next.pop_front().unwrap_or(graph.mode);
        (
            mode,
            base64::engine::general_purpose::STANDARD.decode(&body),
        )
    };
    if body.len() > 4 * 1024 * 1024 || mode == Mode::TooLarge {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "The request body is too large.",
        );
    }
    match mode {
        Mode::Throttle(secs) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
            );
            response
                .headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
            return response;
        }
        Mode::SendAsDenied => {
            return error(StatusCode::FORBIDDEN, "ErrorSendAsDenied",
                "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account., Cannot submit message.");
        }
        Mode::SlowWithoutSave(wait) => {
            tokio::time::sleep(wait).await;
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ErrorInternalServerError",
                "lost",
            );
        }
        _ => {}
    }
    let Ok(mime) = decoded else {
        return error(
            StatusCode::BAD_REQUEST,
            "ErrorMimeContentInvalidBase64String",
            "Invalid base64 string for MIME content.",
        );
    };
    let Some(sent) = parse(&mailbox, mime) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ErrorMimeContentInvalid",
            "The MIME content is invalid.",
        );
    };
    state.lock().unwrap().sent.push(sent);
    if let Mode::SlowAfterSave(wait) = mode {
        tokio::time::sleep(wait).await;
    }
    StatusCode::ACCEPTED.into_response()
}

/// The message as Exchange reads it: recipients from To, Cc and Bcc.
fn parse(mailbox: &str, mime: Vec<u8>) -> Option<Sent> {
    let message = mail_parser::MessageParser::new().parse(&mime)?;
    let list = |address: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        address
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.address.as_deref().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(Sent {
        mailbox: mailbox.to_string(),
        to: list(message.to()),
        cc: list(message.cc()),
        bcc: list(message.bcc()),
        message_id: format!("<{}>", message.message_id().unwrap_or("")),
        mime: mime.clone(),
    })
}

async fn sent_items(
    State(state): State<Shared>,
    Path(mailbox): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut graph = state.lock().unwrap();
    graph.lookups += 1;
    if !authorized(&graph, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        );
    }
    let query = query.unwrap_or_default();
    let filter = query
        .split('&')
        .find_map(|p| p.strip_prefix("$filter="))
        .map(decode)
        .unwrap_or_default();
    let Some(id) = filter
        .strip_prefix("internetMessageId eq '")
        .and_then(|rest| rest.strip_suffix('\''))
        .map(|id| id.replace("''", "'"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes.",
        );
    };
    let recipients = |list: &[String]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|a| serde_json::json!({"emailAddress": {"name": a, "address": a}}))
            .collect()
    };
    let value: Vec<serde_json::Value> = graph
        .sent
        .iter()
        .enumerate()
        .filter(|(_, s)| s.mailbox.eq_ignore_ascii_case(&mailbox) && s.message_id == id)
        .map(|(i, s)| {
            serde_json::json!({"id": format!("AAMkAD{i}"), "toRecipients": recipients(&s.to),
                "ccRecipients": recipients(&s.cc), "bccRecipients": recipients(&s.bcc)})
        })
        .collect();
    let body = serde_json::json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('x')/mailFolders('sentitems')/messages(id,toRecipients,ccRecipients,bccRecipients)", "value": value});
    ([("content-type", "application/json")], body.to_string()).into_response()
}

/// Percent-decoding (and `+` as a space, for forms).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
