//! Which queued messages wait for a sending limit, and why: what `GET /api/v1/queue`
//! shows as `waiting`, and the `postern_queue_waiting{reason_kind}` gauge.

use super::super::meta::QueueId;
use super::bucket::Kind;
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::Mutex;

/// The messages waiting for a limit on this node.
#[derive(Debug, Default)]
pub struct Board {
    waiting: Mutex<HashMap<QueueId, (Kind, String)>>,
}

impl Board {
    /// `id` waits for a limit of `kind`, as `reason` says.
    pub fn set(&self, metrics: &Metrics, id: QueueId, kind: Kind, reason: String) {
        let Ok(mut waiting) = self.waiting.lock() else {
            return;
        };
        let before = waiting.insert(id, (kind, reason)).map(|(k, _)| k);
        if before != Some(kind) {
            if let Some(before) = before {
                metrics.queue_waiting(before.as_str(), -1.0);
            }
            metrics.queue_waiting(kind.as_str(), 1.0);
        }
    }

    /// `id` waits no more.
    pub fn clear(&self, metrics: &Metrics, id: QueueId) {
        let Ok(mut waiting) = self.waiting.lock() else {
            return;
        };
        if let Some((kind, _)) = waiting.remove(&id) {
            metrics.queue_waiting(kind.as_str(), -1.0);
        }
    }

    /// Why `id` waits, if it does.
    pub fn reason(&self, id: QueueId) -> Option<String> {
        let waiting = self.waiting.lock().ok()?;
        waiting.get(&id).map(|(_, reason)| reason.clone())
    }
}
