//! The first administrator (SPEC §4), through the real binary: the first start creates the
//! staff user `admin` (`is_default_admin`) — with `POSTERN_ADMIN_EMAIL` and
//! `POSTERN_ADMIN_PASSWORD` it can log in at once; without them the start prints a
//! single-use "set your password" link whose page sets it. A second start creates nothing
//! and prints no link.

mod common;

use common::{binary_log, free_ports, http, http_full, post_form, wait_ready, Client, TOKEN};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LINK_LINE: &str = "created the administrator";

/// A node of the real binary: its config, ports and the files its output goes to.
struct Node {
    dir: tempfile::TempDir,
    config: PathBuf,
    api: SocketAddr,
    smtp: SocketAddr,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let [smtp, api] = free_ports();
        let config = dir.path().join("postern.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{d}/data\"\nhostname = \"gw.test\"\n[api]\nbind = \"127.0.0.1:{api}\"\n\
                 [tls]\ncert = \"{d}/c.pem\"\nkey = \"{d}/k.pem\"\n\
                 [[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:{smtp}\"\ntls = \"none\"\nallow_plaintext_auth = true\n",
                d = dir.path().display()
            ),
        )
        .unwrap();
        Node {
            api: format!("127.0.0.1:{api}").parse().unwrap(),
            smtp: format!("127.0.0.1:{smtp}").parse().unwrap(),
            dir,
            config,
        }
    }

    /// Starts `postern serve` with `env` (the admin variables) and waits until it is
    /// ready; its stdout goes to `stdout` (a file per start).
    async fn start(&self, stdout: &str, env: &[(&str, &str)]) -> Child {
        let out = std::fs::File::create(self.dir.path().join(stdout)).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(binary_log(&self.config))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postern"));
        cmd.args(["serve", "--config"])
            .arg(&self.config)
            .env("POSTERN_ADMIN_TOKEN", TOKEN)
            .env_remove("POSTERN_ADMIN_EMAIL")
            .env_remove("POSTERN_ADMIN_PASSWORD")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(out))
            .stderr(log);
        for (name, value) in env {
            cmd.env(name, value);
        }
        let mut child = cmd.spawn().expect("postern starts");
        wait_ready(self.api, &mut child, &binary_log(&self.config)).await;
        child
    }

    fn stdout(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The users named `admin`, as the API lists them.
    async fn admins(&self) -> Vec<Value> {
        let (status, text) = http(self.api, "GET", "/api/v1/users", Some(TOKEN), None).await;
        assert_eq!(status, 200, "{text}");
        let users: Value = serde_json::from_str(&text).unwrap();
        users
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["login"] == "admin" || u["is_default_admin"] == true)
            .cloned()
            .collect()
    }

    /// The SMTP AUTH reply to `login`/`password`.
    async fn auth(&self, login: &str, password: &str) -> u16 {
        let mut c = Client::connect(self.smtp).await;
        c.expect("EHLO client.test", 250).await;
        let plain = common::base64(&format!("\0{login}\0{password}"));
        c.cmd(&format!("AUTH PLAIN {plain}")).await.code
    }
}

