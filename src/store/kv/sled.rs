//! The embedded backend: one sled database under `data_dir/store`, opened by one process.
//!
//! sled's own `flush` only pushes its buffers to the kernel with `sync_file_range`, which
//! neither syncs the file size nor flushes the disk cache, and the files sled writes for
//! large values ("blobs") are never synced at all. So `flush` follows it with `syncfs` on
//! the store's file system: one call makes every file of the store durable, which is what
//! a group commit needs.
//!
//! Ids come from blocks (hi/lo): a block `[next, limit)` is used only after `limit` is
//! durable in the settings tree (written, then the full sync). So every id ever handed out
//! is below the durable limit, and a start takes its first id at that limit: no sequence
//! of crashes hands out an id twice. (sled's `generate_id` does not hold that: it persists
//! its counter lazily, and a second crash soon after a first hands out the same ids
//! again.) A store written by earlier versions has no limit yet: its first limit starts
//! above sled's recovered counter, above every id sled handed out before.
//!
//! The change counter lives in memory: one process owns the database.

use super::{Backend, Condition, Pair, TreeBackend, Write};
use crate::store::StoreError;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::collections::HashMap;
use std::fs::File;
use std::ops::Bound;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The settings key that holds the durable id limit (u64, big-endian).
const LIMIT_KEY: &str = "id_limit";

/// How long `open` waits for the lock of a store the same process just closed (sled's
/// I/O threads may still hold it for a moment: a restart in place, a test reopening).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The sled backend.
pub(crate) struct SledKv {
    db: sled::Db,
    dir: File,
    trees: Mutex<HashMap<String, sled::Tree>>,
    changes: Arc<AtomicU64>,
    /// The next id and the durable limit of its block.
    ids: Mutex<(u64, u64)>,
    /// Leases: holder and expiry by name.
    leases: Mutex<HashMap<String, (String, Instant)>>,
}

