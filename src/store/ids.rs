//! The store's ids (users, accounts, tickets and their articles, webhooks and deliveries,
//! backups, audit entries, archive batches): one increasing sequence, never reused,
//! whatever crashes when.
//!
//! sled's `generate_id` does not hold that: it persists its counter lazily and, after a
//! crash, restarts from the last persisted value plus a margin; the margin itself is not
//! made durable before ids from it are handed out, so a second crash soon after the first
//! hands out the same ids again (two users, one id).
//!
//! Here ids come from blocks (hi/lo): a block `[next, limit)` is used only after `limit`
//! is durable in the settings tree (written, then the store's full sync). So at any moment
//! every id ever handed out is below the durable limit, and a start takes its first id at
//! that limit: no sequence of crashes can hand out an id twice. A crash skips at most the
//! rest of one block. A store written by earlier versions has no limit yet: its first
//! limit starts above sled's recovered counter, which is above every id sled handed out
//! before the last clean run.

use super::{StoreError, Syncer};
use std::sync::{Arc, Mutex};

/// The settings key that holds the durable limit (u64, big-endian).
const LIMIT_KEY: &str = "id_limit";
/// Ids reserved at once: one store sync per this many ids.
const BLOCK: u64 = 256;

struct Range {
    next: u64,
    limit: u64,
}

/// The store's id sequence. Cheap to clone: clones share one sequence.
#[derive(Clone)]
pub(crate) struct Ids {
    range: Arc<Mutex<Range>>,
    settings: sled::Tree,
    sync: Syncer,
}

impl Ids {
    /// Opens the sequence; the first id handed out is the durable limit (or, for a store
    /// of earlier versions, one above sled's counter).
    pub(crate) fn open(
        db: &sled::Db,
        settings: &sled::Tree,
        sync: Syncer,
    ) -> Result<Ids, StoreError> {
        let start = match settings.get(LIMIT_KEY)? {
            Some(raw) => decode(&raw)?,
            None => db.generate_id()? + 1,
        };
        Ok(Ids {
            range: Arc::new(Mutex::new(Range {
                next: start,
                limit: start,
            })),
            settings: settings.clone(),
            sync,
        })
    }

    /// A fresh id, never handed out before. May sync the store (one call in `BLOCK`).
    pub(crate) fn next(&self) -> Result<u64, StoreError> {
        // The range is two integers, consistent after any panic.
        let mut range = self.range.lock().unwrap_or_else(|p| p.into_inner());
        if range.next >= range.limit {
            let limit = range.next + BLOCK;
            self.settings.insert(LIMIT_KEY, &limit.to_be_bytes())?;
            self.sync.flush()?;
            range.limit = limit;
        }
        range.next += 1;
        Ok(range.next - 1)
    }
}

fn decode(raw: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = raw
        .try_into()
        .map_err(|_| StoreError::Corrupt(LIMIT_KEY.into()))?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn ids_increase_and_a_reopen_never_repeats_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let store = Store::open(dir.path()).unwrap();
            for _ in 0..300 {
                seen.push(store.next_id().unwrap());
            }
            drop(store);
        }
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "an id was handed out twice");
        assert_eq!(sorted, seen, "ids go up");
    }
}
