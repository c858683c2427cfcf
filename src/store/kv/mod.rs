//! The records under the store, behind one seam: named trees of byte keys and byte
//! values, ordered by key, over a backend (`Backend`) chosen at start — sled embedded
//! under `data_dir` (`sled.rs`), or PostgreSQL shared by several nodes (`postgres/`).
//!
//! Why a key-value seam rather than one trait method per record kind: every kind of
//! record (users, accounts, tickets, …) is written and read the same way (a JSON value
//! under a key laid out so that scans run in id order; `records`), so the typed modules
//! above stay one implementation, and a backend is a handful of operations, each tested
//! by one contract suite against both backends. Stalwart's store makes the same cut
//! (its SQL backends keep key-value "subspaces" as tables).
//!
//! What a backend must give:
//! - single-key reads and writes, compare-and-swap, ordered range scans;
//! - `commit`: writes over several trees, applied atomically and only if every condition
//!   (a key's value as it was read) still holds, so a read-modify-write is safe across
//!   processes (tickets, the idempotence marks of inbound mail);
//! - `reserve_ids`: blocks of ids never handed out twice, by any node, after any crash;
//! - the change counter: every write to a tree of control state (`is_control`) bumps it
//!   in the same transaction, so other nodes can tell their policy snapshot is stale.
//!
//! Writes are durable once `flush` returns (sled: its buffers and a `syncfs`; PostgreSQL:
//! each write is committed before it returns).

mod postgres;
mod sled;

use super::StoreError;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use self::postgres::PgKv;
pub(crate) use self::sled::SledKv;

/// Trees whose records are not control state: a write to one of them does not make
/// other nodes rebuild their policy snapshot.
const NOT_CONTROL: &[&str] = &[
    "tickets",
    "webhooks",
    "archive",
    "backups",
    "sessions",
    "audit",
    "password_links",
    "message_ids",
    "spool",
    "nodes",
    "handoff",
    "oauth_refreshes",
];

/// Whether writes to tree `name` change what the policy snapshot is built from.
pub(crate) fn is_control(name: &str) -> bool {
    !NOT_CONTROL.contains(&name)
}

/// A key and its value, as scans return them.
pub(crate) type Pair = (Vec<u8>, Vec<u8>);

