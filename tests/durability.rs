//! A `250` is a promise: with the upstream down, accepted messages survive a hard kill of
//! the real binary (SIGKILL, no graceful flush) and are all delivered after a restart.

mod common;

use common::load::{subject_counts, submit_until_killed};
use common::upstream::{FakeUpstream, Script};
use common::{free_ports, spawn_binary, start_with_alice, Client};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

fn write_config(dir: &Path, smtp: u16, api: u16, upstream_port: u16) -> std::path::PathBuf {
    let text = format!(
        r#"data_dir = "{data}"
hostname = "gw.test"
default_upstream = "relay"
[api]
bind = "127.0.0.1:{api}"
[tls]
cert = "{dir}/cert.pem"
key = "{dir}/key.pem"
[[listener]]
name = "plain"
bind = "127.0.0.1:{smtp}"
tls = "none"
allow_plaintext_auth = true
[queue]
retry_intervals_secs = [1]
[upstream.relay]
kind = "smtp"
host = "127.0.0.1"
port = {upstream_port}
tls = "none"
timeout_secs = 5
"#,
        data = dir.join("data").display(),
        dir = dir.display(),
    );
    let path = dir.join("postern.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_mail_survives_a_hard_kill() {
    const N: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let [smtp, api, dead] = free_ports();
    let config = write_config(dir.path(), smtp, api, dead);
    let mut child = start_with_alice(&config, api).await;

    let mut c = Client::connect(format!("127.0.0.1:{smtp}").parse().unwrap()).await;
    c.login("alice@example.com", "alice-password").await;
    for i in 0..N {
        c.expect("MAIL FROM:<alice@example.com>", 250).await;
        c.expect("RCPT TO:<bob@example.net>", 250).await;
        c.expect("DATA", 354).await;
        c.send(
            format!("From: alice@example.com\r\nSubject: durable {i}\r\n\r\nmessage {i}\r\n")
                .as_bytes(),
        )
        .await;
        c.expect(".", 250).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let config = write_config(dir.path(), smtp, api, upstream.addr.port());
    let mut child = spawn_binary(&config);
    let deadline = Instant::now() + Duration::from_secs(30);
    let subjects = loop {
        let subjects: HashSet<String> = upstream
            .record()
            .messages
            .iter()
            .filter_map(|m| {
                let text = String::from_utf8_lossy(&m.data);
                text.lines()
                    .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            })
            .collect();
        if subjects.len() == N || Instant::now() > deadline {
            break subjects;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    for i in 0..N {
        assert!(
            subjects.contains(&format!("durable {i}")),
            "message {i} lost; got {subjects:?}"
        );
    }
}

fn subjects_of(upstream: &FakeUpstream) -> HashSet<String> {
    subject_counts(&[upstream]).into_keys().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_250_survives_kill_9_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let first = FakeUpstream::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let [smtp, api] = free_ports();
    let config = write_config(dir.path(), smtp, api, first.addr.port());
    let mut child = start_with_alice(&config, api).await;

    // Eight pipelining clients submit while the gateway delivers; then kill -9 mid-stream.
    let smtp_addr: SocketAddr = format!("127.0.0.1:{smtp}").parse().unwrap();
    let clients: Vec<_> = (0..8)
        .map(|t| tokio::spawn(submit_until_killed(smtp_addr, t)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.unwrap());
    }
    assert!(
        acknowledged.len() > 50,
        "too little load to mean anything: {}",
        acknowledged.len()
    );

    let second = FakeUpstream::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let config = write_config(dir.path(), smtp, api, second.addr.port());
    let mut child = spawn_binary(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let mut arrived = subjects_of(&first);
        arrived.extend(subjects_of(&second));
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|s| !arrived.contains(*s))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages lost: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(10)]
    );
}

/// What the upstream does during one life of the gateway.
#[derive(Debug, Clone, Copy)]
enum Upstream {
    /// Nothing listens: every attempt fails to connect.
    Down,
    /// Answers the first many messages with `451`, then takes them.
    Flaky,
    Up,
}

/// A small xorshift generator: the test's random moments, reproducible from its seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// Creates user `login` through the API; its id.
async fn create_user(api: SocketAddr, login: &str) -> u64 {
    let body = format!(
        r#"{{"login":"{login}","email":"{login}","kind":"staff","password":"pw-{login}"}}"#
    );
    let (status, text) = common::http(
        api,
        "POST",
        "/api/v1/users",
        Some(common::TOKEN),
        Some(&body),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let user: serde_json::Value = serde_json::from_str(&text).unwrap();
    user["id"].as_u64().unwrap()
}

/// One life of the gateway: started, loaded by six pipelining clients (in some lives a
/// user created through the API), killed with SIGKILL after `life`; what it acknowledged.
async fn one_life(
    config: &Path,
    smtp: SocketAddr,
    api: SocketAddr,
    round: usize,
    life: Duration,
) -> (Vec<String>, Option<u64>) {
    let mut child = spawn_binary(config);
    common::wait_ready(api, &mut child, &common::binary_log(config)).await;
    let clients: Vec<_> = (0..6)
        .map(|t| tokio::spawn(submit_until_killed(smtp, round * 100 + t)))
        .collect();
    // Some lives make an API change (a store sync), the others none: a store that synced
    // nothing since its start is what repeated sled's ids.
    let user = match round % 3 {
        0 => Some(create_user(api, &format!("crash{round}@example.com")).await),
        _ => None,
    };
    tokio::time::sleep(life).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.unwrap());
    }
    (acknowledged, user)
}

/// Issue 24: a `250` survives any sequence of crashes. The real binary under load is
/// killed with SIGKILL seven times in a row at random moments (some within a second of
/// its start), the upstream down, failing or up in turn; then every message answered
/// `250` must reach an upstream, and every user answered `201` must still be there, each
/// with an id of its own. Queue ids that came back after a second crash (sled's lazily
/// persisted counter) lost hundreds of messages here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_250_survives_repeated_kill_9() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut dice = Dice(seed);
    let dir = tempfile::tempdir().unwrap();
    let [smtp_port, api_port] = free_ports();
    let smtp: SocketAddr = format!("127.0.0.1:{smtp_port}").parse().unwrap();
    let api: SocketAddr = format!("127.0.0.1:{api_port}").parse().unwrap();
    let mut upstreams = Vec::new();
    let config = write_config(dir.path(), smtp_port, api_port, free_ports::<1>()[0]);
    let mut first = start_with_alice(&config, api_port).await;
    first.kill().unwrap();
    first.wait().unwrap();

    let (mut acknowledged, mut users) = (Vec::new(), Vec::new());
    // Runs of lives with the upstream down: the accounts' status does not change, so
    // nothing but the API syncs the store.
    let modes = [
        Upstream::Up,
        Upstream::Down,
        Upstream::Down,
        Upstream::Down,
        Upstream::Flaky,
        Upstream::Down,
        Upstream::Down,
    ];
    for (round, &mode) in modes.iter().enumerate() {
        let port = match mode {
            Upstream::Down => free_ports::<1>()[0],
            Upstream::Flaky | Upstream::Up => {
                let tempfail_first = if matches!(mode, Upstream::Flaky) {
                    1_000_000
                } else {
                    0
                };
                let upstream = FakeUpstream::start(Script {
                    pipelining: true,
                    tempfail_first,
                    ..Script::default()
                })
                .await;
                let port = upstream.addr.port();
                upstreams.push(upstream);
                port
            }
        };
        let config = write_config(dir.path(), smtp_port, api_port, port);
        // Half the lives end within a second of the start, the rest within three.
        let life = Duration::from_millis(200 + dice.roll(if round % 2 == 0 { 800 } else { 2800 }));
        let (acked, user) = one_life(&config, smtp, api, round, life).await;
        println!(
            "life {round}: upstream {mode:?}, killed after {life:?}, {} acknowledged",
            acked.len()
        );
        acknowledged.extend(acked);
        users.extend(user.map(|id| (round, id)));
    }
    assert!(
        acknowledged.len() > 100,
        "too little load to mean anything: {}",
        acknowledged.len()
    );

    let last = FakeUpstream::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let config = write_config(dir.path(), smtp_port, api_port, last.addr.port());
    let mut child = spawn_binary(&config);
    common::wait_ready(api, &mut child, &common::binary_log(&config)).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let (missing, twice) = loop {
        let mut all: Vec<&FakeUpstream> = upstreams.iter().collect();
        all.push(&last);
        let counts = subject_counts(&all);
        let missing: Vec<String> = acknowledged
            .iter()
            .filter(|s| !counts.contains_key(*s))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break (missing, counts.values().filter(|&&n| n > 1).count());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, text) = common::http(api, "GET", "/api/v1/users", Some(common::TOKEN), None).await;
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "{} acknowledged, {} lost, {twice} delivered more than once (seed {seed})",
        acknowledged.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages lost (seed {seed}): {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(status, 200, "{text}");
    let listed: serde_json::Value = serde_json::from_str(&text).unwrap();
    let listed = listed
        .as_array()
        .or(listed["items"].as_array())
        .expect("a list of users")
        .clone();
    let mut ids: Vec<u64> = listed.iter().map(|u| u["id"].as_u64().unwrap()).collect();
    for (round, id) in &users {
        let found = listed.iter().find(|u| u["id"].as_u64() == Some(*id));
        let login = found.map(|u| u["login"].as_str().unwrap_or_default().to_string());
        assert_eq!(
            login,
            Some(format!("crash{round}@example.com")),
            "user {id} of life {round}"
        );
    }
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all, "two users share an id");
}
