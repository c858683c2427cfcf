//! The archive's catalog (SPEC §8): one record per kept message with its metadata and where
//! its bytes lie. The bytes themselves are never copied here: they stay in the spool's
//! journal record the message was accepted into (a retired journal segment lives on in
//! `data_dir/archive`), so the catalog only points at them.
//!
//! Keys: `m` + queue id → the record; `u` + user id + queue id → nothing (the messages of
//! a user, for backups).

use super::records::{decode, encode, get, key};
use super::{StoreError, Syncer};
use serde::{Deserialize, Serialize};

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
    /// Where its bytes lie.
    pub extent: Extent,
}

/// The archive catalog tree.
#[derive(Clone)]
pub struct ArchiveCatalog {
    tree: sled::Tree,
    sync: Syncer,
}

impl ArchiveCatalog {
    pub(super) fn open(db: &sled::Db, sync: Syncer) -> Result<ArchiveCatalog, StoreError> {
        Ok(ArchiveCatalog {
            tree: db.open_tree("archive")?,
            sync,
        })
    }

    /// Adds messages (one sled batch; durable after `flush`).
    pub fn put(&self, messages: &[ArchivedMessage]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for message in messages {
            batch.insert(key(b"m", &[message.id]), encode(message)?);
            for owner in &message.owners {
                batch.insert(key(b"u", &[*owner, message.id]), &[] as &[u8]);
            }
        }
        Ok(self.tree.apply_batch(batch)?)
    }

    /// Whether message `id` is catalogued.
    pub fn contains(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(key(b"m", &[id]))?)
    }

    /// The record of message `id`.
    pub fn get(&self, id: u64) -> Result<Option<ArchivedMessage>, StoreError> {
        get(&self.tree, &key(b"m", &[id]), "archived message")
    }

    /// The messages of `user`, in the order they were accepted.
    pub fn of_user(&self, user: u64) -> Result<Vec<ArchivedMessage>, StoreError> {
        let prefix = key(b"u", &[user]);
        let mut out = Vec::new();
        for k in self.tree.scan_prefix(&prefix).keys() {
            let k = k?;
            let id = u64::from_be_bytes(k[9..17].try_into().map_err(|_| corrupt())?);
            if let Some(message) = self.get(id)? {
                out.push(message);
            }
        }
        Ok(out)
    }

    /// Every record, in id order.
    pub fn all(&self) -> impl Iterator<Item = Result<ArchivedMessage, StoreError>> + '_ {
        self.tree
            .scan_prefix(b"m")
            .values()
            .map(|raw| decode(&raw?, "archived message"))
    }

    /// Removes records (durable after `flush`).
    pub fn remove(&self, messages: &[ArchivedMessage]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for message in messages {
            batch.remove(key(b"m", &[message.id]));
            for owner in &message.owners {
                batch.remove(key(b"u", &[*owner, message.id]));
            }
        }
        Ok(self.tree.apply_batch(batch)?)
    }

    /// Makes every change so far durable. Blocking.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.sync.flush()
    }
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("archive user index key".into())
}
