//! The audit log through a running server: every change made through the API is listed
//! with its actor, action, target, and the object before and after, secrets redacted;
//! refused changes leave no entry; only admins read the log.

mod common;

use common::{http, Gateway, TOKEN};
use serde_json::{json, Value};
use std::net::SocketAddr;

async fn call(api: SocketAddr, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let body = (!body.is_null()).then(|| body.to_string());
    let (status, text) = http(api, method, path, Some(token), body.as_deref()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn audit(api: SocketAddr, query: &str) -> Vec<Value> {
    let path = format!("/api/v1/audit{query}");
    let (status, text) = http(api, "GET", &path, Some(TOKEN), None).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        !text.contains("argon2") && !text.contains("s3cret-pass") && !text.contains("pst_"),
        "a secret reached the audit log: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_audited_with_secrets_redacted() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    let (status, role) = call(
        api,
        "POST",
        "/api/v1/roles",
        TOKEN,
        json!({"name": "people", "permissions": ["manage_users"]}),
    )
    .await;
    assert_eq!(status, 201, "{role}");
    let (status, carol) = call(
        api,
        "POST",
        "/api/v1/users",
        TOKEN,
        json!({"login": "carol", "email": "carol@example.com", "kind": "staff",
               "password": "s3cret-pass-carol"}),
    )
    .await;
    assert_eq!(status, 201, "{carol}");
    let carol_path = format!("/api/v1/users/{}", carol["id"]);
    let (status, _) = call(
        api,
        "PATCH",
        &carol_path,
        TOKEN,
        json!({"roles": ["people"]}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, issued) = call(
        api,
        "POST",
        &format!("{carol_path}/tokens"),
        TOKEN,
        json!({"label": "cli"}),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let carol_token = issued["token"].as_str().unwrap().to_string();
    // A refused change (the login is taken) leaves no entry.
    let (status, _) = call(
        api,
        "POST",
        "/api/v1/users",
        TOKEN,
        json!({"login": "carol", "email": "c2@example.com", "kind": "staff",
               "password": "s3cret-pass-other"}),
    )
    .await;
    assert_eq!(status, 409);
    // Carol, with manage_users, changes a user: recorded under her login...
    let (status, dave) = call(
        api,
        "POST",
        "/api/v1/users",
        &carol_token,
        json!({"login": "dave", "email": "dave@example.com", "kind": "staff",
               "password": "s3cret-pass-dave"}),
    )
    .await;
    assert_eq!(status, 201, "{dave}");
    // ...but she may not read the log: that needs admin.
    let (status, text) = http(api, "GET", "/api/v1/audit", Some(&carol_token), None).await;
    assert_eq!(status, 403);
    assert!(text.contains("admin"), "{text}");
    let (status, _) = call(
        api,
        "PATCH",
        "/api/v1/settings",
        TOKEN,
        json!({"max_users": 50}),
    )
    .await;
    assert_eq!(status, 200);

    let entries = audit(api, "").await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "role.create",
            "user.create",
            "user.update",
            "token.create",
            "user.create",
            "settings.update"
        ]
    );
    let ids: Vec<u64> = entries.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let update = &entries[2];
    assert_eq!(update["actor"], "admin-token");
    assert_eq!(update["target"], format!("user/{}", carol["id"]));
    assert_eq!(update["before"]["roles"], json!([]));
    assert_eq!(update["after"]["roles"], json!(["people"]));
    assert_eq!(update["after"]["password_hash"], "[redacted]");
    assert!(update["at"].as_u64().unwrap() > 1_700_000_000);
    let by_carol = &entries[4];
    assert_eq!(by_carol["actor"], "carol");
    assert_eq!(by_carol["actor_id"], carol["id"]);
    assert!(by_carol["before"].is_null());
    assert_eq!(entries[5]["before"]["max_users"], Value::Null);
    assert_eq!(entries[5]["after"]["max_users"], 50);

    // Filters and paging.
    let users = audit(api, "?action=user.").await;
    assert_eq!(users.len(), 3);
    let carols = audit(api, "?actor=carol").await;
    assert_eq!(carols.len(), 1);
    let page = audit(api, &format!("?after={}&limit=2", ids[1])).await;
    let paged: Vec<u64> = page.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(paged, ids[2..4]);
    let (status, text) = http(api, "GET", "/api/v1/audit?limit=0", Some(TOKEN), None).await;
    assert_eq!(status, 422, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_changes_record_before_and_after() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    let (status, account) = call(
        api,
        "POST",
        "/api/v1/accounts",
        TOKEN,
        json!({"name": "support", "address": "support@example.com", "upstream": "local",
               "scope": {"kind": "all_staff"}}),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    let path = format!("/api/v1/accounts/{}", account["id"]);
    let (status, _) = call(
        api,
        "PATCH",
        &path,
        TOKEN,
        json!({"display_name": "Support"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(api, "DELETE", &path, TOKEN, Value::Null).await;
    assert_eq!(status, 204);
    let entries = audit(api, "?action=account.").await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["account.create", "account.update", "account.delete"]
    );
    assert_eq!(entries[1]["before"]["display_name"], Value::Null);
    assert_eq!(entries[1]["after"]["display_name"], "Support");
    assert_eq!(entries[2]["before"]["name"], "support");
    assert!(entries[2]["after"].is_null());
}
