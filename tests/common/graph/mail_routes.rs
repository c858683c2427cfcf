//! The fake Graph's mailbox requests (see `mailbox` for what they do): each checks the
//! token (and `Mail::forbidden`, `Mail::throttled`) first.

use super::mailbox::{Folder, Round};
use super::{authorized, decode, error, Shared};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;

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
fn refused(graph: &mut super::Graph, headers: &HeaderMap) -> Option<Response> {
    if !authorized(graph, headers) {
        return Some(unauthorized());
    }
    if graph.mail.throttled > 0 {
        graph.mail.throttled -= 1;
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        );
        response
            .headers_mut()
            .insert("retry-after", "1".parse().unwrap());
        return Some(response);
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
    if let Some(refusal) = refused(&mut graph, &headers) {
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
                    (m.changed, json!({"@odata.type": "#microsoft.graph.message", "id": m.id, "isRead": m.is_read, "receivedDateTime": m.received}))
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
    if let Some(refusal) = refused(&mut graph, &headers) {
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
    if let Some(refusal) = refused(&mut graph, &headers) {
        return refusal;
    }
    let mail = &mut graph.mail;
    mail.acknowledgements += 1;
    if mail.failing_acks > 0 {
        mail.failing_acks -= 1;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ErrorInternalServerError",
            "An internal server error occurred.",
        );
    }
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
    if let Some(refusal) = refused(&mut graph, &headers) {
        return refusal;
    }
    if action != "move" {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "Unsupported action");
    }
    let mail = &mut graph.mail;
    mail.acknowledgements += 1;
    if mail.failing_acks > 0 {
        mail.failing_acks -= 1;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ErrorInternalServerError",
            "An internal server error occurred.",
        );
    }
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
    if let Some(refusal) = refused(&mut graph, &headers) {
        return refusal;
    }
    let mail = &mut graph.mail;
    mail.acknowledgements += 1;
    if mail.failing_acks > 0 {
        mail.failing_acks -= 1;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ErrorInternalServerError",
            "An internal server error occurred.",
        );
    }
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
    if let Some(refusal) = refused(&mut graph, &headers) {
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
    if let Some(refusal) = refused(&mut graph, &headers) {
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
