//! OAuth2 towards upstreams (SPEC §5): a real HTTP token endpoint in the test issues
//! short-lived tokens; an SMTP upstream in the test accepts only a valid, unexpired one
//! (XOAUTH2 or OAUTHBEARER). The gateway fetches one token for many concurrent deliveries,
//! replaces it before it expires, gets over a 5xx of the endpoint, keeps mail queued while
//! the endpoint refuses its client, follows a rotated refresh token, and authenticates
//! with a certificate (a signed client assertion) instead of a secret. It never DKIM-signs
//! for a provider preset, which signs for itself.

mod common;

use common::desk::{gateway, submit};
use common::oauth::{assertion_is_valid, certificate, token_endpoint, upstream, Issuer, Shared};
use common::upstream::FakeUpstream;
use common::Gateway;
use postern::config::UpstreamConfig;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Submits `n` messages at once.
async fn burst(gw: &Arc<Gateway>, n: usize, tag: &str) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let gw = gw.clone();
        let subject = format!("{tag} {i}");
        tasks.push(tokio::spawn(async move { submit(&gw, &subject).await }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

async fn delivered(upstream: &FakeUpstream, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while upstream.record().messages.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} delivered",
            upstream.record().messages.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn microsoft365(endpoint: SocketAddr, upstream: &FakeUpstream) -> String {
    format!(
        r#"kind = "microsoft365"
tenant = "tenant-1"
client_id = "app-id"
client_secret = "app-secret"
username = "desk@corp.example"
token_url = "http://{endpoint}/tenant-1/oauth2/v2.0/token"
host = "127.0.0.1"
port = {}
tls = "none"
"#,
        upstream.addr.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_serves_concurrent_deliveries_and_is_replaced_before_it_expires() {
    let issuer: Shared = Arc::new(Mutex::new(Issuer {
        lifetime: 4,
        ..Issuer::default()
    }));
    let endpoint = token_endpoint(issuer.clone()).await;
    let upstream = upstream(issuer.clone()).await;
    let gw = Arc::new(gateway(&microsoft365(endpoint, &upstream)).await);
    // corp.example has an active DKIM key, but Microsoft signs for itself.
    let key = r#"{"domain": "corp.example", "algorithm": "ed25519", "activate": true}"#;
    let (status, _) = common::http(
        gw.running.api,
        "POST",
        "/api/v1/dkim-keys",
        Some(common::TOKEN),
        Some(key),
    )
    .await;
    assert_eq!(status, 201);

    burst(&gw, 8, "first").await;
    delivered(&upstream, 8).await;
    assert!(
        upstream
            .record()
            .messages
            .iter()
            .all(|m| !String::from_utf8_lossy(&m.data).contains("DKIM-Signature")),
        "a microsoft365 upstream is never signed"
    );
    assert_eq!(
        issuer.lock().unwrap().requests.len(),
        1,
        "one request for eight deliveries"
    );
    // Past the renewal point (half of the 4 s lifetime), before expiry: a new token.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    burst(&gw, 8, "second").await;
    delivered(&upstream, 16).await;
    assert_eq!(issuer.lock().unwrap().requests.len(), 2);
    let tokens: Vec<String> = upstream
        .record()
        .logins
        .iter()
        .map(|(_, t, _)| t.clone())
        .collect();
    assert_eq!(tokens.len(), 16, "every delivery authenticated: {tokens:?}");
    assert!(
        tokens[..8].iter().all(|t| *t == "tok-1") && tokens[8..].iter().all(|t| *t == "tok-2"),
        "{tokens:?}"
    );
    // The secret never reaches the API.
    let (_, text) = common::http(
        gw.running.api,
        "GET",
        "/api/v1/upstreams",
        Some(common::TOKEN),
        None,
    )
    .await;
    assert!(
        text.contains("microsoft365") && !text.contains("app-secret"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_outage_defers_and_a_refused_client_keeps_mail_queued() {
    let issuer: Shared = Arc::new(Mutex::new(Issuer {
        lifetime: 2,
        fail_next: 1,
        ..Issuer::default()
    }));
    let endpoint = token_endpoint(issuer.clone()).await;
    let upstream = upstream(issuer.clone()).await;
    let gw = gateway(&microsoft365(endpoint, &upstream)).await;

    submit(&gw, "after an outage").await;
    delivered(&upstream, 1).await;
    assert_eq!(
        issuer.lock().unwrap().requests.len(),
        2,
        "503, then a token on the retry"
    );

    // The client secret is revoked: the message waits in the queue, the reason shown.
    issuer.lock().unwrap().refuse = Some("invalid_client");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    submit(&gw, "while refused").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let queued = loop {
        let (_, text) = common::http(
            gw.running.api,
            "GET",
            "/api/v1/queue",
            Some(common::TOKEN),
            None,
        )
        .await;
        let queue: serde_json::Value = serde_json::from_str(&text).unwrap();
        let first = queue[0].clone();
        if first["attempts"].as_u64().unwrap_or(0) >= 2 {
            break first;
        }
        assert!(Instant::now() < deadline, "never retried: {queue}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = queued.to_string();
    assert!(text.contains("invalid_client"), "{text}");
    assert_eq!(
        upstream.record().messages.len(),
        1,
        "nothing sent without a token"
    );
    assert_eq!(
        account_health(&gw).await,
        ("failing".to_string(), true),
        "the account says why"
    );
    // Fixed: it leaves at the next retry, and the account is healthy again.
    issuer.lock().unwrap().refuse = None;
    delivered(&upstream, 2).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while account_health(&gw).await.0 != "healthy" {
        assert!(Instant::now() < deadline, "never healthy again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The health of the account delivering through `provider`, and whether its last error
/// names `invalid_client`.
async fn account_health(gw: &Gateway) -> (String, bool) {
    let (_, text) = common::http(
        gw.running.api,
        "GET",
        "/api/v1/accounts",
        Some(common::TOKEN),
        None,
    )
    .await;
    let accounts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let account = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["upstream"] == "provider")
        .unwrap();
    let status = &account["status"];
    let named = status["last_error"]
        .as_str()
        .is_some_and(|e| e.contains("invalid_client"));
    (status["health"].as_str().unwrap().to_string(), named)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_with_a_rotating_refresh_token() {
    let issuer: Shared = Arc::new(Mutex::new(Issuer {
        lifetime: 2,
        refresh_token: Some("rt-initial".into()),
        ..Issuer::default()
    }));
    let endpoint = token_endpoint(issuer.clone()).await;
    let upstream = upstream(issuer.clone()).await;
    let settings = format!(
        r#"kind = "smtp"
host = "127.0.0.1"
port = {}
tls = "none"
auth = "oauthbearer"
username = "desk@corp.example"

[oauth]
token_url = "http://{endpoint}/tenant-1/oauth2/v2.0/token"
grant = "refresh_token"
client_id = "app-id"
refresh_token = "rt-initial"
"#,
        upstream.addr.port()
    );
    let gw = gateway(&settings).await;
    submit(&gw, "first").await;
    delivered(&upstream, 1).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    submit(&gw, "second").await;
    delivered(&upstream, 2).await;
    let issuer = issuer.lock().unwrap();
    let used: Vec<&str> = issuer
        .requests
        .iter()
        .map(|r| r["refresh_token"].as_str())
        .collect();
    // One request at start (the refresh token is checked before mail needs it), then one
    // per expired token; each uses the refresh token the answer before it rotated to.
    let expected: Vec<String> = (0..used.len())
        .map(|i| match i {
            0 => "rt-initial".to_string(),
            i => format!("rt-{i}"),
        })
        .collect();
    assert!(used.len() >= 2 && used == expected, "{used:?}");
    let commands = upstream.record().commands.clone();
    assert!(
        commands
            .iter()
            .any(|(_, c)| c.starts_with("AUTH OAUTHBEARER ")),
        "{commands:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_instead_of_a_secret() {
    let issuer: Shared = Arc::new(Mutex::new(Issuer {
        lifetime: 3600,
        ..Issuer::default()
    }));
    let endpoint = token_endpoint(issuer.clone()).await;
    let upstream = upstream(issuer.clone()).await;
    let token_url = format!("http://{endpoint}/tenant-1/oauth2/v2.0/token");
    let (cert_pem, key_pem, registered) = certificate(&token_url);
    issuer.lock().unwrap().certificate = Some(registered.clone());
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("app.pem"), dir.path().join("app.key"));
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let settings = microsoft365(endpoint, &upstream).replace(
        "client_secret = \"app-secret\"\n",
        &format!(
            "client_certificate = \"{}\"\nclient_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    let gw = gateway(&settings).await;

    submit(&gw, "signed assertion").await;
    delivered(&upstream, 1).await;
    let request = issuer.lock().unwrap().requests[0].clone();
    assert!(!request.contains_key("client_secret"), "{request:?}");
    // The endpoint took it, and would take neither a replay nor a changed one.
    let jwt = &request["client_assertion"];
    let mut seen = issuer.lock().unwrap().seen.clone();
    assert!(!assertion_is_valid(jwt, &registered, &mut seen), "a replay");
    let parts: Vec<&str> = jwt.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        parts[1].replacen('e', "f", 1),
        parts[2]
    );
    assert!(!assertion_is_valid(
        &forged,
        &registered,
        &mut Default::default()
    ));

    // Both files or neither, and never beside a secret.
    let both = microsoft365(endpoint, &upstream).replace(
        "client_secret = \"app-secret\"\n",
        &format!(
            "client_secret = \"s\"\nclient_certificate = \"{}\"\nclient_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    let half = microsoft365(endpoint, &upstream).replace(
        "client_secret = \"app-secret\"\n",
        &format!("client_certificate = \"{}\"\n", cert.display()),
    );
    for (settings, field) in [(both, "client_secret"), (half, "client_key")] {
        let upstream: UpstreamConfig = toml::from_str(&settings).unwrap();
        let problem = upstream.smtp().unwrap().problem();
        assert_eq!(problem.map(|p| p.0), Some(field), "{settings}");
    }
}
