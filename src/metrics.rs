//! Metrics: every metric Postern exports, registered once on a Prometheus recorder that the
//! app owns (no process-wide recorder), and handed down as cheap handles.
//!
//! Recording is an atomic add on a pre-registered handle: no name lookup on the hot path.

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::sync::Arc;

/// Why an SMTP command or message was refused; one labelled counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    BareNewline,
    LineTooLong,
    Syntax,
    BadSequence,
    AuthRequired,
    AuthFailed,
    TlsRequired,
    InvalidParameter,
    TooManyRecipients,
    MessageTooBig,
    HeaderTooLarge,
    TooManyHops,
    StoreFailed,
    TooManyErrors,
    ConnectionLimit,
    IdleTimeout,
    DataRate,
    SessionTimeout,
    HandshakeTimeout,
    BadHeader,
    PolicyRefused,
    Blocked,
    RelayDenied,
    AuthVerdict,
    DiskFull,
    Draining,
}

impl Reject {
    const ALL: [Reject; 26] = [
        Reject::BareNewline,
        Reject::LineTooLong,
        Reject::Syntax,
        Reject::BadSequence,
        Reject::AuthRequired,
        Reject::AuthFailed,
        Reject::TlsRequired,
        Reject::InvalidParameter,
        Reject::TooManyRecipients,
        Reject::MessageTooBig,
        Reject::HeaderTooLarge,
        Reject::TooManyHops,
        Reject::StoreFailed,
        Reject::TooManyErrors,
        Reject::ConnectionLimit,
        Reject::IdleTimeout,
        Reject::DataRate,
        Reject::SessionTimeout,
        Reject::HandshakeTimeout,
        Reject::BadHeader,
        Reject::PolicyRefused,
        Reject::Blocked,
        Reject::RelayDenied,
        Reject::AuthVerdict,
        Reject::DiskFull,
        Reject::Draining,
    ];

    /// The label value used in `/metrics` and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::BareNewline => "bare_newline",
            Reject::LineTooLong => "line_too_long",
            Reject::Syntax => "syntax",
            Reject::BadSequence => "bad_sequence",
            Reject::AuthRequired => "auth_required",
            Reject::AuthFailed => "auth_failed",
            Reject::TlsRequired => "tls_required",
            Reject::InvalidParameter => "invalid_parameter",
            Reject::TooManyRecipients => "too_many_recipients",
            Reject::MessageTooBig => "message_too_big",
            Reject::HeaderTooLarge => "header_too_large",
            Reject::TooManyHops => "too_many_hops",
            Reject::StoreFailed => "store_failed",
            Reject::TooManyErrors => "too_many_errors",
            Reject::ConnectionLimit => "connection_limit",
            Reject::IdleTimeout => "idle_timeout",
            Reject::DataRate => "data_rate",
            Reject::SessionTimeout => "session_timeout",
            Reject::HandshakeTimeout => "tls_handshake_timeout",
            Reject::BadHeader => "bad_header",
            Reject::PolicyRefused => "policy",
            Reject::Blocked => "blocked",
            Reject::RelayDenied => "relay_denied",
            Reject::AuthVerdict => "auth_verdict",
            Reject::DiskFull => "disk_full",
            Reject::Draining => "draining",
        }
    }
}

/// The outcome of one recipient's delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Deferred,
    Bounced,
}

/// Handles to every metric. Clone the `Arc`, not the struct.
pub struct Metrics {
    handle: PrometheusHandle,
    /// Kept for the metrics whose labels are known only later (accounts).
    recorder: PrometheusRecorder,
    pub sessions: Counter,
    pub sessions_active: Gauge,
    rejections: Vec<Counter>,
    pub messages_accepted: Counter,
    pub message_bytes: Counter,
    pub spool_depth: Gauge,
    /// Seconds since this node's policy snapshot was last known to match the store.
    pub snapshot_age: Gauge,
    delivered: Counter,
    deferred: Counter,
    bounced: Counter,
    pub dsn_sent: Counter,
    pub accept_latency: Histogram,
    pub delivery_latency: Histogram,
    /// Per-minute counts of the last day, for the console's dashboard.
    pub recent: Recent,
}

const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0,
];

