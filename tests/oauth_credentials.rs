//! Credentials towards providers (SPEC §5, issue 27 parts 5 and 6): a Google service
//! account gets its tokens by the JWT-bearer grant (RFC 7523), checked by the test token
//! endpoint as Google checks it, and sends as the user it acts for; credentials that are
//! about to stop working say so — a refresh token the endpoint refuses, a client secret
//! or certificate near its end — as warnings that make the account `degraded` in
//! `GET /api/v1/accounts/{id}/status`, with the date mail stops.

mod common;

use common::desk::{gateway, submit};
use common::oauth::{certificate_until, service_account, token_endpoint, upstream, Issuer, Shared};
use common::upstream::FakeUpstream;
use common::Gateway;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAY: u64 = 86_400;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token_url(endpoint: SocketAddr) -> String {
    format!("http://{endpoint}/tenant-1/oauth2/v2.0/token")
}

async fn delivered(upstream: &FakeUpstream, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while upstream.record().messages.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} delivered",
            upstream.record().messages.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status of the account delivering through the upstream `provider`.
async fn status(gw: &Gateway) -> Value {
    let get = |path: String| async move {
        let (code, text) =
            common::http(gw.running.api, "GET", &path, Some(common::TOKEN), None).await;
        assert_eq!(code, 200, "{text}");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let accounts = get("/api/v1/accounts".into()).await;
    let id = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["upstream"] == "provider")
        .expect("an account on the provider")["id"]
        .clone();
    get(format!("/api/v1/accounts/{id}/status")).await
}

