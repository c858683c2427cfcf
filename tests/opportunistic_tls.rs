//! Opportunistic STARTTLS towards upstreams (`tls = "opportunistic"`, what `mx` uses): an
//! upstream that offers STARTTLS gets the message encrypted even with a certificate
//! nobody trusts; one whose TLS handshake fails gets it in clear text on a second
//! connection, as Postfix's `may` level does, instead of never — that connection is not
//! pooled, and a "530 must issue STARTTLS" on it defers instead of bouncing.

mod common;

use common::desk::submit;
use common::tls::{client_cert_required, localhost_cert};
use common::upstream::{FakeUpstream, Script};
use common::Gateway;
use std::time::{Duration, Instant};

async fn gateway(upstream: &FakeUpstream) -> Gateway {
    let settings = format!(
        "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"opportunistic\"\ntimeout_secs = 5\n",
        upstream.addr.port()
    );
    common::desk::gateway(&settings).await
}

async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tls_failing() -> Script {
    Script {
        pipelining: true,
        starttls: Some(client_cert_required()),
        ..Script::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offered_starttls_is_used_whatever_the_certificate() {
    let (config, _) = localhost_cert();
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        starttls: Some(config),
        ..Script::default()
    })
    .await;
    let gw = gateway(&upstream).await;
    submit(&gw, "encrypted").await;
    until("delivered", || !upstream.record().messages.is_empty()).await;
    let record = upstream.record();
    assert!(record.messages[0].tls, "the message went encrypted");
    assert_eq!(record.connections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_handshake_is_followed_by_a_clear_text_connection() {
    let upstream = FakeUpstream::start(tls_failing()).await;
    let gw = gateway(&upstream).await;
    submit(&gw, "first").await;
    until("delivered", || upstream.record().messages.len() == 1).await;
    {
        let record = upstream.record();
        assert!(
            !record.messages[0].tls,
            "the second connection is clear text"
        );
        assert_eq!(record.connections, 2, "one failed handshake, one delivery");
    }
    // The clear-text connection is not kept: the next message tries TLS again.
    submit(&gw, "second").await;
    until("delivered", || upstream.record().messages.len() == 2).await;
    assert_eq!(upstream.record().connections, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_wants_tls_after_all_defers_instead_of_bouncing() {
    let upstream = FakeUpstream::start(Script {
        mail_reply: Some("530 5.7.0 Must issue a STARTTLS command first".into()),
        ..tls_failing()
    })
    .await;
    let gw = gateway(&upstream).await;
    submit(&gw, "must be encrypted").await;
    until("a clear-text try", || upstream.record().connections >= 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, queue) = common::http(
        gw.running.api,
        "GET",
        "/api/v1/queue",
        Some(common::TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        queue.contains("530 5.7.0") && queue.contains("customer@example.net"),
        "the message itself is queued with the reason: {queue}"
    );
    assert!(upstream.record().messages.is_empty(), "no DSN: {queue}");
}
