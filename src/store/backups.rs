//! Backup jobs of a deactivated user's mail (SPEC §8): the job with its status and counts,
//! and the list of the messages a finished job holds (what the granted users read; the
//! bytes are in the job's mbox file).
//!
//! Keys: `b` + backup id → the job; `i` + backup id + queue id → one message of it.

use super::kv::{Batch, Kv, Tree};
use super::records::{encode, get, key, scan};
use super::{ids::Ids, AccountType, Direction, Grantee, StoreError};
use serde::{Deserialize, Serialize};

/// A whole backup, or only the mail since the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    Full,
    Latest,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupStatus {
    Pending,
    Running,
    Completed,
    Failed,
}

/// What a job selected and wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupCounts {
    /// Messages that belong in the backup.
    pub selected: u64,
    /// Messages written to its mbox.
    pub written: u64,
    /// Octets of the messages written.
    pub bytes: u64,
}

/// A backup job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Backup {
    pub id: u64,
    /// The deactivated user whose mail it holds.
    pub user: u64,
    pub login: String,
    pub kind: BackupKind,
    /// The user's account type when the job was asked for (what it selects).
    pub account_type: AccountType,
    /// Who may read it (besides admins).
    pub grant_to: Vec<Grantee>,
    pub status: BackupStatus,
    pub counts: BackupCounts,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Who asked for it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: u64,
    #[serde(default)]
    pub started_at: Option<u64>,
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// The mail it covers: accepted after `since` (exclusive, Unix ms; a latest backup)
    /// and up to `until` (inclusive).
    #[serde(default)]
    pub since: Option<u64>,
    pub until: u64,
    /// Times the job was started (more than one: resumed after a restart).
    #[serde(default)]
    pub runs: u32,
    /// The node that ran it, where its mbox file is (empty: the only node).
    #[serde(default)]
    pub node: String,
}

/// One message of a backup, as the granted users see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupItem {
    /// Queue id the message was accepted under.
    pub id: u64,
    pub direction: Direction,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub from: String,
    pub subject: String,
    pub date: Option<String>,
    pub message_id: Option<String>,
    pub tickets: Vec<u64>,
    /// Unix milliseconds it was accepted.
    pub received_at: u64,
    pub size: u64,
}

/// The backups tree.
#[derive(Clone)]
pub struct Backups {
    ids: Ids,
    tree: Tree,
    kv: Kv,
}

impl Backups {
    pub(super) fn open(kv: &Kv, ids: Ids) -> Result<Backups, StoreError> {
        Ok(Backups {
            ids,
            tree: kv.open_tree("backups")?,
            kv: kv.clone(),
        })
    }

    /// A fresh backup id.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        self.ids.next()
    }

    /// Writes a job (new or changed); durable on return.
    pub fn save(&self, backup: &Backup) -> Result<(), StoreError> {
        self.tree.insert(key(b"b", &[backup.id]), encode(backup)?)?;
        self.kv.flush()
    }

    pub fn get(&self, id: u64) -> Result<Option<Backup>, StoreError> {
        get(&self.tree, &key(b"b", &[id]), "backup")
    }

    /// Every job, oldest first.
    pub fn all(&self) -> Result<Vec<Backup>, StoreError> {
        scan(&self.tree, b"b", "backup")
    }

    /// Replaces the message list of job `id` (not yet durable: the job's save is).
    pub fn set_items(&self, id: u64, items: &[BackupItem]) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        for (old, _) in self.tree.scan_prefix(key(b"i", &[id]))? {
            batch.remove(&self.tree, old);
        }
        for item in items {
            batch.insert(&self.tree, key(b"i", &[id, item.id]), encode(item)?);
        }
        self.kv.commit(batch, &[])?;
        Ok(())
    }

    /// The messages of job `id`.
    pub fn items(&self, id: u64) -> Result<Vec<BackupItem>, StoreError> {
        scan(&self.tree, &key(b"i", &[id]), "backup item")
    }
}
