//! The email-account pages in a real browser (chromium through chromedriver, see
//! tests/common/browser.rs): an administrator creates a Permitted account and ticks grant
//! boxes, which stay ticked after a reload, and SMTP then follows them (lettre: refused
//! for a user without a grant, accepted with the right From and Sender for a granted
//! one); Test account shows an upstream's refusal; Explain turns from refused to allowed
//! after a grant; and every page of the area passes axe-core.

mod common;

use common::accounts::{account, api, root, staff, PASSWORD};
use common::browser::Browser;
use common::upstream::{FakeUpstream, Script};
use common::Gateway;
use fantoccini::Locator;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{json, Value};

/// `method path` as the bootstrap admin: the answer, which must be a success.
async fn ok(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, doc) = api(gw, method, path, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {doc}"
    );
    doc
}

/// The console's address.
fn url(gw: &Gateway, path: &str) -> String {
    format!("http://{}{path}", gw.running.api)
}

/// Logs `login` in through the login page.
async fn login(browser: &Browser, gw: &Gateway, login: &str) {
    browser.goto(&url(gw, "/console/login")).await;
    browser.fill("Login", login).await;
    browser.fill("Password", PASSWORD).await;
    browser.click_button("Log in").await;
    assert_eq!(browser.title().await, "Dashboard · Postern");
}

/// Ticks the checkbox labelled `label` unless it is ticked.
async fn tick(browser: &Browser, label: &str) {
    let control = browser.control(label).await;
    if !control.is_selected().await.unwrap() {
        control.click().await.unwrap();
    }
}

async fn ticked(browser: &Browser, label: &str) -> bool {
    browser.control(label).await.is_selected().await.unwrap()
}

