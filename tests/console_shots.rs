//! Screenshots of every page Postern serves as HTML, over demo data this test creates, so
//! anyone can look at the console without clicking through it. Ignored in ordinary runs;
//! `scripts/console-shots.sh OUTDIR` runs it with `POSTERN_SHOTS_DIR=OUTDIR`, and each page
//! becomes `OUTDIR/NAME.png`.
//!
//! To add a page, add a line to `PAGES`; `{name}` in a path is replaced by the demo value
//! `name` (see `Demo::vars`).

mod common;

use common::browser::Browser;
use common::{http, Client, Gateway, TOKEN};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Pages shown before anyone signs in: (file name, path on the API listener).
const PUBLIC_PAGES: &[(&str, &str)] = &[
    ("healthz", "/healthz"),
    ("password-link", "/password/{password_token}"),
    ("password-link-invalid", "/password/no-such-link"),
];

/// Pages shown to the demo administrator once signed in (see `sign_in`): (file name, path).
const PAGES: &[(&str, &str)] = &[];

/// The demo administrator.
const ADMIN: (&str, &str) = ("ada@corp.example", "ada-demo-password-1");

/// What the demo data is called, for the `{name}` parts of page paths.
struct Demo {
    vars: HashMap<&'static str, String>,
}

impl Demo {
    /// `path` with every `{name}` replaced by its demo value.
    fn path(&self, path: &str) -> String {
        self.vars.iter().fold(path.to_string(), |p, (k, v)| {
            p.replace(&format!("{{{k}}}"), v)
        })
    }
}

/// An API call as the bootstrap admin; panics unless it succeeds; returns the JSON answer.
async fn call(api: SocketAddr, method: &str, path: &str, body: Value) -> Value {
    let body = body.to_string();
    let (status, text) = http(api, method, path, Some(TOKEN), Some(&body)).await;
    assert!(status < 300, "{method} {path} {body}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Users, roles, skill groups, accounts, a grant, and a ticket (from an inbound mail,
/// which also creates its requester and the requester's "set your password" link).
async fn demo_data(gw: &Gateway) -> Demo {
    let api = gw.running.api;
    let public_url = json!({"public_url": format!("http://{api}/")});
    call(api, "PATCH", "/api/v1/settings", public_url).await;
    call(api, "POST", "/api/v1/groups", json!({"name": "customers"})).await;
    let role = json!({"name": "helpdesk", "permissions": ["block_unwanted_email"]});
    call(api, "POST", "/api/v1/roles", role).await;
    call(
        api,
        "POST",
        "/api/v1/skill-groups",
        json!({"name": "sales"}),
    )
    .await;
    let ada = gw.create_user(ADMIN.0, "staff", ADMIN.1).await;
    let bob = gw
        .create_user("bob@corp.example", "staff", "bob-demo-password-1")
        .await;
    let bob_path = format!("/api/v1/users/{}", bob["id"]);
    call(api, "PATCH", &bob_path, json!({"roles": ["helpdesk"]})).await;
    let inbound =
        json!({"purpose": "comment", "auto_create_requesters": true, "default_group": "customers"});
    let support = json!({"name": "Support", "address": "support@corp.example",
        "display_name": "Corp Support", "scope": {"kind": "all_staff"}, "inbound": inbound});
    let support = call(api, "POST", "/api/v1/accounts", support).await;
    let sales = json!({"name": "Sales", "address": "sales@corp.example",
        "scope": {"kind": "permitted", "skill_groups": ["sales"]}});
    let sales = call(api, "POST", "/api/v1/accounts", sales).await;

    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.customer.example", 250).await;
    c.expect("MAIL FROM:<carol@customer.example>", 250).await;
    c.expect("RCPT TO:<support@corp.example>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: Carol <carol@customer.example>\r\nTo: support@corp.example\r\nSubject: My order has not arrived\r\n\r\nHello, order 1234 has not arrived yet.\r\n.\r\n").await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;
    let sent = gw.wait_outbox(1).await;
    let mail = String::from_utf8_lossy(&sent[0]).into_owned();
    let prefix = format!("http://{api}/password/");
    let token = mail
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .expect("the requester's password link")
        .to_string();
    let tickets = call(api, "GET", "/api/v1/tickets", Value::Null).await;

    let vars = HashMap::from([
        ("password_token", token),
        ("admin", ada["id"].to_string()),
        ("agent", bob["id"].to_string()),
        ("support", support["id"].to_string()),
        ("sales", sales["id"].to_string()),
        ("ticket", tickets[0]["id"].to_string()),
    ]);
    Demo { vars }
}

/// Signs the demo administrator in at `/console/login` (when the console serves it):
/// fills "Login" and "Password" and presses "Sign in".
async fn sign_in(browser: &Browser, api: SocketAddr) -> bool {
    if http(api, "GET", "/console/login", None, None).await.0 != 200 {
        return false;
    }
    browser.goto(&format!("http://{api}/console/login")).await;
    browser.fill("Login", ADMIN.0).await;
    browser.fill("Password", ADMIN.1).await;
    browser.click_button("Sign in").await;
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes screenshots; run by scripts/console-shots.sh"]
async fn screenshot_every_page() {
    let out = PathBuf::from(
        std::env::var("POSTERN_SHOTS_DIR").expect("POSTERN_SHOTS_DIR: where to write the PNGs"),
    );
    std::fs::create_dir_all(&out).unwrap();
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    let demo = demo_data(&gw).await;
    let browser = Browser::start().await;
    let shot = |name: &'static str| {
        let file = out.join(format!("{name}.png"));
        println!("{}", file.display());
        file
    };
    for (name, path) in PUBLIC_PAGES {
        browser
            .goto(&format!("http://{api}{}", demo.path(path)))
            .await;
        browser.screenshot(&shot(name)).await;
    }
    if !PAGES.is_empty() {
        assert!(
            sign_in(&browser, api).await,
            "no /console/login to sign in at"
        );
    }
    for (name, path) in PAGES {
        browser
            .goto(&format!("http://{api}{}", demo.path(path)))
            .await;
        browser.screenshot(&shot(name)).await;
    }
    browser.close().await;
}
