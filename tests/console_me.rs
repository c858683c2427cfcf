//! "My profile" in the console: the mail configuration and its lock, my password, my API
//! tokens and sessions; and the API's password login.

mod common;

use common::console::Console;
use common::{http, Gateway, TOKEN};

const PASSWORD: &str = "correct horse battery";

async fn alice(gw: &Gateway) -> u64 {
    let user = gw.create_user("alice@example.com", "staff", PASSWORD).await;
    user["id"].as_u64().unwrap()
}

#[tokio::test]
async fn a_locked_configuration_refuses_the_users_own_save_with_the_reason() {
    let gw = Gateway::start(|_| {}).await;
    let id = alice(&gw).await;
    let mut console = Console::login(gw.running.api, "alice@example.com", PASSWORD).await;
    console.get("/console/me").await;
    let fields = [
        ("account_type", "complete"),
        ("mailbox", "alice@example.com"),
    ];
    let page = console.post("/console/me/mail-config", &fields).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = console.get("/console/me").await;
    assert!(
        page.body.contains("Mail configuration saved."),
        "{}",
        page.body
    );
    let path = format!("/api/v1/users/{id}/mail-config/lock");
    let (status, body) = http(gw.running.api, "POST", &path, Some(TOKEN), None).await;
    assert_eq!(status, 200, "{body}");
    let page = console.get("/console/me").await;
    assert!(page.body.contains("Locked by admin-token"), "{}", page.body);
    let fields = [
        ("account_type", "private"),
        ("mailbox", "alice@example.com"),
    ];
    let page = console.post("/console/me/mail-config", &fields).await;
    assert_eq!(page.status, 423);
    assert!(
        page.body
            .contains("was locked by admin-token and cannot be changed"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn changing_my_password_checks_the_old_one_and_ends_my_sessions() {
    let gw = Gateway::start(|_| {}).await;
    alice(&gw).await;
    let mut console = Console::login(gw.running.api, "alice@example.com", PASSWORD).await;
    let mut other = Console::login(gw.running.api, "alice@example.com", PASSWORD).await;
    console.get("/console/me").await;
    let wrong = [
        ("current_password", "not it at all"),
        ("new_password", "a new long password"),
        ("confirm", "a new long password"),
    ];
    let page = console.post("/console/me/password", &wrong).await;
    assert_eq!(page.status, 422);
    assert!(
        page.body
            .contains("id=\"current-error\">is not your current password"),
        "{}",
        page.body
    );
    let right = [
        ("current_password", PASSWORD),
        ("new_password", "a new long password"),
        ("confirm", "a new long password"),
    ];
    let page = console.post("/console/me/password", &right).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        other.get("/console/").await.status,
        303,
        "the other session ended"
    );
    let mut again = Console::new(gw.running.api);
    assert_eq!(
        again.try_login("alice@example.com", PASSWORD).await.status,
        401
    );
    assert_eq!(
        again
            .try_login("alice@example.com", "a new long password")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn my_tokens_are_shown_once_and_my_sessions_can_be_ended() {
    let gw = Gateway::start(|_| {}).await;
    alice(&gw).await;
    let mut console = Console::login(gw.running.api, "alice@example.com", PASSWORD).await;
    let mut laptop = Console::login(gw.running.api, "alice@example.com", PASSWORD).await;
    console.get("/console/me").await;
    let page = console
        .post("/console/me/tokens", &[("label", "ci script")])
        .await;
    assert_eq!(page.status, 201);
    let at = page.body.find("<pre id=\"new-token\">").unwrap() + 20;
    let token = page.body[at..at + page.body[at..].find('<').unwrap()].to_string();
    let (status, me) = http(gw.running.api, "GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(status, 200, "{me}");
    let page = console.get("/console/me").await;
    assert!(!page.body.contains(&token), "the token is shown only once");
    // Two sessions listed; end the laptop's.
    let ids: Vec<String> = page
        .body
        .match_indices("/console/me/sessions/")
        .map(|(i, _)| {
            let rest = &page.body[i + 21..];
            rest[..rest.find('/').unwrap()].to_string()
        })
        .collect();
    assert_eq!(ids.len(), 2, "{}", page.body);
    let page = console
        .post(&format!("/console/me/sessions/{}/revoke", ids[1]), &[])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        laptop.get("/console/").await.status,
        303,
        "laptop logged out"
    );
    assert_eq!(
        console.get("/console/").await.status,
        200,
        "this session goes on"
    );
}

#[tokio::test]
async fn password_login_through_the_api_buys_an_expiring_token() {
    let gw = Gateway::start(|c| c.console.max_failed_logins = 2).await;
    alice(&gw).await;
    let api = gw.running.api;
    let body = r#"{"login":"alice@example.com","password":"correct horse battery"}"#;
    let (status, issued) = http(api, "POST", "/api/v1/login", None, Some(body)).await;
    assert_eq!(status, 201, "{issued}");
    let issued: serde_json::Value = serde_json::from_str(&issued).unwrap();
    assert!(issued["expires_at"].as_u64().is_some());
    let token = issued["token"].as_str().unwrap();
    let (status, _) = http(api, "GET", "/api/v1/me", Some(token), None).await;
    assert_eq!(status, 200);
    let wrong = r#"{"login":"alice@example.com","password":"guess"}"#;
    for _ in 0..2 {
        let (status, _) = http(api, "POST", "/api/v1/login", None, Some(wrong)).await;
        assert_eq!(status, 401);
    }
    let (status, text) = http(api, "POST", "/api/v1/login", None, Some(body)).await;
    assert_eq!(status, 429, "{text}");
}

#[tokio::test]
async fn the_api_stays_bearer_only() {
    let gw = Gateway::start(|_| {}).await;
    alice(&gw).await;
    let mut console = Console::login(gw.running.api, "alice@example.com", PASSWORD).await;
    assert_eq!(console.get("/console/").await.status, 200);
    let page = console.get("/api/v1/me").await;
    assert_eq!(page.status, 401, "a session cookie is no API credential");
}
