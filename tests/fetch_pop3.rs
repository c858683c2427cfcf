//! Fetching a helpdesk mailbox over POP3 (issue 28) from a real Dovecot: each message
//! becomes exactly one ticket; `after = "delete"` empties the mailbox, `after = "seen"`
//! leaves it and a restarted gateway makes no second ticket; a malformed message is set
//! aside (and retried on request) while the next one still becomes a ticket; a blocked
//! sender's message is deleted and becomes nothing; a message recorded but not yet deleted
//! (a crash before the `QUIT`) is deleted without a second ticket; refused credentials
//! turn the account `failing`.

mod common;

use common::dovecot::Dovecot;
use common::helpdesk::{api, helpdesk, mailbox, tickets, user};
use common::Gateway;
use postern::net::imap::Server;
use postern::net::pop3;
use postern::store::{FetchState, SentCopyTls};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DESK: &str = "desk@help.example";
const POP3_PASSWORD: &str = "pop3-secret-5d1c";

/// A started Dovecot with the mailbox's user, and a gateway whose helpdesk mailbox `DESK`
/// fetches from it with `after` (and `password`); the account id.
async fn setup(after: &str, password: &str) -> (Dovecot, Gateway, u64) {
    let dovecot = dovecot();
    let gw = helpdesk().await;
    let id = mailbox(&gw, "Desk", DESK, inbound(fetch(&dovecot, after, password))).await;
    (dovecot, gw, id)
}

fn dovecot() -> Dovecot {
    let mut dovecot = Dovecot::new(&[(DESK, POP3_PASSWORD)], &[]);
    dovecot.start();
    dovecot
}

/// The mailbox's `inbound.fetch` settings.
fn fetch(dovecot: &Dovecot, after: &str, password: &str) -> Value {
    json!({"kind": "pop3", "host": "127.0.0.1", "port": dovecot.pop3_port, "tls": "none",
        "username": DESK, "password": password, "after": after, "poll_secs": 1})
}

fn inbound(fetch: Value) -> Value {
    json!({"auto_create_requesters": true, "default_group": "customers", "fetch": fetch})
}

/// Message `n` as the provider stored it (with the `Return-Path` its delivery recorded).
fn message(n: u32) -> Vec<u8> {
    format!(
        "Return-Path: <customer{n}@example.net>\r\nFrom: Customer {n} <customer{n}@example.net>\r\nTo: {DESK}\r\n\
         Message-ID: <pop3-{n}@example.net>\r\nSubject: question {n}\r\n\r\n\
         Hello,\r\n.a line that starts with a dot\r\n.\r\nthe end\r\n"
    )
    .into_bytes()
}

