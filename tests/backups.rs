//! The deactivation story (SPEC §8) through the API: staff users send and receive mail
//! through their accounts (some of it linked to tickets), the archive keeps it for
//! non-private users only, an admin deactivates a user and backs it up (record-level and
//! complete give their message sets), a granted colleague reads the backup and downloads
//! an mbox that mail-parser reads back; after a reactivation and a second deactivation a
//! latest backup holds only the new mail.

mod common;

use common::backup::*;
use common::helpdesk::{api, helpdesk, settle};
use common::http_full;
use serde_json::json;

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
    let (_, audit) = api(&gw, "GET", "/api/v1/audit?action=backup.completed", None).await;
    assert_eq!(audit.as_array().unwrap().len(), 3, "{audit}");
}
