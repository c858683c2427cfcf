//! The Message-ID registry: every message sent through an account records its Message-ID
//! with the account (and later the ticket), so replies can be threaded.

use super::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

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

/// The registry tree. Records are not written one by one on the hot path: they wait in
/// memory (where `get` sees them) and the store's periodic sync (`Store::sync_if_dirty`,
/// once a second) writes them in one batch and makes them durable. A crash loses at most
/// the last second of records, which only means a reply to one of those messages is
/// threaded as new mail.
#[derive(Clone)]
pub struct MessageIds {
    tree: sled::Tree,
    pending: Arc<Mutex<HashMap<String, MessageRecord>>>,
}

impl MessageIds {
    pub(super) fn open(db: &sled::Db) -> Result<MessageIds, StoreError> {
        Ok(MessageIds {
            tree: db.open_tree("message_ids")?,
            pending: Arc::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, MessageRecord>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `message_id` (angle brackets and case kept as written).
    pub fn record(&self, message_id: &str, record: &MessageRecord) -> Result<(), StoreError> {
        self.lock().insert(message_id.to_string(), record.clone());
        Ok(())
    }

    /// Writes the waiting records into the tree; true if there were any (the caller then
    /// syncs).
    pub(super) fn write_pending(&self) -> Result<bool, StoreError> {
        let pending = std::mem::take(&mut *self.lock());
        if pending.is_empty() {
            return Ok(false);
        }
        let mut batch = sled::Batch::default();
        for (message_id, record) in &pending {
            let raw = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            batch.insert(message_id.as_bytes(), raw);
        }
        self.tree.apply_batch(batch)?;
        Ok(true)
    }

    pub fn get(&self, message_id: &str) -> Result<Option<MessageRecord>, StoreError> {
        if let Some(record) = self.lock().get(message_id) {
            return Ok(Some(record.clone()));
        }
        self.tree
            .get(message_id.as_bytes())?
            .map(|raw| serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn records_are_seen_at_once_and_kept_after_the_periodic_sync() {
        let dir = tempfile::tempdir().unwrap();
        let record = MessageRecord {
            account: 3,
            queue_id: "00000000000000AB".into(),
            direction: "outbound".into(),
            ticket: None,
            at: 1,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store.message_ids().record("<a@b>", &record).unwrap();
            assert_eq!(
                store.message_ids().get("<a@b>").unwrap(),
                Some(record.clone())
            );
            store.sync_if_dirty().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.message_ids().get("<a@b>").unwrap(), Some(record));
        assert_eq!(store.message_ids().get("<other@b>").unwrap(), None);
    }
}
