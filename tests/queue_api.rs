//! The queue through the API: list with filters, show, retry now, delete, bounce; each
//! behind its permission, each change in the audit log.

mod common;

use common::{http, Client, Gateway, TOKEN};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

async fn get(api: SocketAddr, path: &str, token: &str) -> (u16, Value) {
    let (status, text) = http(api, "GET", path, Some(token), None).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn submit(gw: &Gateway, rcpt: &str, subject: &str) {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("alice@example.com", "alice-password").await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
    c.expect("DATA", 354).await;
    c.send(format!("From: <alice@example.com>\r\nSubject: {subject}\r\n\r\nbody\r\n").as_bytes())
        .await;
    c.expect(".", 250).await;
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A user holding exactly `permissions` (through a role of its own), with an API token.
async fn user_with(gw: &Gateway, login: &str, permissions: &[&str]) -> String {
    let api = gw.running.api;
    let role = json!({"name": format!("{login}-role"), "permissions": permissions});
    let (status, text) = http(
        api,
        "POST",
        "/api/v1/roles",
        Some(TOKEN),
        Some(&role.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let user = json!({"login": login, "email": format!("{login}@example.com"), "kind": "staff",
        "password": "a-long-password"});
    let (status, text) = http(
        api,
        "POST",
        "/api/v1/users",
        Some(TOKEN),
        Some(&user.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"].clone();
    let roles = json!({"roles": [format!("{login}-role")]}).to_string();
    let (status, text) = http(
        api,
        "PATCH",
        &format!("/api/v1/users/{id}"),
        Some(TOKEN),
        Some(&roles),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let path = format!("/api/v1/users/{id}/tokens");
    let (status, text) = http(api, "POST", &path, Some(TOKEN), Some("{}")).await;
    assert_eq!(status, 201, "{text}");
    serde_json::from_str::<Value>(&text).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_list_show_retry_delete_and_bounce() {
    let (upstream, gw) = common::gateway_with_deferring_upstream().await;
    gw.create_user("alice@example.com", "staff", "alice-password")
        .await;
    let api = gw.running.api;
    submit(&gw, "bob@example.net", "first").await;
    submit(&gw, "carol@example.org", "second").await;
    wait_for("both first attempts", || {
        upstream.record().data_attempts == 2
    })
    .await;

    let (status, list) = get(api, "/api/v1/queue", TOKEN).await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    let first = list[0]["id"].as_str().unwrap().to_string();
    let second = list[1]["id"].as_str().unwrap().to_string();
    assert_eq!(first.len(), 16);
    assert_eq!(list[0]["attempts"], 1);
    assert_eq!(list[0]["recipients"][0]["address"], "bob@example.net");
    assert_eq!(list[0]["recipients"][0]["status"], "pending");
    assert!(list[0]["recipients"][0]["last_reply"]
        .as_str()
        .unwrap()
        .contains("451"));
    assert!(
        list[0]["next_attempt_at"].as_u64().unwrap()
            > list[0]["received_at"].as_u64().unwrap() + 3000
    );
    let (_, only) = get(api, "/api/v1/queue?recipient=CAROL@", TOKEN).await;
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["id"], second.as_str());
    let (_, page) = get(api, &format!("/api/v1/queue?after={first}"), TOKEN).await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    let (_, none) = get(api, "/api/v1/queue?upstream=elsewhere", TOKEN).await;
    assert_eq!(none, json!([]));
    let (status, shown) = get(api, &format!("/api/v1/queue/{first}"), TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(shown["mail_from"], "alice@example.com");
    assert_eq!(
        get(api, "/api/v1/queue/00000000000000FF", TOKEN).await.0,
        404
    );
    assert_eq!(get(api, "/api/v1/queue/not-an-id", TOKEN).await.0, 404);

    // Permissions: nothing without view_queue; looking is not managing.
    let nobody = user_with(&gw, "nobody", &[]).await;
    let (status, problem) = get(api, "/api/v1/queue", &nobody).await;
    assert_eq!(status, 403);
    assert!(problem.to_string().contains("view_queue"), "{problem}");
    let viewer = user_with(&gw, "viewer", &["view_queue"]).await;
    assert_eq!(get(api, "/api/v1/queue", &viewer).await.0, 200);
    let retry_path = format!("/api/v1/queue/{first}/retry");
    let (status, text) = http(api, "POST", &retry_path, Some(&viewer), None).await;
    assert_eq!(status, 403);
    assert!(text.contains("manage_queue"), "{text}");

    // Retry now: a third attempt long before the hour is up.
    let manager = user_with(&gw, "manager", &["view_queue", "manage_queue"]).await;
    let (status, text) = http(api, "POST", &retry_path, Some(&manager), None).await;
    assert_eq!(status, 202, "{text}");
    wait_for("the retried attempt", || {
        upstream.record().data_attempts == 3
    })
    .await;

    // Delete: gone, and no DSN.
    let (status, text) = http(
        api,
        "DELETE",
        &format!("/api/v1/queue/{first}"),
        Some(&manager),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        get(api, &format!("/api/v1/queue/{first}"), TOKEN).await.0,
        404
    );
    // Bounce: gone, and a DSN to alice takes its place in the queue.
    let path = format!("/api/v1/queue/{second}?bounce=true");
    let (status, text) = http(api, "DELETE", &path, Some(&manager), None).await;
    assert_eq!(status, 200, "{text}");
    let (_, left) = get(api, "/api/v1/queue", TOKEN).await;
    let left = left.as_array().unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["is_dsn"], true);
    assert_eq!(left[0]["mail_from"], "");
    assert_eq!(left[0]["recipients"][0]["address"], "alice@example.com");
    assert_eq!(gw.metric("postern_dsn_sent_total").await, 1.0);

    let (_, audit) = get(api, "/api/v1/audit?action=queue.", TOKEN).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["queue.retry", "queue.delete", "queue.bounce"]);
    assert_eq!(audit[1]["actor"], "manager");
    assert_eq!(audit[1]["target"], format!("queue/{first}"));
}
