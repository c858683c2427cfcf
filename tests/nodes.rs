//! Several Postern nodes on one PostgreSQL database (issue 26): policy changes made
//! through one node's API take effect at another node's SMTP listener within a second
//! (with notifications and with polling only); a helpdesk thread spans nodes; the same
//! message at two nodes makes one ticket and one webhook call; a webhook call in flight
//! on a node killed with SIGKILL is made by another node once its lease has run out; a
//! node killed with SIGKILL under load loses no message it answered `250` for; a drain
//! moves a node's whole queue to the others.
//!
//! Each test has a database of its own in the throwaway cluster of `common::postgres`,
//! and each node a data directory of its own.

mod common;

use common::load::{subject_counts, submit_until_killed};
use common::nodes::{call, node, spread, until, BinaryNode};
use common::receiver::Receiver;
use common::upstream::{FakeUpstream, Script};
use common::{free_ports, sink_upstream, spawn_binary, start_with_alice, Client, Gateway};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

const SUPPORT: &str = "support@help.example";

// ---------------------------------------------------------------------------------------
// 1. Policy changes reach the other nodes within a second.

/// Whether `login` can AUTH at `smtp` (a fresh session).
async fn can_login(smtp: SocketAddr, login: &str, password: &str) -> bool {
    let mut c = Client::connect(smtp).await;
    c.expect("EHLO client.test", 250).await;
    let token = common::base64(&format!("\0{login}\0{password}"));
    let code = c.cmd(&format!("AUTH PLAIN {token}")).await.code;
    assert!(code == 235 || code == 535, "AUTH -> {code}");
    code == 235
}

/// A session kept open to probe MAIL FROM repeatedly (RSET between probes); reconnects
/// (and logs in again, when `login` is set) if the server closed it.
struct Prober {
    addr: SocketAddr,
    login: Option<(String, String)>,
    client: Option<Client>,
}

impl Prober {
    fn new(addr: SocketAddr, login: Option<(&str, &str)>) -> Prober {
        Prober {
            addr,
            login: login.map(|(l, p)| (l.to_string(), p.to_string())),
            client: None,
        }
    }

    /// The reply code to `MAIL FROM:<sender>`.
    async fn mail_from(&mut self, sender: &str) -> u16 {
        loop {
            if self.client.is_none() {
                let mut c = Client::connect(self.addr).await;
                match &self.login {
                    Some((login, password)) => c.login(login, password).await,
                    None => {
                        c.expect("EHLO mx.example.net", 250).await;
                    }
                }
                self.client = Some(c);
            }
            let c = self.client.as_mut().unwrap();
            let code = c.cmd(&format!("MAIL FROM:<{sender}>")).await.code;
            if code == 0 || code == 421 {
                self.client = None;
                continue;
            }
            let rset = c.cmd("RSET").await.code;
            if rset != 250 {
                self.client = None;
            }
            return code;
        }
    }
}

