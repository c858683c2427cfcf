//! Concurrent changes: many parallel PATCHes and grant replacements of the same accounts,
//! each touching a different field, while SMTP sessions submit through those accounts. No
//! update may be lost, and every submission is either accepted or refused by the policy
//! (never an error), and accepted once its grant is in.

mod common;

use common::{http, Client, Gateway, TOKEN};
use serde_json::{json, Value};
use std::net::SocketAddr;

const ACCOUNTS: usize = 17;

async fn send(api: SocketAddr, method: &str, path: String, body: Value) -> u16 {
    let (status, text) = http(api, method, &path, Some(TOKEN), Some(&body.to_string())).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {text}"
    );
    status
}

async fn submit(gw: &Gateway, from: &str) -> u16 {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("alice@example.com", "alice-password").await;
    let mail = c.cmd(&format!("MAIL FROM:<{from}>")).await;
    if mail.code != 250 {
        return mail.code;
    }
    c.expect("RCPT TO:<customer@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(format!("From: <{from}>\r\nSubject: race\r\n\r\nbody\r\n").as_bytes())
        .await;
    c.cmd(".").await.code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_updates_lose_nothing_while_sessions_submit() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    let alice = gw
        .create_user("alice@example.com", "staff", "alice-password")
        .await;
    let mut ids = Vec::new();
    for i in 0..ACCOUNTS {
        let body = json!({"name": format!("acc{i}"), "address": format!("acc{i}@example.com"),
            "upstream": "local", "scope": {"kind": "all_staff"}, "default_send_mode": "none"});
        let (status, text) = http(
            api,
            "POST",
            "/api/v1/accounts",
            Some(TOKEN),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(status, 201, "{text}");
        ids.push(serde_json::from_str::<Value>(&text).unwrap()["id"].clone());
    }
    let mut changes = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let path = format!("/api/v1/accounts/{id}");
        let grants = json!({"grants": [{"grantee": {"user": alice["id"]}, "send": "send_as"}]});
        changes.push(tokio::spawn(send(
            api,
            "PATCH",
            path.clone(),
            json!({"description": format!("d{i}")}),
        )));
        changes.push(tokio::spawn(send(
            api,
            "PATCH",
            path.clone(),
            json!({"display_name": format!("D{i}")}),
        )));
        changes.push(tokio::spawn(send(
            api,
            "PUT",
            format!("{path}/grants"),
            grants,
        )));
    }
    assert!(changes.len() >= 50);
    let mut sessions = Vec::new();
    for i in 0..10 {
        let from = format!("acc{}@example.com", i % ACCOUNTS);
        let gw_addr = gw.addr("plain");
        sessions.push(tokio::spawn(async move {
            let mut c = Client::connect(gw_addr).await;
            c.login("alice@example.com", "alice-password").await;
            c.cmd(&format!("MAIL FROM:<{from}>")).await.code
        }));
    }
    for change in changes {
        change.await.unwrap();
    }
    for session in sessions {
        let code = session.await.unwrap();
        assert!(code == 250 || code == 550, "MAIL FROM answered {code}");
    }
    for (i, id) in ids.iter().enumerate() {
        let (_, text) = http(
            api,
            "GET",
            &format!("/api/v1/accounts/{id}"),
            Some(TOKEN),
            None,
        )
        .await;
        let account: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(account["description"], format!("d{i}"), "{account}");
        assert_eq!(account["display_name"], format!("D{i}"), "{account}");
        assert_eq!(
            account["grants"][0]["grantee"]["user"], alice["id"],
            "{account}"
        );
        assert_eq!(submit(&gw, &format!("acc{i}@example.com")).await, 250);
    }
}
