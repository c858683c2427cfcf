//! Delivery status notifications (RFC 3464): the `multipart/report` sent back to the
//! envelope sender when recipients fail for good or the message expires. Never built for
//! the null sender or for a DSN itself; the caller checks that.

use super::attempt::Failed;
use super::meta::{show_id, Envelope, Meta, QueueId};
use super::{Spool, SpoolError};
use crate::rewrite::{date, header_block_len};
use bytes::Bytes;
use std::fmt::Write;

/// Builds the DSN for `failed` recipients of `meta`/`original` and queues it to the
/// envelope sender through `upstream`; returns the DSN's queue id.
pub async fn send(
    spool: &Spool,
    hostname: &str,
    upstream: &str,
    meta: &Meta,
    original: &[u8],
    failed: &[Failed],
) -> Result<QueueId, SpoolError> {
    let dsn_id = spool.new_id()?;
    let report = build(hostname, meta, original, failed, dsn_id);
    let envelope = Envelope {
        mail_from: String::new(),
        rcpts: vec![meta.mail_from.clone()],
        upstream: upstream.to_string(),
        principal: None,
        smtputf8: meta.smtputf8,
        eight_bit: false,
        is_dsn: true,
        verdicts: None,
        keep: None,
    };
    spool.enqueue(dsn_id, envelope, Bytes::from(report)).await?;
    spool.metrics().dsn_sent.increment(1);
    Ok(dsn_id)
}

/// Builds the DSN for `failed` recipients of the message `meta`/`original`.
/// `dsn_id` (the DSN's own queue id) makes its Message-ID and boundary unique, even for two
/// DSNs about one message after the same attempt (the worker's and an administrator's).
pub fn build(
    hostname: &str,
    meta: &Meta,
    original: &[u8],
    failed: &[Failed],
    dsn_id: QueueId,
) -> Vec<u8> {
    let id = show_id(meta.id);
    let own = show_id(dsn_id);
    let boundary = format!("{own}/{hostname}");
    let now = date::now_rfc5322();
    let mut out = String::with_capacity(2048);
    let _ = write!(
        out,
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{to}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {now}\r\n\
         Message-ID: <{own}.dsn@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n--{boundary}\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n\
         Your message (queue id {id}) could not be delivered to these recipients:\r\n\r\n",
        to = ascii(&meta.mail_from),
    );
    for f in failed {
        let _ = write!(out, "<{}>: {}\r\n", ascii(&f.address), ascii(&f.reply));
    }
    let _ = write!(
        out,
        "\r\n--{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; {hostname}\r\n\
         X-Postern-Queue-ID: {id}\r\n\
         Arrival-Date: {arrival}\r\n",
        arrival = date::rfc5322(meta.received_at / 1000),
    );
    for f in failed {
        let _ = write!(
            out,
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {}\r\n",
            ascii(&f.address),
            status_code(f),
            ascii(&f.reply)
        );
    }
    let _ = write!(
        out,
        "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    );
    let mut bytes = out.into_bytes();
    let headers = &original[..header_block_len(original)];
    bytes.extend_from_slice(headers);
    if !headers.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

/// The enhanced status code of a failure: the one in the reply if it has one.
fn status_code(failed: &Failed) -> String {
    if failed.expired {
        return "4.4.7".to_string();
    }
    failed
        .reply
        .split_whitespace()
        .nth(1)
        .filter(|code| is_enhanced(code))
        .unwrap_or("5.0.0")
        .to_string()
}

fn is_enhanced(code: &str) -> bool {
    let parts: Vec<&str> = code.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Printable ASCII only: a reply or address can never break the report's structure.
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::meta::Rcpt;

    #[test]
    fn report_has_the_three_parts() {
        let meta = Meta {
            id: 7,
            mail_from: "alice@example.com".into(),
            rcpts: vec![Rcpt {
                address: "bob@example.net".into(),
                status: crate::spool::RcptStatus::Failed,
                last_reply: None,
            }],
            upstream: "u".into(),
            principal: None,
            smtputf8: false,
            eight_bit: false,
            is_dsn: false,
            size: 1,
            received_at: 0,
            attempts: 1,
            due_at: 0,
            expires_at: 0,
            verdicts: None,
            keep: None,
        };
        let failed = vec![Failed {
            address: "bob@example.net".into(),
            reply: "550 5.1.1 no such user\r\nInjected: x".into(),
            expired: false,
        }];
        let dsn = build(
            "gw.example",
            &meta,
            b"Subject: hi\r\n\r\nbody",
            &failed,
            0x2a,
        );
        let text = String::from_utf8(dsn).unwrap();
        assert!(text.contains("report-type=delivery-status"));
        assert!(text.contains("Status: 5.1.1\r\n"));
        assert!(text.contains("Final-Recipient: rfc822; bob@example.net"));
        assert!(text.contains("text/rfc822-headers\r\n\r\nSubject: hi\r\n"));
        assert!(!text.contains("\r\nInjected"));
        assert!(text.ends_with("--\r\n"));
    }
}
