//! The console's fetch settings in chromium (tests/common/browser.rs): the inbound
//! settings page with fetching set, a set-aside message listed, the API's refusal beside
//! its field, and the Retry button's answer all pass axe-core. (The behaviour over plain
//! HTTP: `console_fetch`.)

mod common;

use common::browser::Browser;
use common::helpdesk::{self, api, SUPPORT};
use common::helpdesk_console::PASSWORD;
use common::{free_ports, Gateway};
use postern::store::{FetchState, SetAside, SetAsideRequest};
use serde_json::json;

/// Gives the helpdesk mailbox fetch settings and one set-aside message; its id.
async fn fetching(gw: &Gateway) -> u64 {
    let (_, accounts) = api(gw, "GET", "/api/v1/accounts", None).await;
    let id = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == SUPPORT)
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let [port] = free_ports::<1>();
    let inbound = json!({"inbound": {"purpose": "ticket", "fetch": {"kind": "imap",
        "host": "127.0.0.1", "port": port, "tls": "none", "username": "desk@help.example",
        "password": "fetch-secret"}}});
    let path = format!("/api/v1/accounts/{id}");
    assert_eq!(api(gw, "PATCH", &path, Some(inbound)).await.0, 200);
    let store = gw.running.store();
    let account = store.accounts().get(id).unwrap().unwrap();
    let state = FetchState {
        source: account.inbound.unwrap().fetch.unwrap().source(),
        set_aside: vec![SetAside {
            key: "41".into(),
            reason: "two From fields".into(),
            attempts: 1,
            since: 1_796_517_000,
            next_try: 1_796_517_060,
            move_to: None,
        }],
        ..FetchState::default()
    };
    store.fetch_states().put(id, &state).unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fetch_settings_and_set_aside_messages_pass_axe_core() {
    let gw = helpdesk::helpdesk().await;
    let id = fetching(&gw).await;
    let user = gw
        .create_user("admin@corp.example", "staff", PASSWORD)
        .await;
    let role = json!({"name": "admins", "permissions": ["admin"]});
    assert_eq!(api(&gw, "POST", "/api/v1/roles", Some(role)).await.0, 201);
    let roles = json!({"roles": ["admins"]});
    let path = format!("/api/v1/users/{}", user["id"]);
    assert_eq!(api(&gw, "PATCH", &path, Some(roles)).await.0, 200);

    let browser = Browser::start().await;
    let base = format!("http://{}", gw.running.api);
    browser.goto(&format!("{base}/console/login")).await;
    browser.fill("Login", "admin@corp.example").await;
    browser.fill("Password", PASSWORD).await;
    browser.click_button("Log in").await;
    browser
        .goto(&format!("{base}/console/accounts/{id}/inbound"))
        .await;
    browser.assert_accessible().await;
    let text = browser.text().await;
    assert!(text.contains("two From fields"), "{text}");

    browser.fill("Server", "").await;
    browser.click_button("Save helpdesk settings").await;
    browser.assert_accessible().await;
    assert!(browser.text().await.contains("a host name or IP address"));

    browser
        .goto(&format!("{base}/console/accounts/{id}/inbound"))
        .await;
    browser.click_button("Retry").await;
    browser.assert_accessible().await;
    assert!(browser.text().await.contains("Retry asked"));
    let requests = gw.running.store().fetch_states().requests(id).unwrap();
    assert_eq!(requests, vec![("41".to_string(), SetAsideRequest::Retry)]);
    browser.close().await;
}