/// Waits until `check` holds (up to `secs`), polling.
async fn eventually(secs: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many messages Dovecot's POP3 sessions sent (`retr=N/size` at each logout).
fn retrieved(dovecot: &Dovecot) -> usize {
    dovecot
        .log()
        .lines()
        .filter_map(|line| {
            line.split("retr=")
                .nth(1)?
                .split('/')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum()
}

fn subjects(all: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = all
        .iter()
        .map(|t| t["subject"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_becomes_one_ticket_and_after_delete_empties_the_mailbox() {
    let (dovecot, gw, _) = setup("delete", POP3_PASSWORD).await;
    for n in 1..=3 {
        dovecot.deliver(DESK, "INBOX", &message(n));
    }
    eventually(20, "three tickets", async || tickets(&gw).await.len() == 3).await;
    eventually(20, "the mailbox emptied", async || {
        dovecot.messages(DESK, "INBOX").is_empty()
    })
    .await;
    // A message arriving later is fetched at the next look.
    dovecot.deliver(DESK, "INBOX", &message(4));
    eventually(20, "the fourth ticket", async || {
        tickets(&gw).await.len() == 4
    })
    .await;
    eventually(20, "the mailbox emptied again", async || {
        dovecot.messages(DESK, "INBOX").is_empty()
    })
    .await;
    // Looks go on; nothing is recorded twice, and the body came through unstuffed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = tickets(&gw).await;
    assert_eq!(
        subjects(&all),
        ["question 1", "question 2", "question 3", "question 4"]
    );
    let (status, shown) = api(
        &gw,
        "GET",
        &format!("/api/v1/tickets/{}", all[0]["id"]),
        None,
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    assert!(
        shown.to_string().contains(".a line that starts with a dot"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_seen_leaves_the_messages_and_a_restart_makes_no_second_ticket() {
    let (dovecot, gw, id) = setup("seen", POP3_PASSWORD).await;
    for n in 1..=2 {
        dovecot.deliver(DESK, "INBOX", &message(n));
    }
    eventually(20, "two tickets", async || tickets(&gw).await.len() == 2).await;
    let store = gw.running.store().clone();
    eventually(20, "both UIDLs remembered", async || {
        store
            .fetch_states()
            .get(id)
            .unwrap()
            .is_some_and(|s| s.uidls.len() == 2)
    })
    .await;
    assert_eq!(
        dovecot.messages(DESK, "INBOX").len(),
        2,
        "left on the server"
    );
    drop(store);

    let Gateway {
        running,
        dir,
        config,
    } = gw;
    running.shutdown().await;
    let running = postern::app::start(config.clone(), Some(common::TOKEN.into()))
        .await
        .expect("gateway restarts");
    let gw = Gateway {
        running,
        dir,
        config,
    };
    // The restarted gateway fetches again (a third message shows it), and only new mail.
    dovecot.deliver(DESK, "INBOX", &message(3));
    eventually(90, "the third ticket", async || {
        tickets(&gw).await.len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        subjects(&tickets(&gw).await),
        ["question 1", "question 2", "question 3"]
    );
    assert_eq!(dovecot.messages(DESK, "INBOX").len(), 3);
    assert_eq!(retrieved(&dovecot), 3, "each message fetched once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_is_set_aside_and_the_next_one_still_becomes_a_ticket() {
    let (dovecot, gw, id) = setup("delete", POP3_PASSWORD).await;
    dovecot.deliver(
        DESK,
        "INBOX",
        b"Return-Path: <someone@example.net>\r\nTo: desk@help.example\r\nSubject: no sender\r\n\r\nwho am I?\r\n",
    );
    dovecot.deliver(DESK, "INBOX", &message(1));
    eventually(20, "the good one's ticket", async || {
        tickets(&gw).await.len() == 1
    })
    .await;
    let store = gw.running.store().clone();
    let set_aside = || {
        store
            .fetch_states()
            .get(id)
            .unwrap()
            .map(|s| s.set_aside)
            .unwrap_or_default()
    };
    eventually(20, "the malformed one set aside", async || {
        set_aside().len() == 1
    })
    .await;
    let entry = set_aside().remove(0);
    assert_eq!(entry.attempts, 1);
    assert!(!entry.reason.is_empty());
    // It stays at the server, the good one is gone; looks go on without retrying it yet.
    eventually(20, "the good one deleted", async || {
        dovecot.messages(DESK, "INBOX").len() == 1
    })
    .await;
    assert!(String::from_utf8_lossy(&dovecot.messages(DESK, "INBOX")[0]).contains("no sender"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(set_aside()[0].attempts, 1, "not retried before it is due");

    // Retried when asked (and set aside again); a move is impossible and only answered.
    let requests = store.fetch_states();
    requests
        .request(id, &entry.key, &postern::store::SetAsideRequest::Retry)
        .unwrap();
    eventually(20, "retried on request", async || {
        set_aside().first().is_some_and(|e| e.attempts == 2)
    })
    .await;
    let folder = "Elsewhere".to_string();
    requests
        .request(
            id,
            &entry.key,
            &postern::store::SetAsideRequest::Move { folder },
        )
        .unwrap();
    eventually(20, "the move request answered", async || {
        requests.requests(id).unwrap().is_empty()
    })
    .await;
    assert_eq!(set_aside().len(), 1);
    assert_eq!(tickets(&gw).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_turn_the_account_failing() {
    let (dovecot, gw, id) = setup("delete", "not-the-password").await;
    dovecot.deliver(DESK, "INBOX", &message(1));
    eventually(30, "the account failing", async || {
        let (_, account) = api(&gw, "GET", &format!("/api/v1/accounts/{id}"), None).await;
        account["status"]["health"] == "failing"
    })
    .await;
    let (_, account) = api(&gw, "GET", &format!("/api/v1/accounts/{id}"), None).await;
    let error = account["status"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("POP3 login refused"), "{account}");
    assert!(
        !account.to_string().contains("not-the-password"),
        "{account}"
    );
    assert!(tickets(&gw).await.is_empty());
    assert_eq!(dovecot.messages(DESK, "INBOX").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_recorded_but_not_yet_deleted_is_deleted_without_a_second_ticket() {
    // What a crash between saving the state and the QUIT leaves: the UIDL recorded, and
    // still to be deleted.
    let dovecot = dovecot();
    dovecot.deliver(DESK, "INBOX", &message(1));
    let server = Server {
        host: "127.0.0.1",
        port: dovecot.pop3_port,
        tls: SentCopyTls::None,
        ca_file: None,
    };
    let mut pop = pop3::connect(server, DESK, POP3_PASSWORD).await.unwrap();
    let listing = pop.uidl().await.unwrap();
    pop.quit().await.unwrap();
    assert_eq!(listing.len(), 1);
    let uidl = listing[0].1.clone();

    let gw = helpdesk().await;
    let settings = fetch(&dovecot, "delete", POP3_PASSWORD);
    let id = mailbox(&gw, "Desk", DESK, json!({"auto_create_requesters": true})).await;
    let state = FetchState {
        source: serde_json::from_value::<postern::store::Fetch>(settings.clone())
            .unwrap()
            .source(),
        uidls: vec![uidl.clone()],
        unacked: vec![(uidl, false)],
        ..FetchState::default()
    };
    gw.running.store().fetch_states().put(id, &state).unwrap();
    let (status, body) = api(
        &gw,
        "PATCH",
        &format!("/api/v1/accounts/{id}"),
        Some(json!({"inbound": inbound(settings)})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually(20, "the message deleted", async || {
        dovecot.messages(DESK, "INBOX").is_empty()
    })
    .await;
    let store = gw.running.store().clone();
    eventually(20, "the state tidied", async || {
        store
            .fetch_states()
            .get(id)
            .unwrap()
            .is_some_and(|s| s.uidls.is_empty() && s.unacked.is_empty())
    })
    .await;
    assert!(tickets(&gw).await.is_empty(), "not taken a second time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_senders_message_is_deleted_and_becomes_nothing() {
    let (dovecot, gw, _) = setup("seen", POP3_PASSWORD).await;
    let (status, body) = api(
        &gw,
        "POST",
        "/api/v1/blocklist",
        Some(json!({"entry": "customer1@example.net"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    dovecot.deliver(DESK, "INBOX", &message(1));
    dovecot.deliver(DESK, "INBOX", &message(2));
    eventually(20, "the other one's ticket", async || {
        tickets(&gw).await.len() == 1
    })
    .await;
    // Deleted (POP3's `on_blocked`) although `after` leaves the others on the server.
    eventually(20, "the blocked one deleted", async || {
        dovecot.messages(DESK, "INBOX").len() == 1
    })
    .await;
    let left = dovecot.messages(DESK, "INBOX");
    assert!(String::from_utf8_lossy(&left[0]).contains("question 2"));
    assert_eq!(subjects(&tickets(&gw).await), ["question 2"]);
    assert!(user(&gw, "customer1@example.net").await.is_none());
    assert_eq!(
        gw.metric("postern_fetch_messages_total{mailbox=\"Desk\",outcome=\"blocked\"}")
            .await,
        1.0
    );
}
