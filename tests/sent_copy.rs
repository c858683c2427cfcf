//! Sent copies (issue 27 part 4): a message sent through an account with `sent_copy` is
//! filed once in the mailbox's Sent folder of a real IMAP server (Dovecot) after the
//! upstream accepted it — once even when the message is delivered again; with the IMAP
//! server down the mail still leaves, the account shows a `sent_copy` warning, and the
//! copy follows once the server is back; the API never shows the IMAP password.

mod common;

use common::dovecot::Dovecot;
use common::helpdesk::api;
use common::upstream::{FakeUpstream, Script};
use common::{sink_upstream, Client, Gateway};
use postern::relay::sent_copy::jobs::{JobHead, Jobs};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SENDER: &str = "agent@corp.example";
const MAILBOX: &str = "desk@corp.example";
const IMAP_PASSWORD: &str = "imap-secret-7f3a";

/// A gateway delivering to a fake SMTP upstream `sink`, and a Dovecot (not started) with
/// the mailbox's user.
async fn setup() -> (Gateway, FakeUpstream, Dovecot) {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let port = upstream.addr.port();
    let gw = Gateway::start(move |c| {
        c.upstreams.insert("sink".into(), sink_upstream(port));
        c.queue.retry_intervals_secs = vec![1];
    })
    .await;
    gw.create_user(SENDER, "staff", "agent-password-1").await;
    let dovecot = Dovecot::new(&[(MAILBOX, IMAP_PASSWORD)], &["Sent"]);
    (gw, upstream, dovecot)
}

/// The `sent_copy` settings for `dovecot`.
fn sent_copy(dovecot: &Dovecot) -> Value {
    json!({"host": "127.0.0.1", "port": dovecot.imap_port, "tls": "none", "folder": "Sent",
        "auth": {"kind": "password", "username": MAILBOX, "password": IMAP_PASSWORD}})
}

/// Creates the account `desk` with `sent_copy`; returns its id.
async fn account(gw: &Gateway, sent_copy: Value) -> u64 {
    let body = json!({"name": "desk", "address": MAILBOX, "upstream": "sink",
        "scope": {"kind": "all_staff"}, "default_send_mode": "send_as", "sent_copy": sent_copy});
    let (status, doc) = api(gw, "POST", "/api/v1/accounts", Some(body)).await;
    assert_eq!(status, 201, "{doc}");
    doc["id"].as_u64().unwrap()
}

/// Sends one message from the account with `message_id`.
async fn send(gw: &Gateway, message_id: &str) {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO agent.corp.example", 250).await;
    c.login(SENDER, "agent-password-1").await;
    c.expect(&format!("MAIL FROM:<{MAILBOX}>"), 250).await;
    c.expect("RCPT TO:<customer@example.net>", 250).await;
    c.expect("DATA", 354).await;
    let text = format!(
        "From: {MAILBOX}\r\nTo: customer@example.net\r\nMessage-ID: {message_id}\r\n\
         Subject: your ticket\r\n\r\nWe are on it.\r\n.\r\n"
    );
    c.send(text.as_bytes()).await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;
}

/// Waits until `check` holds (up to `secs`), polling.
async fn eventually(secs: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sent-copy jobs still waiting in the gateway's queue.
fn waiting_jobs(gw: &Gateway) -> usize {
    std::fs::read_dir(gw.config.data_dir.join("sent-copies"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".job"))
                .count()
        })
        .unwrap_or(0)
}

