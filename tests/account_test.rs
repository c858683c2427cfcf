//! `POST /api/v1/accounts/{id}/test`: a real message through the account's upstream, and
//! the upstream's answer (accepted, refused, failed) in the response.

mod common;

use common::upstream::{FakeUpstream, Script};
use common::{http, Gateway, TOKEN};
use serde_json::{json, Value};
use std::net::SocketAddr;

async fn post(api: SocketAddr, path: &str, token: &str, body: Value) -> (u16, Value) {
    let (status, text) = http(api, "POST", path, Some(token), Some(&body.to_string())).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_message_reports_what_the_upstream_said() {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        rcpt_replies: vec![("nobody@example.net".into(), "550 5.1.1 no such user".into())],
        ..Script::default()
    })
    .await;
    let port = upstream.addr.port();
    let gw = Gateway::start(move |c| {
        c.upstreams
            .insert("sink".into(), common::sink_upstream(port));
        c.upstreams.insert(
            "dead".into(),
            common::sink_upstream(common::free_ports::<1>()[0]),
        );
    })
    .await;
    let api = gw.running.api;
    let account = json!({"name": "support", "address": "support@example.com",
        "display_name": "Support Team", "upstream": "sink", "scope": {"kind": "all_staff"}});
    let (status, created) = post(api, "/api/v1/accounts", TOKEN, account).await;
    assert_eq!(status, 201, "{created}");
    let path = format!("/api/v1/accounts/{}/test", created["id"]);

    let (status, result) = post(api, &path, TOKEN, json!({"to": "bob@example.net"})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["outcome"], "accepted", "{result}");
    assert!(
        result["reply"].as_str().unwrap().starts_with("250"),
        "{result}"
    );
    let messages = upstream.record().messages.clone();
    assert_eq!(messages.len(), 1);
    let sent = &messages[0];
    assert_eq!(sent.mail_from, "support@example.com");
    assert_eq!(sent.rcpts, ["bob@example.net"]);
    let text = String::from_utf8_lossy(&sent.data);
    assert!(
        text.contains("From: \"Support Team\" <support@example.com>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Subject: Postern test message for account support\r\n"),
        "{text}"
    );

    let (_, refused) = post(api, &path, TOKEN, json!({"to": "nobody@example.net"})).await;
    assert_eq!(refused["outcome"], "refused", "{refused}");
    assert!(
        refused["reply"].as_str().unwrap().contains("5.1.1"),
        "{refused}"
    );

    let (status, problem) = post(api, &path, TOKEN, json!({"to": "not an address"})).await;
    assert_eq!(status, 422, "{problem}");

    // An upstream nobody listens on: the error, not a hang.
    let dead = json!({"name": "dead-end", "address": "dead@example.com", "upstream": "dead",
        "scope": {"kind": "all_staff"}});
    let (_, created) = post(api, "/api/v1/accounts", TOKEN, dead).await;
    let dead_path = format!("/api/v1/accounts/{}/test", created["id"]);
    let (status, failed) = post(
        api,
        &dead_path,
        TOKEN,
        json!({"to": "bob@example.net", "timeout_secs": 10}),
    )
    .await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert!(
        failed["reply"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("connect"),
        "{failed}"
    );

    // The default account sends as each user: nothing to test from.
    let (_, accounts) = (
        0,
        http(api, "GET", "/api/v1/accounts", Some(TOKEN), None)
            .await
            .1,
    );
    let accounts: Value = serde_json::from_str(&accounts).unwrap();
    let default = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["is_default"] == true)
        .unwrap();
    let (status, _) = post(
        api,
        &format!("/api/v1/accounts/{}/test", default["id"]),
        TOKEN,
        json!({"to": "bob@example.net"}),
    )
    .await;
    assert_eq!(status, 409);

    // Every test is in the audit log.
    let (_, audit) = http(
        api,
        "GET",
        "/api/v1/audit?action=account.test",
        Some(TOKEN),
        None,
    )
    .await;
    let audit: Value = serde_json::from_str(&audit).unwrap();
    assert_eq!(audit.as_array().unwrap().len(), 3, "{audit}");
}
