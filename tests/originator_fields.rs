//! Originator fields beyond `From` on submission (SPEC §12), through real sockets: every
//! `Resent-From` and `Resent-Sender` mailbox must be one the sender may send as (refused
//! with `550 5.7.1` naming the field, malformed ones with `550 5.6.0`), and display names
//! that carry another address are stripped, refused or allowed as the setting
//! `display_name_addresses` says. Inbound mail is not submission: it passes untouched.

mod common;

use common::helpdesk::{self, SUPPORT};
use common::{http, Client, Gateway, Reply, TOKEN};
use serde_json::{json, Value};

async fn api(gw: &Gateway, method: &str, path: &str, body: Value) -> Value {
    let body = body.to_string();
    let (status, text) = http(gw.running.api, method, path, Some(TOKEN), Some(&body)).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path} -> {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A gateway with staff user `alice` ("Alice Able", may send only as herself) and two
/// shared accounts nobody may use without a grant: `support` (no display name) and
/// `sales` ("Sales Team"). Returns alice's id and the two account ids.
async fn setup() -> (Gateway, u64, u64, u64) {
    let gw = Gateway::start(|_| {}).await;
    let alice = json!({"login": "alice", "email": "alice@example.com", "kind": "staff",
        "password": "alice-password", "display_name": "Alice Able"});
    let alice = api(&gw, "POST", "/api/v1/users", alice).await["id"]
        .as_u64()
        .unwrap();
    let mut ids = Vec::new();
    for (name, display) in [("support", Value::Null), ("sales", json!("Sales Team"))] {
        let account = json!({"name": name, "address": format!("{name}@example.com"),
            "display_name": display, "scope": {"kind": "all_staff"},
            "default_send_mode": "none"});
        ids.push(
            api(&gw, "POST", "/api/v1/accounts", account).await["id"]
                .as_u64()
                .unwrap(),
        );
    }
    (gw, alice, ids[0], ids[1])
}

async fn grant_send_as(gw: &Gateway, account: u64, user: u64) {
    let grants = json!([{"grantee": {"user": user}, "send": "send_as"}]);
    api(
        gw,
        "PUT",
        &format!("/api/v1/accounts/{account}/grants"),
        grants,
    )
    .await;
}

async fn set_mode(gw: &Gateway, mode: &str) {
    let patch = json!({ "display_name_addresses": mode });
    let settings = api(gw, "PATCH", "/api/v1/settings", patch).await;
    assert_eq!(settings["display_name_addresses"], mode);
}

/// Alice submits `header` (CRLF-separated fields, no empty line) with `Subject: subject`;
/// the reply to the end of data.
async fn submit(gw: &Gateway, subject: &str, header: &str) -> Reply {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("alice", "alice-password").await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<customer@example.net>", 250).await;
    c.expect("DATA", 354).await;
    let message = format!("{header}\r\nSubject: {subject}\r\n\r\nHello.\r\n.\r\n");
    c.send(message.as_bytes()).await;
    let reply = c.reply().await;
    c.expect("QUIT", 221).await;
    reply
}

/// The header block of the delivered message with `Subject: subject`.
async fn delivered(gw: &Gateway, n: usize, subject: &str) -> String {
    let messages = gw.wait_outbox(n).await;
    let wanted = format!("\r\nSubject: {subject}\r\n");
    let message = messages
        .iter()
        .map(|m| String::from_utf8_lossy(m).to_string())
        .find(|m| m.contains(&wanted))
        .unwrap_or_else(|| panic!("no message {subject:?} among {}", messages.len()));
    message.split("\r\n\r\n").next().unwrap().to_string()
}

/// The unfolded fields named `name` of a header block.
fn fields(block: &str, name: &str) -> Vec<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    block
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ")
        .split("\r\n")
        .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

fn refused(reply: &Reply, code: &str, field: &str) {
    assert_eq!(reply.code, 550, "{reply:?}");
    assert!(reply.text.contains(code), "{reply:?}");
    assert!(reply.text.contains(field), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resent_originators_need_a_send_right() {
    let (gw, alice, support, _) = setup().await;
    let from = "From: Alice Able <alice@example.com>";
    let r = submit(
        &gw,
        "r1",
        &format!("{from}\r\nResent-From: support@example.com"),
    )
    .await;
    refused(&r, "5.7.1", "Resent-From");
    assert!(
        r.text
            .contains("<alice> may not send as <support@example.com>"),
        "{r:?}"
    );
    let r = submit(
        &gw,
        "r2",
        &format!("{from}\r\nResent-Sender: Support <SUPPORT@example.com>"),
    )
    .await;
    refused(&r, "5.7.1", "Resent-Sender");
    // Every field counts, not just the first resent block.
    let r = submit(
        &gw,
        "r3",
        &format!("Resent-From: alice@example.com\r\n{from}\r\nResent-From: <support@example.com>"),
    )
    .await;
    refused(&r, "5.7.1", "Resent-From");
    // An address nobody has is refused too.
    let r = submit(
        &gw,
        "r4",
        &format!("{from}\r\nResent-From: ceo@bank.example"),
    )
    .await;
    refused(&r, "5.7.1", "Resent-From");
    // Malformed resent fields are refused like a bad From.
    for (field, name) in [
        ("Resent-From: undisclosed-recipients:;", "Resent-From"),
        ("Resent-From: ", "Resent-From"),
        ("Resent-From: support@", "Resent-From"),
        (
            "Resent-Sender: a@example.com, b@example.com",
            "Resent-Sender",
        ),
    ] {
        let r = submit(&gw, "bad", &format!("{from}\r\n{field}")).await;
        refused(&r, "5.6.0", name);
    }
    // Her own address passes.
    let r = submit(
        &gw,
        "own",
        &format!("{from}\r\nResent-From: alice@example.com"),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");

    grant_send_as(&gw, support, alice).await;
    let header = format!(
        "{from}\r\nResent-From: Support <support@example.com>\r\nResent-Sender: alice@example.com"
    );
    let r = submit(&gw, "granted", &header).await;
    assert_eq!(r.code, 250, "{r:?}");
    let block = delivered(&gw, 2, "granted").await;
    assert_eq!(
        fields(&block, "Resent-From"),
        vec!["Resent-From: Support <support@example.com>"],
        "{block}"
    );
    assert_eq!(
        fields(&block, "Resent-Sender"),
        vec!["Resent-Sender: <alice@example.com>"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_that_carry_an_address_are_stripped_by_default() {
    let (gw, alice, support, sales) = setup().await;
    grant_send_as(&gw, support, alice).await;
    grant_send_as(&gw, sales, alice).await;
    let cases = [
        // (subject, From as sent, From as delivered)
        (
            "plain",
            "\"support@bank.example\" <alice@example.com>",
            "From: Alice Able <alice@example.com>",
        ),
        // The @ hidden in an encoded word, and a fullwidth at sign.
        (
            "encoded",
            "=?UTF-8?B?c3VwcG9ydEBiYW5rLmV4YW1wbGU=?= <alice@example.com>",
            "From: Alice Able <alice@example.com>",
        ),
        (
            "fullwidth",
            "=?UTF-8?Q?support=EF=BC=A0bank=2Eexample?= <alice@example.com>",
            "From: Alice Able <alice@example.com>",
        ),
        // Not an address, and the From address itself: kept.
        (
            "words",
            "support at bank.example <alice@example.com>",
            "From: \"support at bank.example\" <alice@example.com>",
        ),
        (
            "itself",
            "\"Alice@Example.com\" <alice@example.com>",
            "From: \"Alice@Example.com\" <alice@example.com>",
        ),
        // A shared account: its display name, else the user's.
        (
            "shared",
            "\"ceo@bank.example\" <support@example.com>",
            "From: Alice Able <support@example.com>",
        ),
        (
            "named",
            "\"ceo@bank.example\" <sales@example.com>",
            "From: Sales Team <sales@example.com>",
        ),
    ];
    for (n, (subject, from, _)) in cases.iter().enumerate() {
        let r = submit(&gw, subject, &format!("From: {from}")).await;
        assert_eq!(r.code, 250, "{subject}: {r:?}");
        let block = delivered(&gw, n + 1, subject).await;
        assert_eq!(
            fields(&block, "From"),
            vec![cases[n].2],
            "{subject}: {block}"
        );
    }
    let header =
        "From: alice@example.com\r\nResent-From: \"ceo@bank.example\" <support@example.com>";
    let r = submit(&gw, "resent", header).await;
    assert_eq!(r.code, 250, "{r:?}");
    let block = delivered(&gw, cases.len() + 1, "resent").await;
    assert_eq!(
        fields(&block, "Resent-From"),
        vec!["Resent-From: Alice Able <support@example.com>"],
        "{block}"
    );
    // An encoded word glued to other text is not one (RFC 2047), but mail-parser 0.11
    // decodes it (to "support@bank.example x"): the field is written as Postern read it,
    // so no reader decodes the hidden @.
    let glued = "=?utf-8?q?support=40bank.example?=x";
    let header = format!("From: alice@example.com\r\nResent-From: {glued} <support@example.com>");
    let r = submit(&gw, "glued", &header).await;
    assert_eq!(r.code, 250, "{r:?}");
    let block = delivered(&gw, cases.len() + 2, "glued").await;
    let raw = format!("{block}\r\n\r\n");
    let parsed = mail_parser::MessageParser::default()
        .parse_headers(raw.as_bytes())
        .unwrap();
    let resent = parsed
        .header(mail_parser::HeaderName::ResentFrom)
        .and_then(|v| v.as_address())
        .and_then(|a| a.first())
        .unwrap_or_else(|| panic!("{block}"));
    assert_eq!(resent.name(), Some(glued), "{block}");
    assert_eq!(resent.address(), Some("support@example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_and_allow_modes() {
    let (gw, alice, support, _) = setup().await;
    grant_send_as(&gw, support, alice).await;
    set_mode(&gw, "refuse").await;
    let r = submit(
        &gw,
        "spoof",
        "From: \"support@bank.example\" <alice@example.com>",
    )
    .await;
    refused(&r, "5.7.1", "display name in From");
    let header =
        "From: alice@example.com\r\nResent-From: \"ceo@bank.example\" <support@example.com>";
    let r = submit(&gw, "resent", header).await;
    refused(&r, "5.7.1", "display name in Resent-From");
    let r = submit(&gw, "fine", "From: Alice <alice@example.com>").await;
    assert_eq!(r.code, 250, "{r:?}");

    set_mode(&gw, "allow").await;
    let r = submit(
        &gw,
        "allowed",
        "From: \"support@bank.example\" <alice@example.com>",
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let block = delivered(&gw, 2, "allowed").await;
    assert_eq!(
        fields(&block, "From"),
        vec!["From: \"support@bank.example\" <alice@example.com>"],
        "{block}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_mail_is_not_submission() {
    let gw = helpdesk::helpdesk().await;
    set_mode(&gw, "refuse").await;
    let extra = "Resent-From: undisclosed:;\r\nResent-Sender: ceo@bank.example\r\n";
    let message = helpdesk::message(
        "\"ceo@bank.example\" <ann@customer.example>",
        "forwarded",
        extra,
        "Hello.\r\n",
    );
    let r = helpdesk::send(&gw, "ann@customer.example", SUPPORT, &message).await;
    assert_eq!(r.code, 250, "{r:?}");
}
