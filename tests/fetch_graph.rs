//! Fetching a Microsoft 365 helpdesk mailbox through Microsoft Graph (delta queries) from
//! the fake Graph (`common::graph`): a new message becomes one ticket and is moved to
//! `Processed`; a folder read over several delta pages; a restart continues from the delta
//! link and makes no second ticket; an expired delta link reads the folder again without
//! duplicates; a blocked sender's message ends in `Blocked` with no ticket; a message that
//! cannot be read is set aside and the one after it still becomes a ticket; a message
//! recorded whose move failed is moved by the next session without being taken again;
//! throttling is waited out; a refused permission makes the account failing until granted.

mod common;

use common::graph::FakeGraph;
use common::helpdesk::{api, tickets, user};
use common::Gateway;
use postern::config::UpstreamConfig;
use postern::store::SetAsideRequest;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DESK: &str = "helpdesk@contoso.example";

/// The helpdesk mailbox's inbound settings, fetching with `after`.
fn inbound(after: Value) -> Value {
    let mut fetch = json!({"kind": "graph", "poll_secs": 1});
    for (k, v) in after.as_object().unwrap() {
        fetch[k] = v.clone();
    }
    json!({"auto_create_requesters": true, "default_group": "customers", "fetch": fetch})
}

fn moving() -> Value {
    json!({"after": "move", "move_to": "Processed"})
}

