//! Screenshots of every page Postern serves as HTML, over demo data this test creates, so
//! anyone can look at the console without clicking through it. Ignored in ordinary runs;
//! `scripts/console-shots.sh OUTDIR` runs it with `POSTERN_SHOTS_DIR=OUTDIR`, and each page
//! becomes `OUTDIR/NAME.png`; its line in the output also names the axe-core rules the page
//! breaks, if any (reported here, asserted by the console's own tests).
//!
//! To add a page, add a line to `PAGES`; `{name}` in a path is replaced by the demo value
//! `name` (see `Demo::vars`).

mod common;

use common::browser::Browser;
use common::{http, Client, Gateway, TOKEN};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Pages shown before anyone signs in: (file name, path on the API listener).
const PUBLIC_PAGES: &[(&str, &str)] = &[
    ("password-link", "/password/{password_token}"),
    ("password-link-invalid", "/password/no-such-link"),
    ("console-login", "/console/login"),
];

/// Pages shown to the demo administrator once signed in (see `sign_in`): (file name, path).
const PAGES: &[(&str, &str)] = &[
    ("console-dashboard", "/console/"),
    ("console-me", "/console/me"),
    ("console-my-accounts", "/console/me/accounts"),
    ("console-archive", "/console/archive"),
    ("console-archive-message", "/console/archive/{archived}"),
    ("console-accounts", "/console/accounts"),
    ("console-account-new", "/console/accounts/new"),
    ("console-account-sales", "/console/accounts/{sales}"),
    (
        "console-account-grants",
        "/console/accounts/{support}/grants",
    ),
    ("console-account-test", "/console/accounts/{support}/test"),
    (
        "console-account-explain",
        "/console/accounts/explain?user=bob%40corp.example&from=support%40corp.example",
    ),
    ("console-upstreams", "/console/upstreams"),
    ("console-dkim", "/console/dkim"),
    ("console-settings", "/console/settings"),
    ("console-users", "/console/users"),
    ("console-user-new", "/console/users/new"),
    ("console-user", "/console/users/{agent}"),
    ("console-roles", "/console/roles"),
    ("console-role", "/console/roles/helpdesk"),
    ("console-skill-groups", "/console/skill-groups"),
    ("console-groups", "/console/groups"),
    ("console-mail-users", "/console/mail-users"),
    ("console-backups", "/console/mail-users/backups"),
    ("console-queue", "/console/queue"),
    ("console-audit", "/console/audit"),
    ("console-tickets", "/console/tickets"),
    ("console-ticket", "/console/tickets/{ticket}"),
    ("console-requesters", "/console/requesters"),
    ("console-blocklist", "/console/blocklist"),
    ("console-webhooks", "/console/webhooks"),
    (
        "console-account-inbound",
        "/console/accounts/{support}/inbound",
    ),
    ("console-not-found", "/console/no-such-page"),
];

/// Pages the demo requester sees after setting its password through its link.
const REQUESTER_PAGES: &[(&str, &str)] = &[
    ("console-requester-tickets", "/console/my/tickets"),
    ("console-requester-ticket", "/console/my/tickets/{ticket}"),
    ("console-requester-me", "/console/me"),
];

/// The demo requester (created by its inbound mail) and the password it sets.
const REQUESTER: (&str, &str) = ("carol@customer.example", "carol-demo-password-1");

/// The demo administrator.
const ADMIN: (&str, &str) = ("ada@corp.example", "ada-demo-password-1");

/// What the demo data is called, for the `{name}` parts of page paths.
struct Demo {
    vars: HashMap<&'static str, String>,
}

impl Demo {
    /// `path` with every `{name}` replaced by its demo value; None if the demo has no
    /// value for one of them.
    fn path(&self, path: &str) -> Option<String> {
        let path = self.vars.iter().fold(path.to_string(), |p, (k, v)| {
            p.replace(&format!("{{{k}}}"), v)
        });
        (!path.contains('{')).then_some(path)
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
    let admins = json!({"name": "administrators", "permissions": ["admin"]});
    call(api, "POST", "/api/v1/roles", admins).await;
    call(
        api,
        "POST",
        "/api/v1/skill-groups",
        json!({"name": "sales"}),
    )
    .await;
    let ada = gw.create_user(ADMIN.0, "staff", ADMIN.1).await;
    let ada_path = format!("/api/v1/users/{}", ada["id"]);
    call(
        api,
        "PATCH",
        &ada_path,
        json!({"roles": ["administrators"]}),
    )
    .await;
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
    let archive = call(api, "GET", "/api/v1/archive", Value::Null).await;

    let mut vars = HashMap::from([
        ("password_token", token),
        ("admin", ada["id"].to_string()),
        ("agent", bob["id"].to_string()),
        ("support", support["id"].to_string()),
        ("sales", sales["id"].to_string()),
        ("ticket", tickets[0]["id"].to_string()),
    ]);
    if let Some(id) = archive[0]["id"].as_str() {
        vars.insert("archived", id.to_string());
    }
    Demo { vars }
}

/// Signs `who` in at `/console/login`: fills "Login" and "Password" and presses "Log in".
async fn sign_in(browser: &Browser, api: SocketAddr, who: (&str, &str)) {
    browser.goto(&format!("http://{api}/console/login")).await;
    browser.fill("Login", who.0).await;
    browser.fill("Password", who.1).await;
    browser.click_button("Log in").await;
    let url = browser.url().await;
    assert!(
        !url.contains("/console/login"),
        "still at the login page: {}",
        browser.text().await
    );
}

/// Opens `path` (with the demo's values), writes `OUT/name.png`, and prints the file's
/// name with the rules axe-core finds broken on the page, if any.
async fn shoot(browser: &Browser, demo: &Demo, api: SocketAddr, out: &Path, page: (&str, &str)) {
    let (name, path) = page;
    let Some(path) = demo.path(path) else {
        println!("skipped {name}: the demo has no value for {path}");
        return;
    };
    browser.goto(&format!("http://{api}{path}")).await;
    let file = out.join(format!("{name}.png"));
    browser.screenshot(&file).await;
    let ids: Vec<String> = browser.axe().await.into_iter().map(|v| v.id).collect();
    match ids.is_empty() {
        true => println!("{}", file.display()),
        false => println!("{} (axe-core: {})", file.display(), ids.join(", ")),
    }
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
    for page in PUBLIC_PAGES {
        shoot(&browser, &demo, api, &out, *page).await;
    }
    sign_in(&browser, api, ADMIN).await;
    for page in PAGES {
        shoot(&browser, &demo, api, &out, *page).await;
    }
    browser.click_button("Log out").await;
    let link = demo
        .path("/password/{password_token}")
        .expect("a password link");
    browser.goto(&format!("http://{api}{link}")).await;
    browser.fill("password", REQUESTER.1).await;
    browser.fill("confirm", REQUESTER.1).await;
    browser.click_button("Set password").await;
    sign_in(&browser, api, REQUESTER).await;
    for page in REQUESTER_PAGES {
        shoot(&browser, &demo, api, &out, *page).await;
    }
    browser.close().await;
}
