//! The `graph` upstream end to end: a gateway delivers through a faithful Microsoft Graph
//! in the test (`common::graph`). Graph delivers to exactly the envelope's recipients
//! (those the header does not name as Bcc, header addresses outside the envelope left
//! out); throttling defers with Graph's `Retry-After`; a send-as refusal makes the account
//! failing and keeps the message queued; a message too big for one request is refused at
//! `MAIL FROM … SIZE=` and at the end of the data; a `sendMail` that timed out after Graph
//! had sent the message is not sent twice, and one that had not is sent again.

mod common;

use common::graph::{FakeGraph, Mode};
use common::helpdesk::api;
use common::{Client, Gateway};
use postern::config::UpstreamConfig;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DESK: &str = "desk@corp.example";
const SUPPORT: &str = "support@corp.example";

/// A gateway with upstream `graph` (the fake's settings plus `extra`) and the account
/// support@corp.example on it, which the staff user DESK may send as; its account id.
async fn gateway(graph: &FakeGraph, extra: &str) -> (Gateway, u64) {
    let upstream: UpstreamConfig = toml::from_str(&graph.settings(extra)).unwrap();
    let gw = Gateway::start(move |c| {
        c.upstreams.insert("graph".into(), upstream);
        c.queue.retry_intervals_secs = vec![1];
    })
    .await;
    gw.create_user(DESK, "staff", "desk-password-1").await;
    let body = json!({"name": "support", "address": SUPPORT, "upstream": "graph",
        "scope": {"kind": "all_staff"}, "default_send_mode": "send_as"});
    let (status, account) = api(&gw, "POST", "/api/v1/accounts", Some(body)).await;
    assert_eq!(status, 201, "{account}");
    let id = account["id"].as_u64().unwrap();
    (gw, id)
}

/// An authenticated session of DESK.
async fn session(gw: &Gateway) -> Client {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login(DESK, "desk-password-1").await;
    c
}

