//! Who a DSN goes to (SPEC §5): the principal that submitted the message, through a system
//! account — never the shared mailbox it was sent as, whose envelope address the upstream
//! saw.

mod common;

use common::helpdesk::api;
use common::upstream::{FakeUpstream, Script};
use common::{sink_upstream, Client, Gateway};
use serde_json::json;
use std::time::{Duration, Instant};

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bob sends as the shared `support@`; its upstream refuses the recipient for good. The
/// DSN goes to bob through the system account's upstream, and nothing reaches `support@`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_submitter_gets_the_dsn_not_the_shared_mailbox() {
    let refusing = FakeUpstream::start(Script {
        pipelining: true,
        rcpt_replies: vec![(
            "customer@example.net".into(),
            "550 5.1.1 no such user".into(),
        )],
        ..Script::default()
    })
    .await;
    let notices = FakeUpstream::start(Script::default()).await;
    let (refusing_port, notices_port) = (refusing.addr.port(), notices.addr.port());
    let gw = Gateway::start(move |c| {
        c.upstreams
            .insert("refusing".into(), sink_upstream(refusing_port));
        c.upstreams
            .insert("notices".into(), sink_upstream(notices_port));
    })
    .await;
    gw.create_user("bob@example.com", "staff", "bob-password-1")
        .await;
    for account in [
        json!({"name": "support", "address": "support@example.com", "upstream": "refusing",
            "scope": {"kind": "all_staff"}, "default_send_mode": "send_as"}),
        json!({"name": "gateway notices", "address": "postmaster@example.com",
            "upstream": "notices", "scope": {"kind": "system"}, "default_send_mode": "send_as"}),
    ] {
        let (status, body) = api(&gw, "POST", "/api/v1/accounts", Some(account)).await;
        assert_eq!(status, 201, "{body}");
    }

    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("bob@example.com", "bob-password-1").await;
    c.expect("MAIL FROM:<support@example.com>", 250).await;
    c.expect("RCPT TO:<customer@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: support@example.com\r\nSubject: your ticket\r\n\r\nhello\r\n")
        .await;
    c.expect(".", 250).await;
    c.expect("QUIT", 221).await;

    until("the DSN at the system account's upstream", || {
        !notices.record().messages.is_empty()
    })
    .await;
    let dsn = notices.record().messages[0].clone();
    assert_eq!(dsn.mail_from, "", "a DSN has the null sender");
    assert_eq!(dsn.rcpts, vec!["bob@example.com".to_string()]);
    let text = String::from_utf8_lossy(&dsn.data);
    assert!(text.contains("To: <bob@example.com>\r\n"), "{text}");
    assert!(
        text.contains("From: Mail Delivery System <postmaster@example.com>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Final-Recipient: rfc822; customer@example.net"),
        "{text}"
    );
    assert!(text.contains("Subject: your ticket"), "{text}");

    // Nothing for support@: not delivered anywhere, not waiting in the queue.
    let (_, queue) = api(&gw, "GET", "/api/v1/queue", None).await;
    assert!(queue_has_no_rcpt(&queue), "{queue}");
    for record in [
        refusing.record().messages.clone(),
        notices.record().messages.clone(),
    ] {
        assert!(
            record
                .iter()
                .all(|m| !m.rcpts.iter().any(|r| r.contains("support@"))),
            "{record:?}"
        );
    }
    assert!(gw.wait_outbox_none().await, "nothing in the maildir outbox");
    assert_eq!(notices.record().messages.len(), 1);
    assert_eq!(gw.metric("postern_dsn_sent_total").await, 1.0);
}

/// True if no queued message is addressed to `support@`.
fn queue_has_no_rcpt(queue: &serde_json::Value) -> bool {
    queue.as_array().into_iter().flatten().all(|m| {
        m["recipients"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|r| r["address"] != "support@example.com")
    })
}
