//! Opportunistic STARTTLS towards upstreams (`tls = "opportunistic"`, what `mx` uses): an
//! upstream that offers STARTTLS gets the message encrypted even with a certificate
//! nobody trusts; one whose TLS handshake fails gets it in clear text on a second
//! connection, as Postfix's `may` level does, instead of never.

mod common;

use common::tls::{client_cert_required, localhost_cert};
use common::upstream::{FakeUpstream, Script};
use common::{Client, Gateway};
use postern::config::UpstreamConfig;
use std::time::{Duration, Instant};

async fn deliver_one(upstream: &FakeUpstream) {
    let settings = format!(
        "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"opportunistic\"\ntimeout_secs = 5\n",
        upstream.addr.port()
    );
    let settings: UpstreamConfig = toml::from_str(&settings).unwrap();
    let gw = Gateway::start(move |c| {
        c.upstreams.insert("out".into(), settings);
        c.default_upstream = "out".into();
    })
    .await;
    gw.create_user("desk@corp.example", "staff", "desk-password-1")
        .await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO desk.corp.example", 250).await;
    c.login("desk@corp.example", "desk-password-1").await;
    c.expect("MAIL FROM:<desk@corp.example>", 250).await;
    c.expect("RCPT TO:<customer@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: desk@corp.example\r\nSubject: opportunistic\r\n\r\nhello\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await.code, 250);
    let deadline = Instant::now() + Duration::from_secs(15);
    while upstream.record().messages.is_empty() {
        assert!(Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offered_starttls_is_used_whatever_the_certificate() {
    let (config, _) = localhost_cert();
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        starttls: Some(config),
        ..Script::default()
    })
    .await;
    deliver_one(&upstream).await;
    let record = upstream.record();
    assert!(record.messages[0].tls, "the message went encrypted");
    assert_eq!(record.connections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_handshake_is_followed_by_a_clear_text_connection() {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        starttls: Some(client_cert_required()),
        ..Script::default()
    })
    .await;
    deliver_one(&upstream).await;
    let record = upstream.record();
    assert_eq!(record.messages.len(), 1);
    assert!(
        !record.messages[0].tls,
        "the second connection is clear text"
    );
    assert_eq!(record.connections, 2, "one failed handshake, one delivery");
}
