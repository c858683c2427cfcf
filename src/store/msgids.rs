//! The Message-ID registry: every message sent through an account records its Message-ID
//! with the account (and later the ticket), so replies can be threaded.

use super::StoreError;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What is known about a Message-ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub account: u64,
    pub queue_id: String,
    /// `outbound` for mail sent through Postern.
    pub direction: String,
    #[serde(default)]
    pub ticket: Option<u64>,
    pub at: u64,
}

/// The registry tree. Writes are not synced one by one (that would cost the hot path a
/// second sync per message): they mark the registry dirty, and the store's periodic sync
/// (`Store::sync_if_dirty`, once a second) makes them durable. A crash loses at most the
/// last second of records, which only means a reply to one of those messages is threaded
/// as new mail.
#[derive(Clone)]
pub struct MessageIds {
    tree: sled::Tree,
    dirty: Arc<AtomicBool>,
}

impl MessageIds {
    pub(super) fn open(db: &sled::Db) -> Result<MessageIds, StoreError> {
        Ok(MessageIds {
            tree: db.open_tree("message_ids")?,
            dirty: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Records `message_id` (angle brackets and case kept as written).
    pub fn record(&self, message_id: &str, record: &MessageRecord) -> Result<(), StoreError> {
        let raw = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tree.insert(message_id.as_bytes(), raw)?;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether records were written since the last call.
    pub(super) fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    pub fn get(&self, message_id: &str) -> Result<Option<MessageRecord>, StoreError> {
        self.tree
            .get(message_id.as_bytes())?
            .map(|raw| serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }
}
