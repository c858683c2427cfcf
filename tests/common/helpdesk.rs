//! Helpers of the helpdesk tests: a gateway with a helpdesk mailbox, an inbound SMTP
//! sender, and the API reads they check.

use super::{http, Client, Gateway, TOKEN};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const SUPPORT: &str = "support@help.example";

pub async fn api(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = http(gw.running.api, method, path, Some(TOKEN), body.as_deref()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A gateway with the group `customers` and the helpdesk mailbox `SUPPORT` (tickets,
/// auto-created requesters in `customers`).
pub async fn helpdesk() -> Gateway {
    let gw = Gateway::start(|_| {}).await;
    let (status, body) = api(
        &gw,
        "POST",
        "/api/v1/groups",
        Some(json!({"name": "customers"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    mailbox(
        &gw,
        "Support",
        SUPPORT,
        json!({"auto_create_requesters": true, "default_group": "customers"}),
    )
    .await;
    gw
}

pub async fn mailbox(gw: &Gateway, name: &str, address: &str, inbound: Value) -> u64 {
    let body = json!({"name": name, "address": address, "inbound": inbound});
    let (status, body) = api(gw, "POST", "/api/v1/accounts", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_u64().unwrap()
}

/// Sends `message` (CRLF lines, no final dot) on the inbound listener; the reply to the end
/// of data, or the first refusal before it.
pub async fn send(gw: &Gateway, mail_from: &str, rcpt: &str, message: &str) -> super::Reply {
    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.sender.example", 250).await;
    let reply = c.cmd(&format!("MAIL FROM:<{mail_from}>")).await;
    if reply.code != 250 {
        return reply;
    }
    let reply = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
    if reply.code != 250 {
        return reply;
    }
    c.expect("DATA", 354).await;
    c.send(format!("{message}\r\n.\r\n").as_bytes()).await;
    let reply = c.reply().await;
    c.expect("QUIT", 221).await;
    reply
}

pub fn message(from: &str, subject: &str, extra: &str, body: &str) -> String {
    format!("From: {from}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n{extra}\r\n{body}")
}

pub async fn tickets(gw: &Gateway) -> Vec<Value> {
    let (status, body) = api(gw, "GET", "/api/v1/tickets", None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

/// Waits until the queue is empty (every inbound message went through the hook).
pub async fn settle(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, queue) = api(gw, "GET", "/api/v1/queue", None).await;
        if queue.as_array().is_some_and(|q| q.is_empty()) {
            return;
        }
        assert!(Instant::now() < deadline, "queue never drained: {queue}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn user(gw: &Gateway, login: &str) -> Option<Value> {
    let (_, users) = api(gw, "GET", "/api/v1/users", None).await;
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == login)
        .cloned()
}
