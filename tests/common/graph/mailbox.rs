//! The fake Graph's mailboxes, for fetching: messages (id, MIME, `isRead`, folder) in
//! folders (the well-known Inbox, Deleted Items and Sent Items, and top-level folders made
//! through `POST …/mailFolders`), and the requests a fetcher makes, as Graph documents them:
//!
//! - `GET …/mailFolders/{folder}/messages/delta` — the folder's messages (`id`, `isRead`)
//!   `page_size` at a time (less if `Prefer: odata.maxpagesize` asks), each page but the
//!   last with `@odata.nextLink` (`$skiptoken`), the last with `@odata.deltaLink`
//!   (`$deltatoken`), which later returns only what changed since: messages new, changed
//!   (read, moved in) and, with `@removed`, moved out or deleted. An unknown `$deltatoken`
//!   is `410 Gone` (`expire_deltas` forgets them all).
//! - `GET …/messages/{id}/$value` (the MIME), `PATCH …/messages/{id}` (`isRead`),
//!   `POST …/messages/{id}/move` (`destinationId`; the moved message gets a new id, as in
//!   Exchange), `DELETE …/messages/{id}` (to Deleted Items).
//! - `GET …/mailFolders?$filter=displayName eq '…'`, `POST …/mailFolders`.

use super::{authorized, decode, error, Shared};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;

/// One message in a fake mailbox.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub mime: Vec<u8>,
    pub is_read: bool,
    /// The folder's id.
    pub folder: String,
    /// The change counter at its last change.
    changed: u64,
}

/// One folder.
#[derive(Debug, Clone)]
pub struct Folder {
    pub id: String,
    pub name: String,
    well_known: Option<&'static str>,
}

/// One mailbox.
#[derive(Debug, Default)]
pub struct Box_ {
    pub folders: Vec<Folder>,
    pub messages: Vec<Message>,
    /// Messages that left a folder: (folder id, message id, change counter).
    removed: Vec<(String, String, u64)>,
}

/// The delta rounds being paged through: what they return and up to which change.
struct Round {
    items: Vec<Value>,
    upto: u64,
}

/// All mailboxes and what was asked of them.
pub struct Mail {
    boxes: HashMap<String, Box_>,
    /// The change counter.
    seq: u64,
    next_id: u64,
    rounds: HashMap<String, Round>,
    /// Messages per delta page at most.
    pub page_size: usize,
    /// The delta queries received (their query strings).
    pub deltas: Vec<String>,
    /// `$value` requests per message id.
    pub downloads: HashMap<String, usize>,
    /// `PATCH`, `move` and `DELETE` requests received.
    pub acknowledgements: usize,
    /// Set: every mailbox request is `403 ErrorAccessDenied` (the application lost
    /// `Mail.ReadWrite`).
    pub forbidden: bool,
    /// Delta tokens older than this are `410 Gone`.
    expired_before: u64,
}

impl Default for Mail {
    fn default() -> Mail {
        Mail {
            boxes: HashMap::new(),
            seq: 0,
            next_id: 0,
            rounds: HashMap::new(),
            page_size: 10,
            deltas: Vec::new(),
            downloads: HashMap::new(),
            acknowledgements: 0,
            forbidden: false,
            expired_before: 0,
        }
    }
}

impl Mail {
    /// Mailbox `address` (made with its well-known folders at first use).
    pub fn mailbox(&mut self, address: &str) -> &mut Box_ {
        self.boxes
            .entry(address.to_lowercase())
            .or_insert_with(|| Box_ {
                folders: [
                    ("inbox", "Inbox"),
                    ("deleteditems", "Deleted Items"),
                    ("sentitems", "Sent Items"),
                ]
                .into_iter()
                .map(|(well_known, name)| Folder {
                    id: format!("AAMkFolder-{well_known}"),
                    name: name.into(),
                    well_known: Some(well_known),
                })
                .collect(),
                ..Box_::default()
            })
    }

    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("AAMkAGI2-{}=", self.next_id)
    }

    fn tick(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Puts `mime` in `address`'s Inbox, unread; its id.
    pub fn add(&mut self, address: &str, mime: &[u8]) -> String {
        let id = self.fresh_id();
        let changed = self.tick();
        let mailbox = self.mailbox(address);
        let folder = mailbox.folders[0].id.clone();
        mailbox.messages.push(Message {
            id: id.clone(),
            mime: mime.to_vec(),
            is_read: false,
            folder,
            changed,
        });
        id
    }

    /// The messages in `address`'s folder named `name` (display name, any case).
    pub fn messages_in(&mut self, address: &str, name: &str) -> Vec<Message> {
        let mailbox = self.mailbox(address);
        let Some(folder) = mailbox
            .folders
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
        else {
            return Vec::new();
        };
        let id = folder.id.clone();
        mailbox
            .messages
            .iter()
            .filter(|m| m.folder == id)
            .cloned()
            .collect()
    }

    /// Every delta token given so far answers `410 Gone` from now on.
    pub fn expire_deltas(&mut self) {
        self.expired_before = self.tick();
    }

    /// Marks message `id` read or unread, as a person in Outlook would.
    pub fn set_read(&mut self, address: &str, id: &str, read: bool) {
        let changed = self.tick();
        if let Some(m) = self
            .mailbox(address)
            .messages
            .iter_mut()
            .find(|m| m.id == id)
        {
            m.is_read = read;
            m.changed = changed;
        }
    }

    /// Moves message `id` to folder `folder` (an id); its new id.
    fn move_message(&mut self, address: &str, id: &str, folder: &str) -> Option<String> {
        let new_id = self.fresh_id();
        let changed = self.tick();
        let mailbox = self.mailbox(address);
        let message = mailbox.messages.iter_mut().find(|m| m.id == id)?;
        mailbox
            .removed
            .push((message.folder.clone(), id.to_string(), changed));
        message.id = new_id.clone();
        message.folder = folder.to_string();
        message.changed = changed;
        Some(new_id)
    }
}

