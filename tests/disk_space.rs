//! Issue 24: a small disk is not filled by Postern itself. On a tmpfs of its own (mounted
//! when the test runs as root; skipped with a message otherwise): new mail is refused with
//! `452 4.3.1` once free space reaches the reserve (`[queue] min_free_mb`), every message
//! answered `250` is still queued, no half-made spare segment is left, an API change on a
//! full disk is never answered `201`, and a start on a full disk serves (refusing mail).

mod common;

use common::upstream::{FakeUpstream, Script};
use common::{http, sink_upstream, Client, Gateway, TOKEN};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB, or says why not.
    fn mount(mib: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs { dir }),
            _ => {
                println!("SKIPPED: cannot mount a tmpfs here (the test needs root)");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system of `dir` to the last block with a file; its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![7u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let small = [7u8; 512];
    while file.write_all(&small).is_ok() {}
    path
}

fn leftovers(spool: &Path) -> Vec<String> {
    std::fs::read_dir(spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

async fn start(root: &Path, upstream: u16) -> Gateway {
    let data = root.join("data");
    Gateway::start(move |c| {
        c.data_dir = data;
        c.queue.min_free_mb = 10;
        c.queue.retry_intervals_secs = vec![3600];
        c.upstreams.insert("sink".into(), sink_upstream(upstream));
        c.default_upstream = "sink".into();
    })
    .await
}

/// Submits one message of about `size` octets as alice; the final reply code (or the
/// MAIL FROM refusal).
async fn submit(gw: &Gateway, size: usize) -> u16 {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO client.test", 250).await;
    c.login("alice@example.com", "alice-password").await;
    let mail = c.cmd("MAIL FROM:<alice@example.com>").await;
    if mail.code != 250 {
        assert_eq!(mail.code, 452, "{mail:?}");
        assert!(mail.text.contains("4.3.1"), "{mail:?}");
        return mail.code;
    }
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c.expect("DATA", 354).await;
    let line = "y".repeat(998);
    let body = vec![line.as_str(); size / 1000].join("\r\n");
    c.send(format!("From: alice@example.com\r\nSubject: big\r\n\r\n{body}\r\n").as_bytes())
        .await;
    c.cmd(".").await.code
}

async fn queued(gw: &Gateway) -> usize {
    let (status, text) = http(
        gw.running.api,
        "GET",
        "/api/v1/queue?limit=1000",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str::<serde_json::Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_disk_refuses_new_mail_and_keeps_what_it_took() {
    let Some(disk) = Tmpfs::mount(40) else { return };
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        tempfail_first: usize::MAX,
        ..Script::default()
    })
    .await;
    let gw = start(disk.path(), upstream.addr.port()).await;
    gw.create_user("alice@example.com", "staff", "alice-password")
        .await;

    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..100 {
        match submit(&gw, 512 * 1024).await {
            250 => accepted += 1,
            452 => {
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
            other => panic!("neither 250 nor 452 but {other}"),
        }
    }
    assert!(
        refused > 0,
        "a 40 MiB disk took {accepted} messages of 512 KiB"
    );
    assert!(
        accepted > 5,
        "the reserve refused too early: {accepted} accepted"
    );
    assert_eq!(queued(&gw).await, accepted, "every 250 is queued");
    let spool = disk.path().join("data/spool");
    assert_eq!(
        leftovers(&spool),
        Vec::<String>::new(),
        "half-made files left"
    );

    // The disk filled by someone else: an API change is never a success unless durable.
    let filler = fill(disk.path());
    let body = r#"{"login":"carol@example.com","email":"carol@example.com","kind":"staff","password":"carol-password"}"#;
    let (status, text) = http(
        gw.running.api,
        "POST",
        "/api/v1/users",
        Some(TOKEN),
        Some(body),
    )
    .await;
    assert!(status == 201 || status == 503, "{status} {text}");
    let created = status == 201;
    println!("POST users on a full disk: {status} {text}");
    gw.running.shutdown().await;

    // A start on the full disk serves, refusing mail.
    let gw = start(disk.path(), upstream.addr.port()).await;
    assert_eq!(submit(&gw, 1000).await, 452);
    assert_eq!(
        queued(&gw).await,
        accepted,
        "nothing lost across the restart"
    );
    let (_, text) = http(gw.running.api, "GET", "/api/v1/users", Some(TOKEN), None).await;
    assert_eq!(
        text.contains("carol@example.com"),
        created,
        "a 201 is durable, a 503 made nothing: {text}"
    );
    assert_eq!(
        leftovers(&spool),
        Vec::<String>::new(),
        "half-made files left"
    );

    std::fs::remove_file(filler).unwrap();
    assert_eq!(submit(&gw, 1000).await, 250, "room again: mail accepted");
    gw.running.shutdown().await;
}
