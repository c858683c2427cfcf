//! Upstream health (SPEC §5): each class of upstream error moves the status of the
//! accounts behind that upstream — authentication failure, "send as" denied and TLS
//! failure to `failing` (the message stays queued, not bounced), rate limits and
//! greylisting to `degraded` — with the last error, in the API and in `/metrics`; and a
//! delivery that goes through brings it back to `healthy`.

mod common;

use common::helpdesk::api;
use common::upstream::{FakeUpstream, Script};
use common::{sink_upstream, Client, Gateway};
use postern::config::{UpstreamAuth, UpstreamConfig, UpstreamTls};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DESK: &str = "desk@corp.example";

/// One upstream per case, each with one account; mail through each from `DESK`.
struct Case {
    name: &'static str,
    upstream: FakeUpstream,
    account: u64,
}

/// A case: upstream and account name, the fake upstream's script, and how the gateway's
/// settings for it differ from a plain upstream.
type Setup = (&'static str, Script, fn(&mut UpstreamConfig));

async fn gateway(cases: Vec<Setup>) -> (Gateway, Vec<Case>) {
    let mut upstreams = Vec::new();
    for (name, script, adjust) in cases {
        let fake = FakeUpstream::start(script).await;
        let mut config = sink_upstream(fake.addr.port());
        adjust(&mut config);
        upstreams.push((name, fake, config));
    }
    let configs: Vec<(String, UpstreamConfig)> = upstreams
        .iter()
        .map(|(name, _, config)| (name.to_string(), config.clone()))
        .collect();
    let gw = Gateway::start(move |c| {
        for (name, config) in configs {
            c.upstreams.insert(name, config);
        }
        c.queue.retry_intervals_secs = vec![1];
    })
    .await;
    gw.create_user(DESK, "staff", "desk-password-1").await;
    let mut cases = Vec::new();
    for (name, upstream, _) in upstreams {
        let body = json!({"name": name, "address": format!("{name}@corp.example"), "upstream": name,
            "scope": {"kind": "all_staff"}, "default_send_mode": "send_as"});
        let (status, account) = api(&gw, "POST", "/api/v1/accounts", Some(body)).await;
        assert_eq!(status, 201, "{account}");
        let account = account["id"].as_u64().unwrap();
        cases.push(Case {
            name,
            upstream,
            account,
        });
    }
    (gw, cases)
}

async fn send_through(gw: &Gateway, account: &str) {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO desk.corp.example", 250).await;
    c.login(DESK, "desk-password-1").await;
    c.expect(&format!("MAIL FROM:<{account}@corp.example>"), 250)
        .await;
    c.expect("RCPT TO:<customer@example.net>", 250).await;
    c.expect("DATA", 354).await;
    let text = format!("From: {account}@corp.example\r\nSubject: via {account}\r\n\r\nhi\r\n.\r\n");
    c.send(text.as_bytes()).await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;
}

/// Waits until the account's status is `health`; returns it.
async fn status(gw: &Gateway, account: u64, health: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, view) = api(
            gw,
            "GET",
            &format!("/api/v1/accounts/{account}/status"),
            None,
        )
        .await;
        if view["health"] == health {
            return view;
        }
        assert!(Instant::now() < deadline, "never {health}: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tls(config: &mut UpstreamConfig) {
    if let UpstreamConfig::Smtp(smtp) = config {
        smtp.tls = UpstreamTls::Starttls;
    }
}

fn login(config: &mut UpstreamConfig) {
    if let UpstreamConfig::Smtp(smtp) = config {
        smtp.auth = UpstreamAuth::Plain;
        smtp.username = "desk".into();
        smtp.password = "right".into();
    }
}

fn plain(_: &mut UpstreamConfig) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_class_of_upstream_error_moves_the_account_status_and_back() {
    let script = Script {
        pipelining: true,
        ..Script::default()
    };
    let (gw, cases) = gateway(vec![
        (
            "sendas",
            Script {
                mail_reply: Some(
                    "550 5.7.60 SMTP; Client does not have permissions to send as this sender"
                        .into(),
                ),
                ..script.clone()
            },
            plain,
        ),
        ("tls", script.clone(), tls),
        (
            "auth",
            Script {
                auth: Some(("desk".into(), "right".into())),
                auth_fail_first: 1,
                ..script.clone()
            },
            login,
        ),
        (
            "rate",
            Script {
                tempfail_first: 1,
                tempfail_reply: Some(
                    "451 4.7.28 Our system has detected an unusual rate of unsolicited mail".into(),
                ),
                ..script.clone()
            },
            plain,
        ),
        (
            "grey",
            Script {
                tempfail_first: 1,
                tempfail_reply: Some("450 4.7.1 Greylisted, please try again later".into()),
                ..script.clone()
            },
            plain,
        ),
    ])
    .await;
    for case in &cases {
        send_through(&gw, case.name).await;
    }
    let by = |name: &str| cases.iter().find(|c| c.name == name).unwrap();

    // Failing: the account cannot send; its message waits instead of bouncing.
    let sendas = status(&gw, by("sendas").account, "failing").await;
    assert!(
        sendas["last_error"].as_str().unwrap().contains("5.7.60"),
        "{sendas}"
    );
    let tls = status(&gw, by("tls").account, "failing").await;
    assert!(
        tls["last_error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("tls"),
        "{tls}"
    );
    let (_, queue) = api(&gw, "GET", "/api/v1/queue", None).await;
    let waiting: Vec<&Value> = queue
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["upstream"] == "sendas")
        .collect();
    assert_eq!(waiting.len(), 1, "held, not bounced: {queue}");
    assert_eq!(waiting[0]["recipients"][0]["status"], "pending", "{queue}");

    // Authentication refused once (then accepted on the retry): failing, then healthy.
    let auth = by("auth");
    let deadline = Instant::now() + Duration::from_secs(15);
    while auth.upstream.record().messages.is_empty() {
        assert!(
            Instant::now() < deadline,
            "never delivered after the auth failure"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    status(&gw, auth.account, "healthy").await;
    assert!(auth.upstream.record().auth_attempts >= 2, "refused first");
    let (_, audit_free) = api(
        &gw,
        "GET",
        &format!("/api/v1/accounts/{}/status", auth.account),
        None,
    )
    .await;
    assert_eq!(audit_free["last_error"], Value::Null);

    // Degraded by a rate limit and by greylisting, healthy again once the retry goes through.
    for name in ["rate", "grey"] {
        let case = by(name);
        let deadline = Instant::now() + Duration::from_secs(15);
        while case.upstream.record().messages.is_empty() {
            assert!(Instant::now() < deadline, "{name}: never delivered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        status(&gw, case.account, "healthy").await;
    }
    let metrics = common::http(gw.running.api, "GET", "/metrics", None, None)
        .await
        .1;
    assert!(
        metrics.contains("postern_account_health{account=\"sendas\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("postern_account_health{account=\"rate\"} 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_seen_as_degraded_while_it_lasts() {
    let (gw, cases) = gateway(vec![(
        "rate",
        Script {
            pipelining: true,
            tempfail_first: 1000,
            tempfail_reply: Some("421 4.7.0 Too many messages, slow down".into()),
            ..Script::default()
        },
        plain,
    )])
    .await;
    send_through(&gw, "rate").await;
    let degraded = status(&gw, cases[0].account, "degraded").await;
    assert!(
        degraded["last_error"]
            .as_str()
            .unwrap()
            .contains("Too many messages"),
        "{degraded}"
    );
}

/// Health follows the account: one moved from a failing upstream to a working one (which
/// other accounts already use, healthy) becomes healthy once its mail gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_moved_to_a_working_upstream_becomes_healthy() {
    let script = Script {
        pipelining: true,
        ..Script::default()
    };
    let denied = Script {
        mail_reply: Some(
            "550 5.7.60 SMTP; Client does not have permissions to send as this sender".into(),
        ),
        ..script.clone()
    };
    let (gw, cases) = gateway(vec![("steady", script, plain), ("moved", denied, plain)]).await;
    let (steady, moved) = (&cases[0], &cases[1]);
    send_through(&gw, "steady").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while steady.upstream.record().messages.is_empty() {
        assert!(Instant::now() < deadline, "never delivered through steady");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    send_through(&gw, "moved").await;
    status(&gw, moved.account, "failing").await;

    let path = format!("/api/v1/accounts/{}", moved.account);
    let (code, body) = api(&gw, "PATCH", &path, Some(json!({"upstream": "steady"}))).await;
    assert_eq!(code, 200, "{body}");
    send_through(&gw, "moved").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while steady.upstream.record().messages.len() < 2 {
        assert!(Instant::now() < deadline, "never delivered after the move");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let healthy = status(&gw, moved.account, "healthy").await;
    assert_eq!(healthy["last_error"], Value::Null, "{healthy}");
    status(&gw, steady.account, "healthy").await;
}
