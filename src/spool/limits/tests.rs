//! The limiter with explicit instants (the clock is an argument, so the minute and the
//! day are tested without waiting for them).

use super::*;
use crate::config::limits::{microsoft365, SendLimits};

const ONE: Ask = Ask {
    connection: true,
    messages: 1,
    rcpts: 1,
};

fn per_account(limits: SendLimits) -> UpstreamLimits {
    UpstreamLimits {
        per_account: limits,
        per_upstream: SendLimits::default(),
    }
}

#[test]
fn no_limit_grants_without_state() {
    let limiter = Limiter::new(Duration::from_secs(60));
    let grant = limiter
        .admit(&UpstreamLimits::default(), "u", "a@x", ONE)
        .unwrap();
    assert!(grant.held.is_none());
    assert!(limiter.shared.lock().is_empty(), "no scope was made");
}

#[test]
fn thirty_a_minute_then_the_wait_says_why_and_until_when() {
    let limiter = Limiter::new(Duration::from_secs(60));
    let limits = microsoft365();
    let t0 = Instant::now();
    let mut grants = Vec::new();
    for i in 0..30 {
        let at = t0 + Duration::from_millis(i * 100);
        let grant = limiter.admit_at(at, &limits, "m365", "support@contoso.com", ONE);
        grants.push(grant.expect("within 30 a minute"));
        grants.pop(); // the connection is given back at once
    }
    let at = t0 + Duration::from_secs(10);
    let wait = limiter
        .admit_at(at, &limits, "m365", "support@contoso.com", ONE)
        .err()
        .expect("the 31st waits");
    assert_eq!(wait.kind, Kind::MessagesPerMinute);
    assert_eq!(
        wait.reason,
        "waiting: 30 messages/minute for support@contoso.com"
    );
    // a minute and a second of slack (the provider counts a little later)
    assert_eq!(wait.until, Some(t0 + Duration::from_secs(61)));
    // another mailbox is not held back
    assert!(limiter
        .admit_at(at, &limits, "m365", "sales@contoso.com", ONE)
        .is_ok());
    let early = t0 + Duration::from_secs(60);
    assert!(limiter
        .admit_at(early, &limits, "m365", "support@contoso.com", ONE)
        .is_err());
    // the first one's slot leaves the window then
    assert!(limiter
        .admit_at(
            t0 + Duration::from_secs(61),
            &limits,
            "m365",
            "support@contoso.com",
            ONE
        )
        .is_ok());
}

#[test]
fn three_connections_then_one_comes_back() {
    let limiter = Limiter::new(Duration::from_secs(60));
    let limits = per_account(SendLimits {
        connections: Some(3),
        ..SendLimits::default()
    });
    let now = Instant::now();
    let held: Vec<Grant> = (0..3)
        .map(|_| limiter.admit_at(now, &limits, "u", "a@x", ONE).unwrap())
        .collect();
    let wait = limiter
        .admit_at(now, &limits, "u", "a@x", ONE)
        .err()
        .unwrap();
    assert_eq!(wait.reason, "waiting: 3 connections for a@x");
    assert_eq!(wait.until, None);
    let notified = limiter.notify().notified();
    tokio::pin!(notified);
    drop(held);
    assert!(
        futures_ready(notified.as_mut()),
        "a waiter is woken when a connection comes back"
    );
    assert!(limiter.admit_at(now, &limits, "u", "a@x", ONE).is_ok());
}

#[test]
fn the_upstream_as_a_whole_has_its_own_limit() {
    let limiter = Limiter::new(Duration::from_secs(60));
    let limits = UpstreamLimits {
        per_account: SendLimits::default(),
        per_upstream: SendLimits {
            recipients_per_day: Some(10),
            ..SendLimits::default()
        },
    };
    let now = Instant::now();
    let six = Ask {
        connection: true,
        messages: 1,
        rcpts: 6,
    };
    drop(limiter.admit_at(now, &limits, "u", "a@x", six).unwrap());
    let wait = limiter
        .admit_at(now, &limits, "u", "b@x", six)
        .err()
        .unwrap();
    assert_eq!(wait.reason, "waiting: 10 recipients/day for upstream u");
    assert_eq!(wait.until, Some(now + Duration::from_secs(24 * 3600 + 1)));
}

#[test]
fn a_throttling_reply_pauses_the_account_even_without_limits() {
    let limiter = Limiter::new(Duration::from_secs(60));
    let none = UpstreamLimits::default();
    let now = Instant::now();
    let reply = "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded";
    assert_eq!(
        limiter.pause_at(now, "u", "a@x", None, reply),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        limiter.pause_at(now, "u", "a@x", None, reply),
        None,
        "logged once"
    );
    let wait = limiter.admit_at(now, &none, "u", "a@x", ONE).err().unwrap();
    assert_eq!(wait.kind, Kind::Throttled);
    assert!(wait
        .reason
        .starts_with("waiting: throttled by the provider for a@x (432 4.3.2"));
    assert_eq!(wait.until, Some(now + Duration::from_secs(60)));
    assert!(limiter.admit_at(now, &none, "u", "b@x", ONE).is_ok());
    let later = now + Duration::from_secs(60);
    assert!(limiter.admit_at(later, &none, "u", "a@x", ONE).is_ok());
    // again: twice as long, until mail gets through
    assert_eq!(
        limiter.pause_at(later, "u", "a@x", None, reply),
        Some(Duration::from_secs(120))
    );
    limiter.succeeded("u", "a@x");
    assert_eq!(limiter.shared.stepped.load(Ordering::Acquire), 0);
    let much_later = later + Duration::from_secs(600);
    assert_eq!(
        limiter.pause_at(much_later, "u", "a@x", Some(Duration::from_secs(5)), "429"),
        Some(Duration::from_secs(5))
    );
}

/// Polls a future once.
fn futures_ready<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> bool {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    future.poll(&mut cx).is_ready()
}