/// Stops the binary as an operator does (SIGTERM) and waits for it to exit.
async fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The link printed on stdout (`name`), waiting a little: it is printed once the start
/// has returned, just after the API answers.
async fn printed_link(node: &Node, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = node.stdout(name);
        if let Some(line) = out.lines().find(|l| l.contains(LINK_LINE)) {
            return line
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .unwrap_or_else(|| panic!("no link in {line:?}"))
                .to_string();
        }
        assert!(Instant::now() < deadline, "no link printed: {out:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_default_admin(admins: &[Value], email: &str) {
    assert_eq!(admins.len(), 1, "{admins:?}");
    let admin = &admins[0];
    assert_eq!(admin["login"], "admin");
    assert_eq!(admin["email"], email);
    assert_eq!(admin["kind"], "staff");
    assert_eq!(admin["status"], "active");
    assert_eq!(admin["is_default_admin"], true, "{admin}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_names_the_first_administrator_and_its_password() {
    let node = Node::new();
    let env = [
        ("POSTERN_ADMIN_EMAIL", "boss@example.com"),
        ("POSTERN_ADMIN_PASSWORD", "first-admin-pw-1"),
    ];
    let child = node.start("first.out", &env).await;
    assert_default_admin(&node.admins().await, "boss@example.com");
    assert_eq!(node.auth("admin", "first-admin-pw-1").await, 235);
    assert_eq!(node.auth("admin", "something-else").await, 535);
    // Every permission: the default administrator's own token reads the audit log, where
    // its creation is recorded.
    let id = node.admins().await[0]["id"].as_u64().unwrap();
    let path = format!("/api/v1/users/{id}/tokens");
    let (status, token) = http(node.api, "POST", &path, Some(TOKEN), Some("{}")).await;
    assert_eq!(status, 201, "{token}");
    let token: Value = serde_json::from_str(&token).unwrap();
    let token = token["token"].as_str().unwrap();
    let (status, audit) = http(node.api, "GET", "/api/v1/audit", Some(token), None).await;
    assert_eq!(status, 200, "{audit}");
    assert!(
        audit.contains("user.create") && audit.contains("\"postern\""),
        "{audit}"
    );
    stop(child).await;
    assert!(
        !node.stdout("first.out").contains(LINK_LINE),
        "no link when the password is given"
    );

    // A second start, even with other values, changes nothing.
    let env = [
        ("POSTERN_ADMIN_EMAIL", "other@example.com"),
        ("POSTERN_ADMIN_PASSWORD", "second-admin-pw-2"),
    ];
    let child = node.start("second.out", &env).await;
    assert_default_admin(&node.admins().await, "boss@example.com");
    assert_eq!(node.auth("admin", "second-admin-pw-2").await, 535);
    assert_eq!(node.auth("admin", "first-admin-pw-1").await, 235);
    stop(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_password_the_printed_link_sets_it_once() {
    let node = Node::new();
    let child = node.start("first.out", &[]).await;
    let link = printed_link(&node, "first.out").await;
    assert_default_admin(&node.admins().await, "admin@gw.test");
    assert_eq!(
        node.auth("admin", "chosen-admin-pw").await,
        535,
        "no password yet"
    );
    let prefix = format!("http://{}/password/", node.api);
    assert!(link.starts_with(&prefix), "{link} is on the API's address");
    let path = &link[prefix.len() - "/password/".len()..];
    let (status, _, page) = http_full(node.api, "GET", path, None, None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("admin"), "{page}");
    let form = "password=chosen-admin-pw&confirm=chosen-admin-pw";
    let (status, page) = post_form(node.api, path, form).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(node.auth("admin", "chosen-admin-pw").await, 235);
    let (status, _) = post_form(node.api, path, "password=again-12345&confirm=again-12345").await;
    assert_eq!(status, 404, "the link works once");
    stop(child).await;

    let child = node.start("second.out", &[]).await;
    // Give a link printed by mistake the time to appear.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !node.stdout("second.out").contains(LINK_LINE),
        "{}",
        node.stdout("second.out")
    );
    assert_default_admin(&node.admins().await, "admin@gw.test");
    assert_eq!(node.auth("admin", "chosen-admin-pw").await, 235);
    stop(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_password_from_the_environment_stops_the_first_start() {
    let node = Node::new();
    let out = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["serve", "--config"])
        .arg(&node.config)
        .env("POSTERN_ADMIN_TOKEN", TOKEN)
        .env("POSTERN_ADMIN_PASSWORD", "short")
        .env_remove("POSTERN_ADMIN_EMAIL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("POSTERN_ADMIN_PASSWORD"), "{stderr}");
}
