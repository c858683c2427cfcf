//! Send-as end to end: lettre submits as a staff user to a shared account with
//! `send_on_behalf` and with `send_as`; the upstream (a real SMTP listener) receives
//! `From`/`Sender` exactly as SPEC §3 says and the account address as envelope sender; a
//! user without rights is refused at MAIL FROM with the rule named.

mod common;

use common::upstream::{FakeUpstream, Message as Received, Script};
use common::{http, Client, Gateway, TOKEN};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn api(gw: &Gateway, method: &str, path: &str, body: Value) -> Value {
    let (status, text) = http(
        gw.running.api,
        method,
        path,
        Some(TOKEN),
        Some(&body.to_string()),
    )
    .await;
    assert!(
        (200..300).contains(&status),
        "{method} {path} -> {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn setup() -> (Gateway, FakeUpstream, u64) {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let port = upstream.addr.port();
    let gw = Gateway::start(move |c| {
        c.upstreams
            .insert("sink".into(), common::sink_upstream(port));
    })
    .await;
    let body = json!({"login": "bob", "email": "bob@example.com", "kind": "staff",
        "password": "bob-password", "display_name": "Bob Builder"});
    let bob = api(&gw, "POST", "/api/v1/users", body).await["id"]
        .as_u64()
        .unwrap();
    gw.create_user("carol@example.com", "staff", "carol-password")
        .await;
    let account = json!({"name": "support", "address": "support@example.com",
        "display_name": "Support Team", "reply_to": "help@example.com", "upstream": "sink",
        "scope": {"kind": "all_staff"}, "default_send_mode": "none",
        "grants": [{"grantee": {"user": bob}, "send": "send_on_behalf"}]});
    api(&gw, "POST", "/api/v1/accounts", account).await;
    (gw, upstream, bob)
}

fn mailer(gw: &Gateway, user: &str, password: &str) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(gw.addr("plain").port())
        .credentials(Credentials::new(user.into(), password.into()))
        .build()
}

fn message(subject: &str) -> Message {
    Message::builder()
        .from("Bob <support@example.com>".parse().unwrap())
        .to("Customer <customer@example.net>".parse().unwrap())
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body("Hello from the helpdesk.\r\n".to_string())
        .unwrap()
}

async fn received(upstream: &FakeUpstream, n: usize) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while upstream.record().messages.len() < n {
        assert!(
            Instant::now() < deadline,
            "upstream did not receive {n} messages"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    upstream.record().messages.clone()
}

fn header_block(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data).to_string();
    text.split("\r\n\r\n").next().unwrap().to_string()
}