/// Evaluates the probe `$probe` (an expression awaiting a bool) until it is true; the
/// time from `$since` to the end of that probe.
macro_rules! latency {
    ($since:expr, $what:expr, $probe:expr) => {{
        let since: Instant = $since;
        loop {
            if $probe {
                break since.elapsed();
            }
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "{} never took effect",
                $what
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }};
}

/// Makes 20 users, 20 accounts granting one of them send-as, and 20 blocklist entries
/// through A's API; after each, measures how long until B's SMTP listeners act on it.
/// The latencies of each kind.
async fn measure_propagation(notify: bool) -> [(String, Vec<Duration>); 3] {
    let url = common::postgres::database();
    let a = node(&url, "node-a", notify, |_| {}).await;
    let b = node(&url, "node-b", notify, |_| {}).await;
    let _c = node(&url, "node-c", notify, |_| {}).await;
    let (mut users, mut accounts, mut blocks) = (Vec::new(), Vec::new(), Vec::new());
    let mut inbound = Prober::new(b.addr("inbound"), None);
    for i in 0..20 {
        let login = format!("u{i}@example.com");
        let password = format!("password-{i}");
        assert!(!can_login(b.addr("plain"), &login, &password).await);
        let user = a.create_user(&login, "staff", &password).await;
        let made = Instant::now();
        users.push(latency!(
            made,
            "a new user",
            can_login(b.addr("plain"), &login, &password).await
        ));

        // A shared account whose only sender is this user, by an explicit grant.
        let address = format!("team{i}@example.com");
        let mut as_user = Prober::new(b.addr("plain"), Some((&login, &password)));
        assert_eq!(as_user.mail_from(&address).await, 550, "not yet granted");
        let body = json!({"name": format!("Team {i}"), "address": address, "upstream": "local",
            "scope": {"kind": "all_staff"}, "default_send_mode": "none",
            "grants": [{"grantee": {"user": user["id"]}, "send": "send_as"}]});
        let (status, doc) = call(a.running.api, "POST", "/api/v1/accounts", Some(body)).await;
        assert_eq!(status, 201, "{doc}");
        let made = Instant::now();
        accounts.push(latency!(
            made,
            "a send-as grant",
            as_user.mail_from(&address).await == 250
        ));

        let domain = format!("pest{i}.example");
        let sender = format!("x@{domain}");
        assert_eq!(inbound.mail_from(&sender).await, 250);
        let entry = json!({"entry": domain, "reason": "complaints"});
        let (status, doc) = call(a.running.api, "POST", "/api/v1/blocklist", Some(entry)).await;
        assert_eq!(status, 201, "{doc}");
        let made = Instant::now();
        blocks.push(latency!(
            made,
            "a blocklist entry",
            inbound.mail_from(&sender).await == 550
        ));
    }
    [
        ("user (AUTH)".into(), users),
        ("account + grant (send-as)".into(), accounts),
        ("blocklist entry".into(), blocks),
    ]
}

fn report(notify: bool, kinds: &[(String, Vec<Duration>)]) {
    let mut all = Vec::new();
    for (kind, samples) in kinds {
        let (min, median, max) = spread(samples);
        println!(
            "notify={notify} {kind}: n={} min={:?} median={:?} max={:?}",
            samples.len(),
            min,
            median,
            max
        );
        all.extend_from_slice(samples);
    }
    let (min, median, max) = spread(&all);
    println!(
        "notify={notify} all: n={} min={min:?} median={median:?} max={max:?}",
        all.len()
    );
    assert!(
        max < Duration::from_secs(1),
        "a change took {max:?} to reach node B (notify={notify})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_through_one_node_take_effect_at_another_within_a_second() {
    for notify in [true, false] {
        let kinds = measure_propagation(notify).await;
        report(notify, &kinds);
    }
}

// ---------------------------------------------------------------------------------------
// 2, 3. The helpdesk across nodes.

/// Creates the helpdesk mailbox `SUPPORT` (tickets, auto-created requesters, posting to
/// `webhooks`) through `gw`'s API.
async fn mailbox(api: SocketAddr, webhooks: &[u64]) {
    let body = json!({"name": "Support", "address": SUPPORT,
        "inbound": {"auto_create_requesters": true, "webhooks": webhooks}});
    let (status, doc) = call(api, "POST", "/api/v1/accounts", Some(body)).await;
    assert_eq!(status, 201, "{doc}");
}

/// A message from ann to `SUPPORT` with the extra header lines `extra` (CRLF-ended).
fn message(subject: &str, extra: &str, body: &str) -> String {
    format!("From: Ann <ann@customer.example>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n{extra}\r\n{body}")
}

/// Sends `message` on `gw`'s inbound listener; the reply to the end of data (or the first
/// refusal).
async fn send(gw: &Gateway, message: &str) -> common::Reply {
    common::helpdesk::send(gw, "ann@customer.example", SUPPORT, message).await
}

/// Sends until the node takes it (the mailbox made elsewhere may not be in its snapshot
/// yet: `RCPT TO` is refused until it is).
async fn send_accepted(gw: &Gateway, message: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let reply = send(gw, message).await;
        if reply.code == 250 {
            return;
        }
        assert!(Instant::now() < deadline, "never accepted: {reply:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `gw`'s queue is empty (every inbound message went through the hook).
async fn settle(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, queue) = call(gw.running.api, "GET", "/api/v1/queue", None).await;
        if queue.as_array().is_some_and(|q| q.is_empty()) {
            return;
        }
        if Instant::now() >= deadline {
            let logs = common::logs::capture().lines();
            let bad: Vec<&String> = logs
                .iter()
                .filter(|l| l.contains("ERROR") || l.contains("WARN"))
                .collect();
            panic!("the queue never emptied: {queue:#}\nwarnings and errors: {bad:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn tickets(gw: &Gateway) -> Vec<Value> {
    let (status, list) = call(gw.running.api, "GET", "/api/v1/tickets", None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

async fn articles(gw: &Gateway, ticket: &Value) -> Vec<Value> {
    let path = format!("/api/v1/tickets/{}", ticket["id"]);
    let (status, shown) = call(gw.running.api, "GET", &path, None).await;
    assert_eq!(status, 200, "{shown}");
    shown["articles"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_through_another_node_joins_the_ticket() {
    let url = common::postgres::database();
    let a = node(&url, "node-a", true, |_| {}).await;
    let b = node(&url, "node-b", true, |_| {}).await;
    let _c = node(&url, "node-c", true, |_| {}).await;
    mailbox(a.running.api, &[]).await;

    let first = message(
        "Broken printer",
        "Message-ID: <q1@customer.example>\r\n",
        "It jams.",
    );
    send_accepted(&a, &first).await;
    settle(&a).await;
    let opened = tickets(&b).await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    // B, started before any ticket existed, notices A's: replies submitted through B are
    // threaded from then on.
    until(
        Duration::from_secs(3),
        "B to know a ticket exists",
        || async { b.running.store().tickets().any().then_some(()) },
    )
    .await;

    let reply = message(
        "Re: Broken printer",
        "Message-ID: <q2@customer.example>\r\nIn-Reply-To: <q1@customer.example>\r\n",
        "Still jams.",
    );
    send_accepted(&b, &reply).await;
    settle(&b).await;
    for gw in [&a, &b] {
        let all = tickets(gw).await;
        assert_eq!(all.len(), 1, "the reply joined the ticket: {all:?}");
        assert_eq!(all[0]["id"], opened[0]["id"]);
        assert_eq!(articles(gw, &all[0]).await.len(), 2, "{all:?}");
    }
}

/// A webhook to `url` made through `gw`, retried every second; its id.
async fn webhook(api: SocketAddr, url: &str) -> u64 {
    let body =
        json!({"name": "crm", "url": url, "secret": "s3cret-signing-key-0123", "max_attempts": 5});
    let (status, hook) = call(api, "POST", "/api/v1/webhooks", Some(body)).await;
    assert_eq!(status, 201, "{hook}");
    hook["id"].as_u64().unwrap()
}

async fn deliveries(api: SocketAddr, hook: u64) -> Vec<Value> {
    let path = format!("/api/v1/webhooks/{hook}/deliveries");
    let (status, list) = call(api, "GET", &path, None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_at_two_nodes_at_once_makes_one_ticket_and_one_webhook_call() {
    common::logs::capture();
    let receiver = Receiver::start(false).await;
    let url = common::postgres::database();
    let quick = |c: &mut postern::config::Config| c.webhooks.retry_intervals_secs = vec![1];
    let a = node(&url, "node-a", true, quick).await;
    let b = node(&url, "node-b", true, quick).await;
    let _c = node(&url, "node-c", true, quick).await;
    let hook = webhook(a.running.api, &receiver.url).await;
    mailbox(a.running.api, &[hook]).await;
    // B knows the mailbox (its RCPT TO is taken) before the race starts.
    until(Duration::from_secs(3), "B to know the mailbox", || async {
        let mut c = Client::connect(b.addr("inbound")).await;
        c.expect("EHLO mx.customer.example", 250).await;
        c.expect("MAIL FROM:<ann@customer.example>", 250).await;
        (c.cmd(&format!("RCPT TO:<{SUPPORT}>")).await.code == 250).then_some(())
    })
    .await;

    let text = message(
        "Invoice",
        "Message-ID: <same-1@customer.example>\r\n",
        "Wrong total.",
    );
    for round in 0..5 {
        // Five rounds, each a new Message-ID, each sent to both nodes at the same moment.
        let text = text.replace("same-1", &format!("same-{round}"));
        let (at_a, at_b) = tokio::join!(send(&a, &text), send(&b, &text));
        assert_eq!((at_a.code, at_b.code), (250, 250), "{at_a:?} {at_b:?}");
    }
    settle(&a).await;
    settle(&b).await;
    let all = tickets(&a).await;
    assert_eq!(all.len(), 5, "one ticket per Message-ID: {all:#?}");
    for ticket in &all {
        assert_eq!(articles(&a, ticket).await.len(), 1, "{ticket}");
    }
    until(Duration::from_secs(10), "five webhook calls", || async {
        (receiver.requests().len() >= 5).then_some(())
    })
    .await;
    // Time for a second call, had anything queued one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = receiver.requests();
    assert_eq!(calls.len(), 5, "one call per ticket: {calls:#?}");
    let listed = deliveries(b.running.api, hook).await;
    assert_eq!(listed.len(), 5, "{listed:#?}");
    assert!(
        listed.iter().all(|d| d["status"] == "delivered"),
        "{listed:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// 6. Drain.

/// A fake upstream taking every message (`tempfail`: answering every one `451`).
async fn upstream(tempfail: bool) -> FakeUpstream {
    FakeUpstream::start(Script {
        pipelining: true,
        tempfail_first: if tempfail { usize::MAX } else { 0 },
        ..Script::default()
    })
    .await
}

/// The queue of `api` (`?nodes=all` when `all`).
async fn queue(api: SocketAddr, all: bool) -> Vec<Value> {
    let path = if all {
        "/api/v1/queue?nodes=all"
    } else {
        "/api/v1/queue"
    };
    let (status, list) = call(api, "GET", path, None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

/// Runs `postern admin ARGS` (the real binary) against the API at `api`.
async fn admin_cli(api: SocketAddr, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postern"));
    cmd.arg("admin")
        .args(args)
        .env("POSTERN_API", format!("http://{api}"))
        .env("POSTERN_TOKEN", common::TOKEN);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// The first reply of a new SMTP connection to `addr`.
async fn greeting(addr: SocketAddr) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut line = String::new();
    tokio::io::BufReader::new(stream)
        .read_line(&mut line)
        .await
        .unwrap();
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_moves_a_nodes_whole_queue_to_the_others() {
    const N: usize = 30;
    let url = common::postgres::database();
    // A's upstream takes bob<i> and defers carol: each message waits at A for carol
    // alone, with one attempt made.
    let deferring = FakeUpstream::start(Script {
        pipelining: true,
        rcpt_replies: vec![("carol@example.net".into(), "451 4.2.1 try later".into())],
        ..Script::default()
    })
    .await;
    let (taking_b, taking_c) = (upstream(false).await, upstream(false).await);
    let with = |port: u16| {
        move |c: &mut postern::config::Config| {
            c.upstreams.insert("sink".into(), sink_upstream(port));
            c.default_upstream = "sink".into();
            c.queue.retry_intervals_secs = vec![3600];
        }
    };
    let a = node(&url, "node-a", true, with(deferring.addr.port())).await;
    let b = node(&url, "node-b", true, with(taking_b.addr.port())).await;
    let c = node(&url, "node-c", true, with(taking_c.addr.port())).await;
    a.create_user("alice@example.com", "staff", "alice-password")
        .await;

    let mut client = Client::connect(a.addr("plain")).await;
    client.login("alice@example.com", "alice-password").await;
    for i in 0..N {
        client.expect("MAIL FROM:<alice@example.com>", 250).await;
        client
            .expect(&format!("RCPT TO:<bob{i}@example.net>"), 250)
            .await;
        client.expect("RCPT TO:<carol@example.net>", 250).await;
        client.expect("DATA", 354).await;
        let text = format!("From: alice@example.com\r\nSubject: drained {i}\r\nMessage-ID: <d{i}@example.com>\r\n\r\nbody {i}\r\n.");
        client.expect(&text, 250).await;
    }
    client.expect("QUIT", 221).await;
    // Each was tried once at A, delivered to bob<i>, deferred for carol.
    until(
        Duration::from_secs(10),
        "A to try and defer all",
        || async {
            let q = queue(a.running.api, false).await;
            (q.len() == N && q.iter().all(|m| m["attempts"] == 1)).then_some(())
        },
    )
    .await;

    // Every node's queue, seen from B: A's messages, named as A's.
    let seen = until(Duration::from_secs(5), "B to show A's queue", || async {
        let q = queue(b.running.api, true).await;
        (q.iter().filter(|m| m["node"] == "node-a").count() == N).then_some(q)
    })
    .await;
    assert_eq!(seen.len(), N, "B's and C's own queues are empty: {seen:#?}");
    for m in &seen {
        assert_eq!(m["mail_from"], "alice@example.com", "{m:#}");
        assert_eq!(m["attempts"], 1, "{m:#}");
        let carol = m["recipients"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(m["pending"].as_array().into_iter().flatten())
            .any(|r| r == "carol@example.net" || r["address"] == "carol@example.net");
        assert!(carol, "carol pending: {m:#}");
    }

    // Drain A with `postern admin node drain` against B's API.
    let out = admin_cli(b.running.api, &["node", "drain", "node-a"]).await;
    assert!(out.status.success(), "{out:?}");
    let refused = until(
        Duration::from_secs(5),
        "A to refuse new connections",
        || async {
            let line = greeting(a.addr("plain")).await;
            line.starts_with("421").then_some(line)
        },
    )
    .await;
    assert!(refused.contains("4.3.2"), "{refused}");
    assert!(greeting(a.addr("inbound")).await.starts_with("421"));
    until(Duration::from_secs(10), "A's queue to empty", || async {
        queue(a.running.api, false).await.is_empty().then_some(())
    })
    .await;
    let (_, nodes) = call(b.running.api, "GET", "/api/v1/nodes", None).await;
    let listed_a = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "node-a")
        .cloned();
    assert_eq!(
        listed_a.as_ref().map(|n| &n["draining"]),
        Some(&json!(true)),
        "{nodes}"
    );

    // B and C deliver every message, to both recipients, once.
    until(
        Duration::from_secs(20),
        "B and C to deliver all",
        || async { (subject_counts(&[&taking_b, &taking_c]).len() == N).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut detail = Vec::new();
    for (name, up) in [("b", &taking_b), ("c", &taking_c)] {
        for m in &up.record().messages {
            let text = String::from_utf8_lossy(&m.data).to_string();
            let subject = text
                .lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap_or("")
                .to_string();
            detail.push(format!("{name} {subject} {:?}", m.rcpts));
        }
    }
    detail.sort();
    let counts = subject_counts(&[&taking_b, &taking_c]);
    for i in 0..N {
        assert_eq!(counts.get(&format!("drained {i}")), Some(&1), "{detail:#?}");
    }
    for up in [&taking_b, &taking_c] {
        for m in &up.record().messages {
            assert_eq!(
                m.rcpts,
                ["carol@example.net"],
                "only the recipient still pending at A"
            );
        }
    }
    let (by_b, by_c) = (
        taking_b.record().messages.len(),
        taking_c.record().messages.len(),
    );
    println!("drain: {N} messages moved; delivered by node-b {by_b}, node-c {by_c}");
    assert_eq!(
        deferring.record().messages.len(),
        N,
        "bob<i> each once, by A"
    );
    for gw in [&b, &c] {
        until(
            Duration::from_secs(10),
            "B and C queues to empty",
            || async { queue(gw.running.api, false).await.is_empty().then_some(()) },
        )
        .await;
    }
    // Resumed, A takes mail again.
    let (status, doc) = call(b.running.api, "POST", "/api/v1/nodes/node-a/resume", None).await;
    assert!(status == 200 || status == 204, "{status} {doc}");
    until(Duration::from_secs(5), "A to take mail again", || async {
        greeting(a.addr("plain"))
            .await
            .starts_with("220")
            .then_some(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 4, 5. Nodes killed with SIGKILL (the real binary).

/// Sends `message` from ann to `SUPPORT` on the inbound listener at `addr`; its reply.
async fn send_inbound(addr: SocketAddr, message: &str) -> u16 {
    let mut c = Client::connect(addr).await;
    c.expect("EHLO mx.customer.example", 250).await;
    c.expect("MAIL FROM:<ann@customer.example>", 250).await;
    c.expect(&format!("RCPT TO:<{SUPPORT}>"), 250).await;
    c.expect("DATA", 354).await;
    c.send(format!("{message}\r\n.\r\n").as_bytes()).await;
    c.reply().await.code
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The value of header `name` in a request's header block.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_call_in_flight_on_a_killed_node_is_made_by_another_after_its_lease() {
    const TIMEOUT: u64 = 2;
    let receiver = Receiver::start(true).await;
    let url = common::postgres::database();
    let dir = tempfile::tempdir().unwrap();
    let [smtp, inbound, api, dead] = free_ports();
    let config = BinaryNode {
        dir: dir.path(),
        name: "node-x",
        url: &url,
        smtp,
        inbound,
        api,
        upstream_port: dead,
        webhook_timeout: TIMEOUT,
    }
    .write();
    let mut x = spawn_binary(&config);
    common::wait_ready(addr(api), &mut x, &common::binary_log(&config)).await;
    let hook = webhook(addr(api), &receiver.url).await;
    mailbox(addr(api), &[hook]).await;

    let text = message(
        "Lost call",
        "Message-ID: <lease-1@customer.example>\r\n",
        "Hello?",
    );
    assert_eq!(send_inbound(addr(inbound), &text).await, 250);
    let first = until(Duration::from_secs(10), "X to call the webhook", || async {
        receiver.requests().first().cloned()
    })
    .await;
    // The receiver holds the call unanswered; X dies mid-call, within its timeout.
    x.kill().unwrap();
    x.wait().unwrap();
    assert!(
        first.at.elapsed() < Duration::from_secs(TIMEOUT),
        "killed mid-call"
    );

    let y = node(&url, "node-y", true, |c| {
        c.webhooks.timeout_secs = TIMEOUT;
        c.webhooks.retry_intervals_secs = vec![1];
    })
    .await;
    let second = until(Duration::from_secs(60), "Y to make the call", || async {
        receiver.requests().get(1).cloned()
    })
    .await;
    let waited = second.at - first.at;
    println!(
        "webhook lease: X called, was killed; Y called {waited:?} after X's call (lease {}s)",
        TIMEOUT + 30
    );
    assert!(
        waited >= Duration::from_secs(TIMEOUT + 30 - 2),
        "Y called while X's lease held: {waited:?}"
    );
    assert_eq!(
        header(&first.head, "X-Postern-Delivery"),
        header(&second.head, "X-Postern-Delivery"),
        "the same delivery"
    );
    assert_eq!(first.body, second.body);
    let done = until(
        Duration::from_secs(10),
        "the delivery to be delivered",
        || async {
            let list = deliveries(y.running.api, hook).await;
            (list.len() == 1 && list[0]["status"] == "delivered").then_some(list)
        },
    )
    .await;
    println!("delivery: {}", done[0]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.requests().len(), 2, "no third call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_no_message_it_accepted() {
    let url = common::postgres::database();
    // X's upstream in its first life defers the first 500 messages (retried every second),
    // so X holds a queue when it dies as well as delivering.
    let first = FakeUpstream::start(Script {
        pipelining: true,
        tempfail_first: 500,
        ..Script::default()
    })
    .await;
    let (deferring, at_b) = (upstream(true).await, upstream(false).await);
    let b = node(&url, "node-b", true, |c| {
        c.upstreams
            .insert("relay".into(), sink_upstream(at_b.addr.port()));
        c.default_upstream = "relay".into();
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let [smtp, inbound, api] = free_ports();
    let write = |upstream_port: u16| {
        BinaryNode {
            dir: dir.path(),
            name: "node-x",
            url: &url,
            smtp,
            inbound,
            api,
            upstream_port,
            webhook_timeout: 5,
        }
        .write()
    };
    let config = write(first.addr.port());
    let mut x = start_with_alice(&config, api).await;

    // Eight pipelining clients submit to X while it delivers; then kill -9 mid-stream.
    let clients: Vec<_> = (0..8)
        .map(|t| tokio::spawn(submit_until_killed(addr(smtp), t)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    x.kill().unwrap();
    x.wait().unwrap();
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.unwrap());
    }
    assert!(
        acknowledged.len() > 50,
        "too little load: {}",
        acknowledged.len()
    );
    let before = subject_counts(&[&first]).len();

    // X comes back with an upstream that defers everything, and is drained through B:
    // what it held reaches B's upstream.
    let config = write(deferring.addr.port());
    let mut x = spawn_binary(&config);
    common::wait_ready(addr(api), &mut x, &common::binary_log(&config)).await;
    let (status, doc) = call(b.running.api, "POST", "/api/v1/nodes/node-x/drain", None).await;
    assert!(status == 200 || status == 204, "{status} {doc}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let arrived = subject_counts(&[&first, &at_b]);
        let missing: Vec<String> = acknowledged
            .iter()
            .filter(|s| !arrived.contains_key(*s))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let counts = subject_counts(&[&first, &at_b]);
    let twice = counts.values().filter(|&&n| n > 1).count();
    let via_b = subject_counts(&[&at_b]).len();
    // Twice through B alone: the hand-over itself duplicated (no crash during it here).
    let twice_by_b = subject_counts(&[&at_b])
        .values()
        .filter(|&&n| n > 1)
        .count();
    let _ = x.kill();
    let _ = x.wait();
    println!(
        "kill -9 under load: {} answered 250; {before} delivered before the kill; {via_b} delivered by node-b after X's drain; {twice} delivered twice (sent before the kill, not yet recorded); {} missing",
        acknowledged.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages lost: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(via_b > 0, "the drain moved what X held");
    assert_eq!(
        twice_by_b, 0,
        "a message handed over was delivered twice by B"
    );
    assert_eq!(deferring.record().messages.len(), 0);
}

// ---------------------------------------------------------------------------------------
// The store under two nodes: a login is never claimed without its user.

#[test]
fn two_nodes_creating_one_user_never_see_the_login_claimed_without_its_user() {
    use postern::config::{StoreBackend, StoreConfig};
    use postern::store::{NewUser, Store, StoreError, UserKind};
    let url = common::postgres::database();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let open = |node: &str, dir: &tempfile::TempDir| {
        let config = StoreConfig {
            backend: StoreBackend::Postgres,
            url: url.clone(),
            node: node.into(),
            notify: true,
        };
        Store::open_config(&config, dir.path()).unwrap()
    };
    let stores = [open("node-a", &dirs[0]), open("node-b", &dirs[1])];
    const LOGINS: usize = 100;
    let barrier = std::sync::Barrier::new(2);
    let half_made: Vec<Vec<String>> = std::thread::scope(|scope| {
        let racers: Vec<_> = stores
            .iter()
            .map(|store| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut half_made = Vec::new();
                    for i in 0..LOGINS {
                        let login = format!("ann{i}@customer.example");
                        let new = NewUser {
                            login: login.clone(),
                            email: login.clone(),
                            display_name: "Ann".into(),
                            kind: Some(UserKind::Requester),
                            ..NewUser::default()
                        };
                        barrier.wait();
                        match store.users().create(new, 0) {
                            Ok(_) => {}
                            Err(StoreError::Conflict(_)) => {
                                if store.users().by_login(&login).unwrap().is_none() {
                                    half_made.push(login);
                                }
                            }
                            Err(error) => panic!("{error}"),
                        }
                    }
                    half_made
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let half_made: Vec<&String> = half_made.iter().flatten().collect();
    assert!(
        half_made.is_empty(),
        "{} logins were taken while their user could not be read: {half_made:?}",
        half_made.len()
    );
    assert_eq!(stores[0].users().all().unwrap().len(), LOGINS);
}