/// SUPPORT sends a message with header `To: to` to the envelope recipients `rcpts`.
async fn send(gw: &Gateway, rcpts: &[&str], to: &str) {
    let mut c = session(gw).await;
    c.expect(&format!("MAIL FROM:<{SUPPORT}>"), 250).await;
    for rcpt in rcpts {
        c.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
    }
    c.expect("DATA", 354).await;
    let text = format!(
        "From: Support <{SUPPORT}>\r\nTo: {to}\r\nSubject: via Graph\r\n\r\nhello\r\n.\r\n"
    );
    c.send(text.as_bytes()).await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn queue(gw: &Gateway) -> Vec<Value> {
    let (_, queue) = api(gw, "GET", "/api/v1/queue", None).await;
    queue.as_array().cloned().unwrap_or_default()
}

async fn queue_empty(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let queued = queue(gw).await;
        if queued.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "still queued: {queued:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_delivers_to_exactly_the_envelope_recipients() {
    let graph = FakeGraph::start().await;
    let (gw, _) = gateway(&graph, "").await;
    send(
        &gw,
        &["a@example.net", "b@example.net"],
        "a@example.net, C <c@example.net>",
    )
    .await;
    wait_for("sent", || graph.sent().len() == 1).await;
    let sent = &graph.sent()[0];
    assert_eq!(sent.mailbox, SUPPORT, "sent from the account's mailbox");
    assert_eq!(sent.recipients(), vec!["a@example.net", "b@example.net"]);
    assert_eq!(sent.to, vec!["a@example.net"], "c@ is not in the envelope");
    assert_eq!(sent.bcc, vec!["b@example.net"], "b@ only in the envelope");
    let mime = String::from_utf8_lossy(&sent.mime);
    assert!(mime.contains("\r\n\r\nhello\r\n"), "{mime}");
    queue_empty(&gw).await;
    assert_eq!(graph.lock().token_requests, 1);
    assert_eq!(
        graph.lock().lookups,
        0,
        "no Sent Items lookup without a timeout"
    );

    // The API shows the upstream without its secret, and takes a new one.
    let (_, listed) = common::http(
        gw.running.api,
        "GET",
        "/api/v1/upstreams",
        Some(common::TOKEN),
        None,
    )
    .await;
    assert!(
        listed.contains("\"graph\"") && !listed.contains("app-secret"),
        "{listed}"
    );
    let body = json!({"name": "graph2", "kind": "graph", "tenant": "t", "client_id": "c",
        "client_secret": "s3cret", "graph_url": format!("http://{}/v1.0", graph.addr)});
    let (status, created) = api(&gw, "POST", "/api/v1/upstreams", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["client_secret"], "[redacted]");
    assert_eq!(created["save_to_sent_items"], true);
    let body = json!({"name": "graph3", "kind": "graph", "tenant": "t", "client_id": "c",
        "client_secret": "s", "graph_url": "http://graph.example/v1.0"});
    let (status, problem) = api(&gw, "POST", "/api/v1/upstreams", Some(body)).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem.to_string().contains("graph_url"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_pauses_the_mailbox_for_as_long_as_graph_asks() {
    let graph = FakeGraph::start().await;
    graph.lock().next.push_back(Mode::Throttle(1));
    let (gw, _) = gateway(&graph, "").await;
    send(&gw, &["a@example.net"], "a@example.net").await;
    // Graph's 429 pauses the mailbox for its Retry-After: the message waits with the
    // reason (not deferred to the retry schedule, no attempt counted), then leaves.
    let deadline = Instant::now() + Duration::from_secs(10);
    let waiting = loop {
        let queued = queue(&gw).await;
        let waiting = queued.first().and_then(|m| {
            m["waiting"]
                .as_str()
                .map(|w| (w.to_string(), m["attempts"].clone()))
        });
        if let Some(waiting) = waiting {
            break waiting;
        }
        assert!(Instant::now() < deadline, "never waited: {queued:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        waiting.0.contains("throttled") && waiting.0.contains("429"),
        "{waiting:?}"
    );
    assert!(waiting.0.contains("ApplicationThrottled"), "{waiting:?}");
    assert_eq!(waiting.1, 0, "{waiting:?}");
    wait_for("sent after the wait", || graph.sent().len() == 1).await;
    assert_eq!(graph.lock().posts, 2);
    queue_empty(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_as_denied_makes_the_account_failing_and_keeps_the_message() {
    let graph = FakeGraph::start().await;
    graph.lock().mode = Mode::SendAsDenied;
    let (gw, account) = gateway(&graph, "").await;
    send(&gw, &["a@example.net"], "a@example.net").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, status) = api(
            &gw,
            "GET",
            &format!("/api/v1/accounts/{account}/status"),
            None,
        )
        .await;
        let queued = queue(&gw).await;
        let attempts = queued
            .first()
            .and_then(|m| m["attempts"].as_u64())
            .unwrap_or(0);
        if status["health"] == "failing" && attempts >= 2 {
            assert!(status.to_string().contains("ErrorSendAsDenied"), "{status}");
            assert_eq!(
                queued[0]["recipients"][0]["status"], "pending",
                "{queued:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never failing and held: {status} {queued:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(graph.sent().is_empty());
    // Granted Send As: the message leaves, the account is healthy again.
    graph.lock().mode = Mode::Accept;
    wait_for("sent once allowed", || graph.sent().len() == 1).await;
    queue_empty(&gw).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, status) = api(
            &gw,
            "GET",
            &format!("/api/v1/accounts/{account}/status"),
            None,
        )
        .await;
        if status["health"] == "healthy" {
            break;
        }
        assert!(Instant::now() < deadline, "never healthy again: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_big_for_one_request_is_refused_while_the_client_is_there() {
    let graph = FakeGraph::start().await;
    let (gw, _) = gateway(&graph, "").await;
    let mut c = session(&gw).await;
    let refused = c.cmd(&format!("MAIL FROM:<{SUPPORT}> SIZE=4000000")).await;
    assert_eq!(refused.code, 552, "{refused:?}");
    assert!(
        refused.text.contains(&format!("5.3.4 Message too big for <{SUPPORT}>'s upstream (Microsoft Graph takes at most 3080192 octets)")),
        "{refused:?}"
    );
    // The same size through an account without such a limit is fine.
    c.expect(&format!("MAIL FROM:<{DESK}> SIZE=4000000"), 250)
        .await;
    c.expect("RSET", 250).await;
    // Without SIZE, the end of the data refuses it.
    c.expect(&format!("MAIL FROM:<{SUPPORT}> SIZE=1000"), 250)
        .await;
    c.expect("RCPT TO:<a@example.net>", 250).await;
    c.expect("DATA", 354).await;
    let mut text = format!("From: {SUPPORT}\r\nTo: a@example.net\r\nSubject: big\r\n\r\n");
    let line = format!("{}\r\n", "x".repeat(76));
    while text.len() < 3_200_000 {
        text.push_str(&line);
    }
    text.push_str(".\r\n");
    c.send(text.as_bytes()).await;
    let reply = c.reply().await;
    assert_eq!(reply.code, 552, "{reply:?}");
    assert!(
        reply.text.contains("Microsoft Graph takes at most"),
        "{reply:?}"
    );
    c.expect("QUIT", 221).await;
    assert!(queue(&gw).await.is_empty() && graph.lock().posts == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_send_is_looked_up_in_sent_items_before_it_is_sent_again() {
    let graph = FakeGraph::start().await;
    // Sent, but the 202 comes after the gateway gave up.
    graph
        .lock()
        .next
        .push_back(Mode::SlowAfterSave(Duration::from_millis(2500)));
    let (gw, _) = gateway(&graph, "timeout_secs = 1\n").await;
    send(&gw, &["a@example.net"], "a@example.net").await;
    queue_empty(&gw).await;
    let (posts, lookups, sent) = {
        let g = graph.lock();
        (g.posts, g.lookups, g.sent.len())
    };
    assert_eq!((posts, sent), (1, 1), "not sent twice");
    assert!(lookups >= 1, "Sent Items asked before sending again");

    // Not sent (the request was lost): the lookup finds nothing, so it is sent again.
    graph
        .lock()
        .next
        .push_back(Mode::SlowWithoutSave(Duration::from_millis(2500)));
    send(&gw, &["b@example.net"], "b@example.net").await;
    wait_for("sent again", || graph.sent().len() == 2).await;
    queue_empty(&gw).await;
    let g = graph.lock();
    assert_eq!(g.posts, 3);
    assert_eq!(g.sent[1].recipients(), vec!["b@example.net"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_graph_refuses_bounces_with_graphs_words() {
    let graph = FakeGraph::start().await;
    graph.lock().mode = Mode::TooLarge;
    let (gw, _) = gateway(&graph, "").await;
    send(&gw, &["a@example.net"], "a@example.net").await;
    let dsn = gw.wait_outbox(1).await;
    assert_eq!(dsn.len(), 1, "one DSN to the sender");
    let text = String::from_utf8_lossy(&dsn[0]);
    assert!(
        text.contains(&format!("To: <{SUPPORT}>")) || text.contains(SUPPORT),
        "{text}"
    );
    assert!(
        text.contains("HTTP 413") && text.contains("RequestEntityTooLarge"),
        "{text}"
    );
    assert_eq!(graph.lock().posts, 1, "not tried again");
    queue_empty(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_graph_no_longer_takes_is_forgotten() {
    let graph = FakeGraph::start().await;
    let (gw, _) = gateway(&graph, "").await;
    send(&gw, &["a@example.net"], "a@example.net").await;
    wait_for("first sent", || graph.sent().len() == 1).await;
    // Revoked: the cached token gets 401, and the next attempt fetches a new one.
    graph.lock().tokens.clear();
    send(&gw, &["b@example.net"], "b@example.net").await;
    wait_for("sent with a new token", || graph.sent().len() == 2).await;
    let g = graph.lock();
    assert_eq!((g.token_requests, g.posts), (2, 3));
}
