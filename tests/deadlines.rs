//! Time limits are deadlines, not per-read timeouts: clients that trickle one byte at a time
//! inside a command line, DATA or a BDAT chunk are cut off with `421 4.4.2` naming the limit,
//! the session ends at its time limit even mid-line or mid-message, nothing of a cut-off
//! message is queued, and a fast client is not touched. Every test is bounded in time.

mod common;

use common::{logs, Client, Gateway};
use postern::config::Config;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;

/// How long any one test may take.
const TEST_BOUND: Duration = Duration::from_secs(30);
/// A trickling client sends one byte this often: well within any per-read timeout.
const EVERY: Duration = Duration::from_millis(500);

/// Runs `test` and fails it if it takes longer than `TEST_BOUND`.
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the test ends within its bound");
}

/// A gateway with small limits and the user alice; `configure` adjusts the limits.
async fn gateway(configure: impl FnOnce(&mut Config)) -> Gateway {
    logs::capture();
    let gw = Gateway::start(|c| {
        c.limits.idle_timeout_secs = 2;
        c.limits.session_timeout_secs = 30;
        c.limits.min_data_rate = 500;
        configure(c);
    })
    .await;
    gw.create_user("alice@example.com", "staff", "alice-password")
        .await;
    gw
}

/// A logged-in client that has given MAIL and RCPT.
async fn in_transaction(gw: &Gateway) -> Client {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("alice@example.com", "alice-password").await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c
}

/// Sends `pieces`, `EVERY` apart, until all are sent or the server closes.
fn trickle(mut write: OwnedWriteHalf, pieces: Vec<Vec<u8>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        for piece in pieces {
            if write.write_all(&piece).await.is_err() {
                return;
            }
            tokio::time::sleep(EVERY).await;
        }
    })
}

/// Everything the server sends until it closes the connection, and how long that took;
/// fails if it has not closed within `within`.
async fn until_closed(mut read: OwnedReadHalf, within: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut text = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 512];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => text.extend_from_slice(&buf[..n]),
            }
        }
    };
    let closed = tokio::time::timeout(within, read_all).await.is_ok();
    let text = String::from_utf8_lossy(&text).to_string();
    assert!(
        closed,
        "still open after {within:?}; the server sent {text:?}"
    );
    (text, start.elapsed())
}

/// Trickles `pieces` on `client`'s connection; returns what the server sent until it
/// closed (within `within`), after checking the close was logged with the client's address.
async fn trickled(client: Client, pieces: Vec<Vec<u8>>, within: Duration) -> String {
    let logs = logs::capture();
    let stream = client.into_inner();
    let peer = stream.local_addr().unwrap().to_string();
    let (read, write) = stream.into_split();
    let writer = trickle(write, pieces);
    let (text, _) = until_closed(read, within).await;
    writer.abort();
    let logged = logs.find(&[&peer, "closing the session"]).await;
    let logged = logged.expect("the cut-off is logged with the client's address");
    assert!(logged.contains("listener=plain"), "{logged}");
    text
}

/// `bytes`, one a piece.
fn bytewise(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.iter().map(|b| vec![*b]).collect()
}

async fn rejections(gw: &Gateway, reason: &str) -> f64 {
    gw.metric(&format!(
        "postern_smtp_rejections_total{{reason=\"{reason}\"}}"
    ))
    .await
}

