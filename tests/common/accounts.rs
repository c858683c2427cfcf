//! Set-up shared by the tests of the console's account and admin pages: API calls as the
//! bootstrap admin, staff users with a role, an administrator's console, a shared
//! account, and reading a checkbox's state from a page.

use super::console::{Console, Page};
use super::{http, Gateway, TOKEN};
use serde_json::{json, Value};

/// The password of every user made here.
pub const PASSWORD: &str = "password-of-8";

/// `method path` as the bootstrap admin: status and the parsed answer.
pub async fn api(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = http(gw.running.api, method, path, Some(TOKEN), body.as_deref()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A staff user (password [`PASSWORD`]) holding `role` (created with its permissions if
/// missing); returns its id.
pub async fn staff(gw: &Gateway, login: &str, role: Option<(&str, &[&str])>) -> u64 {
    let user = gw.create_user(login, "staff", PASSWORD).await;
    let id = user["id"].as_u64().unwrap();
    if let Some((role, permissions)) = role {
        let (status, _) = api(gw, "GET", &format!("/api/v1/roles/{role}"), None).await;
        if status == 404 {
            let body = json!({"name": role, "permissions": permissions});
            let (status, doc) = api(gw, "POST", "/api/v1/roles", Some(body)).await;
            assert_eq!(status, 201, "{doc}");
        }
        let patch = json!({"roles": [role]});
        let path = format!("/api/v1/users/{id}");
        let (status, doc) = api(gw, "PATCH", &path, Some(patch)).await;
        assert_eq!(status, 200, "{doc}");
    }
    id
}

/// The administrator `root@example.com` (role `admins`); returns its id.
pub async fn root(gw: &Gateway) -> u64 {
    staff(gw, "root@example.com", Some(("admins", &["admin"]))).await
}

/// A logged-in console of a new administrator `root@example.com`.
pub async fn admin_console(gw: &Gateway) -> Console {
    root(gw).await;
    Console::login(gw.running.api, "root@example.com", PASSWORD).await
}

/// A shared account for all staff that only explicit grants send from; returns its id.
pub async fn account(gw: &Gateway, name: &str, address: &str, upstream: &str) -> u64 {
    let body = json!({"name": name, "address": address, "upstream": upstream,
        "scope": {"kind": "all_staff"}, "default_send_mode": "none"});
    let (status, doc) = api(gw, "POST", "/api/v1/accounts", Some(body)).await;
    assert_eq!(status, 201, "{doc}");
    doc["id"].as_u64().unwrap()
}

/// Whether the page has a ticked checkbox (or radio) `name` with `value`.
pub fn ticked(page: &Page, name: &str, value: &str) -> bool {
    page.body.split("<input").skip(1).any(|input| {
        let input = &input[..input.find('>').unwrap_or(input.len())];
        input.contains(&format!("name=\"{name}\""))
            && input.contains(&format!("value=\"{value}\""))
            && input.contains(" checked")
    })
}
