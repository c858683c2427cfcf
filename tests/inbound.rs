//! Inbound helpdesk mail (SPEC §4, §6, §7) through a real SMTP dialogue on the inbound
//! listener: only helpdesk mailboxes are recipients; blocked addresses, domains, users and
//! header Froms are refused at their stage with a warning logged and nothing stored; mail
//! becomes tickets with requesters created on the fly; threading, loops, knowledge items,
//! and blocking a requester.

mod common;

use common::{http, logs, Client, Gateway, TOKEN};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SUPPORT: &str = "support@help.example";

async fn api(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = http(gw.running.api, method, path, Some(TOKEN), body.as_deref()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A gateway with the group `customers` and the helpdesk mailbox `SUPPORT` (tickets,
/// auto-created requesters in `customers`).
async fn helpdesk() -> Gateway {
    let gw = Gateway::start(|_| {}).await;
    let (status, body) = api(
        &gw,
        "POST",
        "/api/v1/groups",
        Some(json!({"name": "customers"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    mailbox(
        &gw,
        "Support",
        SUPPORT,
        json!({"auto_create_requesters": true, "default_group": "customers"}),
    )
    .await;
    gw
}

async fn mailbox(gw: &Gateway, name: &str, address: &str, inbound: Value) -> u64 {
    let body = json!({"name": name, "address": address, "inbound": inbound});
    let (status, body) = api(gw, "POST", "/api/v1/accounts", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_u64().unwrap()
}

/// Sends `message` (CRLF lines, no final dot) on the inbound listener; the reply to the end
/// of data, or the first refusal before it.
async fn send(gw: &Gateway, mail_from: &str, rcpt: &str, message: &str) -> common::Reply {
    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.sender.example", 250).await;
    let reply = c.cmd(&format!("MAIL FROM:<{mail_from}>")).await;
    if reply.code != 250 {
        return reply;
    }
    let reply = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
    if reply.code != 250 {
        return reply;
    }
    c.expect("DATA", 354).await;
    c.send(format!("{message}\r\n.\r\n").as_bytes()).await;
    let reply = c.reply().await;
    c.expect("QUIT", 221).await;
    reply
}

fn message(from: &str, subject: &str, extra: &str, body: &str) -> String {
    format!("From: {from}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n{extra}\r\n{body}")
}

async fn tickets(gw: &Gateway) -> Vec<Value> {
    let (status, body) = api(gw, "GET", "/api/v1/tickets", None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

/// Waits until the queue is empty (every inbound message went through the hook).
async fn settle(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, queue) = api(gw, "GET", "/api/v1/queue", None).await;
        if queue.as_array().is_some_and(|q| q.is_empty()) {
            return;
        }
        assert!(Instant::now() < deadline, "queue never drained: {queue}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn user(gw: &Gateway, login: &str) -> Option<Value> {
    let (_, users) = api(gw, "GET", "/api/v1/users", None).await;
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == login)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_helpdesk_mailboxes_are_recipients() {
    let logs = logs::capture();
    let gw = helpdesk().await;
    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.sender.example", 250).await;
    c.expect("MAIL FROM:<ann@customer.example>", 250).await;
    let refused = c.cmd("RCPT TO:<someone@elsewhere.example>").await;
    assert_eq!(refused.code, 550, "{refused:?}");
    assert!(
        refused.text.contains("5.7.1 relaying denied"),
        "{refused:?}"
    );
    c.expect(&format!("RCPT TO:<{}>", SUPPORT.to_uppercase()), 250)
        .await;
    c.expect("QUIT", 221).await;
    assert!(logs
        .find(&["WARN", "relaying denied", "someone@elsewhere.example"])
        .await
        .is_some());
    assert_eq!(
        gw.metric("postern_smtp_rejections_total{reason=\"relay_denied\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_addresses_domains_users_and_header_froms_are_refused_and_nothing_is_stored() {
    let logs = logs::capture();
    let gw = helpdesk().await;
    for entry in ["pest@nuisance.example", "spam-domain.example"] {
        let (status, body) = api(
            &gw,
            "POST",
            "/api/v1/blocklist",
            Some(json!({"entry": entry})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let blocked = gw
        .create_user("troll@users.example", "requester", "troll-password-1")
        .await;
    let (status, body) = api(
        &gw,
        "PATCH",
        &format!("/api/v1/users/{}", blocked["id"]),
        Some(json!({"status": "blocked"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    for (sender, rule) in [
        (
            "pest@nuisance.example",
            "blocklist Address pest@nuisance.example",
        ),
        (
            "x@mx.spam-domain.example",
            "blocklist Domain spam-domain.example",
        ),
        ("troll@users.example", "blocked user troll@users.example"),
    ] {
        let reply = send(&gw, sender, SUPPORT, &message(sender, "hi", "", "x")).await;
        assert_eq!(reply.code, 550, "{sender}: {reply:?}");
        assert!(reply.text.starts_with("550 5.7.1"), "{reply:?}");
        let line = logs
            .find(&[
                "WARN",
                "MAIL FROM refused",
                sender,
                rule,
                "listener=inbound",
            ])
            .await;
        assert!(line.is_some(), "no warning for {sender}");
    }
    // An innocent envelope sender with a blocked header From: refused at the end of data.
    let reply = send(
        &gw,
        "relay@forwarder.example",
        SUPPORT,
        &message("Pest <pest@nuisance.example>", "hi", "", "x"),
    )
    .await;
    assert_eq!(reply.code, 550, "{reply:?}");
    assert!(reply.text.contains("pest@nuisance.example"), "{reply:?}");
    assert!(logs
        .find(&[
            "WARN",
            "blocked header From",
            "pest@nuisance.example",
            "listener=inbound"
        ])
        .await
        .is_some());
    assert_eq!(
        gw.metric("postern_smtp_rejections_total{reason=\"blocked\"}")
            .await,
        4.0
    );

    // Nothing was queued or recorded for any of them.
    let (_, queue) = api(&gw, "GET", "/api/v1/queue", None).await;
    assert_eq!(queue, json!([]));
    assert!(tickets(&gw).await.is_empty());
    assert!(user(&gw, "pest@nuisance.example").await.is_none());

    // A blocked user cannot authenticate either (on any listener), and the log says why.
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO client.example", 250).await;
    let auth = c
        .cmd(&format!(
            "AUTH PLAIN {}",
            common::base64("\0troll@users.example\0troll-password-1")
        ))
        .await;
    assert_eq!(auth.code, 535, "{auth:?}");
    assert!(logs
        .find(&[
            "WARN",
            "authentication refused: blocked user",
            "troll@users.example"
        ])
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_from_an_unknown_sender_opens_a_ticket_with_a_new_requester() {
    let gw = helpdesk().await;
    let text = message(
        "\"Ann Customer\" <ann@Customer.EXAMPLE>",
        "Printer on fire",
        "Message-ID: <first@customer.example>\r\nCc: bob@customer.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n",
        "--b\r\nContent-Type: text/plain\r\n\r\nIt is really on fire.\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"fire.log\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--",
    );
    let reply = send(&gw, "ann@customer.example", SUPPORT, &text).await;
    assert_eq!(reply.code, 250, "{reply:?}");
    settle(&gw).await;

    let requester = user(&gw, "ann@customer.example")
        .await
        .expect("requester created");
    assert_eq!(requester["kind"], "requester");
    assert_eq!(requester["created_via"], "email");
    assert_eq!(requester["group"], "customers");
    assert_eq!(requester["display_name"], "Ann Customer");

    let all = tickets(&gw).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let ticket = &all[0];
    assert_eq!(ticket["subject"], "Printer on fire");
    assert_eq!(ticket["origin"], "email");
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["requester"], requester["id"]);
    assert_eq!(ticket["participants"], json!(["bob@customer.example"]));
    let (status, shown) = api(
        &gw,
        "GET",
        &format!("/api/v1/tickets/{}", ticket["id"]),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let article = &shown["articles"][0];
    assert_eq!(article["kind"], "message");
    assert_eq!(
        article["text"].as_str().unwrap().trim(),
        "It is really on fire."
    );
    assert_eq!(
        article["attachments"],
        json!([{"name": "fire.log", "content_type": "application/octet-stream", "size": 5}])
    );
    let path = format!(
        "/api/v1/tickets/{}/articles/{}/attachments/0",
        ticket["id"], article["id"]
    );
    let (status, headers, bytes) =
        common::http_full(gw.running.api, "GET", &path, Some(TOKEN), None).await;
    assert_eq!(status, 200);
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: application/octet-stream"),
        "{headers}"
    );
    assert_eq!(bytes, "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_thread_by_message_id_references_and_subject_tag_but_not_for_strangers() {
    let gw = helpdesk().await;
    let first = message(
        "ann@customer.example",
        "Broken",
        "Message-ID: <t1@customer.example>\r\n",
        "help",
    );
    assert_eq!(
        send(&gw, "ann@customer.example", SUPPORT, &first)
            .await
            .code,
        250
    );
    settle(&gw).await;
    let id = tickets(&gw).await[0]["id"].as_u64().unwrap();
    let (status, closed) = api(
        &gw,
        "PATCH",
        &format!("/api/v1/tickets/{id}"),
        Some(json!({"status": "closed"})),
    )
    .await;
    assert_eq!(
        (status, closed["status"].as_str()),
        (200, Some("closed")),
        "{closed}"
    );

    let by_reply = message(
        "ann@customer.example",
        "Re: Broken",
        "Message-ID: <t2@customer.example>\r\nIn-Reply-To: <t1@customer.example>\r\n",
        "more",
    );
    let by_refs = message("ann@customer.example", "Re: Broken", "Message-ID: <t3@customer.example>\r\nReferences: <x@elsewhere.example> <T2@customer.example>\r\n", "again");
    let tagged = message(
        "ann@customer.example",
        &format!("Still broken [#{id}]"),
        "Message-ID: <t4@customer.example>\r\n",
        "tag",
    );
    for text in [by_reply, by_refs, tagged] {
        assert_eq!(
            send(&gw, "ann@customer.example", SUPPORT, &text).await.code,
            250
        );
        settle(&gw).await;
    }
    let all = tickets(&gw).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["status"], "open", "a reply reopens a closed ticket");
    let (_, shown) = api(&gw, "GET", &format!("/api/v1/tickets/{id}"), None).await;
    assert_eq!(shown["articles"].as_array().unwrap().len(), 4, "{shown}");

    // The same tag from someone who is neither requester nor participant: a new ticket.
    let stranger = message(
        "eve@other.example",
        &format!("Re: [#{id}]"),
        "",
        "let me in",
    );
    assert_eq!(
        send(&gw, "eve@other.example", SUPPORT, &stranger)
            .await
            .code,
        250
    );
    settle(&gw).await;
    let all = tickets(&gw).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_ne!(all[1]["requester"], all[0]["requester"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_mail_opens_no_ticket_and_gets_no_answer_but_may_join_as_a_note() {
    let gw = helpdesk().await;
    for extra in [
        "Auto-Submitted: auto-replied\r\n",
        "Precedence: bulk\r\n",
        "X-Auto-Response-Suppress: All\r\n",
        "X-Loop: postern@gw.test\r\n",
    ] {
        let text = message("bot@customer.example", "Out of office", extra, "away");
        assert_eq!(
            send(&gw, "bot@customer.example", SUPPORT, &text).await.code,
            250
        );
    }
    let bounce = message(
        "mailer-daemon@customer.example",
        "Undeliverable",
        "",
        "failed",
    );
    assert_eq!(send(&gw, "", SUPPORT, &bounce).await.code, 250);
    settle(&gw).await;
    assert!(tickets(&gw).await.is_empty());
    assert!(
        user(&gw, "bot@customer.example").await.is_none(),
        "automatic mail creates nobody"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = std::fs::read_dir(gw.outbox().join("new")).map_or(0, |d| d.count());
    assert_eq!(sent, 0, "nothing sent back");

    // An auto-reply that threads to a ticket joins it as a note.
    let first = message(
        "ann@customer.example",
        "Question",
        "Message-ID: <q1@customer.example>\r\n",
        "?",
    );
    assert_eq!(
        send(&gw, "ann@customer.example", SUPPORT, &first)
            .await
            .code,
        250
    );
    settle(&gw).await;
    let ooo = message(
        "ann@customer.example",
        "Auto: Question",
        "Auto-Submitted: auto-replied\r\nIn-Reply-To: <q1@customer.example>\r\n",
        "away",
    );
    assert_eq!(
        send(&gw, "ann@customer.example", SUPPORT, &ooo).await.code,
        250
    );
    settle(&gw).await;
    let all = tickets(&gw).await;
    assert_eq!(all.len(), 1);
    let (_, shown) = api(
        &gw,
        "GET",
        &format!("/api/v1/tickets/{}", all[0]["id"]),
        None,
    )
    .await;
    let kinds: Vec<&str> = shown["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["message", "note"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_full_default_group_creates_the_requester_without_one_with_a_warning() {
    let logs = logs::capture();
    let gw = Gateway::start(|_| {}).await;
    let (status, _) = api(
        &gw,
        "POST",
        "/api/v1/groups",
        Some(json!({"name": "vip", "max_users": 1})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = api(&gw, "POST", "/api/v1/groups", Some(json!({"name": "gone"}))).await;
    assert_eq!(status, 201);
    mailbox(
        &gw,
        "VIP",
        "vip@help.example",
        json!({"auto_create_requesters": true, "default_group": "vip"}),
    )
    .await;
    mailbox(
        &gw,
        "Gone",
        "gone@help.example",
        json!({"auto_create_requesters": true, "default_group": "gone"}),
    )
    .await;
    assert_eq!(api(&gw, "DELETE", "/api/v1/groups/gone", None).await.0, 204);

    for (sender, rcpt) in [
        ("one@c.example", "vip@help.example"),
        ("two@c.example", "vip@help.example"),
        ("three@c.example", "gone@help.example"),
    ] {
        let text = format!("From: {sender}\r\nTo: {rcpt}\r\nSubject: hello\r\n\r\nhi");
        assert_eq!(send(&gw, sender, rcpt, &text).await.code, 250);
        settle(&gw).await;
    }
    assert_eq!(user(&gw, "one@c.example").await.unwrap()["group"], "vip");
    assert_eq!(
        user(&gw, "two@c.example").await.unwrap()["group"],
        Value::Null
    );
    assert_eq!(
        user(&gw, "three@c.example").await.unwrap()["group"],
        Value::Null
    );
    assert!(logs
        .find(&["WARN", "two@c.example", "user limit is reached"])
        .await
        .is_some());
    assert!(logs
        .find(&["WARN", "three@c.example", "no longer exists"])
        .await
        .is_some());
    assert_eq!(
        tickets(&gw).await.len(),
        3,
        "the tickets are opened all the same"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_knowledge_mailbox_skips_senders_without_the_right_but_keeps_the_user() {
    let logs = logs::capture();
    let gw = Gateway::start(|_| {}).await;
    mailbox(
        &gw,
        "KB",
        "kb@help.example",
        json!({"purpose": "knowledge", "auto_create_requesters": true}),
    )
    .await;
    let text =
        "From: newbie@c.example\r\nTo: kb@help.example\r\nSubject: How to reset\r\n\r\nSteps.";
    assert_eq!(
        send(&gw, "newbie@c.example", "kb@help.example", text)
            .await
            .code,
        250
    );
    settle(&gw).await;
    assert!(
        user(&gw, "newbie@c.example").await.is_some(),
        "the user stays created"
    );
    assert!(logs
        .find(&["WARN", "newbie@c.example", "lacks create_knowledge"])
        .await
        .is_some());
    let (_, items) = api(&gw, "GET", "/api/v1/knowledge", None).await;
    assert_eq!(items, json!([]));

    gw.create_user("agent@help.example", "staff", "agent-password-1")
        .await;
    let text =
        "From: agent@help.example\r\nTo: kb@help.example\r\nSubject: How to reset\r\n\r\nSteps.";
    assert_eq!(
        send(&gw, "agent@help.example", "kb@help.example", text)
            .await
            .code,
        250
    );
    settle(&gw).await;
    let (_, items) = api(&gw, "GET", "/api/v1/knowledge", None).await;
    assert_eq!(items[0]["title"], "How to reset", "{items}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_senders_bounce_when_the_mailbox_does_not_create_requesters() {
    let gw = Gateway::start(|_| {}).await;
    mailbox(&gw, "Closed", "closed@help.example", json!({})).await;
    let text = "From: who@c.example\r\nTo: closed@help.example\r\nSubject: hi\r\n\r\nhi";
    assert_eq!(
        send(&gw, "who@c.example", "closed@help.example", text)
            .await
            .code,
        250
    );
    let dsn = gw.wait_outbox(1).await;
    assert_eq!(dsn.len(), 1, "a DSN to the sender");
    let dsn = String::from_utf8_lossy(&dsn[0]);
    assert!(dsn.contains("does not create requesters"), "{dsn}");
    assert!(tickets(&gw).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_a_requester_follows_every_rule_and_refuses_its_next_mail() {
    let gw = helpdesk().await;
    let text = message("pest@c.example", "Buy now", "", "spam");
    assert_eq!(send(&gw, "pest@c.example", SUPPORT, &text).await.code, 250);
    settle(&gw).await;
    let pest = user(&gw, "pest@c.example").await.unwrap();
    let pest_id = pest["id"].as_u64().unwrap();

    // An operator with block_unwanted_email but not delete_tickets.
    let (status, _) = api(
        &gw,
        "POST",
        "/api/v1/roles",
        Some(json!({"name": "moderator", "permissions": ["block_unwanted_email"]})),
    )
    .await;
    assert_eq!(status, 201);
    let moderator = gw
        .create_user("mod@help.example", "staff", "moderator-pass-1")
        .await;
    let (status, _) = api(
        &gw,
        "PATCH",
        &format!("/api/v1/users/{}", moderator["id"]),
        Some(json!({"roles": ["moderator"]})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, token) = api(
        &gw,
        "POST",
        &format!("/api/v1/users/{}/tokens", moderator["id"]),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{token}");
    let token = token["token"].as_str().unwrap().to_string();
    let as_mod = |path: String, body: Value| {
        let token = token.clone();
        let api_addr = gw.running.api;
        async move {
            let (status, text) = http(
                api_addr,
                "POST",
                &path,
                Some(&token),
                Some(&body.to_string()),
            )
            .await;
            (status, text)
        }
    };

    // Without delete_tickets, asking to delete them is refused.
    let (status, text) = as_mod(
        format!("/api/v1/requesters/{pest_id}/block"),
        json!({"delete_tickets": true}),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("delete_tickets"), "{text}");
    // Never a system user or the default admin.
    let system = gw
        .create_user(
            "bot@help.example",
            "system",
            "a-long-system-secret-0123456789abcdef",
        )
        .await;
    let (status, text) = as_mod(
        format!("/api/v1/requesters/{}/block", system["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    // Only a requester that opened a ticket by e-mail.
    let quiet = gw
        .create_user("quiet@c.example", "requester", "quiet-password-1")
        .await;
    let (status, text) = as_mod(
        format!("/api/v1/requesters/{}/block", quiet["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{text}");
    let (status, text) = as_mod(
        format!("/api/v1/requesters/{}/block", moderator["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{text}");

    let (status, text) = as_mod(format!("/api/v1/requesters/{pest_id}/block"), json!({})).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        user(&gw, "pest@c.example").await.unwrap()["status"],
        "blocked"
    );
    let reply = send(&gw, "pest@c.example", SUPPORT, &text_again()).await;
    assert_eq!(reply.code, 550, "{reply:?}");
    assert_eq!(tickets(&gw).await.len(), 1, "kept without delete_tickets");

    // Unblock restores it; blocking again as admin with delete_tickets deletes its tickets.
    let (status, _) = as_mod(format!("/api/v1/requesters/{pest_id}/unblock"), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        send(&gw, "pest@c.example", SUPPORT, &text_again())
            .await
            .code,
        250
    );
    settle(&gw).await;
    let (status, body) = api(
        &gw,
        "POST",
        &format!("/api/v1/requesters/{pest_id}/block"),
        Some(json!({"delete_tickets": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["deleted_tickets"].as_array().unwrap().len(),
        2,
        "{body}"
    );
    assert!(tickets(&gw).await.is_empty());
    let (_, audit) = api(&gw, "GET", "/api/v1/audit?action=requester.", None).await;
    assert_eq!(audit.as_array().unwrap().len(), 3, "{audit}");
}

fn text_again() -> String {
    message("pest@c.example", "Buy again", "", "spam")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_through_postern_threads_the_customers_answer_to_it() {
    let gw = helpdesk().await;
    let first = message(
        "ann@customer.example",
        "Invoice",
        "Message-ID: <inv1@customer.example>\r\n",
        "wrong amount",
    );
    assert_eq!(
        send(&gw, "ann@customer.example", SUPPORT, &first)
            .await
            .code,
        250
    );
    settle(&gw).await;
    let ticket = tickets(&gw).await[0]["id"].clone();

    // An agent answers through the Support account on the submission listener.
    let agent = gw
        .create_user("agent@help.example", "staff", "agent-password-1")
        .await;
    let (_, accounts) = api(&gw, "GET", "/api/v1/accounts", None).await;
    let support = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == SUPPORT)
        .unwrap()["id"]
        .clone();
    let grants = json!([{"grantee": {"user": agent["id"]}, "send": "send_as"}]);
    let (status, body) = api(
        &gw,
        "PUT",
        &format!("/api/v1/accounts/{support}/grants"),
        Some(grants),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO desk.help.example", 250).await;
    c.login("agent@help.example", "agent-password-1").await;
    c.expect(&format!("MAIL FROM:<{SUPPORT}>"), 250).await;
    c.expect("RCPT TO:<ann@customer.example>", 250).await;
    c.expect("DATA", 354).await;
    let reply = format!(
        "From: Support <{SUPPORT}>\r\nTo: ann@customer.example\r\nSubject: Re: Invoice [#{ticket}]\r\n\
         Message-ID: <Agent-Reply.1@help.example>\r\nIn-Reply-To: <inv1@customer.example>\r\n\r\nFixed.\r\n.\r\n"
    );
    c.send(reply.as_bytes()).await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;

    // Her answer names only the agent's message (no References, no tag).
    let answer = message(
        "ann@customer.example",
        "Thanks",
        "In-Reply-To: <Agent-Reply.1@help.example>\r\n",
        "great",
    );
    assert_eq!(
        send(&gw, "ann@customer.example", SUPPORT, &answer)
            .await
            .code,
        250
    );
    settle(&gw).await;
    let all = tickets(&gw).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let (_, shown) = api(&gw, "GET", &format!("/api/v1/tickets/{ticket}"), None).await;
    assert_eq!(shown["articles"].as_array().unwrap().len(), 2, "{shown}");
}
