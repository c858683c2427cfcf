//! The console's dashboard: this node's traffic of the last hour and day, and the parts a
//! viewer may see.

mod common;

use common::backup::{mailbox_user, submit, PASSWORD};
use common::console::Console;
use common::Gateway;

/// The number in the row `label`'s first cell after the header (the last hour).
fn last_hour(body: &str, label: &str) -> u64 {
    let row = format!("<th scope=\"row\">{label}</th><td>");
    let at = body
        .find(&row)
        .unwrap_or_else(|| panic!("no row {label}: {body}"))
        + row.len();
    body[at..at + body[at..].find('<').unwrap()]
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_dashboard_counts_accepted_and_delivered_mail() {
    let gw = Gateway::start(|_| {}).await;
    mailbox_user(&gw, "desk@help.example", "complete").await;
    let mut console = Console::login(gw.running.api, "desk@help.example", PASSWORD).await;
    let before = console.get("/console/").await;
    assert_eq!(last_hour(&before.body, "Accepted"), 0);
    for n in 0..3 {
        submit(
            &gw,
            "desk@help.example",
            "someone@elsewhere.example",
            &format!("n{n}"),
            "",
        )
        .await;
    }
    gw.wait_outbox(3).await;
    let mut page = console.get("/console/").await;
    for _ in 0..50 {
        if last_hour(&page.body, "Delivered") == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        page = console.get("/console/").await;
    }
    assert_eq!(last_hour(&page.body, "Accepted"), 3, "{}", page.body);
    assert_eq!(last_hour(&page.body, "Delivered"), 3);
    // A staff user without permissions sees no queue and no webhooks on it.
    assert!(
        !page.body.contains("href=\"/console/queue\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("dead deliver"));
}
