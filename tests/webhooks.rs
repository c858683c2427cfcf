//! Webhooks of the inbound hook against a real HTTP server in the test: the call is signed
//! (HMAC-SHA256 of the body, checked here with the hmac crate) and carries the SPEC §7
//! payload; a receiver that is down is retried until it is back; one that keeps failing
//! ends dead, visible in the API, and can be retried from there.

mod common;

use common::helpdesk::api;
use common::receiver::{Received, Receiver};
use common::{Client, Gateway};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// A gateway retrying webhooks every second, a webhook to `url` and a helpdesk mailbox
/// posting to it; the webhook's id.
async fn setup(url: &str, max_attempts: u32) -> (Gateway, u64) {
    let gw = Gateway::start(|c| c.webhooks.retry_intervals_secs = vec![1]).await;
    let body = json!({"name": "crm", "url": url, "secret": "s3cret-signing-key-0123", "max_attempts": max_attempts});
    let (status, hook) = api(&gw, "POST", "/api/v1/webhooks", Some(body)).await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(hook["secret"], "s3cret-signing-key-0123", "shown once");
    let id = hook["id"].as_u64().unwrap();
    let (_, listed) = api(&gw, "GET", "/api/v1/webhooks", None).await;
    assert!(listed[0].get("secret").is_none(), "never listed: {listed}");
    let mailbox = json!({"name": "Support", "address": "support@help.example",
        "inbound": {"auto_create_requesters": true, "webhooks": [id]}});
    let (status, body) = api(&gw, "POST", "/api/v1/accounts", Some(mailbox)).await;
    assert_eq!(status, 201, "{body}");
    (gw, id)
}

async fn send(gw: &Gateway) {
    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.customer.example", 250).await;
    c.expect("MAIL FROM:<ann@customer.example>", 250).await;
    c.expect("RCPT TO:<support@help.example>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: Ann <ann@customer.example>\r\nTo: support@help.example\r\nSubject: Broken printer\r\nMessage-ID: <p1@customer.example>\r\n\r\nIt jams.\r\n.\r\n").await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;
}

/// Waits until the webhook's first delivery satisfies `done`; returns it.
async fn delivery(gw: &Gateway, hook: u64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = api(
            gw,
            "GET",
            &format!("/api/v1/webhooks/{hook}/deliveries"),
            None,
        )
        .await;
        if let Some(first) = list.as_array().and_then(|l| l.first()) {
            if done(first) {
                return first.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "delivery never got there: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_event_is_posted_signed_with_the_spec_payload() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/postern", listener.local_addr().unwrap());
    let receiver = Receiver::serve(listener, 200, false).await;
    let (gw, hook) = setup(&url, 10).await;
    send(&gw).await;
    let done = delivery(&gw, hook, |d| d["status"] == "delivered").await;
    assert_eq!(
        (done["attempts"].as_u64(), done["last_status"].as_u64()),
        (Some(1), Some(200))
    );
    assert_eq!(done["last_response"], "answered");

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let Received { head, body, .. } = &requests[0];
    assert!(head.starts_with("POST /hooks/postern HTTP/1.1"), "{head}");
    // Field names are case-insensitive (RFC 9110 §5.1); the client sends them in lower case.
    let field = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then(|| v.to_string())
        })
    };
    let signature = field("X-Postern-Signature").expect("signed");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"s3cret-signing-key-0123").unwrap();
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(signature, format!("sha256={expected}"));
    assert_eq!(
        field("X-Postern-Event").as_deref(),
        Some("ticket.created"),
        "{head}"
    );
    assert_eq!(
        field("X-Postern-Delivery"),
        Some(done["id"].to_string()),
        "{head}"
    );

    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["event"], "ticket.created");
    assert_eq!(payload["requester"]["login"], "ann@customer.example");
    assert_eq!(payload["requester"]["created"], true);
    assert_eq!(payload["mailbox"]["address"], "support@help.example");
    assert_eq!(payload["mailbox"]["purpose"], "ticket");
    assert_eq!(payload["message"]["subject"], "Broken printer");
    assert_eq!(payload["message"]["message_id"], "p1@customer.example");
    assert_eq!(payload["message"]["from"]["name"], "Ann");
    assert_eq!(
        payload["message"]["text"].as_str().unwrap().trim(),
        "It jams."
    );
    let (_, tickets) = api(&gw, "GET", "/api/v1/tickets", None).await;
    assert_eq!(payload["ticket"]["id"], tickets[0]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_gets_the_call_once_it_is_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    let (gw, hook) = setup(&format!("http://{addr}/in"), 10).await;
    send(&gw).await;
    let failed = delivery(&gw, hook, |d| d["attempts"].as_u64() >= Some(1)).await;
    assert_eq!(failed["status"], "pending", "{failed}");
    assert!(
        failed["last_response"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{failed}"
    );

    let receiver = Receiver::serve(TcpListener::bind(addr).await.unwrap(), 204, false).await;
    let done = delivery(&gw, hook, |d| d["status"] == "delivered").await;
    assert!(done["attempts"].as_u64().unwrap() >= 2, "{done}");
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_keeps_failing_ends_dead_and_can_be_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    let receiver = Receiver::serve(listener, 500, false).await;
    let (gw, hook) = setup(&url, 2).await;
    send(&gw).await;
    let dead = delivery(&gw, hook, |d| d["status"] == "dead").await;
    assert_eq!(
        (dead["attempts"].as_u64(), dead["last_status"].as_u64()),
        (Some(2), Some(500))
    );
    assert_eq!(receiver.requests().len(), 2);

    // A webhook a mailbox still posts to cannot be deleted.
    assert_eq!(
        api(&gw, "DELETE", &format!("/api/v1/webhooks/{hook}"), None)
            .await
            .0,
        409
    );
    receiver.status.store(200, Ordering::SeqCst);
    let path = format!("/api/v1/webhooks/{hook}/deliveries/{}/retry", dead["id"]);
    let (status, body) = api(&gw, "POST", &path, None).await;
    assert_eq!(status, 200, "{body}");
    delivery(&gw, hook, |d| d["status"] == "delivered").await;
    assert_eq!(
        api(&gw, "POST", &path, None).await.0,
        409,
        "only a dead delivery is retried"
    );
}