impl Metrics {
    /// Builds the recorder and registers every metric on it.
    pub fn new() -> Arc<Metrics> {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let rejections = Reject::ALL
            .iter()
            .map(|r| {
                let labels = vec![Label::new("reason", r.as_str())];
                counter(&recorder, "postern_smtp_rejections_total", labels)
            })
            .collect();
        let outcome = |o: &'static str| {
            let labels = vec![Label::new("outcome", o)];
            counter(&recorder, "postern_deliveries_total", labels)
        };
        describe(&recorder);
        Arc::new(Metrics {
            sessions: counter(&recorder, "postern_smtp_sessions_total", vec![]),
            sessions_active: recorder
                .register_gauge(&key("postern_smtp_sessions_active", vec![]), &META),
            rejections,
            messages_accepted: counter(&recorder, "postern_messages_accepted_total", vec![]),
            message_bytes: counter(&recorder, "postern_message_bytes_total", vec![]),
            spool_depth: recorder.register_gauge(&key("postern_spool_depth", vec![]), &META),
            snapshot_age: recorder
                .register_gauge(&key("postern_policy_snapshot_age_seconds", vec![]), &META),
            delivered: outcome("delivered"),
            deferred: outcome("deferred"),
            bounced: outcome("bounced"),
            dsn_sent: counter(&recorder, "postern_dsn_sent_total", vec![]),
            accept_latency: recorder
                .register_histogram(&key("postern_accept_latency_seconds", vec![]), &META),
            delivery_latency: recorder
                .register_histogram(&key("postern_delivery_latency_seconds", vec![]), &META),
            recent: Recent::default(),
            handle,
            recorder,
        })
    }

    /// Sets an account's health: 0 healthy, 1 degraded, 2 failing.
    pub fn account_health(&self, account: &str, value: f64) {
        let labels = vec![Label::new("account", account.to_string())];
        self.recorder
            .register_gauge(&key("postern_account_health", labels), &META)
            .set(value);
    }

    /// Sets whether warning `kind` about `subject` (`upstream:NAME`, `account:ID`) is raised.
    pub fn account_warning(&self, subject: &str, kind: &str, value: f64) {
        let labels = vec![
            Label::new("subject", subject.to_string()),
            Label::new("kind", kind.to_string()),
        ];
        self.recorder
            .register_gauge(&key("postern_account_warning", labels), &META)
            .set(value);
    }

    /// Counts one refusal.
    pub fn reject(&self, reason: Reject) {
        let index = Reject::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.rejections[index].increment(1);
    }

    /// Counts one recipient's delivery outcome.
    pub fn delivery(&self, outcome: Outcome) {
        match outcome {
            Outcome::Delivered => self.delivered.increment(1),
            Outcome::Deferred => self.deferred.increment(1),
            Outcome::Bounced => self.bounced.increment(1),
        }
        self.recent.count(Event::from(outcome));
    }

    /// Counts one message fetched from helpdesk mailbox `mailbox` by what became of it
    /// (`postern_fetch_messages_total{mailbox,outcome}`: `recorded`, `already_recorded`,
    /// `dropped`, `blocked`, `set_aside`).
    pub fn fetched(&self, mailbox: &str, outcome: &str) {
        let labels = vec![
            Label::new("mailbox", mailbox.to_string()),
            Label::new("outcome", outcome.to_string()),
        ];
        counter(&self.recorder, "postern_fetch_messages_total", labels).increment(1);
    }

    /// Sets what helpdesk mailbox `mailbox`'s fetcher is doing (`postern_fetch_state`:
    /// 1 for the current `state`, 0 for the others) and how many of its messages are set
    /// aside (`postern_fetch_set_aside`).
    pub fn fetch_state(&self, mailbox: &str, state: &str, states: &[&str], set_aside: usize) {
        for each in states {
            let labels = vec![
                Label::new("mailbox", mailbox.to_string()),
                Label::new("state", each.to_string()),
            ];
            self.recorder
                .register_gauge(&key("postern_fetch_state", labels), &META)
                .set(f64::from(u8::from(*each == state)));
        }
        let labels = vec![Label::new("mailbox", mailbox.to_string())];
        self.recorder
            .register_gauge(&key("postern_fetch_set_aside", labels), &META)
            .set(set_aside as f64);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// Adds `delta` to the messages waiting for a sending limit of `kind`
    /// (`postern_queue_waiting{reason_kind}`: `connections`, `messages_per_minute`,
    /// `messages_per_day`, `recipients_per_day`, `throttled`).
    pub fn queue_waiting(&self, kind: &str, delta: f64) {
        let labels = vec![Label::new("reason_kind", kind.to_string())];
        self.recorder
            .register_gauge(&key("postern_queue_waiting", labels), &META)
            .increment(delta);
    }
}

const META: Metadata<'static> = Metadata::new("postern", Level::INFO, None);

fn key(name: &'static str, labels: Vec<Label>) -> Key {
    Key::from_parts(name, labels)
}

fn counter(recorder: &PrometheusRecorder, name: &'static str, labels: Vec<Label>) -> Counter {
    recorder.register_counter(&key(name, labels), &META)
}