async fn status(gw: &Gateway, id: u64) -> Value {
    api(gw, "GET", &format!("/api/v1/accounts/{id}/status"), None)
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_message_is_filed_once_in_the_sent_folder_even_when_delivered_again() {
    let (gw, upstream, mut dovecot) = setup().await;
    dovecot.start();
    let id = account(&gw, sent_copy(&dovecot)).await;
    send(&gw, "<first@corp.example>").await;
    eventually(20, "the copy is filed", async || {
        dovecot.messages(MAILBOX, "Sent").len() == 1
    })
    .await;
    assert_eq!(upstream.record().messages.len(), 1);
    let sent = dovecot.messages(MAILBOX, "Sent");
    let copy = String::from_utf8_lossy(&sent[0]);
    assert!(copy.contains("Message-ID: <first@corp.example>"), "{copy}");
    assert!(copy.contains("We are on it."), "{copy}");
    let names: Vec<String> = std::fs::read_dir(dovecot.maildir(MAILBOX, "Sent").join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        names.iter().all(|n| n.ends_with(":2,S")),
        "filed as seen: {names:?}"
    );

    // The same message delivered again (one Message-ID, a second delivery): still one copy.
    send(&gw, "<first@corp.example>").await;
    eventually(20, "the second delivery", async || {
        upstream.record().messages.len() == 2
    })
    .await;
    eventually(20, "the second job is done", async || {
        waiting_jobs(&gw) == 0
    })
    .await;
    assert_eq!(dovecot.messages(MAILBOX, "Sent").len(), 1, "filed once");

    // Another message is filed beside it.
    send(&gw, "<second@corp.example>").await;
    eventually(20, "the other copy is filed", async || {
        dovecot.messages(MAILBOX, "Sent").len() == 2
    })
    .await;

    // A job replayed after a restart (as a crash between APPEND and the job's removal
    // leaves it) files nothing a second time.
    let Gateway {
        running,
        dir,
        config,
    } = gw;
    running.shutdown().await;
    let head = JobHead {
        account: id,
        message_id: Some("<second@corp.example>".into()),
        queue_id: "replayed".into(),
    };
    let jobs = Jobs::open(&config.data_dir.join("sent-copies")).unwrap();
    let second = dovecot.messages(MAILBOX, "Sent");
    let second = second
        .iter()
        .find(|m| String::from_utf8_lossy(m).contains("<second@corp.example>"))
        .unwrap();
    assert!(jobs.add(&head, second).unwrap());
    let running = postern::app::start(config.clone(), Some(common::TOKEN.into()))
        .await
        .expect("gateway restarts");
    let gw = Gateway {
        running,
        dir,
        config,
    };
    eventually(20, "the replayed job is done", async || {
        waiting_jobs(&gw) == 0
    })
    .await;
    assert_eq!(
        dovecot.messages(MAILBOX, "Sent").len(),
        2,
        "nothing filed twice"
    );
    gw.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_imap_server_down_mail_leaves_and_the_copy_follows_once_it_is_back() {
    let (gw, upstream, mut dovecot) = setup().await;
    let id = account(&gw, sent_copy(&dovecot)).await;
    send(&gw, "<while-down@corp.example>").await;
    eventually(
        20,
        "delivered although the IMAP server is down",
        async || upstream.record().messages.len() == 1,
    )
    .await;
    eventually(20, "the account shows the sent_copy warning", async || {
        let view = status(&gw, id).await;
        view["health"] == "degraded"
            && view["warnings"]
                .as_array()
                .is_some_and(|w| w.iter().any(|w| w["kind"] == "sent_copy"))
    })
    .await;
    assert_eq!(waiting_jobs(&gw), 1, "the job waits on disk");

    dovecot.start();
    // The first retry comes 10 s after the failure.
    eventually(
        40,
        "the copy is filed once the server is back",
        async || dovecot.messages(MAILBOX, "Sent").len() == 1,
    )
    .await;
    eventually(10, "the warning clears", async || {
        let view = status(&gw, id).await;
        view["health"] == "healthy" && view["warnings"] == json!([])
    })
    .await;
    assert_eq!(waiting_jobs(&gw), 0);
    gw.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_takes_the_settings_checks_them_and_never_shows_the_password() {
    let (gw, _upstream, dovecot) = setup().await;
    let id = account(&gw, sent_copy(&dovecot)).await;
    let path = format!("/api/v1/accounts/{id}");
    for (method, path) in [("GET", path.as_str()), ("GET", "/api/v1/accounts")] {
        let (status, doc) = api(&gw, method, path, None).await;
        assert_eq!(status, 200);
        assert!(!doc.to_string().contains(IMAP_PASSWORD), "{doc}");
    }
    let (_, shown) = api(&gw, "GET", &path, None).await;
    assert_eq!(shown["sent_copy"]["folder"], "Sent");
    assert_eq!(shown["sent_copy"]["auth"]["username"], MAILBOX);

    // A change that leaves the password out keeps it.
    let mut changed = sent_copy(&dovecot);
    changed["folder"] = json!("Sent Items");
    changed["auth"].as_object_mut().unwrap().remove("password");
    let (status, doc) = api(&gw, "PATCH", &path, Some(json!({"sent_copy": changed}))).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["sent_copy"]["folder"], "Sent Items");
    assert!(!doc.to_string().contains(IMAP_PASSWORD), "{doc}");
    let stored = gw.running.store().accounts().get(id).unwrap().unwrap();
    let kept = serde_json::to_string(&stored.sent_copy).unwrap();
    assert!(kept.contains(IMAP_PASSWORD), "the password is kept: {kept}");
    let (_, audit) = api(&gw, "GET", "/api/v1/audit", None).await;
    assert!(!audit.to_string().contains(IMAP_PASSWORD), "{audit}");

    // Checked per field.
    let bad = |field: &str, value: Value| {
        let mut copy = sent_copy(&dovecot);
        copy[field] = value;
        copy
    };
    for (copy, field) in [
        (bad("tls", json!("none")), None),
        (
            bad("host", json!("imap.example.com")),
            Some("sent_copy.tls"),
        ),
        (bad("host", json!("")), Some("sent_copy.host")),
        (bad("folder", json!("")), Some("sent_copy.folder")),
        (
            bad("auth", json!({"kind": "xoauth2", "username": MAILBOX})),
            Some("sent_copy.auth"),
        ),
    ] {
        let (status, doc) = api(&gw, "PATCH", &path, Some(json!({"sent_copy": copy}))).await;
        match field {
            None => assert_eq!(status, 200, "{doc}"),
            Some(field) => {
                assert_eq!(status, 422, "{field}: {doc}");
                assert_eq!(doc["errors"][0]["field"], field, "{doc}");
            }
        }
    }
    // A new account needs the password; and no upstream that is no SMTP endpoint (the
    // maildir `local`).
    let no_password = bad("auth", json!({"kind": "password", "username": MAILBOX}));
    for (upstream, copy, field) in [
        ("sink", no_password, "sent_copy.auth.password"),
        ("local", sent_copy(&dovecot), "sent_copy"),
    ] {
        let body = json!({"name": "other", "address": "other@corp.example",
            "upstream": upstream, "sent_copy": copy});
        let (status, doc) = api(&gw, "POST", "/api/v1/accounts", Some(body)).await;
        assert_eq!(status, 422, "{doc}");
        assert_eq!(doc["errors"][0]["field"], field, "{doc}");
    }
    // `null` turns it off.
    let (status, doc) = api(&gw, "PATCH", &path, Some(json!({"sent_copy": null}))).await;
    assert_eq!(status, 200, "{doc}");
    assert!(doc.get("sent_copy").is_none_or(Value::is_null), "{doc}");
    gw.running.shutdown().await;
}
