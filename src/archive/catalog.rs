//! The catalog task: every kept message leaving the queue is recorded in the store's
//! archive catalog — metadata read from its header block, its retention — pointing at the
//! journal record the spool already wrote (no copy of the bytes). The tickets it is linked
//! to are resolved when a backup selects it (`links`). Messages are taken in batches, one store sync per batch; only then is the
//! journal told, so a segment is never retired before the catalog that points into it is
//! durable. Kept messages found at start (catalogued or not) come through the same way.

use super::ArchiveError;
use crate::config::ArchiveConfig;
use crate::inbound::parse::{clean, ids};
use crate::policy::{Policy, Snapshot};
use crate::spool::{Kept, Spool};
use crate::store::{AccountType, ArchivedMessage, Direction, Extent, Store};
use mail_parser::MessageParser;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long the first kept message of a batch waits for others (one store sync each).
const BATCH_WINDOW: Duration = Duration::from_millis(500);
/// How much of a message is read for its header fields.
const HEADER_READ: u64 = 64 * 1024;
/// Wait before a batch whose catalogue write failed is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// The most messages catalogued in one batch.
const BATCH_MAX: usize = 4096;
const DAY_MS: u64 = 86_400_000;

/// What the catalog task (and the purge and backup jobs) work with.
#[derive(Clone)]
pub struct Catalog {
    pub store: Store,
    pub spool: Arc<Spool>,
    pub policy: Arc<Policy>,
    pub config: ArchiveConfig,
    /// Held by a backup job while it reads kept messages, and by the purge.
    pub readers: Arc<Mutex<()>>,
}

impl Catalog {
    /// Keeps the purge away while held (backup jobs), or waits for readers (the purge).
    pub fn reading(&self) -> MutexGuard<'_, ()> {
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Catalogues kept messages until `stop`. What is left in the channel then is found
    /// again at the next start (the journal keeps it).
    pub async fn run(
        self,
        mut kept: mpsc::UnboundedReceiver<Kept>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let first = tokio::select! {
                next = kept.recv() => match next {
                    Some(first) => first,
                    None => return,
                },
                _ = stop.changed() => return,
            };
            tokio::select! {
                _ = tokio::time::sleep(BATCH_WINDOW) => {}
                _ = stop.changed() => return,
            }
            let mut batch = vec![first];
            while batch.len() < BATCH_MAX {
                match kept.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            // A batch is never dropped: its segments stay in the journal until it is
            // written.
            loop {
                let (work, again) = (self.clone(), batch.clone());
                match tokio::task::spawn_blocking(move || work.record(again)).await {
                    Ok(Ok(())) => break,
                    Ok(Err(error)) => {
                        tracing::error!(%error, "archive catalog not written; trying again")
                    }
                    Err(error) => {
                        tracing::error!(%error, "archive catalog task failed; trying again")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// Catalogues one batch durably, then lets the journal retire what it may. Blocking.
    pub fn record(&self, batch: Vec<Kept>) -> Result<(), ArchiveError> {
        let snapshot = self.policy.snapshot();
        let catalog = self.store.archive();
        let mut out = Vec::with_capacity(batch.len());
        let mut segs = Vec::with_capacity(batch.len());
        for kept in &batch {
            // A message found again at a restart may be catalogued twice; readers take
            // the last record of each message (its bytes may have moved in between).
            segs.push(kept.body.seg);
            let (seg, offset) = (kept.body.seg, kept.body.offset);
            match self
                .spool
                .read_kept(seg, offset, kept.body.len.min(HEADER_READ))
            {
                Ok(bytes) => out.push(self.describe(&snapshot, kept, &bytes)?),
                Err(error) => {
                    tracing::error!(queue_id = %crate::spool::show_id(kept.meta.id), %error, "kept message unreadable; not archived")
                }
            }
        }
        catalog.put(&out)?;
        catalog.flush()?;
        self.spool.catalogued(&segs)?;
        tracing::debug!(messages = out.len(), "archived");
        Ok(())
    }

    fn describe(
        &self,
        snapshot: &Snapshot,
        kept: &Kept,
        bytes: &[u8],
    ) -> Result<ArchivedMessage, ArchiveError> {
        let meta = &kept.meta;
        let keep = meta.keep.clone().unwrap_or_else(|| crate::spool::Keep {
            owners: Vec::new(),
            account: None,
        });
        let headers = MessageParser::default().parse_headers(bytes);
        let message_id = headers
            .as_ref()
            .and_then(|m| m.message_id())
            .map(clean)
            .filter(|id| !id.is_empty());
        let refs: Vec<String> = headers
            .as_ref()
            .map(|m| [ids(m.in_reply_to()), ids(m.references())].concat())
            .unwrap_or_default();
        Ok(ArchivedMessage {
            id: meta.id,
            node: self.store.node().to_string(),
            direction: match meta.upstream == crate::inbound::UPSTREAM {
                true => Direction::Inbound,
                false => Direction::Outbound,
            },
            expires_at: expiry(&self.config, snapshot, &keep.owners, meta.received_at),
            owners: keep.owners,
            account: keep.account,
            mail_from: meta.mail_from.clone(),
            rcpts: meta.rcpts.iter().map(|r| r.address.clone()).collect(),
            from: headers
                .as_ref()
                .and_then(|m| m.from())
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(clean)
                .unwrap_or_default(),
            subject: headers
                .as_ref()
                .and_then(|m| m.subject())
                .map(clean)
                .unwrap_or_default(),
            date: headers
                .as_ref()
                .and_then(|m| m.date())
                .map(|d| d.to_rfc3339()),
            message_id,
            refs,
            // Resolved when a backup selects: a ticket may be made or deleted later.
            tickets: Vec::new(),
            received_at: meta.received_at,
            size: meta.size,
            extent: Extent {
                seg: kept.body.seg,
                offset: kept.body.offset,
                len: kept.body.len,
                record_start: kept.record_start,
            },
        })
    }
}

/// When retention ends for a message of `owners` accepted at `received_at`: the longest
/// retention among their account types (`None`: kept for ever).
fn expiry(
    config: &ArchiveConfig,
    snapshot: &Snapshot,
    owners: &[u64],
    received_at: u64,
) -> Option<u64> {
    let mut longest = Some(0u64);
    for owner in owners {
        let days = match snapshot.archived(*owner).unwrap_or(AccountType::Complete) {
            AccountType::RecordLevel => config.record_level_days,
            _ => config.complete_days,
        };
        longest = match (longest, days) {
            (_, 0) | (None, _) => None,
            (Some(l), d) => Some(l.max(d)),
        };
    }
    longest.map(|days| received_at + days * DAY_MS)
}
