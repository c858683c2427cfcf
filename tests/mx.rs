//! Direct MX delivery (SPEC §5) against a DNS server in the test and SMTP listeners on
//! several loopback addresses (one port, like port 25 on real hosts): MX preference order,
//! fallback when the first host refuses connections, A fallback with no MX, one message's
//! recipients split by domain, NXDOMAIN and null MX failing for good (a DSN to the sender),
//! connections reused per destination, and BDAT to hosts that offer CHUNKING unless
//! `chunking = false`.

mod common;

use common::dns::{serve_records, Rr};
use common::upstream::{FakeUpstream, Script};
use common::{Client, Gateway};
use postern::config::{MxUpstream, UpstreamConfig};
use std::time::{Duration, Instant};

const DESK: &str = "desk@corp.example";

async fn submit(gw: &Gateway, rcpts: &[&str], subject: &str) {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO desk.corp.example", 250).await;
    c.login(DESK, "desk-password-1").await;
    c.expect(&format!("MAIL FROM:<{DESK}>"), 250).await;
    for rcpt in rcpts {
        c.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
    }
    c.expect("DATA", 354).await;
    let text = format!("From: {DESK}\r\nSubject: {subject}\r\n\r\nhello\r\n.\r\n");
    c.send(text.as_bytes()).await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;
}

/// The messages `host` received, as (subject line, recipients).
fn received(host: &FakeUpstream) -> Vec<(String, Vec<String>)> {
    host.record()
        .messages
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(&m.data).to_string();
            let subject = text
                .lines()
                .find(|l| l.starts_with("Subject: "))
                .unwrap_or("")
                .to_string();
            (subject, m.rcpts.clone())
        })
        .collect()
}

/// A gateway whose default upstream is `mx`, with the desk user.
async fn gateway(mx: MxUpstream) -> Gateway {
    let gw = Gateway::start(move |c| {
        c.upstreams.insert("direct".into(), UpstreamConfig::Mx(mx));
        c.default_upstream = "direct".into();
    })
    .await;
    gw.create_user(DESK, "staff", "desk-password-1").await;
    gw
}

async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_to_the_preferred_mx_that_answers() {
    let script = Script {
        pipelining: true,
        ..Script::default()
    };
    // Hosts on 127.0.0.2 and .3 (and the sender's own MX on .5) share one port; nothing
    // listens on 127.0.0.4.
    let first = FakeUpstream::start_on("127.0.0.2:0".parse().unwrap(), script.clone()).await;
    let port = first.addr.port();
    let at = |ip: &str| format!("{ip}:{port}").parse().unwrap();
    let second = FakeUpstream::start_on(at("127.0.0.3"), script.clone()).await;
    let home = FakeUpstream::start_on(at("127.0.0.5"), script.clone()).await;
    let a = |ip: &str| Rr::A(ip.parse().unwrap());
    let dns = serve_records(&[
        ("a.example", Rr::Mx(20, "mx2.a.example".into())),
        ("a.example", Rr::Mx(10, "mx1.a.example".into())),
        ("mx1.a.example", a("127.0.0.2")),
        ("mx2.a.example", a("127.0.0.3")),
        ("b.example", Rr::Mx(10, "down.b.example".into())),
        ("b.example", Rr::Mx(20, "up.b.example".into())),
        ("down.b.example", a("127.0.0.4")),
        ("up.b.example", a("127.0.0.3")),
        ("c.example", a("127.0.0.2")),
        ("c.example", Rr::Txt("v=spf1 -all".into())),
        ("nomail.example", Rr::Mx(0, ".".into())),
        ("corp.example", Rr::Mx(10, "mx.corp.example".into())),
        ("mx.corp.example", a("127.0.0.5")),
    ])
    .await;
    let mx = MxUpstream {
        nameservers: vec![dns],
        port,
        pool_size: 4,
        pool_idle_secs: 30,
        max_connections: 4,
        timeout_secs: 5,
        chunking: true,
        limits: None,
    };
    let gw = gateway(mx).await;

    // Preference order; then a second message reuses the connection.
    submit(&gw, &["ann@a.example"], "first").await;
    submit(&gw, &["ann@a.example"], "again").await;
    until("two messages on mx1", || first.record().messages.len() == 2).await;
    assert_eq!(first.record().connections, 1, "the connection was reused");
    assert!(
        second.record().messages.is_empty(),
        "mx2 is only a fallback"
    );

    // The first MX refuses connections: the next one takes it.
    submit(&gw, &["bob@b.example"], "fallback").await;
    until("b.example at its second MX", || {
        received(&second).len() == 1
    })
    .await;

    // One message to three domains: each gets its own recipients; the one that does not
    // exist and the one with a null MX fail, and the sender gets a DSN.
    submit(
        &gw,
        &[
            "carl@c.example",
            "dora@a.example",
            "x@nowhere.example",
            "y@nomail.example",
        ],
        "split",
    )
    .await;
    until("c.example by its A record", || received(&first).len() == 4).await;
    let at_first = received(&first);
    let split: Vec<&Vec<String>> = at_first
        .iter()
        .filter(|(s, _)| s == "Subject: split")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(split.len(), 2, "one transaction per domain: {at_first:?}");
    assert!(split.contains(&&vec!["carl@c.example".to_string()]));
    assert!(split.contains(&&vec!["dora@a.example".to_string()]));
    until("a DSN at the sender's MX", || {
        !home.record().messages.is_empty()
    })
    .await;
    let dsn = String::from_utf8_lossy(&home.record().messages[0].data).to_string();
    assert_eq!(home.record().messages[0].rcpts, vec![DESK.to_string()]);
    assert!(
        dsn.contains("x@nowhere.example") && dsn.contains("5.1.2"),
        "{dsn}"
    );
    assert!(
        dsn.contains("y@nomail.example") && dsn.contains("5.1.10"),
        "{dsn}"
    );
}

/// A host that offers CHUNKING and PIPELINING gets each message as one BDAT chunk; with
/// `chunking = false` it gets DATA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bdat_to_a_host_that_offers_chunking_unless_turned_off() {
    for chunking in [true, false] {
        let script = Script {
            pipelining: true,
            chunking: true,
            ..Script::default()
        };
        let host = FakeUpstream::start_on("127.0.0.6:0".parse().unwrap(), script).await;
        let dns = serve_records(&[("d.example", Rr::A("127.0.0.6".parse().unwrap()))]).await;
        let mx = MxUpstream {
            nameservers: vec![dns],
            port: host.addr.port(),
            pool_size: 2,
            pool_idle_secs: 30,
            max_connections: 2,
            timeout_secs: 5,
            chunking,
            limits: None,
        };
        let gw = gateway(mx).await;
        submit(&gw, &["dan@d.example"], "chunked").await;
        until("the message at d.example", || received(&host).len() == 1).await;
        assert_eq!(received(&host)[0].0, "Subject: chunked");
        let record = host.record();
        let lines = record.lines();
        let bdat = lines.iter().any(|l| l.starts_with("BDAT"));
        assert_eq!(bdat, chunking, "chunking = {chunking}: {lines:?}");
        assert_eq!(lines.contains(&"DATA"), !chunking, "{lines:?}");
    }
}
