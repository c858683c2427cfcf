//! The permission matrix: every endpoint, called by a user without its permission (403
//! naming the permission — or 404 where an account the caller may not see is hidden) and
//! by a user holding exactly that permission (never 401/403, never 5xx), and without a
//! token at all (401).

mod common;

use common::{http, Gateway, TOKEN};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;

/// (method, path, body, permission). `{T}` is a plain staff user, `{A}` a shared account.
const MATRIX: &[(&str, &str, &str, &str)] = &[
    ("GET", "/api/v1/users", "", "manage_users"),
    (
        "POST",
        "/api/v1/users",
        r#"{"login":"new1","email":"new1@example.com","kind":"staff","password":"a-long-password"}"#,
        "manage_users",
    ),
    ("GET", "/api/v1/users/{T}", "", "manage_users"),
    (
        "PATCH",
        "/api/v1/users/{T}",
        r#"{"display_name":"Target"}"#,
        "manage_users",
    ),
    ("POST", "/api/v1/users/{T}/tokens", "{}", "manage_users"),
    ("GET", "/api/v1/users/{T}/tokens", "", "manage_users"),
    (
        "DELETE",
        "/api/v1/users/{T}/tokens/0000000000000000",
        "",
        "manage_users",
    ),
    ("DELETE", "/api/v1/users/{T}/tokens", "", "manage_users"),
    ("GET", "/api/v1/skill-groups", "", "manage_users"),
    (
        "POST",
        "/api/v1/skill-groups",
        r#"{"name":"billing"}"#,
        "manage_users",
    ),
    ("DELETE", "/api/v1/skill-groups/billing", "", "manage_users"),
    ("GET", "/api/v1/groups", "", "manage_users"),
    (
        "POST",
        "/api/v1/groups",
        r#"{"name":"customers"}"#,
        "manage_users",
    ),
    ("DELETE", "/api/v1/groups/customers", "", "manage_users"),
    ("GET", "/api/v1/roles", "", "admin"),
    ("GET", "/api/v1/roles/plain", "", "admin"),
    (
        "POST",
        "/api/v1/roles",
        r#"{"name":"extra","permissions":[]}"#,
        "admin",
    ),
    (
        "PUT",
        "/api/v1/roles/extra",
        r#"{"permissions":["view_queue"]}"#,
        "admin",
    ),
    ("DELETE", "/api/v1/roles/extra", "", "admin"),
    ("GET", "/api/v1/upstreams", "", "admin"),
    (
        "POST",
        "/api/v1/upstreams",
        r#"{"name":"relay2","kind":"smtp","host":"127.0.0.1","port":1}"#,
        "admin",
    ),
    ("DELETE", "/api/v1/upstreams/relay2", "", "admin"),
    ("GET", "/api/v1/settings", "", "admin"),
    ("PATCH", "/api/v1/settings", "{}", "admin"),
    ("GET", "/api/v1/audit", "", "admin"),
    (
        "POST",
        "/api/v1/policy/explain",
        r#"{"user":"target","from":"target@example.com"}"#,
        "shared_account_setup",
    ),
    (
        "POST",
        "/api/v1/accounts",
        r#"{"name":"sales","address":"sales@example.com","upstream":"local","scope":{"kind":"all_staff"}}"#,
        "shared_account_setup",
    ),
    (
        "PATCH",
        "/api/v1/accounts/{A}",
        r#"{"description":"shared"}"#,
        "shared_account_setup",
    ),
    (
        "PUT",
        "/api/v1/accounts/{A}/grants",
        r#"{"grants":[]}"#,
        "shared_account_setup",
    ),
    (
        "POST",
        "/api/v1/accounts/{A}/test",
        r#"{"to":"someone@example.net","timeout_secs":5}"#,
        "shared_account_setup",
    ),
    ("GET", "/api/v1/queue", "", "view_queue"),
    ("GET", "/api/v1/queue/00000000000000AA", "", "view_queue"),
    (
        "POST",
        "/api/v1/queue/00000000000000AA/retry",
        "",
        "manage_queue",
    ),
    (
        "DELETE",
        "/api/v1/queue/00000000000000AA",
        "",
        "manage_queue",
    ),
    ("GET", "/api/v1/blocklist", "", "block_unwanted_email"),
    (
        "POST",
        "/api/v1/blocklist",
        r#"{"entry":"junk.example"}"#,
        "block_unwanted_email",
    ),
    (
        "DELETE",
        "/api/v1/blocklist/junk.example",
        "",
        "block_unwanted_email",
    ),
];

async fn call(
    api: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let body = (!body.is_empty()).then_some(body);
    http(api, method, path, token, body).await
}

async fn json(api: SocketAddr, method: &str, path: &str, body: &str) -> Value {
    let (status, text) = call(api, method, path, Some(TOKEN), body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A staff user holding `permissions` through a role of its own, and its API token.
async fn holder(api: SocketAddr, name: &str, permissions: &[&str]) -> String {
    let role = serde_json::json!({"name": format!("role-{name}"), "permissions": permissions});
    json(api, "POST", "/api/v1/roles", &role.to_string()).await;
    let user = serde_json::json!({"login": name, "email": format!("{name}@example.com"),
        "kind": "staff", "password": "a-long-password"});
    let user = json(api, "POST", "/api/v1/users", &user.to_string()).await;
    let path = format!("/api/v1/users/{}", user["id"]);
    let roles = serde_json::json!({"roles": [format!("role-{name}")]});
    json(api, "PATCH", &path, &roles.to_string()).await;
    let issued = json(api, "POST", &format!("{path}/tokens"), "{}").await;
    issued["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_states_its_permission() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    json(
        api,
        "POST",
        "/api/v1/roles",
        r#"{"name":"plain","permissions":[]}"#,
    )
    .await;
    let target = json(api, "POST", "/api/v1/users",
        r#"{"login":"target","email":"target@example.com","kind":"staff","password":"a-long-password"}"#).await;
    let account = json(api, "POST", "/api/v1/accounts",
        r#"{"name":"support","address":"support@example.com","upstream":"local","scope":{"kind":"all_staff"}}"#).await;
    let nobody = holder(api, "nobody", &[]).await;
    let mut holders: HashMap<&str, String> = HashMap::new();
    for (_, _, _, permission) in MATRIX {
        if !holders.contains_key(permission) {
            let token = holder(api, &format!("holder-{permission}"), &[permission]).await;
            holders.insert(permission, token);
        }
    }
    let fill = |path: &str| {
        path.replace("{T}", &target["id"].to_string())
            .replace("{A}", &account["id"].to_string())
    };
    for (method, path, body, permission) in MATRIX {
        let path = fill(path);
        let (status, _) = call(api, method, &path, None, body).await;
        assert_eq!(status, 401, "{method} {path} without a token");
        let (status, text) = call(api, method, &path, Some(&nobody), body).await;
        let hidden = path.starts_with("/api/v1/accounts/") && status == 404;
        assert!(
            hidden || (status == 403 && text.contains(permission)),
            "{method} {path} without {permission}: {status} {text}"
        );
        let (status, text) = call(api, method, &path, Some(&holders[permission]), body).await;
        assert!(
            !matches!(status, 401 | 403) && status < 500,
            "{method} {path} with {permission}: {status} {text}"
        );
    }
}
