//! DKIM signing (SPEC §5) end to end: keys made through the API, their TXT records served
//! by a DNS server in the test, mail submitted with lettre through an `smtp` and an `mx`
//! upstream and rewritten on the way (Send on behalf, display names), and the signatures
//! the upstream receives verified by mail-auth against those records — RSA-2048 and
//! Ed25519, and a tampered copy failing. Pending and deleted keys do not sign.

mod common;

use common::dns::{serve_records, Rr};
use common::upstream::{FakeUpstream, Script};
use common::{http, Gateway, TOKEN};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mail_auth::common::crypto::Algorithm;
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use postern::config::{MxUpstream, UpstreamConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

async fn api(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = http(gw.running.api, method, path, Some(TOKEN), body.as_deref()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn ok(gw: &Gateway, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = api(gw, method, path, Some(body)).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

/// A gateway whose `relay` upstream is `smtp` and `direct` is `mx`, both ending at
/// `upstream` (the MX of example.net is 127.0.0.1); bob may send on behalf of
/// support@example.com (through `relay`) and as sales@example.org (through `direct`).
async fn setup(upstream: &FakeUpstream) -> Gateway {
    let port = upstream.addr.port();
    let mx_dns = serve_records(&[
        ("example.net", Rr::Mx(10, "mx.example.net".into())),
        ("mx.example.net", Rr::A("127.0.0.1".parse().unwrap())),
    ])
    .await;
    let mx = MxUpstream {
        nameservers: vec![mx_dns],
        port,
        pool_size: 2,
        pool_idle_secs: 30,
        max_connections: 2,
        timeout_secs: 5,
        chunking: true,
        limits: None,
    };
    let gw = Gateway::start(move |c| {
        c.upstreams
            .insert("relay".into(), common::sink_upstream(port));
        c.upstreams.insert("direct".into(), UpstreamConfig::Mx(mx));
    })
    .await;
    let bob = gw
        .create_user("bob@example.com", "staff", "bob-password")
        .await["id"]
        .as_u64()
        .unwrap();
    for (name, address, upstream, send) in [
        ("support", "support@example.com", "relay", "send_on_behalf"),
        ("sales", "sales@example.org", "direct", "send_as"),
    ] {
        let account = json!({"name": name, "address": address, "display_name": format!("{name} team"),
            "upstream": upstream, "scope": {"kind": "all_staff"}, "default_send_mode": "none",
            "grants": [{"grantee": {"user": bob}, "send": send}]});
        ok(&gw, "POST", "/api/v1/accounts", account).await;
    }
    gw
}

async fn send(gw: &Gateway, from: &str, subject: &str) {
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(gw.addr("plain").port())
        .credentials(Credentials::new(
            "bob@example.com".into(),
            "bob-password".into(),
        ))
        .build();
    let message = Message::builder()
        .from(format!("Bob <{from}>").parse().unwrap())
        .to("Customer <customer@example.net>".parse().unwrap())
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body("Hello from the helpdesk.\r\n.leading dot\r\n".to_string())
        .unwrap();
    mailer.send(message).await.unwrap();
}

/// The message the upstream received with `subject`, waiting for it.
async fn received(upstream: &FakeUpstream, subject: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = upstream.record().messages.iter().find_map(|m| {
            let text = String::from_utf8_lossy(&m.data);
            text.contains(&format!("Subject: {subject}\r\n"))
                .then(|| m.data.clone())
        });
        if let Some(data) = found {
            return data;
        }
        assert!(Instant::now() < deadline, "never received {subject:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every signature of `message` as (result, d=, s=, algorithm), verified against `dns`.
async fn verify(dns: SocketAddr, message: &[u8]) -> Vec<(bool, String, String, Algorithm)> {
    let config = postern::net::dns::config(&[dns]).unwrap();
    let options = postern::net::dns::options(Duration::from_secs(2));
    let auth = MessageAuthenticator::new(config, options).unwrap();
    let parsed = AuthenticatedMessage::parse(message).expect("a message");
    let outputs = auth.verify_dkim(&parsed).await;
    outputs
        .iter()
        .map(|out| {
            let sig = out.signature().expect("a signature was parsed");
            let pass = matches!(out.result(), DkimResult::Pass);
            (pass, sig.d.clone(), sig.s.clone(), sig.a)
        })
        .collect()
}

/// Creates a key; returns its (TXT name, TXT value).
async fn key(
    gw: &Gateway,
    domain: &str,
    algorithm: &str,
    selector: &str,
    activate: bool,
) -> (String, String) {
    let body = json!({"domain": domain, "algorithm": algorithm, "selector": selector, "activate": activate});
    let (status, view) = api(gw, "POST", "/api/v1/dkim-keys", Some(body)).await;
    assert_eq!(status, 201, "{view}");
    assert!(!view.to_string().contains("private"), "{view}");
    let want = if activate { "active" } else { "pending" };
    assert_eq!(view["status"], want, "{view}");
    let name = view["dns"]["name"].as_str().unwrap().to_string();
    (name, view["dns"]["value"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_mail_is_signed_with_every_active_key_and_verifies() {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let gw = setup(&upstream).await;
    let records = [
        key(&gw, "example.com", "rsa-2048", "rsa1", true).await,
        key(&gw, "Example.COM", "ed25519", "ed1", true).await,
        key(&gw, "example.com", "rsa-2048", "next", false).await,
        key(&gw, "example.org", "ed25519", "ed1", true).await,
    ];
    let txt: Vec<(&str, Rr)> = records
        .iter()
        .map(|(name, value)| (name.as_str(), Rr::Txt(value.clone())))
        .collect();
    let dns = serve_records(&txt).await;

    // Through the smtp upstream, sent on behalf of support@: both active keys sign.
    send(&gw, "support@example.com", "on behalf").await;
    let message = received(&upstream, "on behalf").await;
    let text = String::from_utf8_lossy(&message).to_string();
    assert!(
        text.contains("From: support team <support@example.com>\r\n"),
        "{text}"
    );
    assert!(text.contains("Sender: "), "{text}");
    let mut found = verify(dns, &message).await;
    found.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(
        found,
        vec![
            (
                true,
                "example.com".into(),
                "ed1".into(),
                Algorithm::Ed25519Sha256
            ),
            (
                true,
                "example.com".into(),
                "rsa1".into(),
                Algorithm::RsaSha256
            ),
        ],
        "{text}"
    );

    // Through the mx upstream, sent as sales@example.org: its Ed25519 key signs.
    send(&gw, "sales@example.org", "as sales").await;
    let message = received(&upstream, "as sales").await;
    let text = String::from_utf8_lossy(&message).to_string();
    assert!(
        text.contains("From: sales team <sales@example.org>\r\n"),
        "{text}"
    );
    let found = verify(dns, &message).await;
    assert_eq!(
        found,
        vec![(
            true,
            "example.org".into(),
            "ed1".into(),
            Algorithm::Ed25519Sha256
        )]
    );

    // A changed Subject no longer verifies.
    let tampered = text.replace("Subject: as sales", "Subject: as someone else");
    let found = verify(dns, tampered.as_bytes()).await;
    assert_eq!(found.len(), 1);
    assert!(!found[0].0, "a tampered message must fail");

    // Deleting example.org's only key stops signing its mail at once.
    let (status, _) = api(&gw, "DELETE", "/api/v1/dkim-keys/example.org/ed1", None).await;
    assert_eq!(status, 204);
    send(&gw, "sales@example.org", "unsigned").await;
    let message = received(&upstream, "unsigned").await;
    assert!(!String::from_utf8_lossy(&message).contains("DKIM-Signature"));
}

#[tokio::test]
async fn keys_are_managed_through_the_api() {
    let gw = Gateway::start(|_| {}).await;
    let create = |body: Value| {
        let gw = &gw;
        async move { api(gw, "POST", "/api/v1/dkim-keys", Some(body)).await }
    };
    // Refusals.
    let (status, problem) = create(json!({"domain": "localhost"})).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("domain")),
        "{problem}"
    );
    let (status, problem) = create(json!({"domain": "corp.example", "selector": "bad_sel"})).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("selector")),
        "{problem}"
    );
    let (status, _) = create(json!({"domain": "corp.example", "algorithm": "dsa"})).await;
    assert_eq!(status, 400);
    let (status, _) = create(json!({"domain": "corp.example", "private_key": "x"})).await;
    assert_eq!(status, 400, "unknown fields are refused");
    let (status, _) = http(gw.running.api, "GET", "/api/v1/dkim-keys", None, None).await;
    assert_eq!(status, 401);

    // A default selector, then a conflict on it.
    let (status, first) = create(json!({"domain": "corp.example"})).await;
    assert_eq!(status, 201, "{first}");
    let selector = first["selector"].as_str().unwrap().to_string();
    assert!(selector.starts_with("rsa-20"), "{selector}");
    assert_eq!(first["algorithm"], "rsa-2048");
    assert_eq!(first["status"], "pending");
    assert_eq!(
        first["dns"]["name"].as_str().unwrap(),
        format!("{selector}._domainkey.corp.example")
    );
    assert!(first["dns"]["value"]
        .as_str()
        .unwrap()
        .starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"));
    let (status, _) = create(json!({"domain": "corp.example"})).await;
    assert_eq!(status, 409);

    // Activating retires the domain's active key of the same algorithm only.
    let path = |s: &str| format!("/api/v1/dkim-keys/corp.example/{s}");
    ok(
        &gw,
        "POST",
        &format!("{}/activate", path(&selector)),
        json!({}),
    )
    .await;
    create(json!({"domain": "corp.example", "algorithm": "ed25519", "selector": "ed", "activate": true})).await;
    let (status, second) = create(json!({"domain": "corp.example", "selector": "rsa2"})).await;
    assert_eq!(status, 201);
    assert_eq!(second["status"], "pending");
    let activated = ok(
        &gw,
        "POST",
        &format!("{}/activate", path("rsa2")),
        json!({}),
    )
    .await;
    assert_eq!(activated["status"], "active");
    let (_, list) = api(&gw, "GET", "/api/v1/dkim-keys", None).await;
    let status_of = |s: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|k| k["selector"] == s)
            .map(|k| k["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_of(&selector).as_deref(), Some("retired"));
    assert_eq!(status_of("rsa2").as_deref(), Some("active"));
    assert_eq!(status_of("ed").as_deref(), Some("active"));
    assert!(!list.to_string().contains("private"));
    // Created active: the active key of its algorithm is retired in the same write.
    let (status, third) =
        create(json!({"domain": "corp.example", "selector": "rsa3", "activate": true})).await;
    assert_eq!(
        (status, third["status"].as_str()),
        (201, Some("active")),
        "{third}"
    );
    let (_, rsa2) = api(&gw, "GET", "/api/v1/dkim-keys/Corp.Example./rsa2", None).await;
    assert_eq!(rsa2["status"], "retired", "{rsa2}");
    let long = "a".repeat(60);
    let domain = format!("{long}.{long}.{long}.example");
    let (status, _) = create(json!({"domain": domain, "selector": format!("{long}.{long}")})).await;
    assert_eq!(status, 422, "the record name would pass 253 characters");

    // Unknown keys.
    for (method, p) in [
        ("GET", path("nope")),
        ("POST", format!("{}/activate", path("nope"))),
        ("DELETE", path("nope")),
    ] {
        let (status, _) = api(&gw, method, &p, None).await;
        assert_eq!(status, 404, "{method} {p}");
    }
    let (status, shown) = api(&gw, "GET", &path("ed"), None).await;
    assert_eq!(
        (status, shown["algorithm"].as_str()),
        (200, Some("ed25519"))
    );
    let (status, _) = api(&gw, "DELETE", &path("ed"), None).await;
    assert_eq!(status, 204);

    // Audited.
    let (_, audit) = api(&gw, "GET", "/api/v1/audit?limit=50", None).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["dkim.create", "dkim.activate", "dkim.delete"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}
