//! What each helpdesk mailbox's fetcher on this node is doing, for the API
//! (`GET /api/v1/accounts/{id}/fetch`) and the metrics (`postern_fetch_state`,
//! `postern_fetch_set_aside`). Kept in memory: a restarted node starts as `connecting`.

use crate::metrics::Metrics;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A fetcher's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Connecting,
    /// Connected, reading new messages.
    Fetching,
    /// Waiting in IMAP IDLE for the server to say something arrived.
    Idle,
    /// Waiting for the next look (no IDLE, POP3, Graph).
    Polling,
    /// The last session failed; waiting to try again.
    Failing,
    /// Another node holds the mailbox's lease and fetches it.
    Standby,
}

impl Phase {
    const ALL: [&'static str; 6] = [
        "connecting",
        "fetching",
        "idle",
        "polling",
        "failing",
        "standby",
    ];

    fn label(self) -> &'static str {
        Phase::ALL[self as usize]
    }
}

/// One fetcher's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Status {
    pub state: Phase,
    /// Unix seconds since the state holds.
    pub since: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Unix seconds of the last message taken, and the last few outcomes' count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<u64>,
    /// Messages taken since this node started.
    pub messages: u64,
    /// Messages set aside now.
    pub set_aside: usize,
}

/// Every fetcher's status on this node.
#[derive(Default)]
pub struct StatusBook {
    entries: Mutex<HashMap<u64, (String, Status)>>,
    metrics: Option<Arc<Metrics>>,
}

impl StatusBook {
    pub fn new(metrics: Option<Arc<Metrics>>) -> Arc<StatusBook> {
        Arc::new(StatusBook {
            entries: Mutex::default(),
            metrics,
        })
    }

    /// The status of account `id`'s fetcher, if it runs here.
    pub fn get(&self, id: u64) -> Option<Status> {
        self.lock().get(&id).map(|(_, status)| status.clone())
    }

    /// Moves account `id`'s (mailbox `name`) fetcher to `phase`; an error with `Failing`.
    pub fn set(&self, id: u64, name: &str, phase: Phase, error: Option<String>) {
        self.change(id, name, |status| {
            if status.state != phase {
                status.state = phase;
                status.since = super::now();
            }
            if phase == Phase::Failing {
                status.last_error = error;
            }
        });
    }

    /// One message taken.
    pub fn message(&self, id: u64, name: &str) {
        self.change(id, name, |status| {
            status.messages += 1;
            status.last_message_at = Some(super::now());
        });
    }

    /// How many messages are set aside.
    pub fn set_aside(&self, id: u64, name: &str, count: usize) {
        self.change(id, name, |status| status.set_aside = count);
    }

    /// The fetcher stopped (its settings are gone).
    pub fn remove(&self, id: u64) {
        if let Some((name, _)) = self.lock().remove(&id) {
            if let Some(metrics) = &self.metrics {
                metrics.fetch_state(&name, "", &Phase::ALL, 0);
            }
        }
    }

    fn change(&self, id: u64, name: &str, change: impl FnOnce(&mut Status)) {
        let mut entries = self.lock();
        let mut fresh = false;
        let (_, status) = entries.entry(id).or_insert_with(|| {
            fresh = true;
            (
                name.to_string(),
                Status {
                    state: Phase::Connecting,
                    since: super::now(),
                    last_error: None,
                    last_message_at: None,
                    messages: 0,
                    set_aside: 0,
                },
            )
        });
        // The gauges change only with the state or the set-aside count (not per message).
        let before = (status.state, status.set_aside);
        change(status);
        let changed = fresh || before != (status.state, status.set_aside);
        if let (Some(metrics), true) = (&self.metrics, changed) {
            metrics.fetch_state(name, status.state.label(), &Phase::ALL, status.set_aside);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (String, Status)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_error_stays_until_the_next_failure() {
        let book = StatusBook::new(None);
        book.set(1, "desk", Phase::Failing, Some("refused".into()));
        book.set(1, "desk", Phase::Idle, None);
        book.message(1, "desk");
        let status = book.get(1).unwrap();
        assert_eq!(status.state, Phase::Idle);
        assert_eq!(status.last_error.as_deref(), Some("refused"));
        assert_eq!(status.messages, 1);
        book.remove(1);
        assert_eq!(book.get(1), None);
    }
}
