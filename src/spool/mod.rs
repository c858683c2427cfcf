//! The spool: every accepted message, durable before its `250`.
//!
//! One sled tree holds three kinds of record (see `meta`): metadata (rewritten after each
//! attempt), the message bytes (written once), and the due index. A message's three records
//! are written in one atomic batch and made durable by the group committer; a failed write
//! is undone, so nothing is ever half-written. The `worker` delivers what is due.
//!
//! The spool never speaks SMTP and never decides policy.

mod attempt;
mod commit;
pub mod dsn;
mod meta;
pub mod schedule;
mod worker;

pub use commit::Committer;
pub use meta::{show_id, Envelope, Meta, QueueId, Rcpt, RcptStatus};
pub use worker::Worker;

use crate::config::QueueConfig;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Why the spool could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool store: {0}")]
    Store(#[from] StoreError),
    #[error("spool write: {0}")]
    Write(#[from] sled::Error),
    #[error("spool flush failed: {0}")]
    Flush(String),
    #[error("spool record {0} is corrupt: {1}")]
    Corrupt(String, String),
}

/// The durable queue.
pub struct Spool {
    tree: sled::Tree,
    store: Store,
    committer: Committer,
    notify: mpsc::UnboundedSender<QueueId>,
    metrics: Arc<Metrics>,
    queue: QueueConfig,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Spool {
    /// Opens the spool in `store`; the receiver yields ids of newly queued messages for the
    /// worker.
    pub fn open(
        store: Store,
        metrics: Arc<Metrics>,
        queue: QueueConfig,
    ) -> Result<(Arc<Spool>, mpsc::UnboundedReceiver<QueueId>), SpoolError> {
        let tree = store.tree("spool")?;
        let depth = tree.scan_prefix(b"m").count();
        metrics.spool_depth.set(depth as f64);
        let (notify, rx) = mpsc::unbounded_channel();
        let committer = Committer::start(store.clone());
        let spool = Spool {
            tree,
            store,
            committer,
            notify,
            metrics,
            queue,
        };
        Ok((Arc::new(spool), rx))
    }

    /// A fresh queue id (known before the data arrives, for the `Received` field).
    pub fn new_id(&self) -> Result<QueueId, SpoolError> {
        Ok(self.store.generate_id()? + 1)
    }

    /// Stores `data` under `id` with its envelope and returns once it is on disk.
    pub async fn enqueue(
        &self,
        id: QueueId,
        envelope: Envelope,
        data: &[u8],
    ) -> Result<(), SpoolError> {
        let now = now_ms();
        let meta = Meta {
            id,
            rcpts: envelope
                .rcpts
                .into_iter()
                .map(|address| Rcpt {
                    address,
                    status: RcptStatus::Pending,
                    last_reply: None,
                })
                .collect(),
            mail_from: envelope.mail_from,
            upstream: envelope.upstream,
            principal: envelope.principal,
            smtputf8: envelope.smtputf8,
            eight_bit: envelope.eight_bit,
            is_dsn: envelope.is_dsn,
            size: data.len() as u64,
            received_at: now,
            attempts: 0,
            due_at: now,
            expires_at: now + self.queue.expire_after_secs * 1000,
        };
        let mut batch = sled::Batch::default();
        batch.insert(&meta::meta_key(id), encode(&meta)?);
        batch.insert(&meta::data_key(id), data);
        batch.insert(&meta::due_key(now, id), &[]);
        self.tree.apply_batch(batch)?;
        if let Err(error) = self.committer.commit().await {
            self.undo(&meta);
            return Err(SpoolError::Flush(error));
        }
        self.metrics.spool_depth.increment(1.0);
        let _ = self.notify.send(id);
        Ok(())
    }

    fn undo(&self, meta: &Meta) {
        let mut batch = sled::Batch::default();
        batch.remove(&meta::meta_key(meta.id));
        batch.remove(&meta::data_key(meta.id));
        batch.remove(&meta::due_key(meta.due_at, meta.id));
        if let Err(error) = self.tree.apply_batch(batch) {
            tracing::error!(queue_id = %show_id(meta.id), %error, "cannot undo a failed spool write");
        }
    }

    /// Loads a message's metadata and bytes.
    pub fn load(&self, id: QueueId) -> Result<Option<(Meta, sled::IVec)>, SpoolError> {
        let Some(raw) = self.tree.get(meta::meta_key(id))? else {
            return Ok(None);
        };
        let meta: Meta = serde_json::from_slice(&raw)
            .map_err(|e| SpoolError::Corrupt(show_id(id), e.to_string()))?;
        let Some(data) = self.tree.get(meta::data_key(id))? else {
            return Err(SpoolError::Corrupt(
                show_id(id),
                "message bytes missing".into(),
            ));
        };
        Ok(Some((meta, data)))
    }

    /// Records the result of an attempt: moves the due entry from `old_due` to
    /// `meta.due_at`, durably before returning; or, when nothing is pending any more,
    /// removes the message and lets the removal become durable with the next commit.
    pub async fn save(&self, old_due: u64, meta: &Meta) -> Result<(), SpoolError> {
        let mut batch = sled::Batch::default();
        batch.remove(&meta::due_key(old_due, meta.id));
        let finished = meta.pending().next().is_none();
        if finished {
            batch.remove(&meta::meta_key(meta.id));
            batch.remove(&meta::data_key(meta.id));
        } else {
            batch.insert(&meta::meta_key(meta.id), encode(meta)?);
            batch.insert(&meta::due_key(meta.due_at, meta.id), &[]);
        }
        self.tree.apply_batch(batch)?;
        if finished {
            // Every recipient is delivered: losing this removal in a crash only means one
            // more delivery (at-least-once), so it rides along with the next commit.
            self.committer.commit_soon();
            self.metrics.spool_depth.decrement(1.0);
            return Ok(());
        }
        self.committer.commit().await.map_err(SpoolError::Flush)
    }

    /// Messages due at or before `now`, oldest first, at most `limit`.
    pub fn due(&self, now: u64, limit: usize) -> Vec<QueueId> {
        let end = meta::due_key(now, u64::MAX);
        self.tree
            .range(&[b'q'][..]..=&end[..])
            .keys()
            .filter_map(|k| k.ok())
            .filter_map(|k| meta::parse_due_key(&k))
            .map(|(_, id)| id)
            .take(limit)
            .collect()
    }

    /// When the earliest waiting message is due, if any.
    pub fn next_due_at(&self) -> Option<u64> {
        self.tree
            .scan_prefix(b"q")
            .keys()
            .next()
            .and_then(|k| k.ok())
            .and_then(|k| meta::parse_due_key(&k))
            .map(|(due, _)| due)
    }

    /// The retry and expiry settings.
    pub fn queue_config(&self) -> &QueueConfig {
        &self.queue
    }

    /// The metrics this spool reports to.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

fn encode(meta: &Meta) -> Result<Vec<u8>, SpoolError> {
    serde_json::to_vec(meta).map_err(|e| SpoolError::Corrupt(show_id(meta.id), e.to_string()))
}
