//! The archive in the console: an `access` holder reads a shared mailbox's kept messages
//! and downloads one with the session; someone without the right sees nothing; every
//! download is in the audit log under the reader's name.

mod common;

use common::backup::{archived, save_config, staff, PASSWORD};
use common::console::Console;
use common::helpdesk::{api, helpdesk, send, settle, SUPPORT};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_holder_reads_the_shared_mailbox_and_others_see_nothing() {
    let gw = helpdesk().await;
    let (_, accounts) = api(&gw, "GET", "/api/v1/accounts", None).await;
    let support = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == SUPPORT)
        .and_then(|a| a["id"].as_u64())
        .unwrap();
    let (sam_id, sam) = staff(&gw, "sam@help.example", &[]).await;
    save_config(&sam, "complete", SUPPORT).await;
    let (kim_id, _) = staff(&gw, "kim@help.example", &[]).await;
    staff(&gw, "ned@help.example", &[]).await;
    let grants = json!([{"grantee": {"user": kim_id}, "access": true}]);
    let (status, body) = api(
        &gw,
        "PUT",
        &format!("/api/v1/accounts/{support}/grants"),
        Some(grants),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let text = format!(
        "From: <ann@customer.example>\r\nTo: {SUPPORT}\r\nSubject: printer on fire\r\nMessage-ID: <fire@customer.example>\r\n\r\nHelp.\r\n"
    );
    assert_eq!(
        send(&gw, "ann@customer.example", SUPPORT, &text).await.code,
        250
    );
    settle(&gw).await;
    archived(&gw, sam_id, 1).await;

    let mut kim = Console::login(gw.running.api, "kim@help.example", PASSWORD).await;
    let page = kim
        .get(&format!(
            "/console/archive?account={support}&direction=inbound"
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("printer on fire"), "{}", page.body);
    let at = page.body.find("href=\"/console/archive/").unwrap() + 23;
    let id = page.body[at..at + 16].to_string();
    let shown = kim.get(&format!("/console/archive/{id}")).await;
    assert!(
        shown.body.contains("ann@customer.example"),
        "{}",
        shown.body
    );
    let raw = kim.get(&format!("/console/archive/{id}/raw")).await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type").unwrap(), "message/rfc822");
    assert!(raw.body.contains("Subject: printer on fire\r\n"));
    let (_, audit) = api(&gw, "GET", "/api/v1/audit?action=archive.read", None).await;
    assert_eq!(audit[0]["actor"], "kim@help.example", "{audit}");

    let mut ned = Console::login(gw.running.api, "ned@help.example", PASSWORD).await;
    let page = ned.get("/console/archive").await;
    assert!(
        page.body.contains("No kept messages match."),
        "{}",
        page.body
    );
    assert_eq!(ned.get(&format!("/console/archive/{id}")).await.status, 404);
    assert_eq!(
        ned.get(&format!("/console/archive/{id}/raw")).await.status,
        404
    );
}
