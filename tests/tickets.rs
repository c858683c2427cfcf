//! What inbound helpdesk mail becomes (SPEC §7): tickets with requesters created on the
//! fly (in the default group, or none with a warning), threading by Message-ID,
//! References, subject tag and replies sent through Postern, automatic mail, knowledge
//! items for authenticated staff.

mod common;

use common::helpdesk::*;
use common::{logs, Client, Gateway, TOKEN};
use serde_json::{json, Value};
use std::time::Duration;

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
async fn a_knowledge_mailbox_takes_authenticated_staff_only_and_keeps_the_others_as_users() {
    let logs = logs::capture();
    // help.example authenticates 127.0.0.1 (SPF) and publishes DMARC, so the agent's own
    // mail passes DMARC; the same From sent through another domain does not.
    let dns = common::dns::serve(&[
        ("help.example", "v=spf1 ip4:127.0.0.1 -all"),
        ("_dmarc.help.example", "v=DMARC1; p=none"),
    ])
    .await;
    let gw = Gateway::start(move |c| {
        c.inbound.authenticate = true;
        c.dns.nameservers = vec![dns];
        c.dns.timeout_secs = 2;
    })
    .await;
    let kb = json!({"purpose": "knowledge", "auto_create_requesters": true});
    mailbox(&gw, "KB", "kb@help.example", kb).await;
    let howto = |from: &str| {
        format!("From: {from}\r\nTo: kb@help.example\r\nSubject: How to reset\r\n\r\nSteps.")
    };
    let code = send(
        &gw,
        "newbie@c.example",
        "kb@help.example",
        &howto("newbie@c.example"),
    )
    .await
    .code;
    assert_eq!(code, 250);
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
    // A forged From: the agent's address, sent by someone else.
    let code = send(
        &gw,
        "x@elsewhere.example",
        "kb@help.example",
        &howto("agent@help.example"),
    )
    .await
    .code;
    assert_eq!(code, 250);
    settle(&gw).await;
    assert!(logs
        .find(&["WARN", "agent@help.example", "not authenticated"])
        .await
        .is_some());
    let (_, items) = api(&gw, "GET", "/api/v1/knowledge", None).await;
    assert_eq!(items, json!([]), "no rights for a forged From");

    let code = send(
        &gw,
        "agent@help.example",
        "kb@help.example",
        &howto("agent@help.example"),
    )
    .await
    .code;
    assert_eq!(code, 250);
    settle(&gw).await;
    let (_, items) = api(&gw, "GET", "/api/v1/knowledge", None).await;
    assert_eq!(items[0]["title"], "How to reset", "{items}");
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
