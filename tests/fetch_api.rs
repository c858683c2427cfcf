//! Fetching helpdesk mail through the API (issue 28): the `inbound.fetch` settings checked
//! field by field, the password write-only (never shown, kept on a change that leaves it
//! out for the same server), the fetch status (`GET /api/v1/accounts/{id}/fetch` and the
//! account's status) of a fetcher whose server is down, and the requests on set-aside
//! messages (retry, move) recorded for the fetching node, audited, refused for what does
//! not exist, and carried out at a real server (Dovecot).

mod common;

use common::dovecot::Dovecot;
use common::helpdesk::api;
use common::{free_ports, Gateway};
use postern::store::{FetchState, SetAside, SetAsideRequest};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PASSWORD: &str = "imap-s3cret-password";

/// IMAP settings for a server on a closed loopback port.
fn imap() -> Value {
    let [port] = free_ports::<1>();
    json!({"kind": "imap", "host": "127.0.0.1", "port": port, "tls": "none",
        "username": "desk@help.example", "password": PASSWORD})
}

async fn create(gw: &Gateway, name: &str, upstream: &str, fetch: Value) -> (u16, Value) {
    let body = json!({"name": name, "address": format!("{name}@help.example"),
        "upstream": upstream, "inbound": {"purpose": "ticket", "fetch": fetch}});
    api(gw, "POST", "/api/v1/accounts", Some(body)).await
}

async fn mailbox(gw: &Gateway, name: &str, fetch: Value) -> u64 {
    let (status, body) = create(gw, name, "local", fetch).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_u64().unwrap()
}

