//! A `250` is a promise: with the upstream down, accepted messages survive a hard kill of
//! the real binary (SIGKILL, no graceful flush) and are all delivered after a restart.

mod common;

use common::upstream::{FakeUpstream, Script};
use common::{free_port, http, spawn_binary, wait_ready, Client, TOKEN};
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
    let (smtp, api, dead) = (free_port(), free_port(), free_port());
    let config = write_config(dir.path(), smtp, api, dead);
    let mut child = spawn_binary(&config);
    let api_addr: SocketAddr = format!("127.0.0.1:{api}").parse().unwrap();
    wait_ready(api_addr).await;
    let body = r#"{"login":"alice@example.com","email":"alice@example.com","kind":"staff","password":"alice-password"}"#;
    assert_eq!(
        http(api_addr, "POST", "/api/v1/users", Some(TOKEN), Some(body))
            .await
            .0,
        201
    );

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
