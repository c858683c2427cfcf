//! BDAT to upstreams that offer CHUNKING and PIPELINING (RFC 3030): the envelope and the
//! whole message as one `BDAT <size> LAST` chunk in a single write, so a message costs one
//! round trip. Against the fake upstream on real sockets, which reads chunks by their
//! exact size and records which commands reached it before it answered.

mod common;

use common::upstream::{FakeUpstream, Script};
use postern::config::SmtpUpstream as SmtpConfig;
use postern::relay::smtp::SmtpUpstream;
use postern::relay::{RcptOutcome, RelayError};

/// A message with lines that DATA would have to dot-stuff.
const DOTTED: &[u8] = b"Subject: dots\r\n\r\n.leading dot\r\n.\r\n..two\r\nend\r\n";

/// The fake upstream, offering PIPELINING and CHUNKING, following `script`, and a client
/// for it with its configuration adjusted by `edit`.
async fn start_with(
    script: Script,
    edit: impl FnOnce(&mut SmtpConfig),
) -> (FakeUpstream, SmtpUpstream) {
    let script = Script {
        pipelining: true,
        chunking: true,
        ..script
    };
    common::relay::client_for(script, edit).await
}

async fn send(
    up: &SmtpUpstream,
    rcpts: &[&str],
    data: &[u8],
) -> Result<Vec<RcptOutcome>, RelayError> {
    common::relay::deliver(up, "Q1", rcpts, data).await
}

fn all_delivered(result: &Result<Vec<RcptOutcome>, RelayError>) -> bool {
    result.as_ref().is_ok_and(|outcomes| {
        outcomes
            .iter()
            .all(|o| matches!(o, RcptOutcome::Delivered(_)))
    })
}

fn batches(server: &FakeUpstream) -> Vec<Vec<String>> {
    server.record().batches.clone()
}

fn strings(verbs: &[&str]) -> Vec<String> {
    verbs.iter().map(|v| v.to_string()).collect()
}

#[tokio::test]
async fn a_message_goes_as_one_bdat_chunk_pipelined_with_its_envelope() {
    let (server, up) = start_with(Script::default(), |_| {}).await;
    let first = send(&up, &["a@example.net"], DOTTED).await;
    let second = send(&up, &["b@example.net"], b"Subject: two\r\n\r\nbody\r\n").await;
    assert!(
        all_delivered(&first) && all_delivered(&second),
        "{first:?} {second:?}"
    );

    let record = server.record();
    assert_eq!(record.connections, 1);
    // Not dot-stuffed: the chunk carries the message as it is.
    assert_eq!(record.messages[0].data, DOTTED);
    assert_eq!(record.messages[1].data, b"Subject: two\r\n\r\nbody\r\n");
    let lines = record.lines();
    assert!(
        lines.contains(&format!("BDAT {} LAST", DOTTED.len()).as_str()),
        "{lines:?}"
    );
    assert!(!lines.contains(&"DATA"), "{lines:?}");
    drop(record);
    // One batch per message: the reused connection's RSET goes with it.
    let batches = batches(&server);
    assert!(
        batches.contains(&strings(&["MAIL", "RCPT", "BDAT"])),
        "{batches:?}"
    );
    assert!(
        batches.contains(&strings(&["RSET", "MAIL", "RCPT", "BDAT"])),
        "{batches:?}"
    );
}

#[tokio::test]
async fn a_message_without_a_final_crlf_gets_one_counted_in_the_chunk_size() {
    let (server, up) = start_with(Script::default(), |_| {}).await;
    let result = send(&up, &["a@example.net"], b"Subject: x\r\n\r\nno end").await;
    assert!(all_delivered(&result), "{result:?}");
    let record = server.record();
    assert_eq!(record.messages[0].data, b"Subject: x\r\n\r\nno end\r\n");
    // 20 octets given, 22 sent.
    assert!(
        record.lines().contains(&"BDAT 22 LAST"),
        "{:?}",
        record.lines()
    );
}

