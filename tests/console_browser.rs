//! The console's sign-in in a real browser (Debian's chromium through chromedriver): a
//! wrong password sets no cookie, logout ends the session, a form posted from another
//! site is refused, and the pages pass axe-core.

mod common;

use common::browser::Browser;
use common::{http, Gateway, TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PASSWORD: &str = "correct horse battery";

async fn log_in(browser: &Browser, base: &str, login: &str, password: &str) {
    browser.goto(&format!("{base}/console/login")).await;
    browser.fill("Login", login).await;
    browser.fill("Password", password).await;
    browser.click_button("Log in").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_wrong_then_right_and_out() {
    let gw = Gateway::start(|_| {}).await;
    gw.create_user("alice@example.com", "staff", PASSWORD).await;
    let base = format!("http://{}", gw.running.api);
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/")).await;
    assert!(
        browser.url().await.contains("/console/login"),
        "{}",
        browser.url().await
    );
    browser.assert_accessible().await;

    log_in(&browser, &base, "alice@example.com", "not my password").await;
    assert!(browser.text().await.contains("wrong login or password"));
    assert!(
        browser.cookie("postern_session").await.is_none(),
        "no cookie"
    );
    browser.assert_accessible().await;

    log_in(&browser, &base, "alice@example.com", PASSWORD).await;
    assert_eq!(browser.title().await, "Dashboard · Postern");
    let cookie = browser
        .cookie("postern_session")
        .await
        .expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    browser.assert_accessible().await;
    browser.click_link("My profile").await;
    assert!(browser.text().await.contains("alice@example.com"));
    browser.assert_accessible().await;

    browser.click_button("Log out").await;
    assert!(browser.url().await.contains("/console/login"));
    assert!(browser.cookie("postern_session").await.is_none());
    browser.goto(&format!("{base}/console/me")).await;
    assert!(
        browser.url().await.contains("/console/login?next="),
        "logged out for good"
    );
    browser.close().await;
}

/// A page on another origin whose form posts to the console, as a forger's would.
async fn forger(target: String) -> String {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let page = format!(
                "<!DOCTYPE html><html lang=\"en\"><title>Win a prize</title><form method=\"post\" action=\"{target}\">\
                 <input type=\"hidden\" name=\"label\" value=\"stolen\"><button type=\"submit\">Claim</button></form></html>"
            );
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    // Another site: "localhost" is not "127.0.0.1".
    format!("http://localhost:{}/", addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_cross_site_post_is_refused() {
    let gw = Gateway::start(|_| {}).await;
    let alice = gw.create_user("alice@example.com", "staff", PASSWORD).await;
    let id = alice["id"].as_u64().unwrap();
    let base = format!("http://{}", gw.running.api);
    let browser = Browser::start().await;
    log_in(&browser, &base, "alice@example.com", PASSWORD).await;
    assert_eq!(browser.title().await, "Dashboard · Postern");

    let evil = forger(format!("{base}/console/me/tokens")).await;
    browser.goto(&evil).await;
    browser.click_button("Claim").await;
    assert!(
        browser
            .text()
            .await
            .contains("a request from another site is refused"),
        "{}",
        browser.text().await
    );
    let path = format!("/api/v1/users/{id}/tokens");
    let (status, tokens) = http(gw.running.api, "GET", &path, Some(TOKEN), None).await;
    assert_eq!(status, 200);
    assert_eq!(tokens, "[]", "no token was made");
    // The session itself is untouched.
    browser.goto(&format!("{base}/console/me")).await;
    assert_eq!(browser.title().await, "My profile · Postern");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_configuration_refuses_my_save_with_the_reason_shown() {
    let gw = Gateway::start(|_| {}).await;
    let alice = gw.create_user("alice@example.com", "staff", PASSWORD).await;
    let base = format!("http://{}", gw.running.api);
    let browser = Browser::start().await;
    log_in(&browser, &base, "alice@example.com", PASSWORD).await;
    browser.goto(&format!("{base}/console/me")).await;
    let kind = browser.control("Account type").await;
    kind.select_by_value("complete").await.unwrap();
    browser.fill("Mailbox", "alice@example.com").await;
    browser.click_button("Save configuration").await;
    assert!(browser.text().await.contains("Mail configuration saved."));

    let lock = format!("/api/v1/users/{}/mail-config/lock", alice["id"]);
    let (status, body) = http(gw.running.api, "POST", &lock, Some(TOKEN), None).await;
    assert_eq!(status, 200, "{body}");
    browser.goto(&format!("{base}/console/me")).await;
    assert!(browser.text().await.contains("Locked by admin-token"));
    let kind = browser.control("Account type").await;
    kind.select_by_value("private").await.unwrap();
    browser.click_button("Save configuration").await;
    let text = browser.text().await;
    assert!(
        text.contains("your mail configuration was locked by admin-token and cannot be changed"),
        "{text}"
    );
    browser.assert_accessible().await;
    let (_, config) = http(
        gw.running.api,
        "GET",
        &format!("/api/v1/users/{}/mail-config", alice["id"]),
        Some(TOKEN),
        None,
    )
    .await;
    assert!(
        config.contains("\"account_type\":\"complete\""),
        "unchanged: {config}"
    );
    browser.close().await;
}

/// Presses Tab until the focused element matches `css` (at most 40 times); panics if it
/// never does.
async fn tab_to(browser: &Browser, css: &str) -> fantoccini::elements::Element {
    const TAB: &str = "\u{E004}";
    let client = browser.client();
    for _ in 0..40 {
        let active = client.active_element().await.unwrap();
        let hit = client
            .execute(
                "return arguments[0].matches(arguments[1]);",
                vec![serde_json::to_value(&active).unwrap(), css.into()],
            )
            .await
            .unwrap();
        if hit == serde_json::json!(true) {
            return active;
        }
        active.send_keys(TAB).await.unwrap();
    }
    panic!("Tab never reached {css}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_and_out_with_the_keyboard_alone() {
    const ENTER: &str = "\u{E007}";
    let gw = Gateway::start(|_| {}).await;
    gw.create_user("alice@example.com", "staff", PASSWORD).await;
    let base = format!("http://{}", gw.running.api);
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/console/login")).await;
    tab_to(&browser, "#login")
        .await
        .send_keys("alice@example.com")
        .await
        .unwrap();
    tab_to(&browser, "#password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    tab_to(&browser, "button[type=submit]")
        .await
        .send_keys(ENTER)
        .await
        .unwrap();
    for _ in 0..100 {
        if browser.title().await == "Dashboard · Postern" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(browser.title().await, "Dashboard · Postern");
    tab_to(&browser, "a[href='/console/me']")
        .await
        .send_keys(ENTER)
        .await
        .unwrap();
    for _ in 0..100 {
        if browser.title().await == "My profile · Postern" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(browser.title().await, "My profile · Postern");
    tab_to(&browser, "form.logout button")
        .await
        .send_keys(ENTER)
        .await
        .unwrap();
    for _ in 0..100 {
        if browser.url().await.contains("/console/login") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(browser.cookie("postern_session").await.is_none());
    browser.close().await;
}