/// `login`'s mail from `support@example.com`, submitted with lettre.
async fn send(gw: &Gateway, login: &str) -> Result<(), String> {
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(gw.addr("plain").port())
        .credentials(Credentials::new(login.into(), PASSWORD.into()))
        .build();
    let message = Message::builder()
        .from("Support <support@example.com>".parse().unwrap())
        .to("customer@example.net".parse().unwrap())
        .subject(format!("From {login}"))
        .header(ContentType::TEXT_PLAIN)
        .body("Hello.\r\n".to_string())
        .unwrap();
    mailer
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The header field `name` of a header block (unfolded lines are enough here).
fn field<'a>(head: &'a str, name: &str) -> &'a str {
    head.split("\r\n")
        .find(|line| {
            line.split_once(':')
                .is_some_and(|(key, _)| key.eq_ignore_ascii_case(name))
        })
        .unwrap_or_else(|| panic!("no {name} field in {head}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_makes_a_permitted_account_and_smtp_follows_the_grant_grid() {
    let gw = Gateway::start(|_| {}).await;
    root(&gw).await;
    let kim = staff(&gw, "kim@example.com", None).await;
    let lee = staff(&gw, "lee@example.com", None).await;
    let browser = Browser::start().await;
    login(&browser, &gw, "root@example.com").await;

    browser.goto(&url(&gw, "/console/accounts/new")).await;
    browser.assert_accessible().await;
    browser.fill("Friendly name", "Support").await;
    browser.fill("Mailbox address", "support@example.com").await;
    let upstream = browser.control("Upstream").await;
    upstream.select_by_value("local").await.unwrap();
    tick(&browser, "Permitted").await;
    tick(&browser, "kim@example.com").await;
    tick(&browser, "lee@example.com").await;
    browser.click_button("Create account").await;
    assert_eq!(browser.title().await, "Account Support · Postern");
    assert!(browser.text().await.contains("Account Support created"));
    browser.assert_accessible().await;
    let stored = ok(&gw, "GET", "/api/v1/accounts", None).await;
    let support = stored
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Support")
        .expect("the account is stored")
        .clone();
    assert_eq!(
        support["scope"],
        json!({"kind": "permitted", "skill_groups": [], "roles": [], "users": [kim, lee]})
    );

    browser.click_link("Grant grid").await;
    browser.assert_accessible().await;
    tick(&browser, "Send on behalf: kim@example.com").await;
    tick(&browser, "Access emails: kim@example.com").await;
    browser.click_button("Save grants").await;
    assert!(browser.text().await.contains("Grants saved"));
    let grid = browser.url().await;
    browser.goto(&grid).await;
    assert!(ticked(&browser, "Send on behalf: kim@example.com").await);
    assert!(ticked(&browser, "Access emails: kim@example.com").await);
    assert!(!ticked(&browser, "Send as: kim@example.com").await);
    assert!(!ticked(&browser, "Send on behalf: lee@example.com").await);
    browser.close().await;

    let refused = send(&gw, "lee@example.com")
        .await
        .expect_err("lee holds no grant");
    assert!(refused.contains("may not send as"), "{refused}");
    send(&gw, "kim@example.com")
        .await
        .expect("kim sends on behalf");
    let delivered = gw.wait_outbox(1).await;
    assert_eq!(delivered.len(), 1, "only kim's message");
    let text = String::from_utf8_lossy(&delivered[0]);
    let head = &text[..text.find("\r\n\r\n").unwrap()];
    assert_eq!(
        field(head, "From"),
        "From: Support <support@example.com>",
        "{head}"
    );
    let sender = field(head, "Sender");
    assert!(
        sender.contains("<kim@example.com>"),
        "send on behalf names kim: {head}"
    );
    assert!(head.contains("Subject: From kim@example.com"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_account_shows_the_upstreams_refusal() {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        rcpt_replies: vec![(
            "nobody@example.net".into(),
            "550 5.1.1 no such mailbox".into(),
        )],
        ..Script::default()
    })
    .await;
    let port = upstream.addr.port();
    let gw = Gateway::start(move |c| {
        c.upstreams
            .insert("sink".into(), common::sink_upstream(port));
    })
    .await;
    root(&gw).await;
    let id = account(&gw, "Support", "support@example.com", "sink").await;
    let browser = Browser::start().await;
    login(&browser, &gw, "root@example.com").await;
    browser.goto(&url(&gw, "/console/accounts")).await;
    browser.assert_accessible().await;
    browser.click_link("Support").await;
    browser.click_link("Test account").await;
    browser.assert_accessible().await;
    browser
        .fill("Send the test message to", "nobody@example.net")
        .await;
    browser.click_button("Send test message").await;
    let text = browser.text().await;
    assert!(
        text.contains("The upstream refused the test message."),
        "{text}"
    );
    assert!(text.contains("550 5.1.1 no such mailbox"), "{text}");
    browser.assert_accessible().await;
    assert!(browser
        .url()
        .await
        .ends_with(&format!("/console/accounts/{id}/test")));
    browser.close().await;
}

/// Asks the Explain page whether kim may send as support@ and returns the page's text.
async fn explain(browser: &Browser, gw: &Gateway) -> String {
    browser.goto(&url(gw, "/console/accounts/explain")).await;
    browser.fill("User (login or id)", "kim@example.com").await;
    browser
        .fill("Header From address", "support@example.com")
        .await;
    browser.click_button("Explain").await;
    browser.text().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_turns_from_refused_to_allowed_after_a_grant() {
    let gw = Gateway::start(|_| {}).await;
    root(&gw).await;
    staff(&gw, "kim@example.com", None).await;
    let id = account(&gw, "Support", "support@example.com", "local").await;
    let browser = Browser::start().await;
    login(&browser, &gw, "root@example.com").await;
    let before = explain(&browser, &gw).await;
    assert!(before.contains("Refused"), "{before}");
    assert!(
        before.contains("may not send as support@example.com"),
        "{before}"
    );
    browser.assert_accessible().await;

    browser
        .goto(&url(&gw, &format!("/console/accounts/{id}/grants")))
        .await;
    tick(&browser, "Send as: kim@example.com").await;
    browser.click_button("Save grants").await;
    let after = explain(&browser, &gw).await;
    assert!(after.contains("Allowed"), "{after}");
    assert!(after.contains("send_as"), "{after}");
    assert!(
        after.contains("removed (none)"),
        "send as: no Sender: {after}"
    );
    browser.assert_accessible().await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_pages_and_form_errors_pass_axe() {
    let gw = Gateway::start(|_| {}).await;
    root(&gw).await;
    let key = json!({"domain": "example.com", "algorithm": "ed25519"});
    ok(&gw, "POST", "/api/v1/dkim-keys", Some(key)).await;
    let browser = Browser::start().await;
    login(&browser, &gw, "root@example.com").await;
    for page in ["/console/upstreams", "/console/dkim", "/console/settings"] {
        browser.goto(&url(&gw, page)).await;
        browser.assert_accessible().await;
    }
    // A refused field, shown beside it, is accessible too.
    browser.goto(&url(&gw, "/console/accounts/new")).await;
    browser.fill("Friendly name", "Sales").await;
    browser.fill("Mailbox address", "not an address").await;
    browser.click_button("Create account").await;
    let error = browser
        .client()
        .find(Locator::Css("#f-address-error"))
        .await
        .expect("the error beside the address");
    assert!(error
        .text()
        .await
        .unwrap()
        .contains("is not a valid mailbox"));
    browser.assert_accessible().await;
    browser.goto(&url(&gw, "/console/settings")).await;
    browser.fill("Most users", "lots").await;
    browser.click_button("Save settings").await;
    assert!(browser.text().await.contains("a whole number"));
    browser.assert_accessible().await;
    browser.close().await;
}
