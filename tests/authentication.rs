//! SPF, DKIM, DMARC (and ARC) of inbound mail against a DNS server running in the test on
//! 127.0.0.1: pass, fail and none, each visible in the Authentication-Results field and the
//! verdicts of the ticket (the hook's payload carries the same), and a mailbox that refuses
//! DMARC `reject` failures at the end of data.

mod common;

use common::helpdesk::api;
use common::{dns, Client, Gateway};
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SELECTOR: &str = "s1";

/// An Ed25519 signing key and its DKIM DNS record.
fn dkim_key() -> (Vec<u8>, String) {
    use base64::Engine;
    let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let public = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap().public_key();
    let record = format!(
        "v=DKIM1; k=ed25519; p={}",
        base64::engine::general_purpose::STANDARD.encode(public)
    );
    (pkcs8, record)
}

fn signed(pkcs8: &[u8], domain: &str, message: &str) -> String {
    let key = Ed25519Key::from_pkcs8_der(pkcs8).unwrap();
    let signature = DkimSigner::from_key(key)
        .domain(domain)
        .selector(SELECTOR)
        .headers(["From", "To", "Subject"])
        .sign(message.as_bytes())
        .unwrap();
    format!("{}{message}", signature.to_header())
}

async fn send(gw: &Gateway, mail_from: &str, rcpt: &str, message: &str) -> common::Reply {
    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.sender.example", 250).await;
    c.expect(&format!("MAIL FROM:<{mail_from}>"), 250).await;
    c.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
    c.expect("DATA", 354).await;
    c.send(format!("{message}\r\n.\r\n").as_bytes()).await;
    let reply = c.reply().await;
    c.expect("QUIT", 221).await;
    reply
}

/// The verdicts of the article recorded for the message with subject `subject`.
async fn verdicts(gw: &Gateway, subject: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, tickets) = api(gw, "GET", "/api/v1/tickets", None).await;
        if let Some(ticket) = tickets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["subject"] == subject)
        {
            let (_, shown) = api(
                gw,
                "GET",
                &format!("/api/v1/tickets/{}", ticket["id"]),
                None,
            )
            .await;
            return shown["articles"][0]["verdicts"].clone();
        }
        assert!(Instant::now() < deadline, "no ticket {subject:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_dkim_and_dmarc_pass_fail_and_none_are_recorded_and_reject_is_refused_on_request() {
    let (pkcs8, record) = dkim_key();
    let dkim_name = format!("{SELECTOR}._domainkey.pass.example");
    let fail_dkim = format!("{SELECTOR}._domainkey.fail.example");
    let nameserver = dns::serve(&[
        ("pass.example", "v=spf1 ip4:127.0.0.1 -all"),
        (&dkim_name, &record),
        ("_dmarc.pass.example", "v=DMARC1; p=reject"),
        ("fail.example", "v=spf1 ip4:192.0.2.1 -all"),
        (&fail_dkim, &record),
        ("_dmarc.fail.example", "v=DMARC1; p=reject"),
    ])
    .await;
    let gw = Gateway::start(move |c| {
        c.inbound.authenticate = true;
        c.dns.nameservers = vec![nameserver];
        c.dns.timeout_secs = 2;
    })
    .await;
    for (name, address, refuse) in [
        ("Support", "support@help.example", false),
        ("Strict", "strict@help.example", true),
    ] {
        let inbound = json!({"auto_create_requesters": true, "refuse_dmarc_reject": refuse});
        let body = json!({"name": name, "address": address, "inbound": inbound});
        assert_eq!(
            api(&gw, "POST", "/api/v1/accounts", Some(body)).await.0,
            201
        );
    }

    let good = signed(
        &pkcs8,
        "pass.example",
        "From: ann@pass.example\r\nTo: support@help.example\r\nSubject: all good\r\n\r\nHello.\r\n",
    );
    assert_eq!(
        send(&gw, "ann@pass.example", "support@help.example", &good)
            .await
            .code,
        250
    );
    let v = verdicts(&gw, "all good").await;
    assert_eq!(
        (v["spf"].as_str(), v["dkim"].as_str(), v["dmarc"].as_str()),
        (Some("pass"), Some("pass"), Some("pass")),
        "{v}"
    );
    let results = v["results"].as_str().unwrap();
    assert!(results.starts_with("gw.test;"), "{results}");
    for part in [
        "spf=pass (",
        "smtp.mailfrom=ann@pass.example",
        "dkim=pass header.d=pass.example",
        "dmarc=pass header.from=pass.example",
    ] {
        assert!(results.contains(part), "{part} in {results}");
    }

    // SPF fails (wrong IP), the signature is broken (a signed field changed after
    // signing), so DMARC fails under p=reject: recorded as such, or refused by a mailbox
    // that asks for it.
    let tampered = signed(
        &pkcs8,
        "fail.example",
        "From: eve@fail.example\r\nTo: support@help.example\r\nSubject: signed\r\n\r\nHello.\r\n",
    )
    .replace("Subject: signed", "Subject: all bad");
    assert_eq!(
        send(&gw, "eve@fail.example", "support@help.example", &tampered)
            .await
            .code,
        250
    );
    let v = verdicts(&gw, "all bad").await;
    assert_eq!(
        (v["spf"].as_str(), v["dkim"].as_str(), v["dmarc"].as_str()),
        (Some("fail"), Some("fail"), Some("fail")),
        "{v}"
    );
    assert!(
        v["results"]
            .as_str()
            .unwrap()
            .contains("policy.dmarc=reject"),
        "{v}"
    );
    let strict = tampered.replace("support@help.example", "strict@help.example");
    let refused = send(&gw, "eve@fail.example", "strict@help.example", &strict).await;
    assert_eq!(refused.code, 550, "{refused:?}");
    assert!(
        refused.text.contains("5.7.1") && refused.text.contains("DMARC"),
        "{refused:?}"
    );
    assert_eq!(
        gw.metric("postern_smtp_rejections_total{reason=\"auth_verdict\"}")
            .await,
        1.0
    );

    // A domain with no records at all: none everywhere.
    let plain =
        "From: joe@none.example\r\nTo: support@help.example\r\nSubject: no records\r\n\r\nHi.\r\n";
    assert_eq!(
        send(&gw, "joe@none.example", "support@help.example", plain)
            .await
            .code,
        250
    );
    let v = verdicts(&gw, "no records").await;
    assert_eq!(
        (v["spf"].as_str(), v["dkim"].as_str(), v["dmarc"].as_str()),
        (Some("none"), Some("none"), Some("none")),
        "{v}"
    );
}
