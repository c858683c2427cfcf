//! The store's ids (users, accounts, tickets and their articles, webhooks and deliveries,
//! backups, audit entries, archive batches): one increasing sequence, never reused, by
//! any node, whatever crashes when. Blocks of ids are reserved from the backend
//! (`Backend::reserve_ids`: a durable limit under sled, a sequence in PostgreSQL) and
//! handed out from memory; a crash skips at most the rest of one block. With several
//! nodes ids are unique but not in order across nodes.

use super::kv::Kv;
use super::StoreError;
use std::sync::{Arc, Mutex};

/// Ids reserved at once: one backend round trip (and, under sled, one sync) per block.
const BLOCK: u64 = 256;

/// The store's id sequence. Cheap to clone: clones share one block.
#[derive(Clone)]
pub(crate) struct Ids {
    /// The next id and the end of its block.
    block: Arc<Mutex<(u64, u64)>>,
    kv: Kv,
}

impl Ids {
    pub(crate) fn new(kv: Kv) -> Ids {
        Ids {
            block: Arc::default(),
            kv,
        }
    }

    /// A fresh id, never handed out before. May reserve a block (one call in `BLOCK`).
    pub(crate) fn next(&self) -> Result<u64, StoreError> {
        // Two integers, consistent after any panic.
        let mut block = self.block.lock().unwrap_or_else(|p| p.into_inner());
        if block.0 >= block.1 {
            let first = self.kv.reserve_ids(BLOCK)?;
            *block = (first, first + BLOCK);
        }
        block.0 += 1;
        Ok(block.0 - 1)
    }
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