#[tokio::test]
async fn a_large_message_goes_byte_exact_in_one_chunk() {
    let (server, up) = start_with(Script::default(), |_| {}).await;
    // Over the connection's 64 KiB write chunk, with dotted lines all through it.
    let mut data = b"Subject: big\r\n\r\n".to_vec();
    while data.len() < 300 * 1024 {
        data.extend_from_slice(b".a line that DATA would stuff\r\nand a plain one\r\n");
    }
    let result = send(&up, &["a@example.net"], &data).await;
    assert!(all_delivered(&result), "{result:?}");
    let record = server.record();
    assert_eq!(record.messages[0].data, data);
    let want = format!("BDAT {} LAST", data.len());
    let chunks: Vec<&str> = record
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("BDAT"))
        .collect();
    assert_eq!(chunks, [want.as_str()]);
}

#[tokio::test]
async fn a_refused_recipient_keeps_its_refusal_and_the_others_get_the_chunk_reply() {
    let script = Script {
        rcpt_replies: vec![("no@example.net".into(), "550 5.1.1 no such user".into())],
        ..Script::default()
    };
    let (server, up) = start_with(script, |_| {}).await;
    let result = send(&up, &["no@example.net", "yes@example.net"], DOTTED).await;
    match result.as_deref() {
        Ok([RcptOutcome::Permanent(no), RcptOutcome::Delivered(_)]) => {
            assert!(no.starts_with("550 5.1.1"), "{no}")
        }
        other => panic!("unexpected outcome {other:?}"),
    }
    assert_eq!(server.record().messages[0].rcpts, ["yes@example.net"]);
}

#[tokio::test]
async fn a_temporary_refusal_of_the_chunk_is_temporary_for_every_accepted_recipient() {
    let script = Script {
        data_reply: Some("451 4.3.0 disk full".into()),
        ..Script::default()
    };
    let (_server, up) = start_with(script, |_| {}).await;
    let result = send(&up, &["a@example.net", "b@example.net"], DOTTED).await;
    match result.as_deref() {
        Ok([RcptOutcome::Temporary(a), RcptOutcome::Temporary(b)]) => {
            assert!(
                a.starts_with("451 4.3.0") && b.starts_with("451 4.3.0"),
                "{a} {b}"
            )
        }
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_envelope_fails_every_recipient_and_the_connection_is_not_reused() {
    let script = Script {
        mail_reply: Some("550 5.7.1 sender not allowed".into()),
        ..Script::default()
    };
    let (server, up) = start_with(script, |_| {}).await;
    let first = send(&up, &["a@example.net", "b@example.net"], DOTTED).await;
    match first.as_deref() {
        Ok([RcptOutcome::Permanent(a), RcptOutcome::Permanent(b)]) => {
            assert!(
                a.starts_with("550 5.7.1") && b.starts_with("550 5.7.1"),
                "{a} {b}"
            )
        }
        other => panic!("unexpected outcome {other:?}"),
    }
    let _ = send(&up, &["c@example.net"], DOTTED).await;
    let record = server.record();
    // The chunk was read and refused, in step with the replies; still, a fresh connection.
    assert_eq!(record.connections, 2);
    assert!(record.messages.is_empty());
    assert_eq!(record.data_attempts, 0);
}

#[tokio::test]
async fn a_refused_rset_before_an_accepted_transaction_does_not_send_the_message_twice() {
    // The whole message is out before the RSET reply is read: a transaction that went
    // ahead anyway is the outcome, not a reason to try again on a fresh connection.
    let script = Script {
        rset_reply: Some("502 5.5.1 RSET not supported".into()),
        ..Script::default()
    };
    let (server, up) = start_with(script, |_| {}).await;
    let first = send(&up, &["a@example.net"], DOTTED).await;
    let second = send(&up, &["b@example.net"], DOTTED).await;
    assert!(
        all_delivered(&first) && all_delivered(&second),
        "{first:?} {second:?}"
    );
    let record = server.record();
    assert_eq!(record.messages.len(), 2, "{:?}", record.lines());
    assert_eq!(record.connections, 1);
}

#[tokio::test]
async fn chunking_off_sends_data_even_when_offered() {
    let (server, up) = start_with(Script::default(), |cfg| cfg.chunking = false).await;
    let result = send(&up, &["a@example.net"], DOTTED).await;
    assert!(all_delivered(&result), "{result:?}");
    let record = server.record();
    assert_eq!(record.messages[0].data, DOTTED);
    assert!(record.lines().contains(&"DATA"), "{:?}", record.lines());
    assert!(!record.lines().iter().any(|l| l.starts_with("BDAT")));
}
