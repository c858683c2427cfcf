//! Helpers of the archive and backup tests: staff users with a personal helpdesk account
//! and a saved mail configuration, their correspondence, backup jobs and mbox reading.

use super::helpdesk::{api, send, settle};
use super::{As, Client, Gateway};
use mail_parser::mailbox::mbox::MessageIterator;
use mail_parser::MessageParser;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "staff-password-1";

/// A staff user with a token.
pub async fn staff<'a>(gw: &'a Gateway, login: &str, roles: &[&str]) -> (u64, As<'a>) {
    let id = gw.create_user(login, "staff", PASSWORD).await["id"]
        .as_u64()
        .unwrap();
    if !roles.is_empty() {
        let patch = json!({"roles": roles});
        let (status, body) = api(gw, "PATCH", &format!("/api/v1/users/{id}"), Some(patch)).await;
        assert_eq!(status, 200, "{body}");
    }
    let path = format!("/api/v1/users/{id}/tokens");
    let (status, token) = api(gw, "POST", &path, Some(json!({}))).await;
    assert_eq!(status, 201, "{token}");
    let token = token["token"].as_str().unwrap().to_string();
    (id, As { gw, token })
}

/// A staff user whose personal account (its own address) is also a helpdesk mailbox, with
/// its mail configuration saved as `account_type`.
pub async fn mailbox_user<'a>(gw: &'a Gateway, login: &str, account_type: &str) -> (u64, As<'a>) {
    let (id, me) = staff(gw, login, &[]).await;
    let account = json!({"name": login, "address": login, "owner": id,
        "inbound": {"auto_create_requesters": true}});
    let (status, body) = api(gw, "POST", "/api/v1/accounts", Some(account)).await;
    assert_eq!(status, 201, "{body}");
    save_config(&me, account_type, login).await;
    (id, me)
}

pub async fn save_config(me: &As<'_>, account_type: &str, mailbox: &str) {
    let config = json!({"account_type": account_type, "mailbox": mailbox});
    let (status, body) = me.call("PUT", "/api/v1/me/mail-config", Some(config)).await;
    assert_eq!(status, 200, "{body}");
}

/// Submits a message as `login` (its own address).
pub async fn submit(gw: &Gateway, login: &str, to: &str, subject: &str, extra: &str) {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO desk.help.example", 250).await;
    c.login(login, PASSWORD).await;
    c.expect(&format!("MAIL FROM:<{login}>"), 250).await;
    c.expect(&format!("RCPT TO:<{to}>"), 250).await;
    c.expect("DATA", 354).await;
    let text = format!(
        "From: <{login}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n{extra}\r\nFrom the desk of {login}.\r\n.\r\n"
    );
    c.send(text.as_bytes()).await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;
}

/// A customer's message to `rcpt` on the inbound listener.
pub async fn receive(gw: &Gateway, rcpt: &str, subject: &str, message_id: &str) {
    let text = format!(
        "From: Ann <ann@customer.example>\r\nTo: {rcpt}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\r\nHello.\r\n"
    );
    let reply = send(gw, "ann@customer.example", rcpt, &text).await;
    assert_eq!(reply.code, 250, "{reply:?}");
}

pub async fn set_status(gw: &Gateway, id: u64, status: &str) {
    let patch = json!({"status": status});
    let (code, body) = api(gw, "PATCH", &format!("/api/v1/users/{id}"), Some(patch)).await;
    assert_eq!(code, 200, "{body}");
}

pub async fn org_domains(gw: &Gateway, domains: &[&str]) {
    let patch = json!({"org_domains": domains});
    let (status, body) = api(gw, "PATCH", "/api/v1/settings", Some(patch)).await;
    assert_eq!(status, 200, "{body}");
}

/// Asks for a backup (202) and waits until it is finished; returns the finished job.
pub async fn backup(gw: &Gateway, user: u64, body: Value) -> Value {
    let path = format!("/api/v1/users/{user}/backup");
    let (status, job) = api(gw, "POST", &path, Some(body)).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["status"], "pending");
    finished(gw, job["id"].as_u64().unwrap()).await
}

pub async fn finished(gw: &Gateway, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, job) = api(gw, "GET", &format!("/api/v1/backups/{id}"), None).await;
        if job["status"] == "completed" || job["status"] == "failed" {
            return job;
        }
        assert!(Instant::now() < deadline, "backup never finished: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The subjects of the messages in an mbox, read back by mail-parser.
pub fn mbox_subjects(mbox: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = MessageIterator::new(mbox)
        .map(|m| {
            let m = m.expect("an mbox message");
            let parsed = MessageParser::default().parse(m.contents()).unwrap();
            parsed.subject().unwrap().to_string()
        })
        .collect();
    out.sort();
    out
}

pub fn subjects(items: &Value) -> Vec<String> {
    let mut out: Vec<String> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// Mail a user exchanged: a customer's message (a ticket), the user's reply to it (linked
/// through In-Reply-To) and an unrelated message (no link).
pub async fn correspondence(gw: &Gateway, login: &str, tag: &str) {
    receive(
        gw,
        login,
        &format!("{tag} question"),
        &format!("{tag}.q@customer.example"),
    )
    .await;
    settle(gw).await;
    let refs = format!("In-Reply-To: <{tag}.q@customer.example>\r\n");
    submit(
        gw,
        login,
        "ann@customer.example",
        &format!("{tag} answer"),
        &refs,
    )
    .await;
    submit(
        gw,
        login,
        "partner@elsewhere.example",
        &format!("{tag} lunch"),
        "",
    )
    .await;
    settle(gw).await;
}

/// Waits until the archive holds `n` messages of `user`.
pub async fn archived(gw: &Gateway, user: u64, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.running.store().archive().of_user(user).unwrap().len() < n {
        assert!(Instant::now() < deadline, "archive never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
