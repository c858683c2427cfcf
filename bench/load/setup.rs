//! What Postern must hold before the measured run, made through its control API: the
//! trusted system principal and its account, the `hold` account routed to the refusing
//! upstream, the `--accounts`/`--users` padding (requests pipelined over a few keep-alive
//! connections), and the `--prefill` messages left waiting in the spool.
//!
//! It measures only how long each step took; the measured run is `run`'s.

use crate::drive::{self, Plan};
use crate::http::Http;
use crate::message::{HOLD_SENDER, SENDER};
use crate::options::UserKind;
use crate::sink::Counters;
use anyhow::{bail, ensure, Context};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Requests in flight per connection, and connections, when creating in bulk.
const WINDOW: usize = 8;
const CONNECTIONS: usize = 4;

/// The control API of the server under test.
#[derive(Debug, Clone)]
pub struct Api {
    pub addr: SocketAddr,
    pub token: String,
}

/// The system principal the trusted listener submits as, and its `send_as` account.
pub async fn principal(api: &Api) -> anyhow::Result<()> {
    let user = json!({
        "login": SENDER, "email": SENDER, "kind": "system",
        "password": "load-secret-0123456789abcdefghijklmnopqrstuvwxyz",
    });
    create(api, "/api/v1/users", &user).await?;
    account(api, "load", SENDER, "sink").await
}

/// The account whose messages go to the refusing upstream and stay queued.
pub async fn hold_account(api: &Api) -> anyhow::Result<()> {
    account(api, "hold", HOLD_SENDER, "blackhole").await
}

async fn account(api: &Api, name: &str, address: &str, upstream: &str) -> anyhow::Result<()> {
    let account = json!({
        "name": name, "address": address, "upstream": upstream,
        "scope": {"kind": "system"}, "default_send_mode": "send_as",
    });
    create(api, "/api/v1/accounts", &account).await
}

async fn create(api: &Api, path: &str, body: &serde_json::Value) -> anyhow::Result<()> {
    let mut http = Http::connect(api.addr, &api.token).await?;
    let response = http.call("POST", path, Some(&body.to_string())).await?;
    ensure!(
        response.status == 201,
        "POST {path}: HTTP {}: {}",
        response.status,
        response.text()
    );
    Ok(())
}

/// Creates `count` extra accounts (scope `all_staff`, nobody may send) named after `tag`.
pub async fn extra_accounts(api: &Api, count: usize, tag: &str) -> anyhow::Result<Duration> {
    let bodies = (0..count).map(|i| {
        json!({
            "name": format!("extra-{tag}-{i}"),
            "address": format!("extra-{tag}-{i}@accounts.bench"),
            "scope": {"kind": "all_staff"}, "default_send_mode": "none",
        })
        .to_string()
    });
    bulk(api, "/api/v1/accounts", bodies.collect()).await
}

/// Creates `count` extra users of `kind` named after `tag`.
pub async fn extra_users(
    api: &Api,
    count: usize,
    kind: UserKind,
    tag: &str,
) -> anyhow::Result<Duration> {
    let password = match kind {
        UserKind::System => "extra-secret-0123456789abcdefghijklmnopqrstuvwxyz",
        UserKind::Staff | UserKind::Requester => "extra-password",
    };
    let bodies = (0..count).map(|i| {
        let login = format!("user-{tag}-{i}@users.bench");
        json!({"login": login, "email": login, "kind": kind.api_name(), "password": password})
            .to_string()
    });
    bulk(api, "/api/v1/users", bodies.collect()).await
}

/// POSTs every body, spread over [`CONNECTIONS`] connections; every answer must be 201.
async fn bulk(api: &Api, path: &'static str, bodies: Vec<String>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let per = bodies.len().div_ceil(CONNECTIONS).max(1);
    let tasks: Vec<_> = bodies
        .chunks(per)
        .map(|chunk| tokio::spawn(pipelined(api.clone(), path, chunk.to_vec())))
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

/// One connection: up to [`WINDOW`] requests written ahead of their responses.
async fn pipelined(api: Api, path: &str, bodies: Vec<String>) -> anyhow::Result<()> {
    let mut http = Http::connect(api.addr, &api.token).await?;
    let (mut sent, mut answered) = (0, 0);
    while answered < bodies.len() {
        while sent < bodies.len() && sent - answered < WINDOW {
            http.send("POST", path, Some(&bodies[sent])).await?;
            sent += 1;
        }
        let response = http.receive().await?;
        if response.status != 201 {
            bail!("POST {path}: HTTP {}: {}", response.status, response.text());
        }
        answered += 1;
    }
    Ok(())
}

/// `postern_spool_depth` from `/metrics`.
pub async fn spool_depth(api: &Api) -> anyhow::Result<u64> {
    let metrics = crate::http::get(api.addr, "/metrics").await?.text();
    let value = metrics
        .lines()
        .find_map(|line| line.strip_prefix("postern_spool_depth "))
        .context("no postern_spool_depth in /metrics")?;
    Ok(value.trim().parse::<f64>()? as u64)
}

/// The spool depth once it is back at `expected` (the last delivery marks land just after
/// the sink counted the message), or whatever it is after two seconds.
pub async fn settled_depth(api: &Api, expected: u64) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let depth = spool_depth(api).await?;
        if depth <= expected || Instant::now() > deadline {
            return Ok(depth);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What `--prefill` did.
#[derive(Debug)]
pub struct Prefilled {
    pub accepted: u64,
    /// Until the last 250, and until Postern had tried (and failed) each one once.
    pub accept: Duration,
    pub settled: Duration,
}

/// Submits `plan.total` messages from the hold account, then waits until the blackhole
/// has refused each of them once, so their first attempts do not overlap the run.
pub async fn prefill(
    plan: Plan,
    blackhole: &Counters,
    stall: Duration,
) -> anyhow::Result<Prefilled> {
    let refused_before = blackhole.refused.load(Ordering::Relaxed);
    let (started, results) = drive::run(plan).await;
    let accepted = results.samples.len() as u64;
    if let Some((reason, count)) = results.errors.iter().next() {
        eprintln!(
            "load: prefill: {} not accepted, e.g. {count} x {reason}",
            results.failed
        );
    }
    let accept = results
        .last_accept()
        .map_or(Duration::ZERO, |t| t - started);
    let target = refused_before + accepted;
    let mut progress = (blackhole.refused.load(Ordering::Relaxed), Instant::now());
    while progress.0 < target {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = blackhole.refused.load(Ordering::Relaxed);
        if now != progress.0 {
            progress = (now, Instant::now());
        } else if progress.1.elapsed() > stall {
            bail!(
                "prefill: Postern tried only {} of {accepted} held messages",
                now - refused_before
            );
        }
    }
    Ok(Prefilled {
        accepted,
        accept,
        settled: started.elapsed(),
    })
}