async fn assert_nothing_queued(gw: &Gateway) {
    assert_eq!(gw.metric("postern_messages_accepted_total").await, 0.0);
    assert!(
        gw.wait_outbox_none().await,
        "a cut-off message was delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_line_must_arrive_whole_within_the_idle_timeout() {
    bounded(async {
        let gw = gateway(|_| {}).await;
        let c = Client::connect(gw.addr("plain")).await;
        // 40 bytes at 2 a second: 20 s for one line, each byte well within 2 s of the last.
        let line = b"EHLO a-client-that-takes-its-time.test\r\n";
        let text = trickled(c, bytewise(line), Duration::from_secs(8)).await;
        assert!(text.starts_with("421 4.4.2 idle timeout"), "{text:?}");
        assert_eq!(rejections(&gw, "idle_timeout").await, 1.0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_must_keep_the_minimum_rate() {
    bounded(async {
        let gw = gateway(|_| {}).await;
        let mut c = in_transaction(&gw).await;
        c.expect("DATA", 354).await;
        let message = b"From: alice@example.com\r\nSubject: slow\r\n\r\nhello\r\n.\r\n";
        let text = trickled(c, bytewise(message), Duration::from_secs(8)).await;
        assert!(text.starts_with("421 4.4.2 data rate too low"), "{text:?}");
        assert_eq!(rejections(&gw, "data_rate").await, 1.0);
        assert_nothing_queued(&gw).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bdat_chunk_must_keep_the_minimum_rate() {
    bounded(async {
        let gw = gateway(|_| {}).await;
        let mut c = in_transaction(&gw).await;
        let message = b"From: alice@example.com\r\nSubject: slow\r\n\r\nhello\r\n";
        c.send(format!("BDAT {} LAST\r\n", message.len()).as_bytes())
            .await;
        let text = trickled(c, bytewise(message), Duration::from_secs(8)).await;
        assert!(text.starts_with("421 4.4.2 data rate too low"), "{text:?}");
        assert_eq!(rejections(&gw, "data_rate").await, 1.0);
        assert_nothing_queued(&gw).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_ends_at_its_limit_between_commands() {
    bounded(async {
        let gw = gateway(|c| c.limits.session_timeout_secs = 4).await;
        let c = Client::connect(gw.addr("plain")).await;
        let noops = vec![b"NOOP\r\n".to_vec(); 40];
        let text = trickled(c, noops, Duration::from_secs(8)).await;
        let (noop, last) = text
            .trim_end()
            .rsplit_once("\r\n")
            .expect("several replies");
        assert!(noop.lines().all(|l| l == "250 2.0.0 OK"), "{text:?}");
        assert!(
            last.starts_with("421 4.4.2 session time limit exceeded"),
            "{text:?}"
        );
        assert_eq!(rejections(&gw, "session_timeout").await, 1.0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_ends_at_its_limit_in_the_middle_of_a_line() {
    bounded(async {
        let gw = gateway(|c| {
            c.limits.idle_timeout_secs = 60;
            c.limits.session_timeout_secs = 3;
        })
        .await;
        let c = Client::connect(gw.addr("plain")).await;
        let line = b"EHLO a-client-that-takes-its-time.test\r\n";
        let text = trickled(c, bytewise(line), Duration::from_secs(8)).await;
        assert!(
            text.starts_with("421 4.4.2 session time limit exceeded"),
            "{text:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_ends_at_its_limit_in_the_middle_of_data() {
    bounded(async {
        // No rate limit and a long idle timeout: only the session's end stops this client.
        let gw = gateway(|c| {
            c.limits.idle_timeout_secs = 60;
            c.limits.session_timeout_secs = 5;
            c.limits.min_data_rate = 0;
        })
        .await;
        let mut c = in_transaction(&gw).await;
        c.expect("DATA", 354).await;
        let message = b"From: alice@example.com\r\nSubject: slow\r\n\r\nhello\r\n.\r\n";
        let text = trickled(c, bytewise(message), Duration::from_secs(10)).await;
        assert!(
            text.starts_with("421 4.4.2 session time limit exceeded"),
            "{text:?}"
        );
        assert_nothing_queued(&gw).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_client_is_not_touched() {
    bounded(async {
        let gw = gateway(|c| c.limits.session_timeout_secs = 10).await;
        let mut c = in_transaction(&gw).await;
        // A pause shorter than the idle timeout between commands is fine.
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.expect("DATA", 354).await;
        let mut message = b"From: alice@example.com\r\nSubject: fast\r\n\r\n".to_vec();
        message.extend(b"0123456789abcdef0123456789abcdef\r\n".repeat(16 * 1024));
        c.send(&message).await;
        c.expect(".", 250).await;
        c.expect("MAIL FROM:<alice@example.com>", 250).await;
        c.expect("RCPT TO:<bob@example.net>", 250).await;
        c.send(format!("BDAT {} LAST\r\n", message.len()).as_bytes())
            .await;
        c.send(&message).await;
        let r = c.reply().await;
        assert_eq!(r.code, 250, "{r:?}");
        c.expect("QUIT", 221).await;
        assert_eq!(gw.wait_outbox(2).await.len(), 2);
        for reason in ["idle_timeout", "data_rate", "session_timeout"] {
            assert_eq!(rejections(&gw, reason).await, 0.0, "{reason}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_must_end_within_the_idle_timeout() {
    bounded(async {
        let gw = gateway(|_| {}).await;
        // Implicit TLS: a client that opens the connection and never says hello.
        let stream = tokio::net::TcpStream::connect(gw.addr("implicit"))
            .await
            .unwrap();
        let (read, write) = stream.into_split();
        let (text, _) = until_closed(read, Duration::from_secs(8)).await;
        drop(write);
        assert!(text.is_empty(), "{text:?}");
        assert_eq!(rejections(&gw, "tls_handshake_timeout").await, 1.0);
        // STARTTLS: the same after the 220.
        let mut c = Client::connect(gw.addr("starttls")).await;
        c.expect("EHLO client.test", 250).await;
        c.expect("STARTTLS", 220).await;
        let (read, _write) = c.into_inner().into_split();
        until_closed(read, Duration::from_secs(8)).await;
        assert_eq!(rejections(&gw, "tls_handshake_timeout").await, 2.0);
    })
    .await;
}
