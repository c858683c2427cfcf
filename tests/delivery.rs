//! Delivery through an SMTP upstream: retry after a 4xx, a DSN after a 5xx, and no DSN
//! for the null sender.

mod common;

use common::upstream::{FakeUpstream, Script};
use common::{Client, Gateway};
use std::time::{Duration, Instant};

async fn gateway_to(upstream: &FakeUpstream) -> Gateway {
    let port = upstream.addr.port();
    let gw = Gateway::start(move |c| {
        c.upstreams
            .insert("sink".into(), common::sink_upstream(port));
        c.default_upstream = "sink".into();
        c.queue.retry_intervals_secs = vec![1];
    })
    .await;
    gw.create_user("alice@example.com", "staff", "alice-password")
        .await;
    gw
}

async fn submit(gw: &Gateway, from: &str, rcpts: &[&str], subject: &str) {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("alice@example.com", "alice-password").await;
    c.expect(&format!("MAIL FROM:<{from}>"), 250).await;
    for rcpt in rcpts {
        c.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
    }
    c.expect("DATA", 354).await;
    c.send(format!("From: <alice@example.com>\r\nSubject: {subject}\r\n\r\nbody\r\n").as_bytes())
        .await;
    c.expect(".", 250).await;
    c.expect("QUIT", 221).await;
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_retried_until_delivered() {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        tempfail_first: 1,
        ..Script::default()
    })
    .await;
    let gw = gateway_to(&upstream).await;
    submit(&gw, "alice@example.com", &["bob@example.net"], "retry me").await;
    wait_for("delivery on the second attempt", || {
        upstream.record().messages.len() == 1
    })
    .await;
    assert_eq!(upstream.record().data_attempts, 2);
    let msg = upstream.record().messages[0].clone();
    assert_eq!(msg.mail_from, "alice@example.com");
    assert_eq!(msg.rcpts, vec!["bob@example.net".to_string()]);
    assert!(String::from_utf8_lossy(&msg.data).contains("Subject: retry me\r\n"));
    assert_eq!(
        gw.metric("postern_deliveries_total{outcome=\"deferred\"}")
            .await,
        1.0
    );
    assert_eq!(
        gw.metric("postern_deliveries_total{outcome=\"delivered\"}")
            .await,
        1.0
    );
    assert_eq!(gw.metric("postern_dsn_sent_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_bounces_with_a_dsn_to_the_sender() {
    let script = Script {
        pipelining: true,
        rcpt_replies: vec![("nobody@example.net".into(), "550 5.1.1 no such user".into())],
        ..Script::default()
    };
    let upstream = FakeUpstream::start(script).await;
    let gw = gateway_to(&upstream).await;
    submit(
        &gw,
        "alice@example.com",
        &["bob@example.net", "nobody@example.net"],
        "half bounce",
    )
    .await;
    wait_for("the message and the DSN", || {
        upstream.record().messages.len() == 2
    })
    .await;
    let record = upstream.record();
    let delivered = record
        .messages
        .iter()
        .find(|m| m.mail_from == "alice@example.com")
        .expect("original");
    assert_eq!(delivered.rcpts, vec!["bob@example.net".to_string()]);
    let dsn = record
        .messages
        .iter()
        .find(|m| m.mail_from.is_empty())
        .expect("DSN with null sender");
    assert_eq!(dsn.rcpts, vec!["alice@example.com".to_string()]);
    let text = String::from_utf8_lossy(&dsn.data);
    assert!(
        text.contains("Content-Type: multipart/report; report-type=delivery-status"),
        "{text}"
    );
    assert!(
        text.contains("Final-Recipient: rfc822; nobody@example.net"),
        "{text}"
    );
    assert!(text.contains("Status: 5.1.1"), "{text}");
    assert!(
        text.contains("Subject: half bounce"),
        "original headers are returned: {text}"
    );
    assert!(!text.contains("Final-Recipient: rfc822; bob@example.net"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dsn_for_the_null_sender() {
    let script = Script {
        pipelining: true,
        rcpt_replies: vec![("nobody@example.net".into(), "550 5.1.1 no such user".into())],
        ..Script::default()
    };
    let upstream = FakeUpstream::start(script).await;
    let gw = gateway_to(&upstream).await;
    submit(&gw, "", &["nobody@example.net"], "bounce of a bounce").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while gw
        .metric("postern_deliveries_total{outcome=\"bounced\"}")
        .await
        < 1.0
    {
        assert!(Instant::now() < deadline, "no bounce recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gw.metric("postern_dsn_sent_total").await, 0.0);
    assert!(upstream.record().messages.is_empty());
}
