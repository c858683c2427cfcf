//! The deactivation story (SPEC §8) through the API: staff users send and receive mail
//! through their accounts (some of it linked to tickets), the archive keeps it for
//! non-private users only, an admin deactivates a user and backs it up (record-level and
//! complete give their message sets), a granted colleague reads the backup and downloads
//! an mbox that mail-parser reads back; after a reactivation and a second deactivation a
//! latest backup holds only the new mail. Every refusal has its status and reason.

mod common;

use common::helpdesk::{api, helpdesk, send, settle};
use common::{http, http_full, Client, Gateway, TOKEN};
use mail_parser::mailbox::mbox::MessageIterator;
use mail_parser::MessageParser;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PASSWORD: &str = "staff-password-1";

/// A caller holding a user's token.
struct As<'a> {
    gw: &'a Gateway,
    token: String,
}

impl As<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) = http(
            self.gw.running.api,
            method,
            path,
            Some(&self.token),
            body.as_deref(),
        )
        .await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// A staff user with a token.
async fn staff<'a>(gw: &'a Gateway, login: &str, roles: &[&str]) -> (u64, As<'a>) {
    let id = gw.create_user(login, "staff", PASSWORD).await["id"]
        .as_u64()
        .unwrap();
    if !roles.is_empty() {
        let patch = json!({"roles": roles});
        let (status, body) = api(gw, "PATCH", &format!("/api/v1/users/{id}"), Some(patch)).await;
        assert_eq!(status, 200, "{body}");
    }
    let path = format!("/api/v1/users/{id}/tokens");
    let (status, token) = api(gw, "POST", &path, Some(json!({}))).await;
    assert_eq!(status, 201, "{token}");
    let token = token["token"].as_str().unwrap().to_string();
    (id, As { gw, token })
}

/// A staff user whose personal account (its own address) is also a helpdesk mailbox, with
/// its mail configuration saved as `account_type`.
async fn mailbox_user<'a>(gw: &'a Gateway, login: &str, account_type: &str) -> (u64, As<'a>) {
    let (id, me) = staff(gw, login, &[]).await;
    let account = json!({"name": login, "address": login, "owner": id,
        "inbound": {"auto_create_requesters": true}});
    let (status, body) = api(gw, "POST", "/api/v1/accounts", Some(account)).await;
    assert_eq!(status, 201, "{body}");
    save_config(&me, account_type, login).await;
    (id, me)
}

async fn save_config(me: &As<'_>, account_type: &str, mailbox: &str) {
    let config = json!({"account_type": account_type, "mailbox": mailbox});
    let (status, body) = me.call("PUT", "/api/v1/me/mail-config", Some(config)).await;
    assert_eq!(status, 200, "{body}");
}

/// Submits a message as `login` (its own address).
async fn submit(gw: &Gateway, login: &str, to: &str, subject: &str, extra: &str) {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO desk.help.example", 250).await;
    c.login(login, PASSWORD).await;
    c.expect(&format!("MAIL FROM:<{login}>"), 250).await;
    c.expect(&format!("RCPT TO:<{to}>"), 250).await;
    c.expect("DATA", 354).await;
    let text = format!(
        "From: <{login}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n{extra}\r\nFrom the desk of {login}.\r\n.\r\n"
    );
    c.send(text.as_bytes()).await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;
}

/// A customer's message to `rcpt` on the inbound listener.
async fn receive(gw: &Gateway, rcpt: &str, subject: &str, message_id: &str) {
    let text = format!(
        "From: Ann <ann@customer.example>\r\nTo: {rcpt}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\r\nHello.\r\n"
    );
    let reply = send(gw, "ann@customer.example", rcpt, &text).await;
    assert_eq!(reply.code, 250, "{reply:?}");
}

async fn set_status(gw: &Gateway, id: u64, status: &str) {
    let patch = json!({"status": status});
    let (code, body) = api(gw, "PATCH", &format!("/api/v1/users/{id}"), Some(patch)).await;
    assert_eq!(code, 200, "{body}");
}