fn fields<'a>(block: &'a str, name: &str) -> Vec<&'a str> {
    block
        .lines()
        .filter(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_on_behalf_then_send_as() {
    let (gw, upstream, bob) = setup().await;
    mailer(&gw, "bob", "bob-password")
        .send(message("on behalf"))
        .await
        .expect("accepted");
    let msg = &received(&upstream, 1).await[0];
    assert_eq!(
        msg.mail_from, "support@example.com",
        "envelope sender is the account address"
    );
    assert_eq!(msg.rcpts, vec!["customer@example.net".to_string()]);
    let block = header_block(&msg.data);
    assert_eq!(
        fields(&block, "From"),
        vec!["From: Support Team <support@example.com>"],
        "{block}"
    );
    assert_eq!(
        fields(&block, "Sender"),
        vec!["Sender: Bob Builder <bob@example.com>"],
        "{block}"
    );
    assert_eq!(
        fields(&block, "Reply-To"),
        vec!["Reply-To: <help@example.com>"],
        "{block}"
    );
    assert!(block.starts_with("Received: from "), "{block}");
    assert_eq!(fields(&block, "Message-ID").len(), 1, "{block}");
    assert!(
        String::from_utf8_lossy(&msg.data).ends_with("\r\n\r\nHello from the helpdesk.\r\n\r\n")
    );

    // The administrator changes the grant to send_as: no Sender any more.
    let grants = json!([{"grantee": {"user": bob}, "send": "send_as"}]);
    let accounts = api(&gw, "GET", "/api/v1/accounts", Value::Null).await;
    let id = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "support")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    api(&gw, "PUT", &format!("/api/v1/accounts/{id}/grants"), grants).await;
    mailer(&gw, "bob", "bob-password")
        .send(message("as"))
        .await
        .expect("accepted");
    let msg = &received(&upstream, 2).await[1];
    let block = header_block(&msg.data);
    assert_eq!(
        fields(&block, "From"),
        vec!["From: Support Team <support@example.com>"],
        "{block}"
    );
    assert!(fields(&block, "Sender").is_empty(), "{block}");
    assert_eq!(msg.mail_from, "support@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_rights_is_refused_at_mail_from() {
    let (gw, upstream, _) = setup().await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("carol@example.com", "carol-password").await;
    let r = c.expect("MAIL FROM:<support@example.com>", 550).await;
    assert_eq!(
        r.text.trim_end(),
        "550 5.7.1 <carol@example.com> may not send as <support@example.com> (no send grant and the account's default_send_mode is none)"
    );
    // Her own address goes through the default account, as herself; the header From must
    // still be an address she may use.
    c.expect("MAIL FROM:<carol@example.com>", 250).await;
    c.expect("RCPT TO:<x@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: Support <support@example.com>\r\nSubject: sneaky\r\n\r\nhi\r\n")
        .await;
    let r = c.cmd(".").await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(
        r.text.contains("may not send as <support@example.com>"),
        "{r:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(upstream.record().messages.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcc_return_path_and_postern_headers_are_removed() {
    let (gw, upstream, _) = setup().await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("bob", "bob-password").await;
    c.expect("MAIL FROM:<bob@example.com>", 250).await;
    c.expect("RCPT TO:<customer@example.net>", 250).await;
    c.expect("DATA", 354).await;
    let message = "Return-Path: <evil@example.org>\r\nFrom: \"Bob B.\" <bob@example.com>\r\n\
        X-Postern-Account: support\r\nBcc: secret@example.org\r\nSender: someone@else.example\r\n\
        Subject: named account\r\nMessage-ID: <keep-me@example.com>\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\nBody line\r\n";
    c.send(message.as_bytes()).await;
    c.expect(".", 250).await;
    let msg = &received(&upstream, 1).await[0];
    let block = header_block(&msg.data);
    assert!(
        fields(&block, "Bcc").is_empty() && fields(&block, "Return-Path").is_empty(),
        "{block}"
    );
    assert!(fields(&block, "X-Postern-Account").is_empty(), "{block}");
    assert_eq!(
        fields(&block, "From"),
        vec!["From: Support Team <support@example.com>"],
        "{block}"
    );
    assert_eq!(
        fields(&block, "Sender"),
        vec!["Sender: Bob Builder <bob@example.com>"],
        "{block}"
    );
    assert_eq!(
        fields(&block, "Message-ID"),
        vec!["Message-ID: <keep-me@example.com>"],
        "{block}"
    );
    assert_eq!(
        fields(&block, "Date"),
        vec!["Date: Thu, 1 Jan 2026 00:00:00 +0000"],
        "{block}"
    );
    assert_eq!(msg.mail_from, "support@example.com");
    assert!(String::from_utf8_lossy(&msg.data).ends_with("\r\n\r\nBody line\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ids_are_recorded_with_their_account() {
    let (gw, upstream, _) = setup().await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("bob", "bob-password").await;
    for (n, header) in ["Message-ID: <given@example.com>\r\n", ""]
        .iter()
        .enumerate()
    {
        c.expect("MAIL FROM:<support@example.com>", 250).await;
        c.expect("RCPT TO:<customer@example.net>", 250).await;
        c.expect("DATA", 354).await;
        let msg = format!("From: support@example.com\r\n{header}Subject: id {n}\r\n\r\nbody\r\n");
        c.send(msg.as_bytes()).await;
        c.expect(".", 250).await;
    }
    let sent = received(&upstream, 2).await;
    let support = gw
        .running
        .store()
        .accounts()
        .all()
        .unwrap()
        .into_iter()
        .find(|a| a.name == "support")
        .unwrap();
    let given = gw
        .running
        .store()
        .message_ids()
        .get("<given@example.com>")
        .unwrap()
        .expect("recorded");
    assert_eq!(given.account, support.id);
    assert_eq!(given.direction, "outbound");
    // The generated Message-ID is on the account's domain and recorded too.
    let block = header_block(&sent[1].data);
    let generated = fields(&block, "Message-ID")[0]
        .trim_start_matches("Message-ID:")
        .trim()
        .to_string();
    assert!(generated.ends_with("@example.com>"), "{generated}");
    let record = gw
        .running
        .store()
        .message_ids()
        .get(&generated)
        .unwrap()
        .expect("recorded");
    assert_eq!(record.account, support.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivated_and_blocked_users_cannot_authenticate() {
    let (gw, _, bob) = setup().await;
    for status in ["deactivated", "blocked"] {
        api(
            &gw,
            "PATCH",
            &format!("/api/v1/users/{bob}"),
            json!({"status": status}),
        )
        .await;
        let mut c = Client::connect(gw.addr("plain")).await;
        c.expect("EHLO client.test", 250).await;
        let token = common::base64("\0bob\0bob-password");
        c.expect(&format!("AUTH PLAIN {token}"), 535).await;
    }
    api(
        &gw,
        "PATCH",
        &format!("/api/v1/users/{bob}"),
        json!({"status": "active"}),
    )
    .await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("bob", "bob-password").await;
}
