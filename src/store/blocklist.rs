//! The blocklist (SPEC §4): addresses and domains whose mail is refused. Keyed by the
//! entry as the API stored it: today an address's canonical key or a canonical domain
//! (`policy::address`), earlier the lower-cased text. Lookups never compare these keys
//! directly: the policy snapshot's `blocked` re-reads every entry into its canonical form,
//! and a domain entry also covers its subdomains.

use super::kv::{Kv, Tree};
use super::StoreError;
use serde::{Deserialize, Serialize};

/// What an entry blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    Address,
    Domain,
}

/// One blocked address or domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlockEntry {
    /// The address (`someone@example.com`) or domain (`example.com`, `xn--bcher-kva.example`)
    /// in canonical form (`policy::address`; lower-cased only, for entries made before).
    pub entry: String,
    pub kind: BlockKind,
    #[serde(default)]
    pub reason: String,
    pub created_at: u64,
    /// Login of who added it (`admin-token` for the bootstrap token).
    pub created_by: String,
}

/// The blocklist tree.
#[derive(Clone)]
pub struct Blocklist {
    tree: Tree,
    kv: Kv,
}

impl Blocklist {
    pub(super) fn open(kv: &Kv) -> Result<Blocklist, StoreError> {
        Ok(Blocklist {
            tree: kv.open_tree("blocklist")?,
            kv: kv.clone(),
        })
    }

    /// Adds `entry`; 409-style conflict if it is already there. Durable on return.
    pub fn add(&self, entry: &BlockEntry) -> Result<(), StoreError> {
        let raw = serde_json::to_vec(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let added = self
            .tree
            .compare_and_swap(entry.entry.as_bytes(), None, Some(&raw))?;
        if !added {
            return Err(StoreError::Conflict(format!(
                "blocklist entry {:?}",
                entry.entry
            )));
        }
        self.kv.flush()
    }

    /// Removes `entry` (the key as stored); the removed entry, if it existed. Durable
    /// on return.
    pub fn remove(&self, entry: &str) -> Result<Option<BlockEntry>, StoreError> {
        let Some(raw) = self.tree.remove(entry.as_bytes())? else {
            return Ok(None);
        };
        self.kv.flush()?;
        decode(&raw).map(Some)
    }

    /// Every entry, in order.
    pub fn all(&self) -> Result<Vec<BlockEntry>, StoreError> {
        self.tree.values()?.iter().map(|raw| decode(raw)).collect()
    }
}

fn decode(raw: &[u8]) -> Result<BlockEntry, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt(format!("blocklist entry: {e}")))
}