async fn eventually(secs: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_are_checked_field_by_field() {
    let gw = Gateway::start(|_| {}).await;
    let with = |changes: Value| {
        let mut fetch = imap();
        for (key, value) in changes.as_object().unwrap() {
            match value {
                Value::Null => drop(fetch.as_object_mut().unwrap().remove(key)),
                _ => fetch[key] = value.clone(),
            }
        }
        fetch
    };
    let cases = [
        (json!({"host": ""}), "host"),
        (json!({"host": "imap example.com"}), "host"),
        (json!({"port": 0}), "port"),
        (json!({"host": "imap.example.com"}), "tls"),
        (json!({"username": ""}), "username"),
        (json!({"password": null}), "password"),
        (json!({"password": ""}), "password"),
        (json!({"auth": "xoauth2"}), "auth"),
        (json!({"kind": "pop3", "auth": "xoauth2"}), "auth"),
        (json!({"kind": "graph"}), "kind"),
        (
            json!({"kind": "pop3", "after": "move", "move_to": "Done"}),
            "after",
        ),
        (json!({"kind": "pop3", "on_blocked": "move"}), "on_blocked"),
        (json!({"after": "move"}), "move_to"),
        (json!({"after": "move", "move_to": "a\u{1}b"}), "move_to"),
        (json!({"folder": ""}), "folder"),
        (json!({"blocked_folder": "x".repeat(256)}), "blocked_folder"),
        (json!({"poll_secs": 0}), "poll_secs"),
        (json!({"poll_secs": 3601}), "poll_secs"),
        (json!({"ca_file": "certs/ca.pem"}), "ca_file"),
        (json!({"authserv_id": "not a host!"}), "authserv_id"),
    ];
    for (i, (changes, field)) in cases.into_iter().enumerate() {
        let (status, doc) = create(&gw, &format!("desk{i}"), "local", with(changes)).await;
        assert_eq!(status, 422, "{field}: {doc}");
        assert_eq!(doc["errors"][0]["field"], format!("inbound.fetch.{field}"));
    }

    // What is right is taken: POP3 deleting, a plain login on loopback, an authserv-id.
    let pop3 = with(
        json!({"kind": "pop3", "after": "delete", "authserv_id": "mx.google.com",
        "poll_secs": 3600, "ca_file": "/etc/ssl/extra.pem"}),
    );
    mailbox(&gw, "pop", pop3).await;
    // XOAUTH2 with an upstream that has OAuth settings; Graph with a graph upstream.
    let m365 = json!({"name": "m365", "kind": "microsoft365", "tenant": "t", "client_id": "c",
        "client_secret": "s", "username": "desk@help.example"});
    let (status, doc) = api(&gw, "POST", "/api/v1/upstreams", Some(m365)).await;
    assert_eq!(status, 201, "{doc}");
    let oauth = with(
        json!({"auth": "xoauth2", "password": null, "host": "outlook.office365.com",
        "tls": "implicit", "port": null, "after": "move", "move_to": "Processed"}),
    );
    let (status, doc) = create(&gw, "oauth", "m365", oauth).await;
    assert_eq!(status, 201, "{doc}");
    let graph = json!({"name": "graph", "kind": "graph", "tenant": "t", "client_id": "c",
        "client_secret": "s", "graph_url": "http://127.0.0.1:9/v1.0"});
    let (status, doc) = api(&gw, "POST", "/api/v1/upstreams", Some(graph)).await;
    assert_eq!(status, 201, "{doc}");
    let (status, doc) = create(&gw, "graphdesk", "graph", json!({"kind": "graph"})).await;
    assert_eq!(status, 201, "{doc}");
    assert_eq!(doc["inbound"]["fetch"]["folder"], "INBOX", "{doc}");
    // A change to the upstream that leaves XOAUTH2 without OAuth is refused too.
    let id = doc["id"].as_u64().unwrap();
    let patch = json!({"inbound": {"fetch": {"kind": "imap", "host": "h.example.com",
        "auth": "xoauth2", "username": "u"}}});
    let (status, doc) = api(&gw, "PATCH", &format!("/api/v1/accounts/{id}"), Some(patch)).await;
    assert_eq!(status, 422, "{doc}");
    assert_eq!(doc["errors"][0]["field"], "inbound.fetch.auth", "{doc}");
    gw.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_is_never_shown_and_kept_for_the_same_server() {
    let gw = Gateway::start(|_| {}).await;
    let fetch = imap();
    let id = mailbox(&gw, "desk", fetch.clone()).await;
    let path = format!("/api/v1/accounts/{id}");
    for path in [path.as_str(), "/api/v1/accounts"] {
        let (status, doc) = api(&gw, "GET", path, None).await;
        assert_eq!(status, 200);
        assert!(!doc.to_string().contains(PASSWORD), "{doc}");
    }
    let (_, shown) = api(&gw, "GET", &path, None).await;
    assert_eq!(shown["inbound"]["fetch"]["username"], "desk@help.example");
    assert!(
        shown["inbound"]["fetch"].get("password").is_none(),
        "{shown}"
    );

    // Left out: kept.
    let mut changed = fetch.clone();
    changed.as_object_mut().unwrap().remove("password");
    changed["folder"] = json!("Support");
    let patch = json!({"inbound": {"purpose": "ticket", "fetch": changed}});
    let (status, doc) = api(&gw, "PATCH", &path, Some(patch)).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["inbound"]["fetch"]["folder"], "Support");
    assert!(!doc.to_string().contains(PASSWORD), "{doc}");
    let stored = gw.running.store().accounts().get(id).unwrap().unwrap();
    let fetch_stored = stored.inbound.unwrap().fetch.unwrap();
    assert_eq!(fetch_stored.password.as_deref(), Some(PASSWORD));
    let (_, audit) = api(&gw, "GET", "/api/v1/audit", None).await;
    assert!(!audit.to_string().contains(PASSWORD), "{audit}");

    // Another server (or login) needs the password again: never sent where it was not given.
    changed["host"] = json!("localhost");
    let patch = json!({"inbound": {"purpose": "ticket", "fetch": changed}});
    let (status, doc) = api(&gw, "PATCH", &path, Some(patch)).await;
    assert_eq!(status, 422, "{doc}");
    assert_eq!(doc["errors"][0]["field"], "inbound.fetch.password", "{doc}");
    changed["password"] = json!("another-password");
    let patch = json!({"inbound": {"purpose": "ticket", "fetch": changed}});
    let (status, doc) = api(&gw, "PATCH", &path, Some(patch)).await;
    assert_eq!(status, 200, "{doc}");
    assert!(!doc.to_string().contains("another-password"), "{doc}");
    gw.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_whose_server_is_down_shows_failing_with_its_error() {
    let gw = Gateway::start(|_| {}).await;
    let id = mailbox(&gw, "desk", imap()).await;
    let path = format!("/api/v1/accounts/{id}/fetch");
    let mut last = Value::Null;
    eventually(10, "the fetch turns failing", async || {
        let (status, doc) = api(&gw, "GET", &path, None).await;
        assert_eq!(status, 200, "{doc}");
        last = doc;
        last["state"] == "failing"
    })
    .await;
    assert!(
        last["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{last}"
    );
    assert_eq!(last["set_aside"], json!([]), "{last}");
    assert!(last["since"].as_u64().is_some(), "{last}");
    assert_eq!(last["messages"], 0, "{last}");
    let (status, view) = api(&gw, "GET", &format!("/api/v1/accounts/{id}/status"), None).await;
    assert_eq!(status, 200, "{view}");
    assert!(view["fetch"]["state"].is_string(), "{view}");

    // An account that fetches nothing: 404, and no `fetch` in its status.
    let plain = mailbox_without_fetch(&gw).await;
    let (status, doc) = api(&gw, "GET", &format!("/api/v1/accounts/{plain}/fetch"), None).await;
    assert_eq!(status, 404, "{doc}");
    let (_, view) = api(
        &gw,
        "GET",
        &format!("/api/v1/accounts/{plain}/status"),
        None,
    )
    .await;
    assert!(view.get("fetch").is_none(), "{view}");
    let (status, _) = api(&gw, "GET", "/api/v1/accounts/999/fetch", None).await;
    assert_eq!(status, 404);
    // The document describes it.
    let (_, doc) = api(&gw, "GET", "/api/v1/openapi.json", None).await;
    assert!(doc["paths"]["/api/v1/accounts/{id}/fetch"].is_object());
    gw.running.shutdown().await;
}

async fn mailbox_without_fetch(gw: &Gateway) -> u64 {
    let body = json!({"name": "plain", "address": "plain@help.example", "inbound": {}});
    let (status, body) = api(gw, "POST", "/api/v1/accounts", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_u64().unwrap()
}

/// Sets message `key` aside in account `id`'s stored fetch state, as a fetcher would.
fn set_aside(gw: &Gateway, id: u64, key: &str) {
    let store = gw.running.store();
    let account = store.accounts().get(id).unwrap().unwrap();
    let fetch = account.inbound.unwrap().fetch.unwrap();
    let state = FetchState {
        source: fetch.source(),
        uidvalidity: 7,
        last_uid: 42,
        set_aside: vec![SetAside {
            key: key.into(),
            reason: "no header block".into(),
            attempts: 2,
            since: 1_796_517_000,
            next_try: 1_796_517_180,
            move_to: None,
        }],
        ..FetchState::default()
    };
    store.fetch_states().put(id, &state).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_and_move_requests_are_recorded_for_the_fetcher() {
    let gw = Gateway::start(|_| {}).await;
    let id = mailbox(&gw, "desk", imap()).await;
    set_aside(&gw, id, "41");
    let base = format!("/api/v1/accounts/{id}/fetch");
    let (status, view) = api(&gw, "GET", &base, None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (&view["uidvalidity"], &view["last_uid"]),
        (&json!(7), &json!(42))
    );
    assert_eq!(view["set_aside"][0]["key"], "41", "{view}");
    assert_eq!(view["set_aside"][0]["reason"], "no header block", "{view}");
    assert_eq!(view["set_aside"][0]["attempts"], 2, "{view}");

    let retry = format!("{base}/set_aside/41/retry");
    let (status, doc) = api(&gw, "POST", &retry, None).await;
    assert_eq!(status, 202, "{doc}");
    let requests = gw.running.store().fetch_states().requests(id).unwrap();
    assert_eq!(requests, vec![("41".to_string(), SetAsideRequest::Retry)]);
    let (_, view) = api(&gw, "GET", &base, None).await;
    assert_eq!(view["set_aside"][0]["requested"]["action"], "retry");

    let moved = format!("{base}/set_aside/41/move");
    let (status, doc) = api(&gw, "POST", &moved, Some(json!({"folder": "Junk"}))).await;
    assert_eq!(status, 202, "{doc}");
    let requests = gw.running.store().fetch_states().requests(id).unwrap();
    let expected = SetAsideRequest::Move {
        folder: "Junk".into(),
    };
    assert_eq!(requests, vec![("41".to_string(), expected)]);
    let (_, audit) = api(&gw, "GET", "/api/v1/audit?action=account.fetch.move", None).await;
    assert_eq!(
        audit[0]["target"],
        format!("account/{id}/fetch/41"),
        "{audit}"
    );

    // Refused: a bad folder, an unknown key, an unknown account, an account without fetch.
    let (status, doc) = api(&gw, "POST", &moved, Some(json!({"folder": ""}))).await;
    assert_eq!(
        (status, &doc["errors"][0]["field"]),
        (422, &json!("folder"))
    );
    let unknown = format!("{base}/set_aside/99/retry");
    assert_eq!(api(&gw, "POST", &unknown, None).await.0, 404);
    let nobody = "/api/v1/accounts/999/fetch/set_aside/41/retry";
    assert_eq!(api(&gw, "POST", nobody, None).await.0, 404);
    let plain = mailbox_without_fetch(&gw).await;
    let none = format!("/api/v1/accounts/{plain}/fetch/set_aside/41/retry");
    assert_eq!(api(&gw, "POST", &none, None).await.0, 404);

    // POP3 has no folders to move to.
    let mut pop3 = imap();
    pop3["kind"] = json!("pop3");
    let pop = mailbox(&gw, "pop", pop3).await;
    set_aside(&gw, pop, "uidl-1");
    let path = format!("/api/v1/accounts/{pop}/fetch/set_aside/uidl-1/move");
    let (status, doc) = api(&gw, "POST", &path, Some(json!({"folder": "Junk"}))).await;
    assert_eq!(status, 422, "{doc}");
    let path = format!("/api/v1/accounts/{pop}/fetch/set_aside/uidl-1/retry");
    assert_eq!(api(&gw, "POST", &path, None).await.0, 202);
    gw.running.shutdown().await;
}

/// With a real server (Dovecot): a message set aside by the fetcher is tried again when
/// asked (and set aside again, one attempt more), then moved to a folder at the server
/// when asked, and forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_aside_message_is_retried_and_moved_at_the_server() {
    const DESK: &str = "desk@help.example";
    let mut dovecot = Dovecot::new(&[(DESK, PASSWORD)], &["Junk"]);
    tokio::task::block_in_place(|| dovecot.start());
    let gw = Gateway::start(|_| {}).await;
    let fetch = json!({"kind": "imap", "host": "127.0.0.1", "port": dovecot.imap_port,
        "tls": "none", "username": DESK, "password": PASSWORD, "poll_secs": 1});
    let id = mailbox(&gw, "desk", fetch).await;
    let bad = "From: a@x.example\r\nFrom: b@x.example\r\nSubject: two senders\r\n\r\nx\r\n";
    dovecot.deliver(DESK, "INBOX", bad.as_bytes());
    let path = format!("/api/v1/accounts/{id}/fetch");
    let mut view = Value::Null;
    eventually(15, "the message is set aside", async || {
        view = api(&gw, "GET", &path, None).await.1;
        view["set_aside"].as_array().is_some_and(|s| s.len() == 1)
    })
    .await;
    assert!(
        matches!(view["state"].as_str(), Some("idle" | "polling")),
        "{view}"
    );
    let key = view["set_aside"][0]["key"].as_str().unwrap().to_string();
    assert_eq!(view["set_aside"][0]["attempts"], 1, "{view}");

    let retry = format!("{path}/set_aside/{key}/retry");
    assert_eq!(api(&gw, "POST", &retry, None).await.0, 202);
    eventually(15, "the retry is carried out", async || {
        view = api(&gw, "GET", &path, None).await.1;
        view["set_aside"][0]["attempts"] == 2 && view["set_aside"][0].get("requested").is_none()
    })
    .await;

    let moved = format!("{path}/set_aside/{key}/move");
    let (status, doc) = api(&gw, "POST", &moved, Some(json!({"folder": "Junk"}))).await;
    assert_eq!(status, 202, "{doc}");
    eventually(15, "the message is moved and forgotten", async || {
        view = api(&gw, "GET", &path, None).await.1;
        view["set_aside"] == json!([]) && dovecot.messages(DESK, "Junk").len() == 1
    })
    .await;
    assert!(dovecot.messages(DESK, "INBOX").is_empty());
    assert!(gw
        .running
        .store()
        .fetch_states()
        .requests(id)
        .unwrap()
        .is_empty());
    gw.running.shutdown().await;
}
