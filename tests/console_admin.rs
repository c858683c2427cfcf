//! The administrators' console pages over HTTP: upstreams (create, a refused field,
//! delete), DKIM keys (create with the TXT record shown, activate, delete) and the
//! settings (saved, a bad value shown beside its field). Each change is checked through
//! the API.

mod common;

use common::accounts::{admin_console, api};
use common::Gateway;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_saved_and_a_bad_value_is_shown_beside_its_field() {
    let gw = Gateway::start(|_| {}).await;
    let mut root = admin_console(&gw).await;
    let page = root.get("/console/settings").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("name=\"allow_personal_accounts\" checked"),
        "{}",
        page.body
    );
    let page = root
        .post(
            "/console/settings",
            &[
                ("org_domains", "Example.com\nexample.org"),
                ("public_url", "https://mail.example.com/"),
                ("max_users", "50"),
                ("display_name_addresses", "refuse"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let (_, settings) = api(&gw, "GET", "/api/v1/settings", None).await;
    assert_eq!(
        settings["allow_personal_accounts"], false,
        "unticked: {settings}"
    );
    assert_eq!(
        settings["org_domains"],
        json!(["example.com", "example.org"])
    );
    assert_eq!(settings["public_url"], "https://mail.example.com");
    assert_eq!(settings["max_users"], 50);
    assert_eq!(settings["display_name_addresses"], "refuse");
    let page = root.get("/console/settings").await;
    assert!(page.body.contains("Settings saved") && page.body.contains("value=\"50\""));

    let page = root
        .post(
            "/console/settings",
            &[
                ("allow_personal_accounts", "on"),
                ("max_users", "0"),
                ("display_name_addresses", "strip"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body.contains("id=\"f-max_users-error\""),
        "{}",
        page.body
    );
    let (_, settings) = api(&gw, "GET", "/api/v1/settings", None).await;
    assert_eq!(settings["max_users"], 50, "unchanged: {settings}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_and_dkim_keys_are_managed_from_their_pages() {
    let gw = Gateway::start(|_| {}).await;
    let mut root = admin_console(&gw).await;
    let page = root.get("/console/upstreams").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<td>local</td>"), "{}", page.body);
    let fields = [
        ("name", "relay"),
        ("kind", "smtp"),
        ("host", "smtp.example.net"),
        ("port", "2525"),
        ("password", "secret-pw"),
    ];
    let page = root.post("/console/upstreams", &fields).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = root.get("/console/upstreams").await;
    assert!(page.body.contains("smtp.example.net:2525"), "{}", page.body);
    assert!(!page.body.contains("secret-pw"));
    let page = root
        .post(
            "/console/upstreams",
            &[("name", "broken"), ("kind", "smtp")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"f-host-error\""), "{}", page.body);
    let page = root.post("/console/upstreams/relay/delete", &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let (_, upstreams) = api(&gw, "GET", "/api/v1/upstreams", None).await;
    assert!(!upstreams.to_string().contains("relay"), "{upstreams}");

    let page = root
        .post(
            "/console/dkim",
            &[
                ("domain", "example.com"),
                ("algorithm", "ed25519"),
                ("selector", "s1"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = root.get("/console/dkim").await;
    assert!(
        page.body.contains("s1._domainkey.example.com"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("v=DKIM1; k=ed25519; p="),
        "the TXT record: {}",
        page.body
    );
    assert!(page.body.contains(">pending</span>"));
    let page = root
        .post("/console/dkim/example.com/s1/activate", &[])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let (_, key) = api(&gw, "GET", "/api/v1/dkim-keys/example.com/s1", None).await;
    assert_eq!(key["status"], "active");
    let page = root.post("/console/dkim", &[("domain", "no dots")]).await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"f-domain-error\""), "{}", page.body);
    let page = root.post("/console/dkim/example.com/s1/delete", &[]).await;
    assert_eq!(page.status, 303);
    let (status, _) = api(&gw, "GET", "/api/v1/dkim-keys/example.com/s1", None).await;
    assert_eq!(status, 404);
}
