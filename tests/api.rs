//! The control API: health, readiness, metrics, and user creation behind the admin token,
//! with problem+json errors.

mod common;

use common::{http, http_full, Client, Gateway, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    assert_eq!(http(api, "GET", "/healthz", None, None).await.0, 200);
    assert_eq!(http(api, "GET", "/readyz", None, None).await.0, 200);
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO x", 250).await;
    c.expect("QUIT", 221).await;
    let (status, text) = http(api, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    assert!(text.contains("postern_smtp_sessions_total 1"), "{text}");
    assert!(text.contains("postern_accept_latency_seconds"), "{text}");
    let (status, head, body) = http_full(api, "GET", "/nope", None, None).await;
    assert_eq!(status, 404);
    assert!(
        head.to_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(body.contains("\"status\":404"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_users_needs_the_admin_token() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    let body = r#"{"login":"bob@example.com","email":"bob@example.com","kind":"staff","password":"bob-password"}"#;
    let (status, head, problem) = http_full(api, "POST", "/api/v1/users", None, Some(body)).await;
    assert_eq!(status, 401);
    assert!(head.to_lowercase().contains("application/problem+json"));
    assert!(problem.contains("bearer"));
    assert_eq!(
        http(api, "POST", "/api/v1/users", Some("wrong"), Some(body))
            .await
            .0,
        401
    );
    let (status, created) = http(api, "POST", "/api/v1/users", Some(TOKEN), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let user: serde_json::Value = serde_json::from_str(&created).unwrap();
    assert_eq!(user["login"], "bob@example.com");
    assert_eq!(user["kind"], "staff");
    assert_eq!(user["status"], "active");
    assert!(user.get("password_hash").is_none() && !created.contains("argon2"));
    let (status, problem) = http(api, "POST", "/api/v1/users", Some(TOKEN), Some(body)).await;
    assert_eq!(status, 409, "{problem}");
    // The new user can authenticate at once.
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("BOB@example.com", "bob-password").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_users_get_field_level_problems() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    let cases = [
        (
            r#"{"login":"","email":"a@b.c","kind":"staff","password":"longenough"}"#,
            "login",
        ),
        (
            r#"{"login":"a","email":"not-an-address","kind":"staff","password":"longenough"}"#,
            "email",
        ),
        (
            r#"{"login":"a","email":"a@b.c","kind":"staff","password":"short"}"#,
            "password",
        ),
        (
            r#"{"login":"a","email":"a@b.c","kind":"system","password":"too-short-for-a-secret"}"#,
            "password",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = http(api, "POST", "/api/v1/users", Some(TOKEN), Some(body)).await;
        assert_eq!(status, 422, "{body} -> {problem}");
        let doc: serde_json::Value = serde_json::from_str(&problem).unwrap();
        assert_eq!(doc["errors"][0]["field"], field, "{problem}");
    }
    let (status, problem) = http(
        api,
        "POST",
        "/api/v1/users",
        Some(TOKEN),
        Some(r#"{"login":1}"#),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem.contains("\"status\":400"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_principal_gets_a_generated_secret_once() {
    let gw = Gateway::start(|_| {}).await;
    let body = r#"{"login":"notifier","email":"notify@example.com","kind":"system"}"#;
    let (status, created) = http(
        gw.running.api,
        "POST",
        "/api/v1/users",
        Some(TOKEN),
        Some(body),
    )
    .await;
    assert_eq!(status, 201);
    let user: serde_json::Value = serde_json::from_str(&created).unwrap();
    let secret = user["secret"]
        .as_str()
        .expect("secret returned once")
        .to_string();
    assert!(secret.len() >= 40);
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("notifier", &secret).await;
}

/// The OpenAPI document is served without a token, is 3.1, and describes the operations
/// the permission matrix exercises (schemathesis in `scripts/interop.sh` checks the
/// answers against it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_api() {
    let gw = Gateway::start(|_| {}).await;
    let (status, text) = http(gw.running.api, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200, "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let operations = [
        ("get", "/api/v1/users"),
        ("patch", "/api/v1/users/{id}"),
        ("delete", "/api/v1/users/{id}/tokens/{token}"),
        ("put", "/api/v1/roles/{name}"),
        ("post", "/api/v1/skill-groups"),
        ("delete", "/api/v1/groups/{name}"),
        ("put", "/api/v1/accounts/{id}/grants"),
        ("post", "/api/v1/accounts/{id}/test"),
        ("post", "/api/v1/upstreams"),
        ("patch", "/api/v1/settings"),
        ("post", "/api/v1/policy/explain"),
        ("delete", "/api/v1/blocklist/{entry}"),
        ("post", "/api/v1/queue/{id}/retry"),
        ("get", "/api/v1/audit"),
        ("get", "/api/v1/me/accounts"),
    ];
    for (method, path) in operations {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        let problem = &op["responses"]["401"]["content"]["application/problem+json"];
        assert!(
            problem.is_object(),
            "{method} {path}: no problem document for 401"
        );
    }
    let count: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert!(count >= 46, "{count} operations");
}
