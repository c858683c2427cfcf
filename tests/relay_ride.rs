//! Deliveries that ride along: a delivery that finds another message of the same upstream
//! waiting for its `354` has its envelope written behind that message's data and takes the
//! connection over afterwards; at the connection limit, deliveries queue for the next such
//! seat. Against a fake upstream on real sockets that answers DATA slowly, so the second
//! delivery surely finds the first one waiting.

mod common;

use common::upstream::{FakeUpstream, Script};
use postern::config::SmtpUpstream as SmtpConfig;
use postern::relay::smtp::SmtpUpstream;
use postern::relay::{RcptOutcome, RelayError};
use std::time::Duration;

/// How long the fake upstream takes to answer DATA; the second delivery starts a tenth of
/// it after the first.
const SLOW: Duration = Duration::from_millis(400);

/// The fake upstream, pipelining and slow to answer DATA, following `script`, and a client
/// for it with its configuration adjusted by `edit`.
async fn start_with(
    script: Script,
    edit: impl FnOnce(&mut SmtpConfig),
) -> (FakeUpstream, SmtpUpstream) {
    let script = Script {
        pipelining: true,
        slow_data: Some(SLOW),
        ..script
    };
    common::relay::client_for(script, edit).await
}

async fn send(
    up: &SmtpUpstream,
    id: &str,
    to: &str,
    data: &[u8],
) -> Result<Vec<RcptOutcome>, RelayError> {
    common::relay::deliver(up, id, &[to], data).await
}

/// Delivers A, and B once A waits for its DATA reply; returns both outcomes.
async fn a_then_b(
    up: &SmtpUpstream,
    a_to: &str,
) -> (
    Result<Vec<RcptOutcome>, RelayError>,
    Result<Vec<RcptOutcome>, RelayError>,
) {
    let b = async {
        tokio::time::sleep(SLOW / 10).await;
        send(up, "B", "b@example.net", b"Subject: b\r\n\r\nbody b\r\n").await
    };
    tokio::join!(send(up, "A", a_to, b"Subject: a\r\n\r\n.body a\r\n"), b)
}

fn delivered(result: &Result<Vec<RcptOutcome>, RelayError>) -> bool {
    matches!(result.as_deref(), Ok([RcptOutcome::Delivered(_)]))
}

#[tokio::test]
async fn a_delivery_rides_behind_one_waiting_for_its_354() {
    let (server, up) = start_with(Script::default(), |_| {}).await;
    let (a, b) = a_then_b(&up, "a@example.net").await;
    assert!(delivered(&a) && delivered(&b), "{a:?} {b:?}");
    {
        let record = server.record();
        assert_eq!(record.connections, 1, "B took no connection of its own");
        assert!(!record.lines().contains(&"RSET"), "{:?}", record.lines());
        let data: Vec<&[u8]> = record.messages.iter().map(|m| m.data.as_slice()).collect();
        assert_eq!(
            data,
            [
                &b"Subject: a\r\n\r\n.body a\r\n"[..],
                b"Subject: b\r\n\r\nbody b\r\n"
            ]
        );
        assert_eq!(record.messages[1].rcpts, ["b@example.net"]);
        // B's envelope arrived with A's data: A's final reply went out with B's envelope
        // replies, after the server had read B's MAIL, RCPT and DATA.
        let envelopes = record
            .batches
            .iter()
            .filter(|b| *b == &["MAIL", "RCPT", "DATA"]);
        assert_eq!(envelopes.count(), 2, "{:?}", record.batches);
    }

    // The connection goes on serving: a later delivery reuses it (with RSET, as usual).
    let c = send(&up, "C", "c@example.net", b"c\r\n").await;
    assert!(delivered(&c), "{c:?}");
    let record = server.record();
    assert_eq!(record.connections, 1);
    assert_eq!(record.lines().iter().filter(|l| **l == "RSET").count(), 1);
}

#[tokio::test]
async fn a_rider_whose_connection_closes_is_retried_on_a_fresh_one() {
    for goodbye in [None, Some("421 4.4.2 closing".to_string())] {
        let script = Script {
            close_after_messages: Some(1),
            goodbye: goodbye.clone(),
            ..Script::default()
        };
        let (server, up) = start_with(script, |_| {}).await;
        let (a, b) = a_then_b(&up, "a@example.net").await;
        assert!(delivered(&a) && delivered(&b), "{goodbye:?}: {a:?} {b:?}");
        let record = server.record();
        assert_eq!(record.connections, 2, "{goodbye:?}");
        assert_eq!(record.messages.len(), 2, "{goodbye:?}");
        assert_eq!(record.messages[1].data, b"Subject: b\r\n\r\nbody b\r\n");
        if goodbye.is_some() {
            // B's MAIL came behind A's data on the first connection and was answered 421.
            let first = record
                .commands
                .iter()
                .filter(|(c, l)| *c == 0 && l.starts_with("MAIL"));
            assert_eq!(first.count(), 2, "{:?}", record.commands);
        }
    }
}

