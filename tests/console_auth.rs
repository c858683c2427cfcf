//! Console sign-in over HTTP: sessions, cookies, CSRF and cross-site refusal, the
//! failed-login limit. (The same in a real browser: `console_browser`.)

mod common;

use common::console::Console;
use common::Gateway;

#[tokio::test]
async fn a_wrong_password_sets_no_session_cookie_and_a_right_one_does() {
    let gw = Gateway::start(|_| {}).await;
    gw.create_user("alice@example.com", "staff", "correct horse battery")
        .await;
    let mut console = Console::new(gw.running.api);
    let page = console
        .try_login("alice@example.com", "wrong password")
        .await;
    assert_eq!(page.status, 401);
    assert!(
        page.body.contains("wrong login or password"),
        "{}",
        page.body
    );
    assert!(console.cookie("postern_session").is_none());
    let page = console
        .try_login("alice@example.com", "correct horse battery")
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let cookie = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("postern_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let home = console.get("/console/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Dashboard"));
}

#[tokio::test]
async fn under_tls_the_cookie_is_secure_and_host_prefixed() {
    let gw = Gateway::start(|c| c.console.public_url = "https://postern.test".into()).await;
    gw.create_user("alice@example.com", "staff", "correct horse battery")
        .await;
    let mut console = Console::new(gw.running.api);
    let page = console
        .try_login("alice@example.com", "correct horse battery")
        .await;
    let cookie = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-postern_session="))
        .expect("a __Host- session cookie");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
}

#[tokio::test]
async fn logout_ends_the_session_for_good() {
    let gw = Gateway::start(|_| {}).await;
    gw.create_user("alice@example.com", "staff", "correct horse battery")
        .await;
    let mut console =
        Console::login(gw.running.api, "alice@example.com", "correct horse battery").await;
    let stolen = console.cookie("postern_session").unwrap().to_string();
    console.get("/console/").await;
    let page = console.post("/console/logout", &[]).await;
    assert_eq!(page.status, 303);
    assert!(console.cookie("postern_session").is_none());
    // The old cookie, replayed, is no session any more.
    let mut replay = Console::new(gw.running.api);
    replay
        .extra
        .push(("Cookie".into(), format!("postern_session={stolen}")));
    let page = replay.get("/console/").await;
    assert_eq!(page.status, 303);
    assert!(page
        .header("location")
        .unwrap()
        .starts_with("/console/login"));
}

#[tokio::test]
async fn unsafe_requests_need_the_token_and_the_same_site() {
    let gw = Gateway::start(|_| {}).await;
    gw.create_user("alice@example.com", "staff", "correct horse battery")
        .await;
    let mut console =
        Console::login(gw.running.api, "alice@example.com", "correct horse battery").await;
    console.get("/console/").await;
    // No token: refused, still logged in.
    let page = console.post("/console/logout", &[("csrf", "forged")]).await;
    assert_eq!(page.status, 403, "{}", page.body);
    // The right token from another site: refused by Sec-Fetch-Site ...
    console.extra = vec![("Sec-Fetch-Site".into(), "cross-site".into())];
    let page = console.post("/console/logout", &[]).await;
    assert_eq!(page.status, 403);
    // ... or by Origin when the browser sends no Sec-Fetch-Site.
    console.extra = vec![("Origin".into(), "http://evil.example".into())];
    let page = console.post("/console/logout", &[]).await;
    assert_eq!(page.status, 403);
    console.extra.clear();
    assert_eq!(console.get("/console/").await.status, 200);
    // The same-origin form with its token works.
    console.extra = vec![("Origin".into(), format!("http://{}", gw.running.api))];
    assert_eq!(console.post("/console/logout", &[]).await.status, 303);
}

#[tokio::test]
async fn failed_logins_are_limited_per_address() {
    let gw = Gateway::start(|c| c.console.max_failed_logins = 3).await;
    gw.create_user("alice@example.com", "staff", "correct horse battery")
        .await;
    let mut console = Console::new(gw.running.api);
    for _ in 0..3 {
        assert_eq!(
            console.try_login("alice@example.com", "guess").await.status,
            401
        );
    }
    // Even the right password is refused now, before it is checked.
    let page = console
        .try_login("alice@example.com", "correct horse battery")
        .await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(page.body.contains("too many failed logins"));
    assert!(console.cookie("postern_session").is_none());
}

#[tokio::test]
async fn pages_need_a_session_and_system_users_cannot_log_in() {
    let gw = Gateway::start(|_| {}).await;
    let mut console = Console::new(gw.running.api);
    let page = console.get("/console/accounts").await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.header("location").unwrap(),
        "/console/login?next=%2Fconsole%2Faccounts"
    );
    let root = console.get("/").await;
    assert_eq!(root.header("location").unwrap(), "/console/");
    let login = console.get("/console/login").await;
    let csp = login.header("content-security-policy").unwrap();
    assert!(
        !csp.contains("unsafe-inline") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    gw.create_user(
        "robot@example.com",
        "system",
        "a-long-system-secret-0123456789-abcdef",
    )
    .await;
    let page = console
        .try_login(
            "robot@example.com",
            "a-long-system-secret-0123456789-abcdef",
        )
        .await;
    assert_eq!(page.status, 401);
}