fn describe(recorder: &PrometheusRecorder) {
    let counters: [(&'static str, &'static str); 6] = [
        ("postern_smtp_sessions_total", "SMTP sessions accepted"),
        (
            "postern_smtp_rejections_total",
            "SMTP commands or messages refused, by reason",
        ),
        (
            "postern_messages_accepted_total",
            "Messages accepted and made durable",
        ),
        ("postern_message_bytes_total", "Bytes of accepted messages"),
        (
            "postern_deliveries_total",
            "Recipient delivery attempts, by outcome",
        ),
        (
            "postern_dsn_sent_total",
            "Delivery status notifications queued",
        ),
    ];
    for (name, text) in counters {
        recorder.describe_counter(name.into(), None, text.into());
    }
    recorder.describe_gauge(
        "postern_smtp_sessions_active".into(),
        None,
        "Open SMTP sessions".into(),
    );
    recorder.describe_gauge(
        "postern_policy_snapshot_age_seconds".into(),
        Some(Unit::Seconds),
        "Time since this node's policy snapshot was last known current (0 on one node)".into(),
    );
    recorder.describe_gauge(
        "postern_spool_depth".into(),
        None,
        "Messages in the spool".into(),
    );
    recorder.describe_histogram(
        "postern_accept_latency_seconds".into(),
        Some(Unit::Seconds),
        "End of data to the 250 reply (includes the group-commit fsync)".into(),
    );
    recorder.describe_histogram(
        "postern_delivery_latency_seconds".into(),
        Some(Unit::Seconds),
        "Acceptance to delivery of the last recipient".into(),
    );
}

/// What the dashboard counts per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Accepted,
    Delivered,
    Deferred,
    Bounced,
}

impl From<Outcome> for Event {
    fn from(outcome: Outcome) -> Event {
        match outcome {
            Outcome::Delivered => Event::Delivered,
            Outcome::Deferred => Event::Deferred,
            Outcome::Bounced => Event::Bounced,
        }
    }
}

/// Minutes kept: one day.
const MINUTES: usize = 24 * 60;

/// Counts of this node's last day, one slot per minute and event, reused as the minutes go
/// round. Slots are reset by the first count of a new minute; a count racing that reset
/// may be lost, which a dashboard can bear (Prometheus has the exact totals).
pub struct Recent {
    /// (minute stamp, count) per event and slot.
    slots: Vec<[(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64); 4]>,
}

impl Default for Recent {
    fn default() -> Recent {
        Recent {
            slots: (0..MINUTES).map(|_| Default::default()).collect(),
        }
    }
}

impl Recent {
    /// Counts one `event` now.
    pub fn count(&self, event: Event) {
        self.count_at(event, crate::spool::now_ms() / 60_000);
    }

    fn count_at(&self, event: Event, minute: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let (stamp, count) = &self.slots[minute as usize % MINUTES][event as usize];
        let seen = stamp.load(Relaxed);
        if seen != minute
            && stamp
                .compare_exchange(seen, minute, Relaxed, Relaxed)
                .is_ok()
        {
            count.store(0, Relaxed);
        }
        count.fetch_add(1, Relaxed);
    }

    /// How many `event`s in the last `minutes` minutes (at most a day).
    pub fn last(&self, event: Event, minutes: u64) -> u64 {
        self.last_at(event, minutes, crate::spool::now_ms() / 60_000)
    }

    fn last_at(&self, event: Event, minutes: u64, now: u64) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let window = minutes.min(MINUTES as u64);
        self.slots
            .iter()
            .map(|slot| &slot[event as usize])
            .filter(|(stamp, _)| {
                let minute = stamp.load(Relaxed);
                minute <= now && now - minute < window
            })
            .map(|(_, count)| count.load(Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod recent_tests {
    use super::*;

    #[test]
    fn counts_fall_out_of_the_window_and_slots_are_reused() {
        let recent = Recent::default();
        let start = 1_000_000;
        recent.count_at(Event::Accepted, start);
        recent.count_at(Event::Accepted, start);
        recent.count_at(Event::Delivered, start + 30);
        recent.count_at(Event::Accepted, start + 59);
        assert_eq!(recent.last_at(Event::Accepted, 60, start + 59), 3);
        assert_eq!(recent.last_at(Event::Accepted, 60, start + 60), 1);
        assert_eq!(recent.last_at(Event::Accepted, 1440, start + 60), 3);
        assert_eq!(recent.last_at(Event::Delivered, 60, start + 60), 1);
        // A day later the first slot is reused: the old count is gone.
        recent.count_at(Event::Accepted, start + MINUTES as u64);
        assert_eq!(
            recent.last_at(Event::Accepted, 1440, start + MINUTES as u64),
            2
        );
    }
}
