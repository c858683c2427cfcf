//! The console's helpdesk pages over HTTP (no browser): tickets made by inbound mail shown
//! with their articles and attachments, requesters blocked from the list (and with their
//! tickets deleted, their next mail refused at SMTP), the permission-dependent buttons
//! and the API's refusals, the blocklist, webhooks and the retry of a dead delivery, an
//! account's inbound settings, and a requester who sees only their own tickets.

mod common;

use common::console::Console;
use common::helpdesk::{self, api, message, send, SUPPORT};
use common::helpdesk_console::{
    assert_shows, delivery, mail, receiver, staff, ticket_id, user_id, PASSWORD,
};
use common::Gateway;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_mail_becomes_a_ticket_the_console_lists_shows_and_closes() {
    let gw = helpdesk::helpdesk().await;
    let mime = "From: Ann <ann@customer.example>\r\nTo: support@help.example\r\n\
        Subject: Printer on fire\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
        --b1\r\nContent-Type: text/plain\r\n\r\nIt smokes & <sparks>.\r\n\
        --b1\r\nContent-Type: text/plain; name=\"log.txt\"\r\n\
        Content-Disposition: attachment; filename=\"log.txt\"\r\n\r\nline one\r\n--b1--";
    let reply = send(&gw, "ann@customer.example", SUPPORT, mime).await;
    assert_eq!(reply.code, 250, "{reply:?}");
    mail(&gw, "bob@other.example", "Unrelated question").await;
    let id = ticket_id(&gw, "Printer on fire").await;
    let mut admin = staff(&gw, "agent@corp.example", &["admin"]).await;

    let list = admin.get("/console/tickets").await;
    assert_shows(
        &list,
        200,
        &["Printer on fire", "ann@customer.example", "Support"],
    );
    let found = admin.get("/console/tickets?q=printer&status=open").await;
    assert_shows(&found, 200, &["Printer on fire"]);
    assert!(!found.body.contains("Unrelated question"), "{}", found.body);
    let none = admin.get("/console/tickets?status=closed").await;
    assert!(!none.body.contains("Printer on fire"), "{}", none.body);

    let page = admin.get(&format!("/console/tickets/{id}")).await;
    // The body is text, escaped: no markup from the sender reaches the page.
    assert_shows(
        &page,
        200,
        &[
            "ann@customer.example",
            "It smokes &#38; &#60;sparks&#62;.",
            "log.txt",
        ],
    );
    assert!(!page.body.contains("<sparks>"), "{}", page.body);
    assert!(
        page.body.contains("Block requester and delete tickets"),
        "{}",
        page.body
    );
    let link = format!("/console/tickets/{id}/articles/");
    let at = page.body.find(&link).expect("an attachment link");
    let href = &page.body[at..at + page.body[at..].find('"').unwrap()];
    let file = admin.get(href).await;
    assert_eq!(file.status, 200, "{}", file.body);
    assert!(file.body.contains("line one"), "{}", file.body);
    assert!(file
        .header("content-disposition")
        .unwrap()
        .contains("log.txt"));

    let closed = admin
        .post(
            &format!("/console/tickets/{id}/status"),
            &[("status", "closed")],
        )
        .await;
    assert_eq!(closed.status, 303, "{}", closed.body);
    let page = admin.get(&format!("/console/tickets/{id}")).await;
    assert_shows(&page, 200, &["is now closed", "badge closed"]);
    let (_, audit) = api(&gw, "GET", "/api/v1/audit?action=ticket.update", None).await;
    assert_eq!(audit[0]["actor"], "agent@corp.example", "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_requester_and_delete_tickets_removes_them_and_refuses_their_next_mail() {
    let gw = helpdesk::helpdesk().await;
    mail(&gw, "pest@spam.example", "Buy now").await;
    mail(&gw, "pest@spam.example", "Buy again").await;
    mail(&gw, "ann@customer.example", "A real question").await;
    let pest = user_id(&gw, "pest@spam.example").await;
    let mut moderator = staff(
        &gw,
        "mod@corp.example",
        &["block_unwanted_email", "delete_tickets"],
    )
    .await;

    let list = moderator.get("/console/requesters").await;
    assert_shows(
        &list,
        200,
        &[
            "pest@spam.example",
            "Block requester",
            "Block requester and delete tickets",
        ],
    );
    // The refusals of SPEC §4 are shown with the API's reason and status.
    let refused = moderator
        .post(
            &format!(
                "/console/requesters/{}/block",
                user_id(&gw, "mod@corp.example").await
            ),
            &[("delete_tickets", "false")],
        )
        .await;
    assert_shows(&refused, 409, &["mod@corp.example is not a requester"]);
    let system = gw
        .create_user(
            "bot@corp.example",
            "system",
            "a-long-system-secret-0123456789abcdef",
        )
        .await;
    let refused = moderator
        .post(
            &format!("/console/requesters/{}/block", system["id"]),
            &[("delete_tickets", "false")],
        )
        .await;
    assert_shows(&refused, 403, &["can never be blocked"]);
    let quiet = gw
        .create_user("quiet@customer.example", "requester", PASSWORD)
        .await;
    let refused = moderator
        .post(
            &format!("/console/requesters/{}/block", quiet["id"]),
            &[("delete_tickets", "false")],
        )
        .await;
    assert_shows(
        &refused,
        409,
        &["not a requester that opened a ticket by e-mail"],
    );

    // Nobody blocks themselves, even a requester given the permission (through the API;
    // the console's staff pages are not a requester's).
    let role = json!({"name": "self-blockers", "permissions": ["block_unwanted_email"]});
    assert_eq!(api(&gw, "POST", "/api/v1/roles", Some(role)).await.0, 201);
    let path = format!("/api/v1/users/{pest}");
    let roles = json!({"roles": ["self-blockers"]});
    assert_eq!(api(&gw, "PATCH", &path, Some(roles)).await.0, 200);
    let (_, token) = api(&gw, "POST", &format!("{path}/tokens"), Some(json!({}))).await;
    let own = format!("/api/v1/requesters/{pest}/block");
    let token = token["token"].as_str().unwrap();
    let (status, text) = common::http(gw.running.api, "POST", &own, Some(token), Some("{}")).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("you cannot block yourself"), "{text}");

    let done = moderator
        .post(
            &format!("/console/requesters/{pest}/block"),
            &[("delete_tickets", "true")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let list = moderator.get("/console/requesters").await;
    assert_shows(
        &list,
        200,
        &[
            "pest@spam.example is blocked; 2 ticket(s) deleted",
            "Unblock",
        ],
    );
    let left: Vec<Value> = helpdesk::tickets(&gw).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["subject"], "A real question");
    let tickets = moderator.get("/console/tickets").await;
    assert!(!tickets.body.contains("Buy now"), "{}", tickets.body);

    let reply = send(
        &gw,
        "pest@spam.example",
        SUPPORT,
        &message("pest@spam.example", "Third", "", "x"),
    )
    .await;
    assert_eq!(reply.code, 550, "{reply:?}");
    let (_, audit) = api(&gw, "GET", "/api/v1/audit?action=requester.block", None).await;
    assert_eq!(audit[0]["actor"], "mod@corp.example", "{audit}");

    let undone = moderator
        .post(&format!("/console/requesters/{pest}/unblock"), &[])
        .await;
    assert_eq!(undone.status, 303, "{}", undone.body);
    assert_eq!(
        helpdesk::user(&gw, "pest@spam.example").await.unwrap()["status"],
        "active"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_permissions_there_are_no_block_buttons_and_the_form_is_refused() {
    let gw = helpdesk::helpdesk().await;
    mail(&gw, "pest@spam.example", "Buy now").await;
    let pest = user_id(&gw, "pest@spam.example").await;
    let block = format!("/console/requesters/{pest}/block");

    let mut clerk = staff(&gw, "clerk@corp.example", &["manage_users"]).await;
    let list = clerk.get("/console/requesters").await;
    assert_shows(&list, 200, &["pest@spam.example"]);
    assert!(!list.body.contains("Block requester"), "{}", list.body);
    let refused = clerk.post(&block, &[("delete_tickets", "false")]).await;
    assert_shows(&refused, 403, &["block_unwanted_email"]);

    let mut blocker = staff(&gw, "blocker@corp.example", &["block_unwanted_email"]).await;
    let list = blocker.get("/console/requesters").await;
    assert_shows(&list, 200, &["Block requester"]);
    assert!(!list.body.contains("and delete tickets"), "{}", list.body);
    let refused = blocker.post(&block, &[("delete_tickets", "true")]).await;
    assert_shows(&refused, 403, &["delete_tickets"]);
    assert_eq!(helpdesk::tickets(&gw).await.len(), 1);

    let id = ticket_id(&gw, "Buy now").await;
    let mut agent = staff(&gw, "agent@corp.example", &["admin"]).await;
    assert!(!clerk
        .get(&format!("/console/tickets/{id}"))
        .await
        .body
        .contains("Delete ticket"));
    let page = agent.get(&format!("/console/tickets/{id}")).await;
    assert_shows(&page, 200, &["Delete ticket"]);
    let refused = clerk
        .post(&format!("/console/tickets/{id}/delete"), &[])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let deleted = agent
        .post(&format!("/console/tickets/{id}/delete"), &[])
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert!(helpdesk::tickets(&gw).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_sees_only_their_own_tickets_and_no_staff_page() {
    let gw = helpdesk::helpdesk().await;
    mail(&gw, "ann@customer.example", "Question from Ann").await;
    mail(&gw, "bob@customer.example", "Question from Bob").await;
    let anns = ticket_id(&gw, "Question from Ann").await;
    let bobs = ticket_id(&gw, "Question from Bob").await;
    let ann = user_id(&gw, "ann@customer.example").await;
    let path = format!("/api/v1/users/{ann}");
    let (status, text) = api(&gw, "PATCH", &path, Some(json!({"password": PASSWORD}))).await;
    assert_eq!(status, 200, "{text}");
    let mut console = Console::login(gw.running.api, "ann@customer.example", PASSWORD).await;

    let home = console.get("/console/").await;
    assert_eq!(home.status, 303);
    let mine = console.get("/console/my/tickets").await;
    assert_shows(&mine, 200, &["Question from Ann"]);
    assert!(!mine.body.contains("Bob"), "{}", mine.body);
    let page = console.get(&format!("/console/my/tickets/{anns}")).await;
    assert_shows(&page, 200, &["Hello.", "ann@customer.example"]);
    let other = console.get(&format!("/console/my/tickets/{bobs}")).await;
    assert_eq!(other.status, 404, "{}", other.body);
    assert!(!other.body.contains("Question from Bob"), "{}", other.body);
    for staff_page in [
        "/console/tickets".to_string(),
        format!("/console/tickets/{anns}"),
        format!("/console/tickets/{bobs}"),
        "/console/requesters".into(),
        "/console/blocklist".into(),
        "/console/webhooks".into(),
        "/console/accounts/1/inbound".into(),
    ] {
        let page = console.get(&staff_page).await;
        assert!(
            page.status == 403 || page.status == 404,
            "{staff_page}: {} {}",
            page.status,
            page.body
        );
    }
    let refused = console
        .post(&format!("/console/tickets/{bobs}/delete"), &[])
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(helpdesk::tickets(&gw).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocklist_adds_refuses_and_removes_entries() {
    let gw = helpdesk::helpdesk().await;
    let (status, _) = api(
        &gw,
        "PATCH",
        "/api/v1/settings",
        Some(json!({"org_domains": ["corp.example", "mail.help.example"]})),
    )
    .await;
    assert_eq!(status, 200);
    let mut moderator = staff(&gw, "mod@corp.example", &["block_unwanted_email"]).await;
    moderator.get("/console/blocklist").await;
    let added = moderator
        .post(
            "/console/blocklist",
            &[("entry", "Spam.Example"), ("reason", "junk")],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let list = moderator.get("/console/blocklist").await;
    assert_shows(
        &list,
        200,
        &["spam.example is blocked", "junk", "mod@corp.example"],
    );
    let reply = send(
        &gw,
        "x@spam.example",
        SUPPORT,
        &message("x@spam.example", "Hi", "", "x"),
    )
    .await;
    assert_eq!(reply.code, 550, "{reply:?}");

    let bad = moderator
        .post("/console/blocklist", &[("entry", "not an entry")])
        .await;
    assert_shows(
        &bad,
        422,
        &[
            "id=\"entry-error\"",
            "aria-invalid=\"true\"",
            "value=\"not an entry\"",
        ],
    );
    // The organisation's own domains, or a domain above one, are never blocked.
    for entry in ["corp.example", "Help.Example"] {
        let own = moderator
            .post("/console/blocklist", &[("entry", entry)])
            .await;
        assert_shows(&own, 422, &["org_domains"]);
    }
    let other = moderator
        .post("/console/blocklist", &[("entry", "lp.example")])
        .await;
    assert_eq!(
        other.status, 303,
        "not a parent of mail.help.example: {}",
        other.body
    );

    let removed = moderator
        .post("/console/blocklist/remove", &[("entry", "spam.example")])
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    let list = moderator.get("/console/blocklist").await;
    assert_shows(
        &list,
        200,
        &["spam.example is no longer blocked", "lp.example"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_created_with_the_secret_shown_once_and_a_dead_delivery_is_retried() {
    let gw = Gateway::start(|c| c.webhooks.retry_intervals_secs = vec![1]).await;
    let status = Arc::new(AtomicU16::new(500));
    let url = receiver(status.clone()).await;
    let mut admin = staff(&gw, "admin@corp.example", &["admin"]).await;
    admin.get("/console/webhooks").await;
    let refused = admin
        .post(
            "/console/webhooks",
            &[("name", "crm"), ("url", "ftp://x"), ("secret", "")],
        )
        .await;
    assert_shows(&refused, 422, &["id=\"url-error\""]);
    let created = admin
        .post(
            "/console/webhooks",
            &[
                ("name", "crm"),
                ("url", &url),
                ("secret", "a-signing-secret-0123"),
                ("max_attempts", "1"),
            ],
        )
        .await;
    assert_shows(&created, 201, &["a-signing-secret-0123", "shown this once"]);
    let list = admin.get("/console/webhooks").await;
    assert_shows(&list, 200, &["crm", &url]);
    assert!(!list.body.contains("a-signing-secret-0123"), "shown once");
    let (_, hooks) = api(&gw, "GET", "/api/v1/webhooks", None).await;
    let hook = hooks[0]["id"].as_u64().unwrap();
    let inbound = json!({"auto_create_requesters": true, "webhooks": [hook]});
    helpdesk::mailbox(&gw, "Support", SUPPORT, inbound).await;

    mail(&gw, "ann@customer.example", "Hooked").await;
    let dead = delivery(&gw, hook, |d| d["status"] == "dead").await;
    let page = admin.get(&format!("/console/webhooks/{hook}")).await;
    assert_shows(&page, 200, &["badge dead", "HTTP 500: nope", "Retry"]);
    status.store(200, Ordering::SeqCst);
    let retry = format!("/console/webhooks/{hook}/deliveries/{}/retry", dead["id"]);
    let done = admin.post(&retry, &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    delivery(&gw, hook, |d| d["status"] == "delivered").await;
    let page = admin.get(&format!("/console/webhooks/{hook}")).await;
    assert_shows(&page, 200, &["badge delivered"]);
    let again = admin.post(&retry, &[]).await;
    assert_shows(&again, 409, &["is not dead"]);
    let (_, audit) = api(&gw, "GET", "/api/v1/audit?action=webhook.retry", None).await;
    assert_eq!(audit[0]["actor"], "admin@corp.example", "{audit}");
    let in_use = admin
        .post(&format!("/console/webhooks/{hook}/delete"), &[])
        .await;
    assert_shows(&in_use, 409, &["still used"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_inbound_settings_are_saved_through_the_api() {
    let gw = helpdesk::helpdesk().await;
    let (_, accounts) = api(&gw, "GET", "/api/v1/accounts", None).await;
    let id = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == SUPPORT)
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let path = format!("/console/accounts/{id}/inbound");
    let mut admin = staff(&gw, "admin@corp.example", &["admin"]).await;
    let page = admin.get(&path).await;
    assert_shows(
        &page,
        200,
        &[
            "id=\"enabled\" name=\"enabled\" checked",
            "value=\"customers\"",
        ],
    );

    let form = [
        ("enabled", "on"),
        ("purpose", "comment"),
        ("default_group", "nobody"),
        ("refuse_dmarc_reject", "on"),
    ];
    let refused = admin.post(&path, &form).await;
    assert_shows(&refused, 422, &["no group", "value=\"nobody\""]);
    let mut form = form;
    form[2] = ("default_group", "");
    let saved = admin.post(&path, &form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, account) = api(&gw, "GET", &format!("/api/v1/accounts/{id}"), None).await;
    let expected = json!({"purpose": "comment", "auto_create_requesters": false,
        "default_group": null, "refuse_dmarc_reject": true, "webhooks": []});
    assert_eq!(account["inbound"], expected, "{account}");

    // A user with the account's setup right but not shared_account_setup: the API refuses.
    let mut clerk = staff(&gw, "clerk@corp.example", &["manage_users"]).await;
    let refused = clerk.post(&path, &[("purpose", "ticket")]).await;
    assert!(
        refused.status == 403 || refused.status == 404,
        "{}",
        refused.body
    );
    let (_, after) = api(&gw, "GET", &format!("/api/v1/accounts/{id}"), None).await;
    assert_eq!(after["inbound"], expected);
}
