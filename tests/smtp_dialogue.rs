//! Raw-socket SMTP dialogues against the real server: each extension, each refusal, and
//! the smtp-proto gaps Postern closes itself.

mod common;

use common::{base64, body_of, Client, Gateway};

async fn gateway_with_user() -> Gateway {
    let gw = Gateway::start(|_| {}).await;
    gw.create_user("alice@example.com", "staff", "alice-password")
        .await;
    gw
}

async fn logged_in(gw: &Gateway) -> Client {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("alice@example.com", "alice-password").await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ehlo_advertises_the_extensions() {
    let gw = gateway_with_user().await;
    let mut c = Client::connect(gw.addr("plain")).await;
    let ehlo = c.expect("EHLO client.test", 250).await.text;
    for ext in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "AUTH PLAIN LOGIN",
    ] {
        assert!(ehlo.contains(ext), "{ext} missing in {ehlo}");
    }
    assert!(
        !ehlo.contains("STARTTLS"),
        "plain listener must not offer STARTTLS"
    );
    let mut t = Client::connect(gw.addr("starttls")).await;
    let ehlo = t.expect("EHLO client.test", 250).await.text;
    assert!(ehlo.contains("STARTTLS"));
    assert!(
        !ehlo.contains("AUTH"),
        "AUTH must not be offered before TLS: {ehlo}"
    );
    c.expect("NOOP", 250).await;
    c.expect("VRFY alice", 252).await;
    c.expect("HELP", 214).await;
    c.expect("RSET", 250).await;
    c.expect("QUIT", 221).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batch_gets_replies_in_order() {
    let gw = gateway_with_user().await;
    let mut c = logged_in(&gw).await;
    c.send(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\n").await;
    for code in [250, 250, 250, 354] {
        assert_eq!(c.reply().await.code, code);
    }
    c.send(b"From: alice@example.com\r\nSubject: pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        .await;
    let queued = c.reply().await;
    assert_eq!(queued.code, 250);
    assert!(queued.text.contains("queued as"), "{queued:?}");
    assert_eq!(c.reply().await.code, 221);
    let msgs = gw.wait_outbox(1).await;
    assert_eq!(msgs.len(), 1);
    let text = String::from_utf8_lossy(&msgs[0]);
    assert!(
        text.contains("Delivered-To: bob@example.net\r\nDelivered-To: carol@example.net\r\n"),
        "{text}"
    );
    assert_eq!(body_of(&msgs[0]), b"hello\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bdat_chunks_make_one_message() {
    let gw = gateway_with_user().await;
    let mut c = logged_in(&gw).await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    let part1 = b"From: alice@example.com\r\nSubject: chunks\r\n\r\nfirst ";
    let part2 = b"second\r\n.not stuffed\r\n";
    c.send(format!("BDAT {}\r\n", part1.len()).as_bytes()).await;
    c.send(part1).await;
    assert_eq!(c.reply().await.code, 250);
    c.send(format!("BDAT {} LAST\r\n", part2.len()).as_bytes())
        .await;
    c.send(part2).await;
    let r = c.reply().await;
    assert_eq!(r.code, 250, "{r:?}");
    assert!(r.text.contains("queued as"));
    // DATA after BDAT in the same transaction is refused; BDAT without MAIL consumes its chunk.
    c.send(b"BDAT 5 LAST\r\nhello").await;
    assert_eq!(c.reply().await.code, 503);
    c.expect("NOOP", 250).await;
    let msgs = gw.wait_outbox(1).await;
    assert_eq!(body_of(&msgs[0]), b"first second\r\n.not stuffed\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limit_declared_and_actual() {
    let gw = Gateway::start(|c| c.limits.message_size = 2048).await;
    gw.create_user("alice@example.com", "staff", "alice-password")
        .await;
    let mut c = logged_in(&gw).await;
    let r = c
        .expect("MAIL FROM:<alice@example.com> SIZE=4096", 552)
        .await;
    assert!(r.text.contains("5.3.4"));
    c.expect("MAIL FROM:<alice@example.com> SIZE=1000", 250)
        .await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c.expect("DATA", 354).await;
    let big = "x".repeat(900);
    for _ in 0..4 {
        c.send(format!("{big}\r\n").as_bytes()).await;
    }
    let r = c.cmd(".").await;
    assert_eq!(r.code, 552, "{r:?}");
    // The session goes on; a message within the limit is accepted.
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: alice@example.com\r\nSubject: small\r\n\r\nok\r\n")
        .await;
    c.expect(".", 250).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_size_value_is_too_big_not_misparsed() {
    let gw = gateway_with_user().await;
    let mut c = logged_in(&gw).await;
    let r = c
        .expect(
            "MAIL FROM:<alice@example.com> SIZE=184467440737095516160000",
            552,
        )
        .await;
    assert!(r.text.contains("5.3.4"), "{r:?}");
    c.expect("MAIL FROM:<alice@example.com> SIZE=12a", 501)
        .await;
    c.expect("MAIL FROM:<alice@example.com> SIZE=100", 250)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xtext_crlf_is_refused_in_auth_envid_orcpt() {
    let gw = gateway_with_user().await;
    let mut c = logged_in(&gw).await;
    let r = c
        .expect("MAIL FROM:<alice@example.com> AUTH=x+0D+0ABcc:evil", 501)
        .await;
    assert!(r.text.contains("xtext"), "{r:?}");
    c.expect("MAIL FROM:<alice@example.com> ENVID=abc+0Adef", 501)
        .await;
    c.expect("MAIL FROM:<alice@example.com> ENVID=abcdef", 555)
        .await;
    c.expect(
        "MAIL FROM:<alice@example.com> AUTH=alice+40example.com",
        250,
    )
    .await;
    c.expect(
        "RCPT TO:<bob@example.net> ORCPT=rfc822;bob+0D+0A@example.net",
        501,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quoted_local_part_is_kept_quoted() {
    let gw = gateway_with_user().await;
    let mut c = logged_in(&gw).await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<\"john doe\"@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: alice@example.com\r\nSubject: q\r\n\r\nhi\r\n")
        .await;
    c.expect(".", 250).await;
    let msgs = gw.wait_outbox(1).await;
    let text = String::from_utf8_lossy(&msgs[0]);
    assert!(
        text.contains("Delivered-To: \"john doe\"@example.net\r\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipient_limit_gives_452() {
    let gw = gateway_with_user().await;
    let mut c = logged_in(&gw).await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    let mut batch = String::new();
    for i in 0..101 {
        batch.push_str(&format!("RCPT TO:<r{i}@example.net>\r\n"));
    }
    c.send(batch.as_bytes()).await;
    for i in 0..100 {
        assert_eq!(c.reply().await.code, 250, "rcpt {i}");
    }
    let r = c.reply().await;
    assert_eq!(r.code, 452);
    assert!(r.text.contains("4.5.3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_lf_in_command_is_refused() {
    let gw = gateway_with_user().await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.send(b"NOOP\n").await;
    let r = c.reply().await;
    assert_eq!(r.code, 550);
    assert!(r.text.contains("5.5.2"));
    c.send(b"NO\rOP\r\n").await;
    assert_eq!(c.reply().await.code, 550);
    c.expect("NOOP", 250).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_lf_in_data_is_refused_and_nothing_is_queued() {
    let gw = gateway_with_user().await;
    let mut c = logged_in(&gw).await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c.expect("DATA", 354).await;
    // A smuggling attempt: "\n.\n" must not end the data, and what follows is no command.
    c.send(b"From: alice@example.com\r\nSubject: x\r\n\r\nfirst\n.\nMAIL FROM:<evil@example.com>\r\n.\r\n")
        .await;
    let r = c.reply().await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(r.text.contains("5.5.2"));
    assert!(c.closed().await);
    assert_eq!(gw.metric("postern_messages_accepted_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cr_cr_lf_after_dot_does_not_end_data() {
    let gw = gateway_with_user().await;
    let mut c = logged_in(&gw).await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: alice@example.com\r\nSubject: x\r\n\r\nbody\r\n.\r\r\n")
        .await;
    let r = c.reply().await;
    assert_eq!(r.code, 550, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_alone_on_the_first_line_ends_data() {
    let gw = gateway_with_user().await;
    let mut c = logged_in(&gw).await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c.expect("DATA", 354).await;
    // The data ends at once; the empty message has no From, so policy refuses it.
    let r = c.cmd(".").await;
    assert_eq!(r.code, 550, "an empty message ends at once: {r:?}");
    assert!(r.text.contains("5.6.0"), "{r:?}");
    c.expect("NOOP", 250).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_command_and_text_lines() {
    let gw = gateway_with_user().await;
    let mut c = logged_in(&gw).await;
    let long = format!("NOOP {}", "x".repeat(600));
    let r = c.cmd(&long).await;
    assert_eq!(r.code, 500, "{r:?}");
    c.expect("NOOP", 250).await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(
        format!(
            "From: alice@example.com\r\nSubject: x\r\n\r\n{}\r\n",
            "y".repeat(1200)
        )
        .as_bytes(),
    )
    .await;
    let r = c.cmd(".").await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(r.text.contains("1000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_required_and_needs_tls() {
    let gw = gateway_with_user().await;
    let mut c = Client::connect(gw.addr("starttls")).await;
    c.expect("EHLO client.test", 250).await;
    let r = c.expect("MAIL FROM:<alice@example.com>", 530).await;
    assert!(r.text.contains("5.7.0"));
    let token = base64("\0alice@example.com\0alice-password");
    let r = c.expect(&format!("AUTH PLAIN {token}"), 538).await;
    assert!(r.text.contains("5.7.11"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_login_and_failure_cap() {
    let gw = gateway_with_user().await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("AUTH LOGIN", 334).await;
    c.expect(&base64("alice@example.com"), 334).await;
    c.expect(&base64("alice-password"), 235).await;
    c.expect("AUTH PLAIN", 503).await;

    let mut bad = Client::connect(gw.addr("plain")).await;
    bad.expect("EHLO client.test", 250).await;
    let wrong = base64("\0alice@example.com\0wrong");
    bad.expect(&format!("AUTH PLAIN {wrong}"), 535).await;
    bad.expect(&format!("AUTH PLAIN {wrong}"), 535).await;
    let r = bad.cmd(&format!("AUTH PLAIN {wrong}")).await;
    assert_eq!(r.code, 421, "{r:?}");
    assert!(bad.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_discards_the_pipelined_tail() {
    let gw = gateway_with_user().await;
    let mut c = Client::connect(gw.addr("starttls")).await;
    c.expect("EHLO client.test", 250).await;
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
        .await;
    assert_eq!(c.reply().await.code, 220);
    let tcp = c.into_inner();
    let mut tls = common::tls_client(tcp).await;
    // The injected MAIL was discarded: the new session needs EHLO first and has no sender.
    let r = tls.cmd("RCPT TO:<bob@example.net>").await;
    assert_eq!(r.code, 503, "{r:?}");
    let ehlo = tls.expect("EHLO client.test", 250).await.text;
    assert!(ehlo.contains("AUTH PLAIN LOGIN"));
    assert!(!ehlo.contains("STARTTLS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_hops_is_refused() {
    let gw = gateway_with_user().await;
    let mut c = logged_in(&gw).await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c.expect("DATA", 354).await;
    let mut msg = String::new();
    for i in 0..50 {
        msg.push_str(&format!(
            "Received: from hop{i}.example by x; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        ));
    }
    msg.push_str("From: alice@example.com\r\nSubject: loop\r\n\r\nbody\r\n");
    c.send(msg.as_bytes()).await;
    let r = c.cmd(".").await;
    assert_eq!(r.code, 554, "{r:?}");
    assert!(r.text.contains("5.4.6"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_network_submits_without_auth() {
    let gw = Gateway::start(|c| {
        c.listeners[0].trusted_networks = vec!["127.0.0.0/8".parse().unwrap()];
        c.listeners[0].trusted_principal = "helpdesk-app".into();
    })
    .await;
    // Until the principal exists, the trusted client must authenticate.
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO app.test", 250).await;
    c.expect("MAIL FROM:<notify@example.com>", 530).await;
    let body = serde_json::json!({"login": "helpdesk-app", "email": "notify@example.com", "kind": "system"});
    let (status, created) = common::http(
        gw.running.api,
        "POST",
        "/api/v1/users",
        Some(common::TOKEN),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, 201);
    let app: serde_json::Value = serde_json::from_str(&created).unwrap();
    // A system principal cannot use the all_staff default account...
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO app.test", 250).await;
    let r = c.expect("MAIL FROM:<notify@example.com>", 550).await;
    assert!(
        r.text
            .contains("scope all_staff does not admit a system principal"),
        "{r:?}"
    );
    // ...but a system account with its address.
    let account = serde_json::json!({"name": "notifications", "address": "notify@example.com",
        "upstream": "local", "scope": {"kind": "system"}, "default_send_mode": "send_as"});
    let (status, text) = common::http(
        gw.running.api,
        "POST",
        "/api/v1/accounts",
        Some(common::TOKEN),
        Some(&account.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO app.test", 250).await;
    c.expect("MAIL FROM:<notify@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: notify@example.com\r\nSubject: from the app\r\n\r\nhi\r\n")
        .await;
    c.expect(".", 250).await;
    // Other listeners do not trust the network.
    let mut other = Client::connect(gw.addr("starttls")).await;
    other.expect("EHLO app.test", 250).await;
    other.expect("MAIL FROM:<notify@example.com>", 530).await;
    // A deactivated principal is no longer trusted, from the very next session.
    let path = format!("/api/v1/users/{}", app["id"]);
    let deactivate = r#"{"status": "deactivated"}"#;
    let (status, text) = common::http(
        gw.running.api,
        "PATCH",
        &path,
        Some(common::TOKEN),
        Some(deactivate),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO app.test", 250).await;
    c.expect("MAIL FROM:<notify@example.com>", 530).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_limit_closes_the_session() {
    let gw = Gateway::start(|c| c.limits.errors_per_session = 3).await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("BOGUS", 500).await;
    c.expect("BOGUS", 500).await;
    c.send(b"BOGUS\r\n").await;
    assert_eq!(c.reply().await.code, 500);
    let r = c.reply().await;
    assert_eq!(r.code, 421, "{r:?}");
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_with_421() {
    let gw = Gateway::start(|c| c.limits.idle_timeout_secs = 1).await;
    let mut c = Client::connect(gw.addr("plain")).await;
    let r = c.reply().await;
    assert_eq!(r.code, 421, "{r:?}");
    assert!(r.text.contains("4.4.2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_are_capped() {
    let gw = Gateway::start(|c| c.limits.connections_per_ip = 2).await;
    let _a = Client::connect(gw.addr("plain")).await;
    let _b = Client::connect(gw.addr("plain")).await;
    let stream = tokio::net::TcpStream::connect(gw.addr("plain"))
        .await
        .unwrap();
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line)
        .await
        .unwrap();
    assert!(line.starts_with("421 4.7.0"), "{line}");
}