/// One write of a `commit`: `value` `None` removes the key.
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub tree: Arc<str>,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A condition of a `commit`: the key holds `value` (`None`: the key is absent).
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub tree: Arc<str>,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// What a backend does. Every method blocks: call from a blocking thread.
pub(crate) trait Backend: Send + Sync {
    /// Opens (or creates) tree `name`.
    fn open_tree(&self, name: &str) -> Result<Arc<dyn TreeBackend>, StoreError>;
    /// Tree `name` only if it holds records (the spool of earlier versions).
    fn existing_tree(&self, name: &str) -> Result<Option<Arc<dyn TreeBackend>>, StoreError>;
    /// The names of the trees that hold records.
    fn tree_names(&self) -> Result<Vec<String>, StoreError>;
    /// Makes every id reserved from now on at least `floor` (records copied from another
    /// store keep their ids).
    fn ids_above(&self, floor: u64) -> Result<(), StoreError>;
    /// Removes every record of tree `name`.
    fn drop_tree(&self, name: &str) -> Result<(), StoreError>;
    /// Applies `writes` atomically if every condition holds; false (nothing written) if
    /// one does not.
    fn commit(&self, writes: &[Write], conditions: &[Condition]) -> Result<bool, StoreError>;
    /// Reserves `count` ids: the first of `[first, first + count)`, a range no caller of
    /// any node ever gets again.
    fn reserve_ids(&self, count: u64) -> Result<u64, StoreError>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// The change counter: bumped by every write to a control tree.
    fn changes(&self) -> Result<u64, StoreError>;
    /// Waits until the change counter differs from `seen` or `timeout` passes; the
    /// counter then. (PostgreSQL: woken by `NOTIFY`, and polls, since notifications are
    /// lost across reconnects.)
    fn wait_change(&self, seen: u64, timeout: Duration) -> Result<u64, StoreError>;
    /// Takes (or renews) lease `name` for `holder` for `ttl`, if it is free, expired
    /// (on the backend's clock) or already `holder`'s; whether `holder` has it now.
    fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Gives lease `name` back if `holder` has it.
    fn release(&self, name: &str, holder: &str) -> Result<(), StoreError>;
    /// Records Message-ID registry entries (a 16-octet key each) in the shared registry,
    /// one round trip for the lot; nothing where the registry is node-local.
    fn record_message_ids(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError>;
    /// The shared registry's entry for `key` (always `None` where it is node-local).
    fn message_id(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Whether other processes share these records (caches must not outlive a change).
    fn is_shared(&self) -> bool;
    /// A floor above the ids sled's own counter handed out in earlier versions (1 where
    /// there were none).
    fn legacy_id_floor(&self) -> Result<u64, StoreError>;
}

/// One tree of a backend.
pub(crate) trait TreeBackend: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`; its value, if it had one.
    fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` to `new` (`None`: removes it) if it holds `old`; whether it did.
    fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError>;
    /// The first `limit` records between `from` and `to`, in key order (reversed with
    /// `reverse`).
    fn scan(
        &self,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError>;
    fn len(&self) -> Result<usize, StoreError>;
}

/// The opened backend. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Kv(Arc<dyn Backend>);

impl Kv {
    pub(crate) fn new(backend: Arc<dyn Backend>) -> Kv {
        Kv(backend)
    }

    pub(crate) fn open_tree(&self, name: &str) -> Result<Tree, StoreError> {
        Ok(Tree {
            name: name.into(),
            inner: self.0.open_tree(name)?,
        })
    }

    pub(crate) fn existing_tree(&self, name: &str) -> Result<Option<Tree>, StoreError> {
        Ok(self.0.existing_tree(name)?.map(|inner| Tree {
            name: name.into(),
            inner,
        }))
    }

    pub(crate) fn tree_names(&self) -> Result<Vec<String>, StoreError> {
        self.0.tree_names()
    }

    pub(crate) fn ids_above(&self, floor: u64) -> Result<(), StoreError> {
        self.0.ids_above(floor)
    }

    pub(crate) fn drop_tree(&self, name: &str) -> Result<(), StoreError> {
        self.0.drop_tree(name)
    }

    /// Applies `batch` atomically if every condition holds; whether it did.
    pub(crate) fn commit(
        &self,
        batch: Batch,
        conditions: &[Condition],
    ) -> Result<bool, StoreError> {
        if batch.writes.is_empty() && conditions.is_empty() {
            return Ok(true);
        }
        self.0.commit(&batch.writes, conditions)
    }

    pub(crate) fn reserve_ids(&self, count: u64) -> Result<u64, StoreError> {
        self.0.reserve_ids(count)
    }

    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.0.flush()
    }

    pub(crate) fn changes(&self) -> Result<u64, StoreError> {
        self.0.changes()
    }

    pub(crate) fn wait_change(&self, seen: u64, timeout: Duration) -> Result<u64, StoreError> {
        self.0.wait_change(seen, timeout)
    }

    pub(crate) fn lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.0.lease(name, holder, ttl)
    }

    pub(crate) fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.0.release(name, holder)
    }

    pub(crate) fn record_message_ids(
        &self,
        entries: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), StoreError> {
        self.0.record_message_ids(entries)
    }

    pub(crate) fn message_id(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.message_id(key)
    }

    pub(crate) fn is_shared(&self) -> bool {
        self.0.is_shared()
    }

    pub(crate) fn legacy_id_floor(&self) -> Result<u64, StoreError> {
        self.0.legacy_id_floor()
    }
}

