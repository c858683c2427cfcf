//! The `postern` binary: `check-config` and graceful shutdown on SIGTERM.

mod common;

use common::{free_ports, start_with_alice, Client};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn check_config_accepts_the_shipped_file_and_names_unknown_keys() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/postern.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["check-config", "--config", shipped])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[limits]\nrecipients = 100\nmax_recipients_typo = 5\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("max_recipients_typo"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_session_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let [smtp, api] = free_ports();
    let config = dir.path().join("postern.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{d}/data\"\nshutdown_grace_secs = 20\n[api]\nbind = \"127.0.0.1:{api}\"\n[tls]\ncert = \"{d}/c.pem\"\nkey = \"{d}/k.pem\"\n\
             [[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:{smtp}\"\ntls = \"none\"\nallow_plaintext_auth = true\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let mut child = start_with_alice(&config, api).await;
    let smtp_addr: SocketAddr = format!("127.0.0.1:{smtp}").parse().unwrap();
    let mut c = Client::connect(smtp_addr).await;
    c.login("alice@example.com", "alice-password").await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No new sessions...
    assert!(
        tokio::net::TcpStream::connect(smtp_addr).await.is_err(),
        "still accepting after SIGTERM"
    );
    // ...but the one in flight finishes its message.
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: alice@example.com\r\nSubject: in flight\r\n\r\nstill delivered\r\n")
        .await;
    c.expect(".", 250).await;
    c.expect("QUIT", 221).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "did not exit after the session ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(code.success(), "{code:?}");
    let outbox = dir.path().join("data/outbox/new");
    let delivered: Vec<_> = std::fs::read_dir(outbox).unwrap().collect();
    assert_eq!(
        delivered.len(),
        1,
        "the in-flight message was accepted and delivered before exit"
    );
}
