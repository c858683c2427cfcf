//! The blocklist through the API, and its effect on an inbound listener: a blocked address
//! or domain (and its subdomains) is refused at MAIL FROM with 550 5.7.1 and counted; a
//! removed entry stops applying at once.

mod common;

use common::{http, Client, Gateway, TOKEN};
use serde_json::{json, Value};

async fn inbound_gateway() -> Gateway {
    Gateway::start(|_| {}).await
}

async fn mail_from(gw: &Gateway, sender: &str) -> u16 {
    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.example.net", 250).await;
    let code = c.cmd(&format!("MAIL FROM:<{sender}>")).await.code;
    c.expect("QUIT", 221).await;
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_senders_are_refused_at_mail_from_on_inbound() {
    let gw = inbound_gateway().await;
    let api = gw.running.api;
    assert_eq!(mail_from(&gw, "pest@spam.example").await, 250);

    let add = |entry: &str| json!({"entry": entry, "reason": "complaints"}).to_string();
    let (status, text) = http(
        api,
        "POST",
        "/api/v1/blocklist",
        Some(TOKEN),
        Some(&add("spam.example")),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["kind"], "domain");
    assert_eq!(created["created_by"], "admin-token");
    let (status, _) = http(
        api,
        "POST",
        "/api/v1/blocklist",
        Some(TOKEN),
        Some(&add("<Nuisance@Example.COM>")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = http(
        api,
        "POST",
        "/api/v1/blocklist",
        Some(TOKEN),
        Some(&add("SPAM.example")),
    )
    .await;
    assert_eq!(status, 409);
    for bad in ["not a domain", "nodot", "a@", "-x.example"] {
        let (status, text) = http(
            api,
            "POST",
            "/api/v1/blocklist",
            Some(TOKEN),
            Some(&add(bad)),
        )
        .await;
        assert_eq!(status, 422, "{bad}: {text}");
    }

    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.example.net", 250).await;
    let refused = c.cmd("MAIL FROM:<pest@mail.spam.example>").await;
    assert_eq!(refused.code, 550, "{refused:?}");
    assert!(refused.text.contains("5.7.1"), "{refused:?}");
    assert_eq!(mail_from(&gw, "NUISANCE@example.com").await, 550);
    assert_eq!(mail_from(&gw, "friend@example.com").await, 250);
    assert_eq!(mail_from(&gw, "pest@notspam.example").await, 250);
    // The null sender (bounces) is never blocked by address.
    assert_eq!(mail_from(&gw, "").await, 250);
    assert_eq!(
        gw.metric("postern_smtp_rejections_total{reason=\"blocked\"}")
            .await,
        2.0
    );

    let (status, text) = http(api, "GET", "/api/v1/blocklist", Some(TOKEN), None).await;
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&text).unwrap();
    let entries: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"].as_str().unwrap())
        .collect();
    assert_eq!(entries, ["nuisance@example.com", "spam.example"]);
    // Removed as it was added: brackets and case do not matter.
    let path = "/api/v1/blocklist/%3CNuisance@Example.COM%3E";
    assert_eq!(http(api, "DELETE", path, Some(TOKEN), None).await.0, 204);
    assert_eq!(mail_from(&gw, "nuisance@example.com").await, 250);

    let (status, _) = http(
        api,
        "DELETE",
        "/api/v1/blocklist/spam.example",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(mail_from(&gw, "pest@spam.example").await, 250);
    let (status, _) = http(
        api,
        "DELETE",
        "/api/v1/blocklist/spam.example",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 404);

    let (_, audit) = http(
        api,
        "GET",
        "/api/v1/audit?action=blocklist.",
        Some(TOKEN),
        None,
    )
    .await;
    let audit: Value = serde_json::from_str(&audit).unwrap();
    assert_eq!(audit.as_array().unwrap().len(), 4, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocklist_needs_block_unwanted_email() {
    let gw = inbound_gateway().await;
    let api = gw.running.api;
    let user = gw
        .create_user("agent@example.com", "staff", "agent-password")
        .await;
    let path = format!("/api/v1/users/{}/tokens", user["id"]);
    let (_, issued) = http(api, "POST", &path, Some(TOKEN), Some("{}")).await;
    let token = serde_json::from_str::<Value>(&issued).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, text) = http(api, "GET", "/api/v1/blocklist", Some(&token), None).await;
    assert_eq!(status, 403);
    assert!(text.contains("block_unwanted_email"), "{text}");
    let role = r#"{"name": "guards", "permissions": ["block_unwanted_email"]}"#;
    assert_eq!(
        http(api, "POST", "/api/v1/roles", Some(TOKEN), Some(role))
            .await
            .0,
        201
    );
    let patch = r#"{"roles": ["guards"]}"#;
    let user_path = format!("/api/v1/users/{}", user["id"]);
    assert_eq!(
        http(api, "PATCH", &user_path, Some(TOKEN), Some(patch))
            .await
            .0,
        200
    );
    let body = r#"{"entry": "junk.example"}"#;
    let (status, text) = http(api, "POST", "/api/v1/blocklist", Some(&token), Some(body)).await;
    assert_eq!(status, 201, "{text}");
    assert!(text.contains("agent@example.com"), "{text}");
}
