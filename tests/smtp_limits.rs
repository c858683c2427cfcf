//! Connection limits and BDAT sizes through real sockets: the listener-wide cap and the
//! per-address cap say which one was reached, and a BDAT size that does not fit in 64 bits
//! is refused (and the session closed) instead of being read as some smaller number.

mod common;

use common::{Client, Gateway};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// The first line a connection to `addr` receives.
async fn first_line(addr: std::net::SocketAddr) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .expect("a line within 10 s")
        .unwrap();
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_limit_is_not_blamed_on_the_address() {
    let gw = Gateway::start(|c| {
        c.limits.max_connections = 1;
        c.limits.connections_per_ip = 50;
    })
    .await;
    let _first = Client::connect(gw.addr("plain")).await;
    let line = first_line(gw.addr("plain")).await;
    assert_eq!(line, "421 4.7.0 too many connections; try again later\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_limit_names_the_address() {
    let gw = Gateway::start(|c| {
        c.limits.max_connections = 50;
        c.limits.connections_per_ip = 1;
    })
    .await;
    let _first = Client::connect(gw.addr("plain")).await;
    let line = first_line(gw.addr("plain")).await;
    assert_eq!(line, "421 4.7.0 too many connections from your address\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bdat_size_beyond_64_bits_gets_501() {
    let gw = Gateway::start(|_| {}).await;
    gw.create_user("alice@example.com", "staff", "alice-password")
        .await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("alice@example.com", "alice-password").await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    // smtp-proto 0.2 reads this size as 5, which would take "hello" for the whole message.
    c.send(b"BDAT 1000000000000000000005 LAST\r\nhello").await;
    let r = c.reply().await;
    assert_eq!(r.code, 501, "{r:?}");
    assert!(r.text.starts_with("501 5.5.4"), "{r:?}");
    assert!(c.closed().await);
    assert!(gw.wait_outbox_none().await, "a message was accepted");
    // It is the value that must fit, not the digits: leading zeros are allowed.
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("alice@example.com", "alice-password").await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    let message = b"From: alice@example.com\r\n\r\nhello\r\n";
    c.send(format!("BDAT {:0>30} LAST\r\n", message.len()).as_bytes())
        .await;
    c.send(message).await;
    let r = c.reply().await;
    assert_eq!(r.code, 250, "leading zeros are still a small size: {r:?}");
}

/// Fuzz finding F2: a chunk size near `usize::MAX` after a first chunk overflowed the size
/// check (a panic in debug builds, unbounded memory in release ones). A chunk larger than
/// the message size limit is refused at once, and the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bdat_chunk_past_the_size_limit_is_refused_at_once() {
    let gw = Gateway::start(|_| {}).await;
    gw.create_user("alice@example.com", "staff", "alice-password")
        .await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("alice@example.com", "alice-password").await;
    c.expect("MAIL FROM:<alice@example.com>", 250).await;
    c.expect("RCPT TO:<bob@example.net>", 250).await;
    c.send(b"BDAT 2\r\nxy").await;
    assert_eq!(c.reply().await.code, 250);
    c.send(format!("BDAT {}\r\nmore", usize::MAX - 1).as_bytes())
        .await;
    let r = c.reply().await;
    assert!(r.text.starts_with("552 5.3.4"), "{r:?}");
    assert!(c.closed().await);
    assert!(gw.wait_outbox_none().await, "a message was accepted");
}
