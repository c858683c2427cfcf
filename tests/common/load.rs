//! Load against the real binary: pipelining clients that submit until the server goes
//! away, and what the fake upstreams received.

use super::upstream::FakeUpstream;
use std::collections::HashMap;
use std::net::SocketAddr;

/// The subjects an upstream accepted, each with how many times.
pub fn subject_counts(upstreams: &[&FakeUpstream]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for upstream in upstreams {
        for message in &upstream.record().messages {
            let text = String::from_utf8_lossy(&message.data);
            if let Some(subject) = text.lines().find_map(|l| l.strip_prefix("Subject: ")) {
                *counts.entry(subject.to_string()).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// One client (alice, AUTH PLAIN) that submits pipelined messages with subjects
/// `load {task}-{i}` until the server goes away; returns the subjects answered 250.
pub async fn submit_until_killed(smtp: SocketAddr, task: usize) -> Vec<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut acknowledged = Vec::new();
    let Ok(stream) = tokio::net::TcpStream::connect(smtp).await else {
        return acknowledged;
    };
    let mut io = BufReader::new(stream);
    let auth = super::base64("\0alice@example.com\0alice-password");
    let hello = format!("EHLO load.test\r\nAUTH PLAIN {auth}\r\n");
    if io.get_mut().write_all(hello.as_bytes()).await.is_err() {
        return acknowledged;
    }
    let mut line = String::new();
    // greeting + EHLO (multi-line) + AUTH: read until the 235.
    loop {
        line.clear();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 || line.starts_with('5') {
            return acknowledged;
        }
        if line.starts_with("235") {
            break;
        }
    }
    for i in 0.. {
        let subject = format!("load {task}-{i}");
        let msg = format!(
            "MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n\
             From: alice@example.com\r\nSubject: {subject}\r\n\r\n{}\r\n.\r\n",
            vec!["x".repeat(98); 20].join("\r\n")
        );
        if io.get_mut().write_all(msg.as_bytes()).await.is_err() {
            break;
        }
        let mut codes = Vec::new();
        for _ in 0..4 {
            line.clear();
            if io.read_line(&mut line).await.unwrap_or(0) == 0 || line.len() < 3 {
                return acknowledged;
            }
            codes.push(line[..3].to_string());
        }
        if codes.last().map(String::as_str) == Some("250") {
            acknowledged.push(subject);
        }
    }
    acknowledged
}
