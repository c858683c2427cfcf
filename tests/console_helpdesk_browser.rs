//! The console's helpdesk pages in chromium (tests/common/browser.rs): **Block requester
//! and delete tickets** removes the requester's tickets and their next inbound mail is
//! refused; a requester sees only their own tickets; and every helpdesk page passes
//! axe-core. (The same behaviour over plain HTTP: `console_helpdesk`.)

mod common;

use common::browser::Browser;
use common::helpdesk::{self, api, message, send, SUPPORT};
use common::helpdesk_console::{mail, ticket_id, PASSWORD};
use common::Gateway;
use serde_json::json;

/// A staff user holding `admin` (through a role).
async fn admin(gw: &Gateway, login: &str) {
    let user = gw.create_user(login, "staff", PASSWORD).await;
    let role = json!({"name": "admins", "permissions": ["admin"]});
    assert_eq!(api(gw, "POST", "/api/v1/roles", Some(role)).await.0, 201);
    let path = format!("/api/v1/users/{}", user["id"]);
    let roles = json!({"roles": ["admins"]});
    assert_eq!(api(gw, "PATCH", &path, Some(roles)).await.0, 200);
}

/// Logs `login` in through the form.
async fn log_in(browser: &Browser, gw: &Gateway, login: &str) {
    browser
        .goto(&format!("http://{}/console/login", gw.running.api))
        .await;
    browser.fill("Login", login).await;
    browser.fill("Password", PASSWORD).await;
    browser.click_button("Log in").await;
    assert!(
        !browser.url().await.contains("/console/login"),
        "{}",
        browser.text().await
    );
}

/// Opens console page `path`, checks it passes axe-core, and returns its text.
async fn open(browser: &Browser, gw: &Gateway, path: &str) -> String {
    browser
        .goto(&format!("http://{}{path}", gw.running.api))
        .await;
    browser.assert_accessible().await;
    browser.text().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_requester_and_delete_tickets_in_chromium_removes_them_and_refuses_the_next_mail() {
    let gw = helpdesk::helpdesk().await;
    mail(&gw, "pest@spam.example", "Buy now").await;
    mail(&gw, "pest@spam.example", "Buy again").await;
    mail(&gw, "ann@customer.example", "A real question").await;
    let id = ticket_id(&gw, "Buy now").await;
    admin(&gw, "agent@corp.example").await;

    let browser = Browser::start().await;
    log_in(&browser, &gw, "agent@corp.example").await;
    let tickets = open(&browser, &gw, "/console/tickets").await;
    assert!(tickets.contains("Buy now") && tickets.contains("A real question"));
    let ticket = open(&browser, &gw, &format!("/console/tickets/{id}")).await;
    assert!(ticket.contains("pest@spam.example"), "{ticket}");
    let list = open(&browser, &gw, "/console/requesters?q=pest").await;
    assert!(list.contains("pest@spam.example"), "{list}");
    assert!(!list.contains("ann@customer.example"), "{list}");
    // The button asks first (static/console.js): this user answers yes.
    browser
        .client()
        .execute("window.confirm = () => true;", vec![])
        .await
        .expect("answer the confirmation");
    browser
        .click_button("Block requester and delete tickets")
        .await;
    let text = browser.text().await;
    assert!(
        text.contains("pest@spam.example is blocked; 2 ticket(s) deleted"),
        "{text}"
    );
    browser.assert_accessible().await;
    let tickets = open(&browser, &gw, "/console/tickets").await;
    assert!(!tickets.contains("Buy now"), "{tickets}");
    assert!(!tickets.contains("Buy again"), "{tickets}");
    assert!(tickets.contains("A real question"), "{tickets}");
    browser.close().await;

    let again = message("pest@spam.example", "Third", "", "x");
    let reply = send(&gw, "pest@spam.example", SUPPORT, &again).await;
    assert_eq!(reply.code, 550, "{reply:?}");
    assert_eq!(helpdesk::tickets(&gw).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_sees_only_their_own_tickets_in_chromium() {
    let gw = helpdesk::helpdesk().await;
    mail(&gw, "ann@customer.example", "Question from Ann").await;
    mail(&gw, "bob@customer.example", "Question from Bob").await;
    let bobs = ticket_id(&gw, "Question from Bob").await;
    let ann = helpdesk::user(&gw, "ann@customer.example").await.unwrap();
    let path = format!("/api/v1/users/{}", ann["id"]);
    let password = json!({"password": PASSWORD});
    assert_eq!(api(&gw, "PATCH", &path, Some(password)).await.0, 200);

    let browser = Browser::start().await;
    log_in(&browser, &gw, "ann@customer.example").await;
    assert!(browser.url().await.ends_with("/console/my/tickets"));
    browser.assert_accessible().await;
    let mine = browser.text().await;
    assert!(mine.contains("Question from Ann"), "{mine}");
    assert!(!mine.contains("Bob"), "{mine}");
    browser.click_link("Question from Ann").await;
    browser.assert_accessible().await;
    let ticket = browser.text().await;
    assert!(ticket.contains("Hello.") && ticket.contains("ann@customer.example"));
    let other = open(&browser, &gw, &format!("/console/my/tickets/{bobs}")).await;
    assert!(
        other.contains("404") && !other.contains("Question from Bob"),
        "{other}"
    );
    let staff = open(&browser, &gw, "/console/tickets").await;
    assert!(
        staff.contains("403") && !staff.contains("Question from Bob"),
        "{staff}"
    );
    let staff = open(&browser, &gw, &format!("/console/tickets/{bobs}")).await;
    assert!(staff.contains("403"), "{staff}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_helpdesk_page_passes_axe_core_with_and_without_errors() {
    let gw = helpdesk::helpdesk().await;
    mail(&gw, "ann@customer.example", "Question from Ann").await;
    admin(&gw, "agent@corp.example").await;
    let (_, accounts) = api(&gw, "GET", "/api/v1/accounts", None).await;
    let support = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == SUPPORT)
        .unwrap()["id"]
        .as_u64()
        .unwrap();

    let browser = Browser::start().await;
    log_in(&browser, &gw, "agent@corp.example").await;
    open(&browser, &gw, "/console/blocklist").await;
    browser.fill("Address or domain", "not an entry").await;
    browser.click_button("Block").await;
    browser.assert_accessible().await;
    assert!(
        browser.text().await.contains("an address"),
        "the reason beside the field"
    );
    browser.fill("Address or domain", "spam.example").await;
    browser.click_button("Block").await;
    browser.assert_accessible().await;
    assert!(browser.text().await.contains("spam.example is blocked"));

    open(&browser, &gw, "/console/webhooks").await;
    browser.fill("Name", "crm").await;
    browser.fill("URL", "http://127.0.0.1:9/hook").await;
    browser.click_button("Create webhook").await;
    browser.assert_accessible().await;
    assert!(browser.text().await.contains("shown this once"));
    let (_, hooks) = api(&gw, "GET", "/api/v1/webhooks", None).await;
    open(
        &browser,
        &gw,
        &format!("/console/webhooks/{}", hooks[0]["id"]),
    )
    .await;

    let inbound = format!("/console/accounts/{support}/inbound");
    open(&browser, &gw, &inbound).await;
    browser.fill("Group new requesters join", "nobody").await;
    browser.click_button("Save helpdesk settings").await;
    browser.assert_accessible().await;
    assert!(browser.text().await.contains("no group"));
    open(&browser, &gw, "/console/requesters").await;
    open(&browser, &gw, "/console/tickets?status=open").await;
    browser.close().await;
}
