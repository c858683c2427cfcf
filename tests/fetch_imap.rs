//! Helpdesk mail fetched over IMAP from a real Dovecot (`tests/common/dovecot.rs`): IDLE
//! makes a ticket within seconds of the APPEND, a reply threads, a malformed message is
//! set aside while the next one goes on, a blocked sender's message goes to `Blocked`, a
//! UIDVALIDITY change and a hard kill between fetch and acknowledgement make no second
//! ticket, and a server that goes away is reconnected.

mod common;

use common::dovecot::Dovecot;
use common::helpdesk::{api, mailbox, tickets, user};
use common::{binary_log, free_ports, http, spawn_binary, wait_ready, Gateway, TOKEN};
use postern::net::imap::{connect, Login, Server};
use postern::store::SentCopyTls;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DESK: &str = "desk@help.example";
const PASSWORD: &str = "desk-secret";

fn fetch(dovecot: &Dovecot, after: &str) -> Value {
    json!({"kind": "imap", "host": "127.0.0.1", "port": dovecot.imap_port, "tls": "none",
           "auth": "password", "username": DESK, "password": PASSWORD,
           "after": after, "move_to": "Processed", "poll_secs": 1})
}

fn inbound(dovecot: &Dovecot, after: &str) -> Value {
    json!({"auto_create_requesters": true, "fetch": fetch(dovecot, after)})
}

async fn dovecot() -> Dovecot {
    let mut dovecot = Dovecot::new(&[(DESK, PASSWORD)], &["Processed", "Blocked"]);
    tokio::task::block_in_place(|| dovecot.start());
    dovecot
}

/// APPENDs `message` to `folder` as an IMAP client would.
async fn append(dovecot: &Dovecot, folder: &str, message: &str) {
    let server = Server {
        host: "127.0.0.1",
        port: dovecot.imap_port,
        tls: SentCopyTls::None,
        ca_file: None,
    };
    let login = Login::Password {
        username: DESK,
        password: PASSWORD,
    };
    let (mut session, _) = connect(server, login).await.unwrap();
    session
        .append(folder, None, None, message.as_bytes())
        .await
        .unwrap();
    session.logout().await.unwrap();
}

fn message(from: &str, subject: &str, extra: &str) -> String {
    format!("From: {from}\r\nTo: {DESK}\r\nSubject: {subject}\r\n{extra}\r\nHello.\r\n")
}

