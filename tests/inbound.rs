//! Inbound helpdesk mail in the SMTP dialogue (SPEC §4, §6): only helpdesk mailboxes are
//! recipients; blocked addresses, domains, users and header Froms are refused at their
//! stage with a warning logged and nothing stored; unknown senders are refused when no
//! recipient mailbox creates requesters; a message is recorded once per mailbox; blocking
//! a requester; who may make an account a helpdesk mailbox.

mod common;

use common::helpdesk::*;
use common::{http, logs, Client, Gateway};
use serde_json::{json, Value};
use std::time::Duration;

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
async fn unknown_senders_are_refused_in_the_dialogue_when_no_mailbox_creates_requesters() {
    let logs = logs::capture();
    let gw = Gateway::start(|_| {}).await;
    mailbox(&gw, "Closed", "closed@help.example", json!({})).await;
    mailbox(
        &gw,
        "Open",
        "open@help.example",
        json!({"auto_create_requesters": true}),
    )
    .await;
    let text = "From: who@c.example\r\nTo: closed@help.example\r\nSubject: hi\r\n\r\nhi";
    let reply = send(&gw, "who@c.example", "closed@help.example", text).await;
    assert_eq!(reply.code, 550, "{reply:?}");
    assert!(
        reply.text.contains("5.7.1") && reply.text.contains("unknown sender"),
        "{reply:?}"
    );
    assert!(logs
        .find(&["WARN", "unknown sender", "who@c.example"])
        .await
        .is_some());
    // Nothing was accepted, so nothing is bounced later (no backscatter to a forged sender).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = std::fs::read_dir(gw.outbox().join("new")).map_or(0, |d| d.count());
    assert_eq!(sent, 0);
    assert!(tickets(&gw).await.is_empty());
    // A known sender is welcome; so is anyone when one recipient mailbox creates requesters.
    gw.create_user("known@c.example", "requester", "known-password-1")
        .await;
    let text = "From: known@c.example\r\nTo: closed@help.example\r\nSubject: hi\r\n\r\nhi";
    assert_eq!(
        send(&gw, "known@c.example", "closed@help.example", text)
            .await
            .code,
        250
    );
    settle(&gw).await;
    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.c.example", 250).await;
    c.expect("MAIL FROM:<new@c.example>", 250).await;
    c.expect("RCPT TO:<closed@help.example>", 250).await;
    c.expect("RCPT TO:<open@help.example>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: new@c.example\r\nSubject: both\r\n\r\nhi\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await.code, 250);
    settle(&gw).await;
    let all = tickets(&gw).await;
    let subjects: Vec<&str> = all.iter().map(|t| t["subject"].as_str().unwrap()).collect();
    assert_eq!(
        subjects,
        ["hi", "both"],
        "the closed mailbox drops the stranger's copy"
    );
    // With the installation full, a new sender is deferred (4xx), not lost or bounced.
    let (_, users) = api(&gw, "GET", "/api/v1/users", None).await;
    let count = users.as_array().unwrap().len();
    let (status, _) = api(
        &gw,
        "PATCH",
        "/api/v1/settings",
        Some(json!({"max_users": count})),
    )
    .await;
    assert_eq!(status, 200);
    let text = "From: late@c.example\r\nTo: open@help.example\r\nSubject: hi\r\n\r\nhi";
    let reply = send(&gw, "late@c.example", "open@help.example", text).await;
    assert_eq!(reply.code, 451, "{reply:?}");
    assert!(logs
        .find(&["WARN", "late@c.example", "max_users reached"])
        .await
        .is_some());
    let text = "From: known@c.example\r\nTo: open@help.example\r\nSubject: hi again\r\n\r\nhi";
    assert_eq!(
        send(&gw, "known@c.example", "open@help.example", text)
            .await
            .code,
        250
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_to_a_mailbox_by_two_addresses_or_sent_twice_makes_one_ticket() {
    let gw = helpdesk().await;
    let (_, accounts) = api(&gw, "GET", "/api/v1/accounts", None).await;
    let id = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == SUPPORT)
        .unwrap()["id"]
        .clone();
    let body = json!({"aliases": ["help@help.example"]});
    assert_eq!(
        api(&gw, "PATCH", &format!("/api/v1/accounts/{id}"), Some(body))
            .await
            .0,
        200
    );
    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.c.example", 250).await;
    c.expect("MAIL FROM:<ann@customer.example>", 250).await;
    c.expect(&format!("RCPT TO:<{SUPPORT}>"), 250).await;
    c.expect("RCPT TO:<help@help.example>", 250).await;
    c.expect("DATA", 354).await;
    let text = message(
        "ann@customer.example",
        "twice",
        "Message-ID: <dup@customer.example>\r\n",
        "hi",
    );
    c.send(format!("{text}\r\n.\r\n").as_bytes()).await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;
    // The sending server did not see our 250 and sends it again.
    assert_eq!(
        send(&gw, "ann@customer.example", SUPPORT, &text).await.code,
        250
    );
    settle(&gw).await;
    let all = tickets(&gw).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let (_, shown) = api(
        &gw,
        "GET",
        &format!("/api/v1/tickets/{}", all[0]["id"]),
        None,
    )
    .await;
    assert_eq!(shown["articles"].as_array().unwrap().len(), 1, "{shown}");
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
async fn only_shared_account_setup_makes_an_account_a_helpdesk_mailbox() {
    let gw = Gateway::start(|_| {}).await;
    let staff = gw
        .create_user("sam@corp.example", "staff", "sam-password-1")
        .await;
    let (status, token) = api(
        &gw,
        "POST",
        &format!("/api/v1/users/{}/tokens", staff["id"]),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{token}");
    let token = token["token"].as_str().unwrap().to_string();
    let as_sam = |method: &'static str, path: String, body: Value| {
        let token = token.clone();
        let api_addr = gw.running.api;
        async move {
            http(
                api_addr,
                method,
                &path,
                Some(&token),
                Some(&body.to_string()),
            )
            .await
        }
    };
    let mine = json!({"name": "Mine", "address": "sam@corp.example", "owner": staff["id"], "inbound": {"auto_create_requesters": true}});
    let (status, text) = as_sam("POST", "/api/v1/accounts".into(), mine).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("shared_account_setup"), "{text}");
    let mine = json!({"name": "Mine", "address": "sam@corp.example", "owner": staff["id"]});
    let (status, text) = as_sam("POST", "/api/v1/accounts".into(), mine).await;
    assert_eq!(status, 201, "{text}");
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"].clone();
    let (status, text) = as_sam(
        "PATCH",
        format!("/api/v1/accounts/{id}"),
        json!({"inbound": {}}),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    let (status, text) = as_sam(
        "PATCH",
        format!("/api/v1/accounts/{id}"),
        json!({"description": "mine"}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
}