/// The routes of the mailbox resources.
pub fn routes(router: Router<Shared>) -> Router<Shared> {
    router
        .route(
            "/v1.0/users/{mailbox}/mailFolders/{folder}/messages/delta",
            get(delta),
        )
        .route(
            "/v1.0/users/{mailbox}/mailFolders",
            get(find_folder).post(create_folder),
        )
        .route(
            "/v1.0/users/{mailbox}/messages/{id}",
            axum::routing::patch(patch_message).delete(delete_message),
        )
        .route(
            "/v1.0/users/{mailbox}/messages/{id}/{action}",
            get(message_value).post(move_message),
        )
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The refusal of a request without a valid token or permission, if any.
fn refused(graph: &super::Graph, headers: &HeaderMap) -> Option<Response> {
    if !authorized(graph, headers) {
        return Some(unauthorized());
    }
    graph.mail.forbidden.then(|| {
        error(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        )
    })
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "Access token has expired or is not yet valid.",
    )
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

fn params(query: Option<String>) -> HashMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

async fn delta(
    State(state): State<Shared>,
    Path((address, folder)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut graph = state.lock().unwrap();
    if let Some(refusal) = refused(&graph, &headers) {
        return refusal;
    }
    let base = graph.base.clone();
    let mail = &mut graph.mail;
    mail.deltas.push(query.clone().unwrap_or_default());
    let params = params(query);
    let asked = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("odata.maxpagesize="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(usize::MAX);
    let size = mail.page_size.min(asked).max(1);
    let (key, offset) = match params.get("$skiptoken") {
        Some(token) => {
            let Some((key, offset)) = token.split_once('.') else {
                return error(StatusCode::BAD_REQUEST, "BadRequest", "bad skip token");
            };
            (key.to_string(), offset.parse::<usize>().unwrap_or(0))
        }
        None => {
            let since = match params.get("$deltatoken") {
                Some(token) => match token.parse::<u64>() {
                    Ok(n) if n >= mail.expired_before => Some(n),
                    _ => {
                        return error(
                            StatusCode::GONE,
                            "SyncStateNotFound",
                            "The sync state generation is not found.",
                        )
                    }
                },
                None => None,
            };
            let upto = mail.seq;
            let mailbox = mail.mailbox(&address);
            let Some(folder_id) = mailbox
                .folders
                .iter()
                .find(|f| f.id == folder || f.well_known == Some(folder.to_lowercase().as_str()))
                .map(|f| f.id.clone())
            else {
                return not_found();
            };
            let mut items: Vec<(u64, Value)> = mailbox
                .messages
                .iter()
                .filter(|m| m.folder == folder_id && since.is_none_or(|s| m.changed > s))
                .map(|m| {
                    (m.changed, json!({"@odata.type": "#microsoft.graph.message", "id": m.id, "isRead": m.is_read}))
                })
                .collect();
            if let Some(since) = since {
                items.extend(
                    mailbox
                        .removed
                        .iter()
                        .filter(|(f, _, seq)| *f == folder_id && *seq > since)
                        .map(|(_, id, seq)| {
                            (*seq, json!({"@odata.type": "#microsoft.graph.message", "id": id, "@removed": {"reason": "deleted"}}))
                        }),
                );
            }
            items.sort_by_key(|(seq, _)| *seq);
            let key = format!("r{}", mail.rounds.len() + 1);
            let items = items.into_iter().map(|(_, v)| v).collect();
            mail.rounds.insert(key.clone(), Round { items, upto });
            (key, 0)
        }
    };
    let Some(round) = mail.rounds.get(&key) else {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "unknown skip token");
    };
    let end = (offset + size).min(round.items.len());
    let page: Vec<Value> = round.items[offset.min(end)..end].to_vec();
    let link = format!("{base}/users/{address}/mailFolders/{folder}/messages/delta");
    let mut body = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(message)", "value": page});
    match end < round.items.len() {
        true => body["@odata.nextLink"] = json!(format!("{link}?$skiptoken={key}.{end}")),
        false => body["@odata.deltaLink"] = json!(format!("{link}?$deltatoken={}", round.upto)),
    }
    json_response(StatusCode::OK, body)
}

async fn message_value(
    State(state): State<Shared>,
    Path((address, id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut graph = state.lock().unwrap();
    if let Some(refusal) = refused(&graph, &headers) {
        return refusal;
    }
    if action != "$value" {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "Unsupported segment");
    }
    let mail = &mut graph.mail;
    *mail.downloads.entry(id.clone()).or_default() += 1;
    match mail.mailbox(&address).messages.iter().find(|m| m.id == id) {
        Some(message) => (
            StatusCode::OK,
            [("content-type", "text/plain")],
            message.mime.clone(),
        )
            .into_response(),
        None => not_found(),
    }
}

async fn patch_message(
    State(state): State<Shared>,
    Path((address, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut graph = state.lock().unwrap();
    if let Some(refusal) = refused(&graph, &headers) {
        return refusal;
    }
    let mail = &mut graph.mail;
    mail.acknowledgements += 1;
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "Empty Payload.");
    };
    let Some(read) = body["isRead"].as_bool() else {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "only isRead here");
    };
    if !mail.mailbox(&address).messages.iter().any(|m| m.id == id) {
        return not_found();
    }
    mail.set_read(&address, &id, read);
    let message = mail
        .mailbox(&address)
        .messages
        .iter()
        .find(|m| m.id == id)
        .unwrap();
    json_response(
        StatusCode::OK,
        json!({"id": message.id, "isRead": message.is_read}),
    )
}

async fn move_message(
    State(state): State<Shared>,
    Path((address, id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut graph = state.lock().unwrap();
    if let Some(refusal) = refused(&graph, &headers) {
        return refusal;
    }
    if action != "move" {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "Unsupported action");
    }
    let mail = &mut graph.mail;
    mail.acknowledgements += 1;
    let destination = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b["destinationId"].as_str().map(str::to_string));
    let Some(destination) = destination else {
        return error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "destinationId missing",
        );
    };
    let Some(folder) = mail
        .mailbox(&address)
        .folders
        .iter()
        .find(|f| f.id == destination || f.well_known == Some(destination.to_lowercase().as_str()))
        .map(|f| f.id.clone())
    else {
        return error(
            StatusCode::NOT_FOUND,
            "ErrorFolderNotFound",
            "The specified folder could not be found in the store.",
        );
    };
    match mail.move_message(&address, &id, &folder) {
        Some(new_id) => json_response(
            StatusCode::CREATED,
            json!({"id": new_id, "parentFolderId": folder}),
        ),
        None => not_found(),
    }
}

async fn delete_message(
    State(state): State<Shared>,
    Path((address, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut graph = state.lock().unwrap();
    if let Some(refusal) = refused(&graph, &headers) {
        return refusal;
    }
    let mail = &mut graph.mail;
    mail.acknowledgements += 1;
    match mail.move_message(&address, &id, "AAMkFolder-deleteditems") {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(),
    }
}

fn folder_json(folder: &Folder) -> Value {
    json!({"id": folder.id, "displayName": folder.name, "parentFolderId": "AAMkFolder-msgfolderroot"})
}

async fn find_folder(
    State(state): State<Shared>,
    Path(address): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut graph = state.lock().unwrap();
    if let Some(refusal) = refused(&graph, &headers) {
        return refusal;
    }
    let params = params(query);
    let wanted = match params.get("$filter") {
        Some(filter) => match filter
            .strip_prefix("displayName eq '")
            .and_then(|rest| rest.strip_suffix('\''))
        {
            Some(name) => Some(name.replace("''", "'")),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidUrlQueryFilter",
                    "The query filter contains one or more invalid nodes.",
                )
            }
        },
        None => None,
    };
    let value: Vec<Value> = graph
        .mail
        .mailbox(&address)
        .folders
        .iter()
        // Exchange compares display names without case.
        .filter(|f| {
            wanted
                .as_ref()
                .is_none_or(|w| f.name.eq_ignore_ascii_case(w))
        })
        .map(folder_json)
        .collect();
    json_response(StatusCode::OK, json!({"value": value}))
}

async fn create_folder(
    State(state): State<Shared>,
    Path(address): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut graph = state.lock().unwrap();
    if let Some(refusal) = refused(&graph, &headers) {
        return refusal;
    }
    let name = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b["displayName"].as_str().map(str::to_string));
    let Some(name) = name else {
        return error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "displayName missing",
        );
    };
    let mail = &mut graph.mail;
    let id = format!("AAMkFolder-{}", mail.fresh_id());
    let mailbox = mail.mailbox(&address);
    if mailbox
        .folders
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case(&name))
    {
        return error(
            StatusCode::CONFLICT,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        );
    }
    let folder = Folder {
        id,
        name,
        well_known: None,
    };
    mailbox.folders.push(folder.clone());
    json_response(StatusCode::CREATED, folder_json(&folder))
}