/// Waits (at most `within`) until `check` holds; what it returned last.
async fn until<T>(within: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn tickets_n(gw: &Gateway, n: usize, within: Duration) -> Vec<Value> {
    let found = until(within, async || {
        let all = tickets(gw).await;
        (all.len() >= n).then_some(all)
    })
    .await;
    found.unwrap_or_else(|| panic!("{n} tickets not made in {within:?}"))
}

fn count(dovecot: &Dovecot, folder: &str) -> usize {
    dovecot.messages(DESK, folder).len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_message_is_a_ticket_within_seconds_of_the_append_and_a_reply_threads() {
    let dovecot = dovecot().await;
    let gw = Gateway::start(|_| {}).await;
    mailbox(&gw, "Desk", DESK, inbound(&dovecot, "move")).await;
    // Connected and idle before the message arrives.
    let idle = until(Duration::from_secs(10), async || {
        let (_, accounts) = api(&gw, "GET", "/api/v1/accounts", None).await;
        let id = accounts.as_array()?.first()?["id"].as_u64()?;
        let metrics = http(gw.running.api, "GET", "/metrics", Some(TOKEN), None)
            .await
            .1;
        let _ = id;
        metrics
            .contains("postern_fetch_state{mailbox=\"Desk\",state=\"idle\"} 1")
            .then_some(())
    })
    .await;
    assert!(idle.is_some(), "the fetcher never went idle");

    let appended = Instant::now();
    let first = message(
        "Ann <ann@customer.example>",
        "Printer on fire",
        "Message-ID: <fire@customer.example>\r\n",
    );
    append(&dovecot, "INBOX", &first).await;
    let made = tickets_n(&gw, 1, Duration::from_secs(5)).await;
    let took = appended.elapsed();
    assert!(took < Duration::from_secs(5), "ticket after {took:?}");
    assert_eq!(made[0]["subject"], "Printer on fire");
    assert!(
        user(&gw, "ann@customer.example").await.is_some(),
        "requester created"
    );
    // Recorded, then moved to Processed.
    let moved = until(Duration::from_secs(5), async || {
        (count(&dovecot, "Processed") == 1 && count(&dovecot, "INBOX") == 0).then_some(())
    })
    .await;
    assert!(
        moved.is_some(),
        "not moved: INBOX {}",
        count(&dovecot, "INBOX")
    );

    let reply = message(
        "Ann <ann@customer.example>",
        "Re: Printer on fire",
        "Message-ID: <fire-2@customer.example>\r\nIn-Reply-To: <fire@customer.example>\r\nReferences: <fire@customer.example>\r\n",
    );
    append(&dovecot, "INBOX", &reply).await;
    let threaded = until(Duration::from_secs(5), async || {
        let (_, ticket) = api(
            &gw,
            "GET",
            &format!("/api/v1/tickets/{}", made[0]["id"]),
            None,
        )
        .await;
        (ticket["articles"].as_array()?.len() == 2).then_some(())
    })
    .await;
    assert!(threaded.is_some(), "the reply did not join the ticket");
    assert_eq!(tickets(&gw).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_message_is_set_aside_and_the_next_one_still_becomes_a_ticket() {
    let dovecot = dovecot().await;
    let gw = Gateway::start(|_| {}).await;
    let id = mailbox(&gw, "Desk", DESK, inbound(&dovecot, "seen")).await;
    let bad = "From: a@x.example\r\nFrom: b@x.example\r\nSubject: two senders\r\n\r\nx\r\n";
    append(&dovecot, "INBOX", bad).await;
    append(
        &dovecot,
        "INBOX",
        &message("bob@customer.example", "After the bad one", ""),
    )
    .await;
    let made = tickets_n(&gw, 1, Duration::from_secs(10)).await;
    assert_eq!(made[0]["subject"], "After the bad one");
    let state = until(Duration::from_secs(5), async || {
        let (_, state) = api(&gw, "GET", &format!("/api/v1/accounts/{id}/fetch"), None).await;
        (state["set_aside"].as_array()?.len() == 1).then_some(state)
    })
    .await;
    if let Some(state) = state {
        assert!(
            state["set_aside"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("From"),
            "{state}"
        );
    }
    let stored = gw_state(&gw, id);
    assert_eq!(stored.set_aside.len(), 1, "{stored:?}");
    assert!(stored.set_aside[0].reason.contains("From"), "{stored:?}");
    assert_eq!(tickets(&gw).await.len(), 1);
}

/// The fetch state of account `id` as stored.
fn gw_state(gw: &Gateway, id: u64) -> postern::store::FetchState {
    gw.running.store().fetch_states().get(id).unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_senders_message_ends_in_blocked_with_no_ticket_and_no_requester() {
    let dovecot = dovecot().await;
    let gw = Gateway::start(|_| {}).await;
    let body = json!({"entry": "spam.example", "reason": "complaints"});
    let (status, text) = api(&gw, "POST", "/api/v1/blocklist", Some(body)).await;
    assert_eq!(status, 201, "{text}");
    mailbox(&gw, "Desk", DESK, inbound(&dovecot, "seen")).await;
    append(
        &dovecot,
        "INBOX",
        &message("pest@spam.example", "Buy now", ""),
    )
    .await;
    append(
        &dovecot,
        "INBOX",
        &message("carol@customer.example", "Real question", ""),
    )
    .await;
    tickets_n(&gw, 1, Duration::from_secs(10)).await;
    let blocked = until(Duration::from_secs(5), async || {
        (count(&dovecot, "Blocked") == 1).then_some(())
    })
    .await;
    assert!(blocked.is_some(), "not moved to Blocked");
    let stays = until(Duration::from_secs(5), async || {
        (count(&dovecot, "INBOX") == 1).then_some(())
    })
    .await;
    assert!(stays.is_some(), "the real question stays, seen");
    assert!(user(&gw, "pest@spam.example").await.is_none());
    let all = tickets(&gw).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["subject"], "Real question");
    let metrics = http(gw.running.api, "GET", "/metrics", Some(TOKEN), None)
        .await
        .1;
    assert!(
        metrics.contains("postern_fetch_messages_total{mailbox=\"Desk\",outcome=\"blocked\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_uidvalidity_change_and_a_dropped_connection_make_no_duplicates() {
    let mut dovecot = dovecot().await;
    let gw = Gateway::start(|_| {}).await;
    let id = mailbox(&gw, "Desk", DESK, inbound(&dovecot, "seen")).await;
    for i in 0..3 {
        let extra = format!("Message-ID: <m{i}@customer.example>\r\n");
        append(
            &dovecot,
            "INBOX",
            &message("dan@customer.example", &format!("n{i}"), &extra),
        )
        .await;
    }
    // One without a Message-ID: its octets' digest keeps it once.
    append(
        &dovecot,
        "INBOX",
        &message("dan@customer.example", "no id", ""),
    )
    .await;
    tickets_n(&gw, 4, Duration::from_secs(10)).await;
    let before = gw_state(&gw, id).uidvalidity;

    // The server goes away; its folder comes back with a new UIDVALIDITY.
    tokio::task::block_in_place(|| dovecot.stop());
    let inbox = dovecot.maildir(DESK, "INBOX");
    for entry in std::fs::read_dir(&inbox).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("dovecot") {
            let _ = std::fs::remove_file(&path);
        }
    }
    // Unseen again, as a restored mailbox would be.
    for file in std::fs::read_dir(inbox.join("cur")).unwrap() {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let base = name.split(":2,").next().unwrap().to_string();
        std::fs::rename(&path, inbox.join("new").join(base)).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| dovecot.start());
    append(
        &dovecot,
        "INBOX",
        &message("erin@customer.example", "after the move", ""),
    )
    .await;
    tickets_n(&gw, 5, Duration::from_secs(20)).await;
    let after = until(Duration::from_secs(10), async || {
        let state = gw_state(&gw, id);
        (state.uidvalidity != before && state.unacked.is_empty()).then_some(state)
    })
    .await;
    assert!(
        after.is_some(),
        "the new UIDVALIDITY was not seen: {before} then {:?}",
        gw_state(&gw, id)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = tickets(&gw).await;
    assert_eq!(all.len(), 5, "{all:#?}");
}

/// The binary's configuration: API on `api`, no listeners but a submission one.
fn write_config(dir: &std::path::Path, api: u16, smtp: u16) -> std::path::PathBuf {
    let text = format!(
        "data_dir = \"{data}\"\nhostname = \"gw.test\"\n[api]\nbind = \"127.0.0.1:{api}\"\n\
         [tls]\ncert = \"{dir}/cert.pem\"\nkey = \"{dir}/key.pem\"\n\
         [[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:{smtp}\"\ntls = \"none\"\n",
        data = dir.join("data").display(),
        dir = dir.display(),
    );
    let path = dir.join("postern.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hard_kill_between_fetch_and_acknowledgement_makes_no_second_ticket() {
    let dovecot = dovecot().await;
    // Fifty messages wait; the gateway is killed at its first ticket, in the middle of
    // the batch (recorded, not yet acknowledged at the server).
    for i in 0..50 {
        let extra = format!("Message-ID: <k{i}@customer.example>\r\n");
        let text = message(&format!("c{i}@customer.example"), &format!("k{i}"), &extra);
        dovecot.deliver(DESK, "INBOX", text.as_bytes());
    }
    let dir = tempfile::tempdir().unwrap();
    let [api_port, smtp] = free_ports::<2>();
    let config = write_config(dir.path(), api_port, smtp);
    let api: std::net::SocketAddr = format!("127.0.0.1:{api_port}").parse().unwrap();
    let mut child = spawn_binary(&config);
    wait_ready(api, &mut child, &binary_log(&config)).await;
    let body = json!({"name": "Desk", "address": DESK, "inbound": inbound(&dovecot, "move")});
    let (status, text) = http(
        api,
        "POST",
        "/api/v1/accounts",
        Some(TOKEN),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let count_tickets = async || -> usize {
        let (_, text) = http(api, "GET", "/api/v1/tickets", Some(TOKEN), None).await;
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0)
    };
    let first = until(Duration::from_secs(20), async || {
        (count_tickets().await > 0).then_some(())
    })
    .await;
    assert!(first.is_some(), "no ticket");
    child.kill().unwrap();
    child.wait().unwrap();
    let left = count(&dovecot, "INBOX");
    assert!(left > 0, "the kill came after every acknowledgement");

    let mut child = spawn_binary(&config);
    wait_ready(api, &mut child, &binary_log(&config)).await;
    let done = until(Duration::from_secs(30), async || {
        (count(&dovecot, "Processed") == 50 && count(&dovecot, "INBOX") == 0).then_some(())
    })
    .await;
    let made = count_tickets().await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        done.is_some(),
        "not all moved: INBOX {}",
        count(&dovecot, "INBOX")
    );
    assert_eq!(made, 50, "{left} were left at the kill");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_sharing_the_store_record_each_message_once() {
    let dovecot = dovecot().await;
    append(
        &dovecot,
        "INBOX",
        &message("ivy@customer.example", "q0", ""),
    )
    .await;
    for i in 1..30 {
        let text = message(&format!("c{i}@customer.example"), &format!("q{i}"), "");
        dovecot.deliver(DESK, "INBOX", text.as_bytes());
    }
    let url = tokio::task::block_in_place(common::postgres::database);
    let a = common::nodes::node(&url, "node-a", true, |_| {}).await;
    let b = common::nodes::node(&url, "node-b", true, |_| {}).await;
    mailbox(&a, "Desk", DESK, inbound(&dovecot, "move")).await;
    tickets_n(&a, 30, Duration::from_secs(20)).await;
    let emptied = until(Duration::from_secs(10), async || {
        (count(&dovecot, "INBOX") == 0).then_some(())
    })
    .await;
    assert!(emptied.is_some(), "INBOX not emptied");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(tickets(&a).await.len(), 30);
    assert_eq!(tickets(&b).await.len(), 30);
    // One node fetches; the other stands by.
    let mut states = Vec::new();
    for gw in [&a, &b] {
        let metrics = http(gw.running.api, "GET", "/metrics", Some(TOKEN), None)
            .await
            .1;
        let standby = metrics.contains("postern_fetch_state{mailbox=\"Desk\",state=\"standby\"} 1");
        states.push(standby);
    }
    assert_eq!(states.iter().filter(|s| **s).count(), 1, "{states:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_turn_the_account_failing_until_a_good_login() {
    let dovecot = dovecot().await;
    let gw = Gateway::start(|_| {}).await;
    let mut settings = inbound(&dovecot, "seen");
    settings["fetch"]["password"] = json!("wrong-password");
    let id = mailbox(&gw, "Desk", DESK, settings).await;
    let status = format!("/api/v1/accounts/{id}/status");
    let failing = until(Duration::from_secs(15), async || {
        let (_, status) = api(&gw, "GET", &status, None).await;
        (status["health"] == "failing").then_some(status)
    })
    .await
    .expect("the account turns failing");
    let error = failing["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("fetch: ") && error.contains("login"),
        "{failing}"
    );

    let fixed = json!({"inbound": inbound(&dovecot, "seen")});
    let (code, body) = api(&gw, "PATCH", &format!("/api/v1/accounts/{id}"), Some(fixed)).await;
    assert_eq!(code, 200, "{body}");
    let healthy = until(Duration::from_secs(15), async || {
        let (_, status) = api(&gw, "GET", &status, None).await;
        (status["health"] == "healthy").then_some(())
    })
    .await;
    assert!(healthy.is_some(), "the account stays failing");
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_already_read_when_the_folder_is_first_read_are_its_history() {
    let dovecot = dovecot().await;
    append(
        &dovecot,
        "INBOX",
        &message("old@customer.example", "unread from before", ""),
    )
    .await;
    // Two messages read before Postern ever looked (maildir `cur/` with the S flag).
    let cur = dovecot.maildir(DESK, "INBOX").join("cur");
    for i in 0..2 {
        let text = message("old@customer.example", &format!("read {i}"), "");
        std::fs::write(cur.join(format!("100{i}.history{i}.test:2,S")), text).unwrap();
    }
    let gw = Gateway::start(|_| {}).await;
    let id = mailbox(&gw, "Desk", DESK, inbound(&dovecot, "seen")).await;
    let made = tickets_n(&gw, 1, Duration::from_secs(10)).await;
    assert_eq!(made[0]["subject"], "unread from before");
    // Anything arriving later is taken, read or not.
    append(
        &dovecot,
        "INBOX",
        &message("new@customer.example", "new one", ""),
    )
    .await;
    tickets_n(&gw, 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(tickets(&gw).await.len(), 2);
    let state = gw_state(&gw, id);
    assert!(
        state.history_uid >= 1 && state.last_uid > state.history_uid,
        "{state:?}"
    );
}