/// A named tree: byte keys to byte values, in key order.
#[derive(Clone)]
pub struct Tree {
    name: Arc<str>,
    inner: Arc<dyn TreeBackend>,
}

impl Tree {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key.as_ref())
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.get(key)?.is_some())
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), StoreError> {
        self.inner.insert(key.as_ref(), value.as_ref())
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.remove(key.as_ref())
    }

    /// Sets `key` to `new` if it holds `old` (`None`: absent); whether it did.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        self.inner.compare_and_swap(key.as_ref(), old, new)
    }

    /// Every record, in key order.
    pub fn iter(&self) -> Result<Vec<Pair>, StoreError> {
        self.inner
            .scan(Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
    }

    /// Every value, in key order.
    pub fn values(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.iter()?.into_iter().map(|(_, v)| v).collect())
    }

    /// The records whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<Pair>, StoreError> {
        self.prefix(prefix.as_ref(), usize::MAX)
    }

    /// Whether any key starts with `prefix`.
    pub fn has_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(!self.prefix(prefix.as_ref(), 1)?.is_empty())
    }

    /// The records whose key starts with `prefix`, in key order, read `page` at a time
    /// (for trees too large to read at once).
    pub fn scan_prefix_paged<'a>(
        &'a self,
        prefix: &'a [u8],
        page: usize,
    ) -> impl Iterator<Item = Result<Pair, StoreError>> + 'a {
        let end = successor(prefix);
        let mut after: Option<Vec<u8>> = None;
        let mut buffered = std::collections::VecDeque::new();
        let mut done = false;
        std::iter::from_fn(move || {
            if buffered.is_empty() && !done {
                let from = match &after {
                    Some(last) => Bound::Excluded(last.as_slice()),
                    None => Bound::Included(prefix),
                };
                let to = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                match self.inner.scan(from, to, false, page.max(1)) {
                    Ok(read) => {
                        done = read.len() < page.max(1);
                        after = read.last().map(|(k, _)| k.clone());
                        buffered.extend(read);
                    }
                    Err(error) => {
                        done = true;
                        return Some(Err(error));
                    }
                }
            }
            buffered.pop_front().map(Ok)
        })
    }

    fn prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<Pair>, StoreError> {
        let end = successor(prefix);
        let to = match &end {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        self.inner.scan(Bound::Included(prefix), to, false, limit)
    }

    /// At most `limit` records in `[from, to)` (`to` `None`: to the end), in key order
    /// or reversed.
    pub fn range(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError> {
        let to = to.map_or(Bound::Unbounded, Bound::Excluded);
        self.inner.scan(Bound::Included(from), to, reverse, limit)
    }

    pub fn len(&self) -> Result<usize, StoreError> {
        self.inner.len()
    }
}

/// The first key after every key starting with `prefix` (`None`: there is none).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Writes to one or more trees, applied together by `Kv::commit`.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    writes: Vec<Write>,
}

impl Batch {
    pub fn insert(&mut self, tree: &Tree, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.writes.push(Write {
            tree: tree.name.clone(),
            key: key.as_ref().to_vec(),
            value: Some(value.as_ref().to_vec()),
        });
    }

    pub fn remove(&mut self, tree: &Tree, key: impl AsRef<[u8]>) {
        self.writes.push(Write {
            tree: tree.name.clone(),
            key: key.as_ref().to_vec(),
            value: None,
        });
    }
}

/// The condition that `key` of `tree` holds `value` (`None`: is absent) at commit.
pub(crate) fn holds(tree: &Tree, key: impl AsRef<[u8]>, value: Option<&[u8]>) -> Condition {
    Condition {
        tree: tree.name.clone(),
        key: key.as_ref().to_vec(),
        value: value.map(<[u8]>::to_vec),
    }
}

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn the_successor_of_a_prefix_bounds_its_scan() {
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(successor(&[0xff, 0xff]), None);
        assert_eq!(successor(b""), None);
    }
}