impl SledKv {
    /// Opens (or creates) the database in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<SledKv, StoreError> {
        let db = open_db(dir)?;
        let settings = db.open_tree("settings")?;
        let start = match settings.get(LIMIT_KEY)? {
            Some(raw) => decode_u64(&raw)?,
            None => db.generate_id()? + 1,
        };
        Ok(SledKv {
            dir: File::open(dir)?,
            db,
            trees: Mutex::default(),
            changes: Arc::default(),
            ids: Mutex::new((start, start)),
            leases: Mutex::default(),
        })
    }

    fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tree) = trees.get(name) {
            return Ok(tree.clone());
        }
        let tree = self.db.open_tree(name)?;
        trees.insert(name.to_string(), tree.clone());
        Ok(tree)
    }

    fn handle(&self, name: &str) -> Result<Arc<dyn TreeBackend>, StoreError> {
        Ok(Arc::new(SledTree {
            tree: self.tree(name)?,
            control: super::is_control(name),
            changes: self.changes.clone(),
        }))
    }

    fn bump(&self, writes: &[Write]) {
        if writes.iter().any(|w| super::is_control(&w.tree)) {
            self.changes.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Backend for SledKv {
    fn open_tree(&self, name: &str) -> Result<Arc<dyn TreeBackend>, StoreError> {
        self.handle(name)
    }

    fn existing_tree(&self, name: &str) -> Result<Option<Arc<dyn TreeBackend>>, StoreError> {
        let exists = self
            .db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == name.as_bytes());
        match exists {
            true => self.handle(name).map(Some),
            false => Ok(None),
        }
    }

    fn tree_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for name in self.db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            // sled's default tree is not one of ours.
            if name != "__sled__default" && !self.tree(&name)?.is_empty() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn ids_above(&self, floor: u64) -> Result<(), StoreError> {
        let next = self.reserve_ids(1)?;
        if next < floor {
            self.reserve_ids(floor - next)?;
        }
        Ok(())
    }

    fn drop_tree(&self, name: &str) -> Result<(), StoreError> {
        self.trees
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.db.drop_tree(name)?;
        self.flush()
    }

    fn commit(&self, writes: &[Write], conditions: &[Condition]) -> Result<bool, StoreError> {
        let mut names: Vec<&str> = writes.iter().map(|w| &*w.tree).collect();
        names.extend(conditions.iter().map(|c| &*c.tree));
        names.sort_unstable();
        names.dedup();
        let trees = names
            .iter()
            .map(|n| self.tree(n))
            .collect::<Result<Vec<_>, _>>()?;
        let index = |name: &str| names.binary_search(&name).unwrap_or_default();
        let done = trees.as_slice().transaction(|view| {
            for c in conditions {
                if view[index(&c.tree)].get(&c.key)?.as_deref() != c.value.as_deref() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
            }
            for w in writes {
                let tree = &view[index(&w.tree)];
                match &w.value {
                    Some(value) => tree.insert(w.key.as_slice(), value.as_slice())?,
                    None => tree.remove(w.key.as_slice())?,
                };
            }
            Ok(())
        });
        match done {
            Ok(()) => {
                self.bump(writes);
                Ok(true)
            }
            Err(TransactionError::Abort(())) => Ok(false),
            Err(TransactionError::Storage(error)) => Err(error.into()),
        }
    }

    fn reserve_ids(&self, count: u64) -> Result<u64, StoreError> {
        // Two integers, consistent after any panic.
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let (next, limit) = *ids;
        if next + count > limit {
            let limit = next + count.max(256);
            self.tree("settings")?
                .insert(LIMIT_KEY, &limit.to_be_bytes())?;
            self.flush()?;
            ids.1 = limit;
        }
        ids.0 = next + count;
        Ok(next)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        // SAFETY: `dir` is an open file descriptor for the whole call; syncfs only reads it.
        let ret = unsafe { libc::syncfs(self.dir.as_raw_fd()) };
        match ret {
            0 => Ok(()),
            _ => Err(StoreError::Sync(std::io::Error::last_os_error())),
        }
    }

    fn changes(&self) -> Result<u64, StoreError> {
        Ok(self.changes.load(Ordering::Acquire))
    }

    fn wait_change(&self, seen: u64, timeout: Duration) -> Result<u64, StoreError> {
        let now = self.changes()?;
        if now == seen {
            std::thread::sleep(timeout);
        }
        self.changes()
    }

    /// One process owns the database: a lease is the holder's unless another holder of
    /// this process has it unexpired.
    fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match leases.get(name) {
            Some((other, until)) if other != holder && *until > now => Ok(false),
            _ => {
                leases.insert(name.to_string(), (holder.to_string(), now + ttl));
                Ok(true)
            }
        }
    }

    fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if leases.get(name).is_some_and(|(h, _)| h == holder) {
            leases.remove(name);
        }
        Ok(())
    }

    fn record_message_ids(&self, _: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        Ok(())
    }

    fn message_id(&self, _: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    fn is_shared(&self) -> bool {
        false
    }

    fn legacy_id_floor(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()? + 1)
    }
}

/// One sled tree.
struct SledTree {
    tree: sled::Tree,
    control: bool,
    changes: Arc<AtomicU64>,
}

impl SledTree {
    fn changed(&self) {
        if self.control {
            self.changes.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl TreeBackend for SledTree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(key, value)?;
        self.changed();
        Ok(())
    }

    fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let old = self.tree.remove(key)?.map(|v| v.to_vec());
        self.changed();
        Ok(old)
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let swapped = self.tree.compare_and_swap(key, old, new)?.is_ok();
        if swapped {
            self.changed();
        }
        Ok(swapped)
    }

    fn scan(
        &self,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError> {
        let range = self.tree.range::<&[u8], _>((from, to));
        let pair = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(StoreError::from)
        };
        match reverse {
            false => range.take(limit).map(pair).collect(),
            true => range.rev().take(limit).map(pair).collect(),
        }
    }

    fn len(&self) -> Result<usize, StoreError> {
        Ok(self.tree.len())
    }
}

/// Opens the sled database, waiting `LOCK_WAIT` at most for its lock.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(256 * 1024 * 1024)
            .flush_every_ms(None)
            .open();
        match opened {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

fn decode_u64(raw: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = raw
        .try_into()
        .map_err(|_| StoreError::Corrupt(LIMIT_KEY.into()))?;
    Ok(u64::from_be_bytes(bytes))
}