async fn org_domains(gw: &Gateway, domains: &[&str]) {
    let patch = json!({"org_domains": domains});
    let (status, body) = api(gw, "PATCH", "/api/v1/settings", Some(patch)).await;
    assert_eq!(status, 200, "{body}");
}

/// Asks for a backup (202) and waits until it is finished; returns the finished job.
async fn backup(gw: &Gateway, user: u64, body: Value) -> Value {
    let path = format!("/api/v1/users/{user}/backup");
    let (status, job) = api(gw, "POST", &path, Some(body)).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["status"], "pending");
    finished(gw, job["id"].as_u64().unwrap()).await
}

async fn finished(gw: &Gateway, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, job) = api(gw, "GET", &format!("/api/v1/backups/{id}"), None).await;
        if job["status"] == "completed" || job["status"] == "failed" {
            return job;
        }
        assert!(Instant::now() < deadline, "backup never finished: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The subjects of the messages in an mbox, read back by mail-parser.
fn mbox_subjects(mbox: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = MessageIterator::new(mbox)
        .map(|m| {
            let m = m.expect("an mbox message");
            let parsed = MessageParser::default().parse(m.contents()).unwrap();
            parsed.subject().unwrap().to_string()
        })
        .collect();
    out.sort();
    out
}

fn subjects(items: &Value) -> Vec<String> {
    let mut out: Vec<String> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// Mail a user exchanged: a customer's message (a ticket), the user's reply to it (linked
/// through In-Reply-To) and an unrelated message (no link).
async fn correspondence(gw: &Gateway, login: &str, tag: &str) {
    receive(
        gw,
        login,
        &format!("{tag} question"),
        &format!("{tag}.q@customer.example"),
    )
    .await;
    settle(gw).await;
    let refs = format!("In-Reply-To: <{tag}.q@customer.example>\r\n");
    submit(
        gw,
        login,
        "ann@customer.example",
        &format!("{tag} answer"),
        &refs,
    )
    .await;
    submit(
        gw,
        login,
        "partner@elsewhere.example",
        &format!("{tag} lunch"),
        "",
    )
    .await;
    settle(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leavers_mail_is_backed_up_and_handed_to_a_colleague() {
    let gw = helpdesk().await;
    org_domains(&gw, &["help.example"]).await;
    let (lee, lee_as) = mailbox_user(&gw, "lee@help.example", "complete").await;
    let (rae, _) = mailbox_user(&gw, "rae@help.example", "record_level").await;
    let (pat, _) = mailbox_user(&gw, "pat@help.example", "private").await;
    let role = json!({"name": "leads", "permissions": []});
    let (status, body) = api(&gw, "POST", "/api/v1/roles", Some(role)).await;
    assert_eq!(status, 201, "{body}");
    let (_, kim) = staff(&gw, "kim@help.example", &[]).await;
    let (_, ned) = staff(&gw, "ned@help.example", &[]).await;
    let (_, lou) = staff(&gw, "lou@help.example", &["leads"]).await;
    correspondence(&gw, "lee@help.example", "lee").await;
    correspondence(&gw, "rae@help.example", "rae").await;
    correspondence(&gw, "pat@help.example", "pat").await;

    for user in [lee, rae, pat] {
        set_status(&gw, user, "deactivated").await;
    }
    // Complete: all of it.
    let job = backup(&gw, lee, json!({"grant_to": ["kim@help.example"]})).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["kind"], "full");
    assert_eq!(job["counts"]["selected"], 3, "{job}");
    assert_eq!(job["counts"]["written"], 3);
    let id = job["id"].as_u64().unwrap();
    // Record level: only what is linked to a ticket.
    let rae_job = backup(&gw, rae, json!({"grant_to": ["role:leads"]})).await;
    assert_eq!(rae_job["status"], "completed", "{rae_job}");
    let path = format!("/api/v1/backups/{}/messages", rae_job["id"]);
    let (status, items) = lou.call("GET", &path, None).await;
    assert_eq!(
        status, 200,
        "a holder of the granted role reads it: {items}"
    );
    assert_eq!(subjects(&items), ["rae answer", "rae question"], "{items}");
    assert!(items
        .as_array()
        .unwrap()
        .iter()
        .all(|m| !m["tickets"].as_array().unwrap().is_empty()));
    // Private: nothing was kept, and no backup is possible.
    let (status, body) = api(
        &gw,
        "POST",
        &format!("/api/v1/users/{pat}/backup"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("private"),
        "{body}"
    );
    assert!(gw
        .running
        .store()
        .archive()
        .of_user(pat)
        .unwrap()
        .is_empty());

    // The granted colleague reads it; another one does not even see it.
    let (status, listed) = kim.call("GET", "/api/v1/backups", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let (status, items) = kim
        .call("GET", &format!("/api/v1/backups/{id}/messages"), None)
        .await;
    assert_eq!(status, 200, "{items}");
    assert_eq!(
        subjects(&items),
        ["lee answer", "lee lunch", "lee question"]
    );
    let directions: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(directions.iter().filter(|d| **d == "inbound").count(), 1);
    let (status, _, mbox) = http_full(
        gw.running.api,
        "GET",
        &format!("/api/v1/backups/{id}/mbox"),
        Some(&kim.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        mbox_subjects(mbox.as_bytes()),
        ["lee answer", "lee lunch", "lee question"]
    );
    let (status, listed) = ned.call("GET", "/api/v1/backups", None).await;
    assert_eq!((status, listed), (200, json!([])));
    let (_, listed) = lou.call("GET", "/api/v1/backups", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "only rae's: {listed}");
    let (status, _) = ned
        .call("GET", &format!("/api/v1/backups/{id}/mbox"), None)
        .await;
    assert_eq!(status, 404);

    // Back, and gone again without saving the configuration: no latest backup.
    set_status(&gw, lee, "active").await;
    let latest = json!({"latest": true, "grant_to": ["kim@help.example"]});
    let path = format!("/api/v1/users/{lee}/backup");
    let (status, body) = api(&gw, "POST", &path, Some(latest.clone())).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("not deactivated"),
        "{body}"
    );
    set_status(&gw, lee, "deactivated").await;
    let (status, body) = api(&gw, "POST", &path, Some(latest.clone())).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("never saved"),
        "{body}"
    );
    // Back, switched to private, gone: refused as private.
    set_status(&gw, lee, "active").await;
    save_config(&lee_as, "private", "lee@help.example").await;
    set_status(&gw, lee, "deactivated").await;
    let (status, body) = api(&gw, "POST", &path, Some(latest.clone())).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("private"),
        "{body}"
    );
    // Back, complete again, more mail, gone: the latest backup holds only the new mail.
    set_status(&gw, lee, "active").await;
    save_config(&lee_as, "complete", "lee@help.example").await;
    submit(
        &gw,
        "lee@help.example",
        "partner@elsewhere.example",
        "lee farewell",
        "",
    )
    .await;
    settle(&gw).await;
    set_status(&gw, lee, "deactivated").await;
    let job = backup(&gw, lee, latest).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["kind"], "latest");
    let (_, items) = kim
        .call(
            "GET",
            &format!("/api/v1/backups/{}/messages", job["id"]),
            None,
        )
        .await;
    assert_eq!(subjects(&items), ["lee farewell"]);

    let (_, audit) = api(&gw, "GET", "/api/v1/audit?action=backup.create", None).await;
    assert_eq!(audit.as_array().unwrap().len(), 3, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backup_rule_refuses_with_its_reason() {
    let gw = helpdesk().await;
    org_domains(&gw, &["help.example"]).await;
    let (_, helper) = staff(&gw, "helper@help.example", &[]).await;
    let (lee, _) = mailbox_user(&gw, "lee@help.example", "complete").await;
    let (out, _) = mailbox_user(&gw, "out@elsewhere.example", "complete").await;
    let (never, _) = staff(&gw, "never@help.example", &[]).await;
    let requester = gw
        .create_user("req@customer.example", "requester", PASSWORD)
        .await["id"]
        .as_u64()
        .unwrap();
    let refused = |status: u16, body: &Value, part: &str| {
        assert!(
            body["detail"].as_str().unwrap_or("").contains(part),
            "{status} {body}"
        );
    };
    let path = |id: u64| format!("/api/v1/users/{id}/backup");

    let (status, body) = helper.call("POST", &path(lee), Some(json!({}))).await;
    assert_eq!(status, 403, "admins only: {body}");
    let (status, body) = api(&gw, "POST", &path(999_999), Some(json!({}))).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = api(&gw, "POST", &path(lee), Some(json!({}))).await;
    assert_eq!(status, 409);
    refused(status, &body, "not deactivated");
    let (status, body) = api(&gw, "POST", &path(requester), Some(json!({}))).await;
    assert_eq!(status, 409);
    refused(status, &body, "not a staff user");
    // Helper may send as lee through lee's personal account, until lee is deactivated.
    let (_, accounts) = api(&gw, "GET", "/api/v1/accounts", None).await;
    let lee_account = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["owner"] == lee)
        .unwrap()["id"]
        .clone();
    let helper_id = common::helpdesk::user(&gw, "helper@help.example")
        .await
        .unwrap()["id"]
        .clone();
    let grants = json!([{"grantee": {"user": helper_id}, "send": "send_as"}]);
    let (status, body) = api(
        &gw,
        "PUT",
        &format!("/api/v1/accounts/{lee_account}/grants"),
        Some(grants),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let as_lee = |gw: &Gateway| {
        let api = gw.running.api;
        async move {
            let body =
                json!({"user": "helper@help.example", "from": "lee@help.example"}).to_string();
            let (_, text) = http(
                api,
                "POST",
                "/api/v1/policy/explain",
                Some(TOKEN),
                Some(&body),
            )
            .await;
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    assert_eq!(as_lee(&gw).await["allowed"], true, "{}", as_lee(&gw).await);
    for user in [lee, out, never] {
        set_status(&gw, user, "deactivated").await;
    }
    // Deactivation stops lee's personal account: for its delegate, and for inbound mail.
    let explained = as_lee(&gw).await;
    assert_eq!(explained["allowed"], false, "{explained}");
    assert!(explained.to_string().contains("not active"), "{explained}");
    let text = "From: ann@customer.example\r\nSubject: hi\r\n\r\nhi\r\n";
    let reply = send(&gw, "ann@customer.example", "lee@help.example", text).await;
    assert_eq!(reply.code, 550, "{reply:?}");
    let (status, body) = api(&gw, "POST", &path(never), Some(json!({}))).await;
    assert_eq!(status, 409);
    refused(status, &body, "private");
    let (status, body) = api(&gw, "POST", &path(out), Some(json!({}))).await;
    assert_eq!(status, 409);
    refused(status, &body, "org_domains");
    let (status, body) = api(&gw, "POST", &path(lee), Some(json!({"latest": true}))).await;
    assert_eq!(status, 409);
    refused(status, &body, "no completed backup");
    let (status, body) = api(
        &gw,
        "POST",
        &path(lee),
        Some(json!({"grant_to": ["nobody"]})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = api(
        &gw,
        "POST",
        &path(lee),
        Some(json!({"grant_to": ["user:admin"]})),
    )
    .await;
    assert_eq!(status, 422, "a role is no user: {body}");
    let (status, body) = api(&gw, "POST", &path(lee), Some(json!({"colour": "red"}))).await;
    assert_eq!(status, 400, "unknown fields: {body}");
    let job = backup(&gw, lee, json!({})).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["counts"]["selected"], 0);
    // Only admins read a backup granted to nobody.
    let (status, _) = helper
        .call("GET", &format!("/api/v1/backups/{}", job["id"]), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = http(gw.running.api, "GET", "/api/v1/backups", None, None).await;
    assert_eq!(status, 401);
    let _ = TOKEN;
}

/// Waits until the archive holds `n` messages of `user`.
async fn archived(gw: &Gateway, user: u64, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.running.store().archive().of_user(user).unwrap().len() < n {
        assert!(Instant::now() < deadline, "archive never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_cut_by_a_crash_runs_again_and_one_missing_mail_fails() {
    use postern::store::{
        AccountType, ArchivedMessage, Backup, BackupCounts, BackupKind, BackupStatus, Direction,
        Extent, Store,
    };
    let gw = helpdesk().await;
    org_domains(&gw, &["help.example"]).await;
    let (lee, _) = mailbox_user(&gw, "lee@help.example", "complete").await;
    let (moe, _) = mailbox_user(&gw, "moe@help.example", "complete").await;
    correspondence(&gw, "lee@help.example", "lee").await;
    archived(&gw, lee, 3).await;
    set_status(&gw, lee, "deactivated").await;
    set_status(&gw, moe, "deactivated").await;
    let Gateway {
        running,
        dir,
        config,
    } = gw;
    running.shutdown().await;

    // The crash: a job was running with one message of three written.
    let now = postern::spool::now_ms();
    let backups = config.data_dir.join("backups");
    let cut = {
        let store = Store::open(&config.data_dir.join("store")).unwrap();
        let job = Backup {
            id: store.backups().next_id().unwrap(),
            user: lee,
            login: "lee@help.example".into(),
            kind: BackupKind::Full,
            account_type: AccountType::Complete,
            grant_to: vec![],
            status: BackupStatus::Running,
            counts: BackupCounts {
                selected: 3,
                written: 1,
                bytes: 100,
            },
            error: None,
            created_by: "admin-token".into(),
            created_at: now / 1000,
            started_at: Some(now / 1000),
            finished_at: None,
            since: None,
            until: now,
            runs: 1,
        };
        store.backups().save(&job).unwrap();
        std::fs::create_dir_all(&backups).unwrap();
        let part = backups.join(format!("{}.mbox.part", job.id));
        std::fs::write(
            part,
            "From lee@help.example Thu Jan  1 00:00:00 1970\nSubject: half\n",
        )
        .unwrap();
        // And moe's archive names a message whose bytes are gone.
        let lost = ArchivedMessage {
            id: u64::MAX - 1,
            direction: Direction::Outbound,
            owners: vec![moe],
            account: None,
            mail_from: "moe@help.example".into(),
            rcpts: vec!["x@elsewhere.example".into()],
            from: "moe@help.example".into(),
            subject: "lost".into(),
            date: None,
            message_id: None,
            refs: vec![],
            tickets: vec![],
            received_at: now - 1000,
            expires_at: None,
            size: 10,
            extent: Extent {
                seg: 0xFFFF_FF00,
                offset: 0,
                len: 10,
                record_start: 0,
            },
        };
        store.archive().put(&[lost]).unwrap();
        store.flush().unwrap();
        job.id
    };
    let running = postern::app::start(config.clone(), Some(TOKEN.into()))
        .await
        .unwrap();
    let gw = Gateway {
        running,
        dir,
        config,
    };

    let job = finished(&gw, cut).await;
    assert_eq!(
        job["status"], "completed",
        "resumed after the restart: {job}"
    );
    assert_eq!(job["runs"], 2);
    assert_eq!(job["counts"]["selected"], 3);
    assert_eq!(job["counts"]["written"], 3);
    let (status, _, mbox) = http_full(
        gw.running.api,
        "GET",
        &format!("/api/v1/backups/{cut}/mbox"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        mbox_subjects(mbox.as_bytes()),
        ["lee answer", "lee lunch", "lee question"]
    );
    assert!(!backups.join(format!("{cut}.mbox.part")).exists());

    let job = backup(&gw, moe, json!({})).await;
    assert_eq!(
        job["status"], "failed",
        "never completed with a message missing: {job}"
    );
    assert!(
        job["error"].as_str().unwrap().contains("cannot be read"),
        "{job}"
    );
    let (status, body) = api(
        &gw,
        "GET",
        &format!("/api/v1/backups/{}/mbox", job["id"]),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
}
