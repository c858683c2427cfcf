//! Helpers of the console's helpdesk tests (over HTTP and in chromium): staff users with
//! permissions, logged in; inbound mail that has become a ticket; an HTTP receiver for
//! webhooks whose answer the test sets; waiting for a webhook delivery's state.

use super::console::{Console, Page};
use super::helpdesk::{self, api, message, send, settle, SUPPORT};
use super::Gateway;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const PASSWORD: &str = "console-password-1";

/// A staff user `login` holding `permissions` (through a role of its own), logged in.
pub async fn staff(gw: &Gateway, login: &str, permissions: &[&str]) -> Console {
    let user = gw.create_user(login, "staff", PASSWORD).await;
    if !permissions.is_empty() {
        let role = format!("role-{}", user["id"]);
        let body = json!({"name": role, "permissions": permissions});
        let (status, text) = api(gw, "POST", "/api/v1/roles", Some(body)).await;
        assert_eq!(status, 201, "{text}");
        let path = format!("/api/v1/users/{}", user["id"]);
        let (status, text) = api(gw, "PATCH", &path, Some(json!({"roles": [role]}))).await;
        assert_eq!(status, 200, "{text}");
    }
    Console::login(gw.running.api, login, PASSWORD).await
}

/// `from` mails the helpdesk about `subject`; waits until the hook has made the ticket.
pub async fn mail(gw: &Gateway, from: &str, subject: &str) {
    let reply = send(gw, from, SUPPORT, &message(from, subject, "", "Hello.")).await;
    assert_eq!(reply.code, 250, "{reply:?}");
    settle(gw).await;
}

/// The id of the only ticket with `subject` (through the API).
pub async fn ticket_id(gw: &Gateway, subject: &str) -> u64 {
    let all = helpdesk::tickets(gw).await;
    let found: Vec<&Value> = all.iter().filter(|t| t["subject"] == subject).collect();
    assert_eq!(found.len(), 1, "{all:?}");
    found[0]["id"].as_u64().unwrap()
}

pub async fn user_id(gw: &Gateway, login: &str) -> u64 {
    helpdesk::user(gw, login).await.expect(login)["id"]
        .as_u64()
        .unwrap()
}

pub fn assert_shows(page: &Page, status: u16, texts: &[&str]) {
    assert_eq!(page.status, status, "{}", page.body);
    for text in texts {
        assert!(page.body.contains(text), "{text:?} missing: {}", page.body);
    }
}

/// An HTTP receiver answering every request with the status it holds.
pub async fn receiver(status: Arc<AtomicU16>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let status = status.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw).to_lowercase();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = text[..end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap_or(0));
                    if raw.len() >= end + 4 + length {
                        break;
                    }
                }
                let code = status.load(Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

/// The first delivery of webhook `hook` once it satisfies `done`.
pub async fn delivery(gw: &Gateway, hook: u64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let path = format!("/api/v1/webhooks/{hook}/deliveries");
        let (_, list) = api(gw, "GET", &path, None).await;
        if let Some(first) = list.as_array().and_then(|l| l.first()).filter(|d| done(d)) {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
