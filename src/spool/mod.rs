//! The spool: every accepted message, durable before its `250`.
//!
//! Messages live in the `journal` (an append-only log in `data_dir/spool` with group commit
//! and an in-memory index); `meta` is their metadata, rewritten after each attempt. A failed
//! write is undone, so nothing is ever half-written. The `worker` delivers what is due,
//! paced to the upstreams' sending limits (`limits`, `pacing`).
//!
//! The spool never speaks SMTP and never decides policy.

mod attempt;
mod control;
pub mod dsn;
mod fresh;
mod handoff;
mod ids;
mod journal;
mod limits;
mod meta;
mod migrate;
mod pacing;
mod room;
pub mod schedule;
mod worker;

pub use control::{QueueControl, QueueFilter};
pub use fresh::Fresh;
pub use journal::{Kept, Loc, ARCHIVE_DIR};
pub use meta::{show_id, Envelope, Keep, Meta, QueueId, Rcpt, RcptStatus};
pub use room::NoRoom;
pub use worker::Worker;

use crate::config::QueueConfig;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use bytes::Bytes;
use fresh::Held;
use ids::QueueIds;
use journal::Journal;
use room::Room;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Why the spool could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool store: {0}")]
    Store(#[from] StoreError),
    #[error("spool journal: {0}")]
    Journal(#[from] std::io::Error),
    #[error("spool write failed: {0}")]
    Flush(String),
    #[error("spool record {0} is corrupt: {1}")]
    Corrupt(String, String),
    #[error("not enough free disk space: {} octets free, {} needed", .0.free, .0.needed)]
    NoRoom(NoRoom),
}

/// The durable queue.
pub struct Spool {
    journal: Journal,
    /// Queue ids: the spool's own, never reused (`ids`).
    ids: QueueIds,
    /// The free space new mail must leave (`room`).
    room: Room,
    store: Store,
    notify: mpsc::UnboundedSender<Fresh>,
    /// Bytes of fresh messages held in memory for their first attempt (`fresh`).
    held: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    queue: QueueConfig,
    /// Finished messages the archive keeps, for the archive to catalogue.
    kept: mpsc::UnboundedSender<Kept>,
    kept_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Kept>>>,
    /// How many kept messages the archive has catalogued.
    kept_done: AtomicU64,
    /// Held (shared) by every delivery attempt, (exclusively) by a hand-off (`handoff`).
    gate: tokio::sync::RwLock<()>,
    /// No new attempts start (the node drains).
    paused: std::sync::atomic::AtomicBool,
    /// Messages waiting for a sending limit, and why (`limits`).
    waiting: limits::Board,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Spool {
    /// Opens the spool's journal in `dir` (with its own queue ids, `ids`); the receiver yields ids
    /// of newly queued messages for the worker. Messages left in the spool format of
    /// earlier versions are moved into the journal first.
    pub async fn open(
        store: Store,
        dir: &Path,
        metrics: Arc<Metrics>,
        queue: QueueConfig,
    ) -> Result<(Arc<Spool>, mpsc::UnboundedReceiver<Fresh>), SpoolError> {
        Spool::open_with(store, dir, metrics, queue, journal::SEGMENT_BYTES).await
    }

    /// `open`, with journal segments of `segment_bytes` (small ones in tests).
    pub(crate) async fn open_with(
        store: Store,
        dir: &Path,
        metrics: Arc<Metrics>,
        queue: QueueConfig,
        segment_bytes: u64,
    ) -> Result<(Arc<Spool>, mpsc::UnboundedReceiver<Fresh>), SpoolError> {
        let reserve = queue.min_free_mb.saturating_mul(1 << 20);
        let (journal, ids, room) = {
            let (dir, store) = (dir.to_path_buf(), store.clone());
            tokio::task::spawn_blocking(move || {
                let journal = Journal::open_with(&dir, segment_bytes, reserve)?;
                let legacy = || store.legacy_id_floor().map_err(std::io::Error::other);
                let ids = QueueIds::open(&dir, journal.max_id(), legacy)?;
                let store_dir = store.dir_handle().map_err(std::io::Error::other)?;
                let room = Room::new(vec![File::open(&dir)?, store_dir], reserve)?;
                Ok::<_, std::io::Error>((journal, ids, room))
            })
            .await
            .map_err(|e| SpoolError::Flush(e.to_string()))??
        };
        let (notify, rx) = mpsc::unbounded_channel();
        let (kept, kept_rx) = mpsc::unbounded_channel();
        for found in journal.take_recovered() {
            let _ = kept.send(found);
        }
        let spool = Spool {
            journal,
            ids,
            room,
            store,
            notify,
            held: Arc::new(AtomicUsize::new(0)),
            metrics,
            queue,
            kept,
            kept_rx: std::sync::Mutex::new(Some(kept_rx)),
            kept_done: AtomicU64::new(0),
            gate: tokio::sync::RwLock::new(()),
            paused: Default::default(),
            waiting: limits::Board::default(),
        };
        migrate::from_sled(&spool).await?;
        spool.metrics.spool_depth.set(spool.journal.len() as f64);
        Ok((Arc::new(spool), rx))
    }

    /// A fresh queue id (known before the data arrives, for the `Received` field).
    pub fn new_id(&self) -> Result<QueueId, SpoolError> {
        Ok(self.ids.next()?)
    }

    /// Whether a message of `size` octets fits above the free-space reserve now.
    pub fn has_room(&self, size: u64) -> Result<(), NoRoom> {
        self.room.check(size)
    }

    /// Stores `data` under `id` with its envelope and returns once it is on disk; the
    /// worker gets the bytes in hand for the first attempt (within the `fresh` budget).
    pub async fn enqueue(
        &self,
        id: QueueId,
        envelope: Envelope,
        data: Bytes,
    ) -> Result<(), SpoolError> {
        // The reserve is checked before anything is written: with the bytes in hand.
        self.room
            .check(data.len() as u64)
            .map_err(SpoolError::NoRoom)?;
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
            verdicts: envelope.verdicts,
            keep: envelope.keep,
            size: data.len() as u64,
            received_at: now,
            attempts: 0,
            due_at: now,
            expires_at: now + self.queue.expire_after_secs * 1000,
        };
        self.put(&meta, &data).await?;
        let body = Held::try_new(data, &self.held);
        let _ = self.notify.send(Fresh { id, body });
        Ok(())
    }

    /// Writes a whole message durably and makes it due; undone if the write fails.
    async fn put(&self, meta: &Meta, data: &[u8]) -> Result<(), SpoolError> {
        let json = encode(meta)?;
        if let Err(error) = self.journal.enqueue(meta, &json, data).await {
            self.journal.remove(meta.id);
            return Err(SpoolError::Flush(error));
        }
        self.journal.schedule(meta.id);
        self.metrics.spool_depth.increment(1.0);
        Ok(())
    }

    /// Loads a message's metadata and bytes.
    pub fn load(&self, id: QueueId) -> Result<Option<(Meta, Vec<u8>)>, SpoolError> {
        Ok(self.journal.load(id)?)
    }

    /// A message's metadata, without its bytes.
    pub fn meta(&self, id: QueueId) -> Option<Meta> {
        self.journal.meta(id)
    }

    /// `f` of a message's metadata, without a copy of it.
    pub(crate) fn peek<R>(&self, id: QueueId, f: impl FnOnce(&Meta) -> R) -> Option<R> {
        self.journal.peek(id, f)
    }

    /// The messages waiting for a sending limit.
    pub(crate) fn waiting(&self) -> &limits::Board {
        &self.waiting
    }

    /// Records the result of an attempt durably before returning; or, when nothing is
    /// pending any more, removes the message and lets the removal reach the disk with the
    /// next commit: losing it in a crash only means one more delivery (at-least-once).
    pub async fn save(&self, meta: &Meta) -> Result<(), SpoolError> {
        if meta.pending().next().is_none() {
            self.finish(meta.id, meta.keep.is_some());
            return Ok(());
        }
        let json = encode(meta)?;
        self.journal
            .update(meta, &json)
            .await
            .map_err(SpoolError::Flush)
    }

    /// Takes a finished message out of the queue; one the archive keeps goes to the
    /// archive (`kept_messages`). False if it was not queued.
    pub fn finish(&self, id: QueueId, keep: bool) -> bool {
        let gone = match keep {
            true => self.journal.remove_kept(id).map(|kept| {
                let _ = self.kept.send(kept);
            }),
            false => self.journal.remove(id).then_some(()),
        };
        if gone.is_some() {
            self.metrics.spool_depth.decrement(1.0);
        }
        gone.is_some()
    }

    /// The finished messages the archive keeps, as they leave the queue (and those found
    /// at start that it may not have catalogued yet). Only the first caller gets them.
    pub fn kept_messages(&self) -> Option<mpsc::UnboundedReceiver<Kept>> {
        self.kept_rx.lock().ok()?.take()
    }

    /// The archive has durably catalogued these kept messages (their segments, one entry
    /// each); segments nothing else holds are retired. Blocking.
    pub fn catalogued(&self, segs: &[u32]) -> Result<(), SpoolError> {
        self.kept_done
            .fetch_add(segs.len() as u64, Ordering::AcqRel);
        Ok(self.journal.catalogued(segs)?)
    }

    /// How many kept messages were handed to the archive so far: once `archived_up_to`
    /// reaches it, all of them are catalogued.
    pub fn kept_mark(&self) -> u64 {
        self.journal.kept_handed()
    }

    /// Whether every kept message handed over before `mark` was taken is catalogued.
    pub fn archived_up_to(&self, mark: u64) -> bool {
        self.kept_done.load(Ordering::Acquire) >= mark
    }

    /// Live messages whose metadata `keep` admits (at most `limit`).
    pub fn queued(&self, limit: usize, keep: impl Fn(&Meta) -> bool) -> Vec<Meta> {
        self.journal.list(0, limit, keep)
    }

    /// `len` bytes at `offset` of journal segment `seg`, live or retired. Blocking.
    pub fn read_kept(&self, seg: u32, offset: u64, len: u64) -> Result<Vec<u8>, SpoolError> {
        Ok(self.journal.read_at(seg, offset, len)?)
    }

    /// Whether journal segment `seg` was retired into the archive directory.
    pub fn is_retired(&self, seg: u32) -> bool {
        self.journal.is_retired(seg)
    }

    /// Frees `start..end` of retired segment `seg` (retention ended), or deletes the
    /// segment when `last`. Blocking.
    pub fn forget_kept(
        &self,
        seg: u32,
        start: u64,
        end: u64,
        last: bool,
    ) -> Result<(), SpoolError> {
        Ok(self.journal.forget_retired(seg, start, end, last)?)
    }

    /// Makes everything written so far durable (at shutdown).
    pub async fn sync(&self) -> Result<(), SpoolError> {
        self.journal.sync().await.map_err(SpoolError::Flush)
    }

    /// Moves long-waiting messages out of an old journal segment so it can be deleted.
    pub fn compact(&self) -> Result<usize, SpoolError> {
        Ok(self.journal.compact()?)
    }

    /// Messages due at or before `now`, oldest first, at most `limit`.
    pub fn due(&self, now: u64, limit: usize) -> Vec<QueueId> {
        self.journal.due(now, limit)
    }

    /// When the earliest waiting message is due, if any.
    pub fn next_due_at(&self) -> Option<u64> {
        self.journal.next_due_at()
    }

    /// Number of messages in the spool.
    pub fn len(&self) -> usize {
        self.journal.len()
    }

    /// Whether the spool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of journal segment files on disk.
    pub fn segments(&self) -> usize {
        self.journal.segments()
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

/// Number of journal segment files in `dir` (tests).
#[cfg(test)]
pub(crate) fn journal_segments(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.filter(|e| e.is_ok()).count())
}

fn encode(meta: &Meta) -> Result<Vec<u8>, SpoolError> {
    serde_json::to_vec(meta).map_err(|e| SpoolError::Corrupt(show_id(meta.id), e.to_string()))
}
