//! Backup rules (SPEC §8), each refusal with its status and reason, deactivation stopping
//! a user's personal accounts, and backup jobs across a crash: a job cut off runs again
//! after the restart; one whose mail cannot be read fails, never completed.

mod common;

use common::backup::*;
use common::helpdesk::{api, helpdesk, send};
use common::{http, http_full, Gateway, TOKEN};
use serde_json::{json, Value};

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
    // Every request is audited, the refused ones with their status and reason (a body
    // that could not be read is no request).
    let (_, audit) = api(&gw, "GET", "/api/v1/audit?action=backup.refused", None).await;
    let refusals: Vec<(u64, &str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let after = &e["after"];
            assert!(
                after["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{e}"
            );
            let target = e["target"].as_str().unwrap();
            (
                after["status"].as_u64().unwrap(),
                e["actor"].as_str().unwrap(),
                target,
            )
        })
        .collect();
    let statuses: Vec<u64> = refusals.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses,
        [403, 404, 409, 409, 409, 409, 409, 422, 422],
        "{audit}"
    );
    assert_eq!(refusals[0].1, "helper@help.example");
    assert_eq!(refusals[2].2, format!("user/{lee}"));
    assert_eq!(audit[7]["after"]["request"]["grant_to"], json!(["nobody"]));
    let (_, created) = api(&gw, "GET", "/api/v1/audit?action=backup.create", None).await;
    assert_eq!(created.as_array().unwrap().len(), 1, "{created}");
    let _ = TOKEN;
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
            node: String::new(),
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
            node: String::new(),
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