#[tokio::test]
async fn a_rider_whose_leader_sends_no_data_goes_its_own_way() {
    let script = Script {
        rcpt_replies: vec![("gone@example.net".into(), "550 5.1.1 no such user".into())],
        ..Script::default()
    };
    let (server, up) = start_with(script, |_| {}).await;
    let (a, b) = a_then_b(&up, "gone@example.net").await;
    assert_eq!(
        a.expect("A's attempt"),
        [RcptOutcome::Permanent("550 5.1.1 no such user".into())]
    );
    assert!(delivered(&b), "{b:?}");
    let record = server.record();
    assert_eq!(record.messages.len(), 1);
    assert_eq!(record.messages[0].rcpts, ["b@example.net"]);
}

#[tokio::test]
async fn nobody_rides_where_connections_are_not_reused() {
    let (server, up) = start_with(Script::default(), |cfg| cfg.pool_size = 0).await;
    let (a, b) = a_then_b(&up, "a@example.net").await;
    assert!(delivered(&a) && delivered(&b), "{a:?} {b:?}");
    assert_eq!(server.record().connections, 2, "a connection each");
}

/// Over one connection slot: A at once to `a_to`, B a tenth of `SLOW` later (it boards
/// A's stop), C two tenths later (the stop is taken and no slot is free, so it queues).
async fn a_b_c_over_one_slot(
    script: Script,
    a_to: &str,
) -> (FakeUpstream, [Result<Vec<RcptOutcome>, RelayError>; 3]) {
    let (server, up) = start_with(script, |cfg| cfg.max_connections = 1).await;
    let later = |id: &'static str, tenths: u32| {
        let up = &up;
        async move {
            tokio::time::sleep(SLOW * tenths / 10).await;
            let to = format!("{}@example.net", id.to_lowercase());
            let data = format!("Subject: {id}\r\n\r\nbody\r\n");
            send(up, id, &to, data.as_bytes()).await
        }
    };
    let (a, b, c) = tokio::join!(
        send(&up, "A", a_to, b"Subject: A\r\n\r\nbody\r\n"),
        later("B", 1),
        later("C", 2)
    );
    (server, [a, b, c])
}

#[tokio::test]
async fn at_the_connection_limit_a_delivery_queues_for_the_next_stop() {
    let (server, [a, b, c]) = a_b_c_over_one_slot(Script::default(), "a@example.net").await;
    // B's stop seats C as soon as B's turn comes.
    assert!(
        delivered(&a) && delivered(&b) && delivered(&c),
        "{a:?} {b:?} {c:?}"
    );
    let record = server.record();
    assert_eq!(record.connections, 1);
    // Without the queue, C would wait for B's whole transaction and check the pooled
    // connection with RSET; seated, its envelope follows B's data.
    assert!(!record.lines().contains(&"RSET"), "{:?}", record.lines());
    let rcpts: Vec<&str> = record
        .messages
        .iter()
        .map(|m| m.rcpts[0].as_str())
        .collect();
    assert_eq!(rcpts, ["a@example.net", "b@example.net", "c@example.net"]);
    let envelopes = record
        .batches
        .iter()
        .filter(|b| *b == &["MAIL", "RCPT", "DATA"]);
    assert_eq!(envelopes.count(), 3, "{:?}", record.batches);
}

#[tokio::test]
async fn queued_deliveries_whose_leader_sends_no_data_take_the_slot_in_turn() {
    let script = Script {
        rcpt_replies: vec![("gone@example.net".into(), "550 5.1.1 no such user".into())],
        ..Script::default()
    };
    // A sends no data: B (on A's stop) is declined and queues behind C. A's slot goes to
    // C, which takes the pooled connection; C's stop seats B.
    let (server, [a, b, c]) = a_b_c_over_one_slot(script, "gone@example.net").await;
    assert_eq!(
        a.expect("A's attempt"),
        [RcptOutcome::Permanent("550 5.1.1 no such user".into())]
    );
    assert!(delivered(&b) && delivered(&c), "{b:?} {c:?}");
    let record = server.record();
    assert_eq!(record.connections, 1);
    let rcpts: Vec<&str> = record
        .messages
        .iter()
        .map(|m| m.rcpts[0].as_str())
        .collect();
    assert_eq!(rcpts, ["c@example.net", "b@example.net"]);
    // RSET after A's refused envelope, and before C's on the pooled connection; none for
    // B, whose envelope followed C's data.
    let rsets = record.lines().iter().filter(|l| **l == "RSET").count();
    assert_eq!(rsets, 2, "{:?}", record.lines());
}
