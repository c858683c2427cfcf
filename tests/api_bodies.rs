//! Request bodies on every JSON endpoint of `/api/v1` (each operation of the OpenAPI
//! document that takes a body): one not sent as JSON is a `415`, one over the body limit a
//! `413`, both problem documents; JSON with a charset parameter is JSON.

mod common;

use common::{http, Gateway, TOKEN};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// More than the API takes (axum's default limit is 2 MiB).
const TOO_LARGE: usize = 2 * 1024 * 1024 + 4096;

/// One request with the given `Content-Type` (none if `None`); returns the status, the
/// response's `Content-Type` and its body. The body is written while the answer is read,
/// so an answer sent before the whole body arrived is still seen.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let kind = content_type
        .map(|t| format!("Content-Type: {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Authorization: Bearer {TOKEN}\r\n{kind}Content-Length: {}\r\n\r\n",
        body.len()
    );
    let write = tokio::spawn(async move {
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&body).await;
        writer
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    // Up to a reset: the server may close before it read the whole body.
    while let Ok(n @ 1..) = reader.read(&mut buf).await {
        response.extend_from_slice(&buf[..n]);
    }
    write.abort();
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// Every (method, path) of the OpenAPI document under `/api/v1` that takes a JSON body,
/// its path parameters filled in with `1`.
async fn json_operations(gw: &Gateway) -> Vec<(String, String)> {
    let (status, text) = http(gw.running.api, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation["requestBody"]["content"]["application/json"].is_null() {
                continue;
            }
            let filled: Vec<String> = path
                .split('/')
                .map(|part| match part.starts_with('{') {
                    true => "1".to_string(),
                    false => part.to_string(),
                })
                .collect();
            found.push((method.to_uppercase(), filled.join("/")));
        }
    }
    found
}

fn assert_problem(what: &str, answer: &(u16, String, String), status: u16) {
    let (got, content_type, body) = answer;
    assert_eq!(*got, status, "{what}: {body}");
    assert_eq!(content_type, "application/problem+json", "{what}");
    let doc: Value = serde_json::from_str(body).unwrap_or_default();
    assert_eq!(doc["status"], status, "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_not_sent_as_json_are_415_and_too_large_ones_413_everywhere() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    let operations = json_operations(&gw).await;
    assert!(operations.len() >= 20, "{operations:?}");
    for (method, path) in &operations {
        let what = format!("{method} {path}");
        let form = request(
            api,
            method,
            path,
            Some("application/x-www-form-urlencoded"),
            b"name=x".to_vec(),
        )
        .await;
        assert_problem(&format!("{what} as a form"), &form, 415);
        let text = request(api, method, path, Some("text/plain"), b"{}".to_vec()).await;
        assert_problem(&format!("{what} as text"), &text, 415);
        let bare = request(api, method, path, None, b"{}".to_vec()).await;
        assert_problem(&format!("{what} without a type"), &bare, 415);
        let large = vec![b' '; TOO_LARGE];
        let large = request(api, method, path, Some("application/json"), large).await;
        assert_problem(&format!("{what} too large"), &large, 413);
    }
    // JSON with parameters, or a JSON-based type, is JSON; a bad one stays a 400.
    let body = br#"{"name":"billing"}"#.to_vec();
    let typed = "application/json; charset=utf-8";
    let made = request(api, "POST", "/api/v1/skill-groups", Some(typed), body).await;
    assert_eq!(made.0, 201, "{made:?}");
    let body = br#"{"name":"sales"}"#.to_vec();
    let merge = Some("application/merge-patch+json");
    let made = request(api, "POST", "/api/v1/skill-groups", merge, body).await;
    assert_eq!(made.0, 201, "{made:?}");
    let broken = request(
        api,
        "POST",
        "/api/v1/skill-groups",
        Some(typed),
        b"{".to_vec(),
    )
    .await;
    assert_problem("broken JSON", &broken, 400);
    // An empty body needs no type (endpoints whose body is optional).
    let empty = request(api, "POST", "/api/v1/users/999/tokens", None, Vec::new()).await;
    assert_problem("no body at all", &empty, 404);
}