/// Waits until the account's status shows a warning of `kind`; the status then.
async fn warned(gw: &Gateway, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = status(gw).await;
        let warnings = status["warnings"].as_array().cloned().unwrap_or_default();
        if warnings.iter().any(|w| w["kind"] == kind) {
            return status;
        }
        assert!(Instant::now() < deadline, "no {kind} warning: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn warning<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == kind)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_acts_for_the_user_by_domain_wide_delegation() {
    let issuer: Shared = Arc::new(Mutex::new(Issuer {
        lifetime: 3600,
        ..Issuer::default()
    }));
    let endpoint = token_endpoint(issuer.clone()).await;
    let upstream = upstream(issuer.clone()).await;
    let (key_file, account) = service_account(&token_url(endpoint), "desk@corp.example");
    issuer.lock().unwrap().service_account = Some(account.clone());
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("service-account.json");
    std::fs::write(&key, key_file).unwrap();
    // No token_url: the key file names the endpoint; no subject: the username.
    let settings = format!(
        "kind = \"google\"\nservice_account_key = \"{}\"\nusername = \"desk@corp.example\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
        key.display(),
        upstream.addr.port()
    );
    let gw = gateway(&settings).await;
    submit(&gw, "sent by a service account").await;
    submit(&gw, "and another").await;
    delivered(&upstream, 2).await;

    let requests = issuer.lock().unwrap().requests.clone();
    assert_eq!(requests.len(), 1, "one token for both: {requests:?}");
    assert_eq!(
        requests[0]["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    assert!(
        !requests[0].contains_key("client_secret"),
        "{:?}",
        requests[0]
    );
    let logins = upstream.record().logins.clone();
    assert!(
        logins
            .iter()
            .all(|(user, token, _)| user == "desk@corp.example" && token == "tok-1"),
        "{logins:?}"
    );
    assert_eq!(status(&gw).await["health"], "healthy");

    // The endpoint takes no assertion for another user, nor an altered one.
    let jwt = &requests[0]["assertion"];
    let mut other = account.clone();
    other.subject = "boss@corp.example".into();
    assert!(!common::oauth::service_assertion_is_valid(jwt, &other));
    let parts: Vec<&str> = jwt.split('.').collect();
    let forged = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    assert!(!common::oauth::service_assertion_is_valid(
        &forged, &account
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_key_that_is_not_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("client_secret.json");
    std::fs::write(&key, r#"{"type": "authorized_user", "client_id": "c"}"#).unwrap();
    let settings = format!(
        "kind = \"google\"\nservice_account_key = \"{}\"\nusername = \"desk@corp.example\"\n",
        key.display()
    );
    let upstream: postern::config::UpstreamConfig = toml::from_str(&settings).unwrap();
    let shared = postern::relay::Shared::standalone();
    let smtp = upstream.smtp().unwrap();
    assert_eq!(smtp.problem(), None);
    let error = postern::relay::smtp::SmtpUpstream::with_shared("google", &smtp, "gw", &shared)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("client_secret.json") && error.contains("not \"service_account\""),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_token_is_a_warning_before_mail_needs_it() {
    let issuer: Shared = Arc::new(Mutex::new(Issuer {
        lifetime: 3600,
        refresh_token: Some("rt-initial".into()),
        refuse: Some("invalid_grant"),
        ..Issuer::default()
    }));
    let endpoint = token_endpoint(issuer.clone()).await;
    let upstream = upstream(issuer.clone()).await;
    let settings = format!(
        "kind = \"google\"\nclient_id = \"app-id\"\nrefresh_token = \"rt-initial\"\nusername = \"desk@corp.example\"\ntoken_url = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
        token_url(endpoint),
        upstream.addr.port()
    );
    let started = now();
    let gw = gateway(&settings).await;
    // Checked at start: no message has needed a token yet.
    let seen = warned(&gw, "refresh_token_refused").await;
    assert_eq!(seen["health"], "degraded", "{seen}");
    let refused = warning(&seen, "refresh_token_refused");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("sign in again"),
        "{refused}"
    );
    let fails_at = refused["fails_at"].as_u64().unwrap();
    assert!(
        (started..=now()).contains(&fails_at),
        "failing now: {refused}"
    );

    // A new consent: the next token request succeeds and the warning goes.
    issuer.lock().unwrap().refuse = None;
    tokio::time::sleep(Duration::from_secs(6)).await; // past the failure hold
    submit(&gw, "after re-consent").await;
    delivered(&upstream, 1).await;
    let status = status(&gw).await;
    assert_eq!(status["health"], "healthy", "{status}");
    assert_eq!(status["warnings"], serde_json::json!([]), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_secret_near_its_end_makes_the_account_degraded_until_then() {
    let issuer: Shared = Arc::new(Mutex::new(Issuer {
        lifetime: 3600,
        ..Issuer::default()
    }));
    let endpoint = token_endpoint(issuer.clone()).await;
    let upstream = upstream(issuer.clone()).await;
    let day = postern::rewrite::date::yyyymmdd(now() + 5 * DAY);
    let ends = format!("{}-{}-{}", &day[0..4], &day[4..6], &day[6..8]);
    let settings = format!(
        "kind = \"microsoft365\"\ntenant = \"tenant-1\"\nclient_id = \"app-id\"\nclient_secret = \"app-secret\"\nclient_secret_expires = \"{ends}\"\nusername = \"desk@corp.example\"\ntoken_url = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
        token_url(endpoint),
        upstream.addr.port()
    );
    let gw = gateway(&settings).await;
    let status = warned(&gw, "secret_expiry").await;
    assert_eq!(status["health"], "degraded", "{status}");
    let secret = warning(&status, "secret_expiry");
    let expected = postern::config::credentials::parse_date(&ends).unwrap();
    assert_eq!(secret["fails_at"].as_u64(), Some(expected), "{secret}");
    assert!(
        secret["message"].as_str().unwrap().contains(&ends),
        "{secret}"
    );
    // It still works meanwhile: mail goes, the warning stays.
    submit(&gw, "while the secret lasts").await;
    delivered(&upstream, 1).await;
    assert_eq!(status_after(&gw).await["health"], "degraded");
    let series = "postern_account_warning{subject=\"upstream:provider\",kind=\"secret_expiry\"}";
    assert_eq!(gw.metric(series).await, 1.0, "{series}");
}

/// The status once the last delivery's outcome is recorded.
async fn status_after(gw: &Gateway) -> Value {
    tokio::time::sleep(Duration::from_millis(300)).await;
    status(gw).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_near_its_end_is_a_warning_with_its_not_after() {
    let issuer: Shared = Arc::new(Mutex::new(Issuer {
        lifetime: 3600,
        ..Issuer::default()
    }));
    let endpoint = token_endpoint(issuer.clone()).await;
    let upstream = upstream(issuer.clone()).await;
    let url = token_url(endpoint);
    let (cert_pem, key_pem, registered) = certificate_until(&url, Some(now() + 3 * DAY));
    issuer.lock().unwrap().certificate = Some(registered);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("app.pem"), dir.path().join("app.key"));
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let settings = format!(
        "kind = \"microsoft365\"\ntenant = \"tenant-1\"\nclient_id = \"app-id\"\nclient_certificate = \"{}\"\nclient_key = \"{}\"\nusername = \"desk@corp.example\"\ntoken_url = \"{url}\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
        cert.display(),
        key.display(),
        upstream.addr.port()
    );
    let gw = gateway(&settings).await;
    let status = warned(&gw, "certificate_expiry").await;
    assert_eq!(status["health"], "degraded", "{status}");
    let fails_at = warning(&status, "certificate_expiry")["fails_at"]
        .as_u64()
        .unwrap();
    // rcgen writes the end date at midnight UTC of that day.
    let day = (now() + 3 * DAY) / DAY * DAY;
    assert_eq!(fails_at, day, "{status}");
    submit(&gw, "signed assertion still works").await;
    delivered(&upstream, 1).await;
}

/// A refresh-token grant towards `token_url`, configured with `refresh_token`.
fn refresh_grant(token_url: &str, refresh_token: &str) -> postern::config::OAuthConfig {
    toml::from_str(&format!(
        "token_url = \"{token_url}\"\ngrant = \"refresh_token\"\nclient_id = \"app-id\"\nrefresh_token = \"{refresh_token}\"\nrefresh_token_idle_days = 90\n"
    ))
    .unwrap()
}

/// What every upstream shares, recording refresh-token use in `store`.
fn shared_with(store: &postern::store::Store) -> postern::relay::Shared {
    postern::relay::Shared {
        refreshes: Some(store.refreshes().clone()),
        ..postern::relay::Shared::standalone()
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_and_its_last_use_outlive_a_restart() {
    use postern::relay::oauth::TokenSource;
    let issuer: Shared = Arc::new(Mutex::new(Issuer {
        lifetime: 3600,
        refresh_token: Some("rt-initial".into()),
        ..Issuer::default()
    }));
    let endpoint = token_endpoint(issuer.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = postern::store::Store::open(dir.path()).unwrap();
    let shared = shared_with(&store);
    let config = refresh_grant(&token_url(endpoint), "rt-initial");
    let first = TokenSource::new("provider", &config, "desk@corp.example", &shared, None).unwrap();
    assert_eq!(first.token().await.unwrap(), "tok-1");
    let rotated = |store: &postern::store::Store| {
        let record = store.refreshes().get("provider").unwrap();
        record.and_then(|r| r.current).is_some_and(|t| t == "rt-1")
    };
    until("the rotated token recorded", || rotated(&store)).await;
    drop(first);

    // The upstream built again (a restart, a reload): the provider's rotated token is the
    // one in force — the configured one may have expired unused meanwhile.
    let second = TokenSource::new("provider", &config, "desk@corp.example", &shared, None).unwrap();
    until("a token request at start", || {
        issuer.lock().unwrap().requests.len() == 2
    })
    .await;
    assert_eq!(second.token().await.unwrap(), "tok-2");
    let used: Vec<String> = issuer
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|r| r["refresh_token"].clone())
        .collect();
    assert_eq!(used, ["rt-initial", "rt-1"]);
    assert!(shared.warnings.about(1, "provider").is_empty());

    // A new refresh token configured (a new consent): the record of the old one is not its.
    let third = TokenSource::new(
        "provider",
        &refresh_grant(&token_url(endpoint), "rt-2"),
        "desk@corp.example",
        &shared,
        None,
    )
    .unwrap();
    until("a token request at start", || {
        issuer.lock().unwrap().requests.len() == 3
    })
    .await;
    assert_eq!(issuer.lock().unwrap().requests[2]["refresh_token"], "rt-2");
    drop(third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_unused_near_its_providers_limit_is_a_warning() {
    use postern::relay::oauth::{digest, TokenSource};
    let dir = tempfile::tempdir().unwrap();
    let store = postern::store::Store::open(dir.path()).unwrap();
    let last = now() - 80 * DAY;
    let record = postern::store::Refresh {
        token: digest("rt-old"),
        at: last,
        current: None,
    };
    store.refreshes().record("idle", &record).unwrap();
    let shared = shared_with(&store);
    // The endpoint is unreachable, so the token cannot be used to keep it alive.
    let config = refresh_grant("http://127.0.0.1:1/token", "rt-old");
    let _source = TokenSource::new("idle", &config, "desk@corp.example", &shared, None).unwrap();
    until("a refresh_token_expiry warning", || {
        !shared.warnings.about(1, "idle").is_empty()
    })
    .await;
    let warnings = shared.warnings.about(1, "idle");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].kind, "refresh_token_expiry");
    assert_eq!(warnings[0].fails_at, Some(last + 90 * DAY));
    assert!(
        warnings[0].message.contains("90 days"),
        "{}",
        warnings[0].message
    );
}
