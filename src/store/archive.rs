//! The archive's catalog (SPEC §8): one record per kept message with its metadata and where
//! its bytes lie. The bytes themselves are never copied here: they stay in the spool's
//! journal record the message was accepted into (a retired journal segment lives on in
//! `data_dir/archive`), so the catalog only points at them.
//!
//! The catalog task writes in batches, and so does the catalog: one record per batch (a
//! JSON array, one sled insert however many messages it holds — per-message inserts cost
//! the hot path more CPU than the whole rest of archiving). Keys: `b` + batch number → the
//! messages; `u` + user id + batch number → nothing (the batches holding a user's mail,
//! for backups).

use super::kv::{Batch, Kv, Tree};
use super::records::{decode, encode, get, key};
use super::{ids::Ids, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Which way a kept message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Submitted by a user and relayed upstream.
    Outbound,
    /// Received on an inbound listener.
    Inbound,
}

/// Where a kept message's bytes lie: journal segment, offset and length, and where the
/// journal record holding them starts (what retention punches out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    pub seg: u32,
    pub offset: u64,
    pub len: u64,
    pub record_start: u64,
}

/// One kept message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedMessage {
    /// The queue id it was accepted under.
    pub id: u64,
    pub direction: Direction,
    /// The users whose mail it is (non-private at the time it passed).
    pub owners: Vec<u64>,
    /// The email account it went through, if one.
    #[serde(default)]
    pub account: Option<u64>,
    /// Envelope sender (empty for `<>`) and recipients.
    pub mail_from: String,
    pub rcpts: Vec<String>,
    /// Header fields, decoded and cleaned of control characters.
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    /// Message-IDs it replies to (`In-Reply-To`, `References`).
    #[serde(default)]
    pub refs: Vec<String>,
    /// Tickets it is linked to.
    #[serde(default)]
    pub tickets: Vec<u64>,
    /// Unix milliseconds it was accepted, and when retention ends (`None`: never).
    pub received_at: u64,
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Octets of the message.
    pub size: u64,
    /// Where its bytes lie: in the spool journal of this node (`[store] node`; empty for
    /// records written before nodes were named: the node that has the store's files).
    pub extent: Extent,
    #[serde(default)]
    pub node: String,
}

impl ArchivedMessage {
    /// Whether its bytes lie on node `node`.
    pub fn is_on(&self, node: &str) -> bool {
        self.node.is_empty() || self.node == node
    }
}

/// The archive catalog tree.
#[derive(Clone)]
pub struct ArchiveCatalog {
    ids: Ids,
    tree: Tree,
    kv: Kv,
}

impl ArchiveCatalog {
    pub(super) fn open(kv: &Kv, ids: Ids) -> Result<ArchiveCatalog, StoreError> {
        Ok(ArchiveCatalog {
            ids,
            tree: kv.open_tree("archive")?,
            kv: kv.clone(),
        })
    }

    /// Adds a batch of messages as one record (durable after `flush`).
    pub fn put(&self, messages: &[ArchivedMessage]) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        let seq = self.ids.next()?;
        let mut batch = Batch::default();
        batch.insert(&self.tree, key(b"b", &[seq]), encode(&messages)?);
        for owner in owners(messages) {
            batch.insert(&self.tree, key(b"u", &[owner, seq]), []);
        }
        self.kv.commit(batch, &[])?;
        Ok(())
    }

    /// The messages of `user`, in the order they were accepted (each once: a message
    /// catalogued again after a restart counts once, as last recorded).
    pub fn of_user(&self, user: u64) -> Result<Vec<ArchivedMessage>, StoreError> {
        let mut found = BTreeMap::new();
        for (k, _) in self.tree.scan_prefix(key(b"u", &[user]))? {
            let seq = u64::from_be_bytes(k[9..17].try_into().map_err(|_| corrupt())?);
            for message in self.batch(seq)? {
                if message.owners.contains(&user) {
                    found.insert(message.id, message);
                }
            }
        }
        Ok(found.into_values().collect())
    }

    /// Every batch record: its number and messages.
    pub fn batches(
        &self,
    ) -> impl Iterator<Item = Result<(u64, Vec<ArchivedMessage>), StoreError>> + '_ {
        self.tree.scan_prefix_paged(b"b", 64).map(|pair| {
            let (k, v) = pair?;
            let seq = u64::from_be_bytes(k[1..9].try_into().map_err(|_| corrupt())?);
            Ok((seq, decode(&v, "archive batch")?))
        })
    }

    /// Every catalogued message (a message catalogued twice appears twice).
    pub fn all(&self) -> Result<Vec<ArchivedMessage>, StoreError> {
        let mut out = Vec::new();
        for batch in self.batches() {
            out.extend(batch?.1);
        }
        Ok(out)
    }

    /// Replaces batch `seq` (which held `before`) by what is left of it (durable after
    /// `flush`); an empty one is removed.
    pub fn replace(
        &self,
        seq: u64,
        before: &[ArchivedMessage],
        left: &[ArchivedMessage],
    ) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        match left.is_empty() {
            true => batch.remove(&self.tree, key(b"b", &[seq])),
            false => batch.insert(&self.tree, key(b"b", &[seq]), encode(&left)?),
        }
        let still = owners(left);
        for owner in owners(before).into_iter().filter(|o| !still.contains(o)) {
            batch.remove(&self.tree, key(b"u", &[owner, seq]));
        }
        self.kv.commit(batch, &[])?;
        Ok(())
    }

    fn batch(&self, seq: u64) -> Result<Vec<ArchivedMessage>, StoreError> {
        Ok(get(&self.tree, &key(b"b", &[seq]), "archive batch")?.unwrap_or_default())
    }

    /// Makes every change so far durable. Blocking.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.kv.flush()
    }
}

/// The owners of `messages`, each once.
fn owners(messages: &[ArchivedMessage]) -> BTreeSet<u64> {
    messages
        .iter()
        .flat_map(|m| m.owners.iter().copied())
        .collect()
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("archive key".into())
}
