//! The browser harness itself (tests/common/browser.rs): chromium opens Postern's "set your
//! password" page, fills and submits its form, the page passes axe-core, a screenshot is
//! written; and a test that fails with a browser open leaves no chromium behind.

mod common;

use common::browser::driver::processes_naming;
use common::browser::Browser;
use common::{Client, Gateway};
use postern::policy::{digest_secret, new_secret};
use postern::store::PasswordLink;
use std::path::{Path, PathBuf};

/// Where the failing test writes its profile directory and chromedriver's pid, when set.
const REPORT: &str = "POSTERN_BROWSER_REPORT";
const FAILING: &str = "a_failing_test_still_closes_its_browser";

/// A fresh "set your password" link for `user` (made in the store, as the inbound path
/// does when it creates a requester).
fn password_link(gw: &Gateway, user: u64) -> String {
    let token = new_secret();
    let now = postern::spool::now_ms() / 1000;
    let link = PasswordLink {
        user,
        expires_at: now + 3600,
    };
    gw.running
        .store()
        .password_links()
        .create(&digest_secret(&token), &link)
        .unwrap();
    format!("http://{}/password/{token}", gw.running.api)
}

fn shots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser_harness")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sets_a_password_through_the_page_which_passes_axe() {
    let gw = Gateway::start(|_| {}).await;
    let login = "carol@customer.example";
    let user = gw.create_user(login, "requester", "first-password-1").await;
    let link = password_link(&gw, user["id"].as_u64().unwrap());

    let browser = Browser::start().await;
    browser.goto(&link).await;
    assert_eq!(browser.title().await, "Set your password");
    assert!(browser.text().await.contains(login));
    browser.assert_accessible().await;
    let shot = shots_dir().join("password.png");
    browser.screenshot(&shot).await;
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");

    browser.fill("New password", "long-enough-1").await;
    browser.fill("Repeat it", "different-222").await;
    browser.click_button("Set password").await;
    assert!(
        browser.text().await.contains("The two passwords differ."),
        "{}",
        browser.text().await
    );
    browser.assert_accessible().await;

    browser.fill("password", "café-au-lait-1").await;
    browser.fill("confirm", "café-au-lait-1").await;
    browser.click_button("Set password").await;
    assert_eq!(browser.title().await, "Password set");
    assert!(browser.text().await.contains("Your password is set."));
    assert!(browser.cookie("postern_session").await.is_none());

    browser.goto(&link).await;
    assert_eq!(
        browser.title().await,
        "Link not valid",
        "the link works once"
    );
    browser.assert_accessible().await;
    browser.close().await;

    // What chromium typed is what was set: the requester logs in with it.
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO client.example", 250).await;
    let plain = common::base64(&format!("\0{login}\0café-au-lait-1"));
    let auth = c.cmd(&format!("AUTH PLAIN {plain}")).await;
    assert_eq!(auth.code, 235, "{auth:?}");
}

/// Fails on purpose with a browser open; run alone by the next test, which then checks
/// that nothing of that browser still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "deliberate failure")]
async fn a_failing_test_still_closes_its_browser() {
    let gw = Gateway::start(|_| {}).await;
    let browser = Browser::start().await;
    browser
        .goto(&format!("http://{}/healthz", gw.running.api))
        .await;
    let profile = browser.profile_dir();
    assert!(
        !processes_naming(&profile).is_empty(),
        "chromium runs with the session's profile"
    );
    if let Ok(report) = std::env::var(REPORT) {
        let text = format!("{}\n{}\n", browser.driver_pid(), profile.display());
        std::fs::write(report, text).unwrap();
    }
    panic!("deliberate failure");
}

/// Processes of process group `group` that still run (not zombies).
fn group_members(group: u32) -> Vec<String> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string() {
            members.push(format!("{head})"));
        }
    }
    members
}

#[test]
fn no_chromium_outlives_a_failing_test() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([FAILING, "--exact", "--test-threads=1"])
        .env(REPORT, &report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the failing test ran and failed as expected:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&report).expect("the failing test's report");
    let (pid, profile) = text.trim().split_once('\n').unwrap();
    let pid: u32 = pid.parse().unwrap();
    let left = processes_naming(Path::new(profile));
    assert!(left.is_empty(), "chromium processes left: {left:?}");
    let group = group_members(pid);
    assert!(
        group.is_empty(),
        "chromedriver's group still runs: {group:?}"
    );
}
