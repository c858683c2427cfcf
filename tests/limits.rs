//! Sending limits (issue 27, part 3): a message that meets a limit of its upstream or
//! account waits in the worker — not bounced, no attempt counted, the reason in
//! `GET /api/v1/queue` and `postern_queue_waiting` — and leaves as soon as the limit
//! allows; a message with more recipients than a transaction may carry goes in several
//! (same bytes, each recipient once); a provider's throttling reply pauses the account and
//! the message waits again instead of following the retry schedule.
//!
//! The minute and the day windows are tested in the limiter's unit tests with explicit
//! instants; here nothing waits for a minute.

mod common;

use common::upstream::{FakeUpstream, Script};
use common::{http, sink_upstream, Client, Gateway, TOKEN};
use postern::config::{SendLimits, UpstreamConfig, UpstreamLimits};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const ALICE: &str = "alice@example.com";

/// A gateway whose default upstream `sink` (at `port`) has these limits per account.
async fn gateway(port: u16, per_account: SendLimits, retry_secs: u64) -> Gateway {
    let gw = Gateway::start(move |c| {
        let mut sink = sink_upstream(port);
        if let UpstreamConfig::Smtp(smtp) = &mut sink {
            smtp.limits = Some(UpstreamLimits {
                per_account,
                per_upstream: SendLimits::default(),
            });
        }
        c.upstreams.insert("sink".into(), sink);
        c.default_upstream = "sink".into();
        c.queue.retry_intervals_secs = vec![retry_secs];
    })
    .await;
    gw.create_user(ALICE, "staff", "alice-password").await;
    gw
}

/// Submits `count` messages from alice in one session, each to `rcpts`.
async fn submit(gw: &Gateway, count: usize, rcpts: &[&str]) {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login(ALICE, "alice-password").await;
    for n in 0..count {
        c.expect(&format!("MAIL FROM:<{ALICE}>"), 250).await;
        for rcpt in rcpts {
            c.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
        }
        c.expect("DATA", 354).await;
        let text = format!(
            "From: <{ALICE}>\r\nMessage-ID: <limits-{n}@example.com>\r\nSubject: n{n}\r\n\r\nbody\r\n"
        );
        c.send(text.as_bytes()).await;
        c.expect(".", 250).await;
    }
    c.expect("QUIT", 221).await;
}

async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn queue(gw: &Gateway) -> Vec<Value> {
    let (status, text) = http(gw.running.api, "GET", "/api/v1/queue", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// A TCP relay in front of `target` that counts the connections open at once.
async fn counting_proxy(target: SocketAddr) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen = most.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (open, most) = (open.clone(), most.clone());
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_at_most_for_the_account() {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        slow_data: Some(Duration::from_millis(200)),
        ..Script::default()
    })
    .await;
    let (port, most) = counting_proxy(upstream.addr).await;
    let limits = SendLimits {
        connections: Some(2),
        ..SendLimits::default()
    };
    let gw = gateway(port, limits, 3600).await;
    submit(&gw, 10, &["bob@example.net"]).await;
    wait_for("ten deliveries", 10, || {
        upstream.record().messages.len() == 10
    })
    .await;
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 2, "{most} sessions at once");
    assert_eq!(
        gw.metric("postern_deliveries_total{outcome=\"delivered\"}")
            .await,
        10.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_minute_limit_mail_waits_visibly_and_is_not_bounced() {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let limits = SendLimits {
        messages_per_minute: Some(3),
        ..SendLimits::default()
    };
    let gw = gateway(upstream.addr.port(), limits, 1).await;
    submit(&gw, 5, &["bob@example.net"]).await;
    wait_for("three deliveries", 10, || {
        upstream.record().messages.len() == 3
    })
    .await;
    let mut waiting = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while waiting.len() < 2 && Instant::now() < deadline {
        waiting = queue(&gw).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    for message in &waiting {
        assert_eq!(
            message["waiting"], "waiting: 3 messages/minute for alice@example.com",
            "{message}"
        );
        assert_eq!(message["attempts"], 0, "{message}");
    }
    assert_eq!(
        gw.metric("postern_queue_waiting{reason_kind=\"messages_per_minute\"}")
            .await,
        2.0
    );
    // well past the retry interval: still waiting, still not tried, nothing bounced
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(upstream.record().messages.len(), 3);
    assert_eq!(upstream.record().data_attempts, 3);
    assert_eq!(queue(&gw).await.len(), 2);
    for outcome in ["bounced", "deferred"] {
        let series = format!("postern_deliveries_total{{outcome=\"{outcome}\"}}");
        assert_eq!(gw.metric(&series).await, 0.0, "{outcome}");
    }
    assert_eq!(gw.metric("postern_dsn_sent_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_recipients_per_message_goes_in_several_transactions() {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let limits = SendLimits {
        recipients_per_message: Some(2),
        ..SendLimits::default()
    };
    let gw = gateway(upstream.addr.port(), limits, 3600).await;
    let rcpts = [
        "r1@example.net",
        "r2@example.net",
        "r3@example.net",
        "r4@example.net",
        "r5@example.net",
    ];
    submit(&gw, 1, &rcpts).await;
    wait_for("three transactions", 10, || {
        upstream.record().messages.len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let messages = upstream.record().messages.clone();
    assert_eq!(messages.len(), 3, "no fourth transaction");
    let sizes: Vec<usize> = messages.iter().map(|m| m.rcpts.len()).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    let mut all: Vec<String> = messages.iter().flat_map(|m| m.rcpts.clone()).collect();
    all.sort();
    assert_eq!(all, rcpts.map(String::from).to_vec(), "each recipient once");
    assert!(messages.iter().all(|m| m.data == messages[0].data));
    let text = String::from_utf8_lossy(&messages[0].data);
    assert!(
        text.contains("Message-ID: <limits-0@example.com>"),
        "{text}"
    );
    assert_eq!(
        gw.metric("postern_deliveries_total{outcome=\"delivered\"}")
            .await,
        5.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_reply_pauses_the_account_and_the_message_waits_again() {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        tempfail_first: 1,
        tempfail_reply: Some(
            "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded".into(),
        ),
        ..Script::default()
    })
    .await;
    // The first pause is the first retry interval when shorter than 60 s: 2 s here.
    let gw = gateway(upstream.addr.port(), SendLimits::default(), 2).await;
    submit(&gw, 1, &["bob@example.net"]).await;
    wait_for("the throttled attempt", 10, || {
        upstream.record().data_attempts == 1
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = Value::Null;
    while Instant::now() < deadline {
        if let Some(message) = queue(&gw).await.pop() {
            if message["waiting"].is_string() {
                seen = message;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reason = seen["waiting"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("waiting: throttled by the provider for alice@example.com (432 4.3.2"),
        "{seen}"
    );
    assert_eq!(seen["attempts"], 0, "{seen}");
    wait_for("delivery after the pause", 10, || {
        upstream.record().messages.len() == 1
    })
    .await;
    assert_eq!(upstream.record().data_attempts, 2);
    for outcome in ["bounced", "deferred"] {
        let series = format!("postern_deliveries_total{{outcome=\"{outcome}\"}}");
        assert_eq!(gw.metric(&series).await, 0.0, "{outcome}");
    }
    assert_eq!(
        gw.metric("postern_queue_waiting{reason_kind=\"throttled\"}")
            .await,
        0.0
    );
}
