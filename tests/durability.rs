//! A `250` is a promise: with the upstream down, accepted messages survive a hard kill of
//! the real binary (SIGKILL, no graceful flush) and are all delivered after a restart.

mod common;

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
    upstream
        .record()
        .messages
        .iter()
        .filter_map(|m| {
            let text = String::from_utf8_lossy(&m.data);
            text.lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect()
}

/// One client that submits until the server goes away; returns the subjects answered 250.
async fn submit_until_killed(smtp: SocketAddr, task: usize) -> Vec<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut acknowledged = Vec::new();
    let Ok(stream) = tokio::net::TcpStream::connect(smtp).await else {
        return acknowledged;
    };
    let mut io = BufReader::new(stream);
    let auth = common::base64("\0alice@example.com\0alice-password");
    let hello = format!("EHLO load.test\r\nAUTH PLAIN {auth}\r\n");
    if io.get_mut().write_all(hello.as_bytes()).await.is_err() {
        return acknowledged;
    }
    let mut line = String::new();
    // greeting + EHLO (multi-line) + AUTH: read until the 235.
    loop {
        line.clear();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 {
            return acknowledged;
        }
        if line.starts_with("235") {
            break;
        }
    }
    for i in 0.. {
        let subject = format!("load {task}-{i}");
        let msg = format!(
            "MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n\
             From: alice@example.com\r\nSubject: {subject}\r\n\r\n{}\r\n.\r\n",
            vec!["x".repeat(98); 20].join("\r\n")
        );
        if io.get_mut().write_all(msg.as_bytes()).await.is_err() {
            break;
        }
        let mut codes = Vec::new();
        for _ in 0..4 {
            line.clear();
            if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                return acknowledged;
            }
            codes.push(line[..3].to_string());
        }
        if codes.last().map(String::as_str) == Some("250") {
            acknowledged.push(subject);
        }
    }
    acknowledged
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