/// A gateway whose upstream `graph` is the fake, with the group `customers`.
async fn gateway(graph: &FakeGraph) -> Gateway {
    common::logs::capture();
    let upstream: UpstreamConfig = toml::from_str(&graph.settings("")).unwrap();
    let gw = Gateway::start(move |c| {
        c.upstreams.insert("graph".into(), upstream);
    })
    .await;
    let body = json!({"name": "customers"});
    let (status, body) = api(&gw, "POST", "/api/v1/groups", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    gw
}

/// The helpdesk mailbox DESK on upstream `graph`, fetched with `after`; its id.
async fn desk(gw: &Gateway, after: Value) -> u64 {
    let body = json!({"name": "Helpdesk", "address": DESK, "upstream": "graph",
        "inbound": inbound(after)});
    let (status, body) = api(gw, "POST", "/api/v1/accounts", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_u64().unwrap()
}

fn message(from: &str, subject: &str) -> String {
    format!(
        "Return-Path: <{from}>\r\nFrom: {from}\r\nTo: {DESK}\r\nSubject: {subject}\r\nMessage-ID: <{}@mail.example>\r\n\r\nPlease help.\r\n",
        subject.replace(' ', "-")
    )
}

async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        if Instant::now() > deadline {
            let lines = common::logs::capture().lines();
            let fetching: Vec<&String> = lines
                .iter()
                .filter(|l| l.contains("fetch") || l.contains(" WARN ") || l.contains(" ERROR "))
                .collect();
            panic!("never: {what}; the fetcher's log: {fetching:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn subjects(gw: &Gateway) -> Vec<String> {
    let mut all: Vec<String> = tickets(gw)
        .await
        .iter()
        .map(|t| t["subject"].as_str().unwrap_or("").to_string())
        .collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_message_becomes_one_ticket_and_is_moved_to_processed() {
    let graph = FakeGraph::start().await;
    let gw = gateway(&graph).await;
    desk(&gw, moving()).await;
    let id = graph.add_message(DESK, &message("ann@customer.example", "printer on fire"));
    eventually("a ticket", async || {
        subjects(&gw).await == ["printer on fire"]
    })
    .await;
    eventually("moved to Processed", async || {
        graph.messages_in(DESK, "Processed").len() == 1
    })
    .await;
    assert!(graph.messages_in(DESK, "Inbox").is_empty());
    assert!(user(&gw, "ann@customer.example").await.is_some());
    // Later looks neither fetch it again nor make a second ticket.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(graph.lock().mail.downloads.get(&id), Some(&1));
    assert_eq!(tickets(&gw).await.len(), 1);
    let g = graph.lock();
    assert!(g.mail.deltas.len() >= 2, "{:?}", g.mail.deltas);
    assert!(
        g.mail.deltas[1].contains("$deltatoken="),
        "{:?}",
        g.mail.deltas
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_read_before_the_first_fetch_are_the_mailboxs_history() {
    let graph = FakeGraph::start().await;
    graph.add_old_read_message(DESK, &message("old@customer.example", "read long ago"));
    graph.add_message(DESK, &message("ann@customer.example", "unread one"));
    let gw = gateway(&graph).await;
    desk(&gw, moving()).await;
    eventually("a ticket", async || subjects(&gw).await == ["unread one"]).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(subjects(&gw).await, ["unread one"]);
    assert_eq!(graph.messages_in(DESK, "Inbox").len(), 1, "history stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_is_read_over_several_delta_pages() {
    let graph = FakeGraph::start().await;
    graph.lock().mail.page_size = 2;
    for n in 1..=5 {
        graph.add_message(
            DESK,
            &message("bob@customer.example", &format!("question {n}")),
        );
    }
    let gw = gateway(&graph).await;
    desk(&gw, moving()).await;
    eventually("five tickets", async || tickets(&gw).await.len() == 5).await;
    eventually("all moved", async || {
        graph.messages_in(DESK, "Processed").len() == 5
    })
    .await;
    let expected: Vec<String> = (1..=5).map(|n| format!("question {n}")).collect();
    assert_eq!(subjects(&gw).await, expected);
    let deltas = graph.lock().mail.deltas.clone();
    let pages = deltas.iter().filter(|q| q.contains("$skiptoken=")).count();
    assert!(pages >= 2, "{deltas:?}");
    // More arriving later come through the delta link.
    graph.add_message(DESK, &message("bob@customer.example", "question 6"));
    eventually("the sixth ticket", async || tickets(&gw).await.len() == 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_continues_from_the_delta_link_without_a_second_ticket() {
    let graph = FakeGraph::start().await;
    let gw = gateway(&graph).await;
    // Marked read and left in the Inbox: fetched again, it would be found again.
    desk(&gw, json!({"after": "seen"})).await;
    let first = graph.add_message(DESK, &message("cy@customer.example", "first"));
    eventually("the first ticket", async || tickets(&gw).await.len() == 1).await;
    eventually("marked read", async || {
        graph.messages_in(DESK, "Inbox").iter().all(|m| m.is_read)
    })
    .await;
    // The change of our own marking comes back once and is passed over.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(graph.lock().mail.downloads.get(&first), Some(&1));

    let Gateway {
        running,
        dir,
        config,
    } = gw;
    running.shutdown().await;
    let asked = graph.lock().mail.deltas.len();
    let running = postern::app::start(config.clone(), Some(common::TOKEN.into()))
        .await
        .expect("gateway restarts");
    let gw = Gateway {
        running,
        dir,
        config,
    };
    graph.add_message(DESK, &message("cy@customer.example", "second"));
    eventually("the second ticket", async || tickets(&gw).await.len() == 2).await;
    assert_eq!(subjects(&gw).await, ["first", "second"]);
    let deltas = graph.lock().mail.deltas.clone();
    assert!(
        deltas[asked].contains("$deltatoken="),
        "the restart read the folder from the start: {deltas:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(tickets(&gw).await.len(), 2);
    // An expired delta link reads the folder from the start: nothing recorded twice.
    graph.lock().mail.expire_deltas();
    graph.add_message(DESK, &message("cy@customer.example", "third"));
    eventually("the third ticket", async || tickets(&gw).await.len() == 3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(subjects(&gw).await, ["first", "second", "third"]);
    assert!(graph.messages_in(DESK, "Inbox").iter().all(|m| m.is_read));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_senders_message_ends_in_blocked_with_no_ticket() {
    let graph = FakeGraph::start().await;
    let gw = gateway(&graph).await;
    let body = json!({"entry": "spam.example", "reason": "complaints"});
    let (status, body) = api(&gw, "POST", "/api/v1/blocklist", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    desk(&gw, moving()).await;
    graph.add_message(DESK, &message("pest@spam.example", "buy now"));
    graph.add_message(DESK, &message("dee@customer.example", "real question"));
    eventually("blocked moved", async || {
        graph.messages_in(DESK, "Blocked").len() == 1
    })
    .await;
    eventually("the other one processed", async || {
        graph.messages_in(DESK, "Processed").len() == 1
    })
    .await;
    let blocked = &graph.messages_in(DESK, "Blocked")[0];
    assert!(String::from_utf8_lossy(&blocked.mime).contains("pest@spam.example"));
    assert_eq!(subjects(&gw).await, ["real question"]);
    assert!(user(&gw, "pest@spam.example").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_message_is_set_aside_and_the_next_one_goes_on() {
    let graph = FakeGraph::start().await;
    let gw = gateway(&graph).await;
    let id = desk(&gw, moving()).await;
    graph.add_message(DESK, "this is not a message at all");
    graph.add_message(DESK, &message("eve@customer.example", "after the bad one"));
    eventually("the good one", async || {
        subjects(&gw).await == ["after the bad one"]
    })
    .await;
    eventually("the good one moved", async || {
        graph.messages_in(DESK, "Processed").len() == 1
    })
    .await;
    let inbox = graph.messages_in(DESK, "Inbox");
    assert_eq!(inbox.len(), 1, "the unreadable one stays");
    let bad = inbox[0].id.clone();
    let states = gw.running.store().fetch_states();
    let state = states.get(id).unwrap().expect("a fetch state");
    assert_eq!(state.set_aside.len(), 1, "{state:?}");
    assert_eq!(
        (state.set_aside[0].key.as_str(), state.set_aside[0].attempts),
        (bad.as_str(), 1)
    );
    assert!(state.unacked.is_empty());
    // Asked to move it away (as the API does), the fetcher moves it and forgets it.
    let request = SetAsideRequest::Move {
        folder: "Quarantine".into(),
    };
    states.request(id, &bad, &request).unwrap();
    eventually("moved to Quarantine", async || {
        graph.messages_in(DESK, "Quarantine").len() == 1
    })
    .await;
    eventually("forgotten", async || {
        let state = states.get(id).unwrap().unwrap();
        state.set_aside.is_empty() && states.requests(id).unwrap().is_empty()
    })
    .await;
    assert_eq!(tickets(&gw).await.len(), 1);
}

async fn health(gw: &Gateway, id: u64) -> Value {
    let (_, status) = api(gw, "GET", &format!("/api/v1/accounts/{id}/status"), None).await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_graph_refuses_makes_the_account_failing_until_allowed_again() {
    let graph = FakeGraph::start().await;
    graph.lock().mail.forbidden = true;
    let gw = gateway(&graph).await;
    let id = desk(&gw, moving()).await;
    graph.add_message(DESK, &message("fay@customer.example", "waiting"));
    eventually("failing", async || {
        health(&gw, id).await["health"] == "failing"
    })
    .await;
    let status = health(&gw, id).await.to_string();
    assert!(
        status.contains("fetch: ") && status.contains("ErrorAccessDenied"),
        "{status}"
    );
    assert!(tickets(&gw).await.is_empty());
    // Granted again: the next session (within the backoff) fetches, the account heals.
    graph.lock().mail.forbidden = false;
    eventually("the ticket", async || tickets(&gw).await.len() == 1).await;
    eventually("healthy", async || {
        health(&gw, id).await["health"] == "healthy"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_graph_no_longer_takes_is_replaced_without_a_failure() {
    let graph = FakeGraph::start().await;
    let gw = gateway(&graph).await;
    let id = desk(&gw, moving()).await;
    graph.add_message(DESK, &message("gus@customer.example", "one"));
    eventually("the first ticket", async || tickets(&gw).await.len() == 1).await;
    // Revoked: the next request is refused, a new token is fetched and used.
    graph.lock().tokens.clear();
    graph.add_message(DESK, &message("gus@customer.example", "two"));
    eventually("the second ticket", async || tickets(&gw).await.len() == 2).await;
    assert_eq!(graph.lock().token_requests, 2);
    assert_ne!(health(&gw, id).await["health"], "failing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_waited_out_as_graph_asks() {
    let graph = FakeGraph::start().await;
    graph.lock().mail.throttled = 3;
    let gw = gateway(&graph).await;
    let id = desk(&gw, moving()).await;
    let started = Instant::now();
    graph.add_message(DESK, &message("hal@customer.example", "slowly"));
    eventually("the ticket", async || tickets(&gw).await.len() == 1).await;
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(graph.lock().mail.throttled, 0);
    // Waited out within the session: never failing.
    assert_ne!(health(&gw, id).await["health"], "failing");
    assert!(common::logs::capture()
        .find(&["Microsoft Graph asks to wait"])
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_recorded_but_not_acknowledged_is_acknowledged_later_once() {
    let graph = FakeGraph::start().await;
    graph.lock().mail.failing_acks = 1;
    let gw = gateway(&graph).await;
    let id = desk(&gw, moving()).await;
    graph.add_message(DESK, &message("ida@customer.example", "recorded first"));
    eventually("the ticket", async || tickets(&gw).await.len() == 1).await;
    // The move failed: the message waits in the state as recorded, unacknowledged, and
    // the next session moves it without taking it again.
    eventually("moved at last", async || {
        graph.messages_in(DESK, "Processed").len() == 1
    })
    .await;
    {
        let g = graph.lock();
        assert_eq!((g.mail.failing_acks, g.mail.acknowledgements), (0, 2));
        assert_eq!(g.mail.downloads.values().sum::<usize>(), 1, "fetched once");
    }
    let state = gw.running.store().fetch_states().get(id).unwrap().unwrap();
    assert!(
        state.unacked.is_empty() && state.set_aside.is_empty(),
        "{state:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(tickets(&gw).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_a_mebibyte_is_fetched_whole() {
    let graph = FakeGraph::start().await;
    let gw = gateway(&graph).await;
    desk(&gw, moving()).await;
    let line = "x".repeat(76);
    let body = vec![line.as_str(); 40_000].join("\r\n");
    let big = message("jo@customer.example", "large attachment").replace("Please help.", &body);
    assert!(big.len() > 2 * 1024 * 1024);
    graph.add_message(DESK, &big);
    eventually("the ticket", async || tickets(&gw).await.len() == 1).await;
    eventually("moved", async || {
        graph.messages_in(DESK, "Processed").len() == 1
    })
    .await;
}
