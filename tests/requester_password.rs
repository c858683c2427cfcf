//! Auto-creation end to end (SPEC §7): an unknown sender mails the helpdesk → the requester
//! exists in the mailbox's default group → its "set your password" message reaches the
//! maildir → the link opens Postern's page (fetched over HTTP, form submitted as a browser
//! does) → the requester can log in; the link works once.

mod common;

use common::{http, http_full, post_form, Client, Gateway, TOKEN};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_requester_sets_its_password_through_the_emailed_link_and_logs_in() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    let admin = |method: &'static str, path: &'static str, body: Value| async move {
        let (status, text) = http(api, method, path, Some(TOKEN), Some(&body.to_string())).await;
        assert!(status < 300, "{method} {path}: {status} {text}");
    };
    admin(
        "PATCH",
        "/api/v1/settings",
        json!({"public_url": format!("http://{api}/")}),
    )
    .await;
    admin("POST", "/api/v1/groups", json!({"name": "customers"})).await;
    let inbound =
        json!({"purpose": "comment", "auto_create_requesters": true, "default_group": "customers"});
    admin(
        "POST",
        "/api/v1/accounts",
        json!({"name": "Support", "address": "support@help.example", "inbound": inbound}),
    )
    .await;

    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.customer.example", 250).await;
    c.expect("MAIL FROM:<Carol@Customer.Example>", 250).await;
    c.expect("RCPT TO:<support@help.example>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: Carol <Carol@Customer.Example>\r\nTo: support@help.example\r\nSubject: hello\r\n\r\nHi.\r\n.\r\n").await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;

    let sent = gw.wait_outbox(1).await;
    assert_eq!(sent.len(), 1, "the password message");
    let text = String::from_utf8(sent[0].clone()).unwrap();
    assert!(text.contains("To: <Carol@customer.example>"), "{text}");
    assert!(text.contains("Subject: Set your password"), "{text}");
    assert!(text.contains("X-Loop: postern@gw.test"), "{text}");
    assert!(text.contains("Auto-Submitted: auto-generated"), "{text}");
    let prefix = format!("http://{api}/password/");
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with(&prefix))
        .expect("a link to the page");
    let path = &link[prefix.len() - "/password/".len()..];

    let (_, users) = http(api, "GET", "/api/v1/users", Some(TOKEN), None).await;
    let users: Value = serde_json::from_str(&users).unwrap();
    let carol = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "Carol@customer.example")
        .expect("requester");
    assert_eq!(
        (
            carol["kind"].as_str(),
            carol["group"].as_str(),
            carol["created_via"].as_str()
        ),
        (Some("requester"), Some("customers"), Some("email"))
    );

    let (status, head, page) = http_full(api, "GET", path, None, None).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{head}"
    );
    assert!(
        page.contains("<form method=\"post\">") && page.contains("name=\"password\""),
        "{page}"
    );
    assert!(!page.contains("<script"), "no JavaScript");

    let (status, page) = post_form(api, path, "password=long-enough-1&confirm=different-2").await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("differ"), "{page}");
    let (status, page) = post_form(
        api,
        path,
        "password=caf%C3%A9-au-lait&confirm=caf%C3%A9-au-lait",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Password set"), "{page}");
    let (status, _) = post_form(api, path, "password=another-one-3&confirm=another-one-3").await;
    assert_eq!(status, 404, "the link works once");
    assert_eq!(http_full(api, "GET", path, None, None).await.0, 404);

    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO client.example", 250).await;
    let auth = c
        .cmd(&format!(
            "AUTH PLAIN {}",
            common::base64("\0Carol@customer.example\0café-au-lait")
        ))
        .await;
    assert_eq!(auth.code, 235, "{auth:?}");
}
