//! The nodes sharing a store (tree `nodes`: node name → its record) and the messages a
//! draining node hands to the others (tree `handoff`: origin node and queue id → the
//! message's envelope record and bytes). Neither is control state: the records change
//! every few seconds. With the embedded store there is one node.

use super::kv::{Kv, Tree};
use super::records::{decode, encode, text_key};
use super::StoreError;
use serde::{Deserialize, Serialize};

const WHAT: &str = "node record";

/// What a node last said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeRecord {
    pub node: String,
    /// Unix seconds the node started, and last wrote this record.
    pub started_at: u64,
    pub seen_at: u64,
    /// Asked to drain: it accepts no mail and hands its queue to the other nodes.
    #[serde(default)]
    pub draining: bool,
    /// Messages in its spool.
    #[serde(default)]
    pub queue_depth: u64,
    /// Its oldest queued messages (at most a few hundred), for a queue view of every node.
    #[serde(default)]
    pub queue: Vec<QueuedEntry>,
}

/// A queued message as another node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueuedEntry {
    /// Queue id on that node (16 hex digits).
    pub id: String,
    pub mail_from: String,
    pub upstream: String,
    pub received_at: u64,
    pub attempts: u32,
    pub next_attempt_at: u64,
    /// Recipients still pending.
    pub pending: Vec<String>,
}

/// A message handed over by a draining node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// `origin/queue id`: the key it is stored (and leased) under.
    pub key: String,
    pub origin: String,
    /// The spool's envelope record (JSON), as the origin kept it.
    pub meta: Vec<u8>,
    pub data: Vec<u8>,
}

/// The node and hand-off trees.
#[derive(Clone)]
pub struct Nodes {
    tree: Tree,
    handoff: Tree,
    kv: Kv,
}

impl Nodes {
    pub(super) fn open(kv: &Kv) -> Result<Nodes, StoreError> {
        Ok(Nodes {
            tree: kv.open_tree("nodes")?,
            handoff: kv.open_tree("handoff")?,
            kv: kv.clone(),
        })
    }

    pub fn get(&self, node: &str) -> Result<Option<NodeRecord>, StoreError> {
        self.tree
            .get(node.as_bytes())?
            .map(|raw| decode(&raw, WHAT))
            .transpose()
    }

    /// Every node's record, by name.
    pub fn all(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.tree
            .values()?
            .iter()
            .map(|raw| decode(raw, WHAT))
            .collect()
    }

    /// Writes a node's record (its `draining` flag as stored wins: only `set_draining`
    /// changes it); the record as written.
    pub fn publish(&self, mut record: NodeRecord) -> Result<NodeRecord, StoreError> {
        loop {
            let old = self.tree.get(record.node.as_bytes())?;
            if let Some(raw) = &old {
                record.draining = decode::<NodeRecord>(raw, WHAT)?.draining;
            }
            let new = encode(&record)?;
            if self
                .tree
                .compare_and_swap(record.node.as_bytes(), old.as_deref(), Some(&new))?
            {
                return Ok(record);
            }
        }
    }

    /// Asks `node` to drain (or to take mail again); its record, or `None` for a node
    /// that never ran. Durable on return.
    pub fn set_draining(
        &self,
        node: &str,
        draining: bool,
    ) -> Result<Option<NodeRecord>, StoreError> {
        loop {
            let Some(old) = self.tree.get(node.as_bytes())? else {
                return Ok(None);
            };
            let mut record: NodeRecord = decode(&old, WHAT)?;
            record.draining = draining;
            let new = encode(&record)?;
            if self
                .tree
                .compare_and_swap(node.as_bytes(), Some(&old), Some(&new))?
            {
                self.kv.flush()?;
                return Ok(Some(record));
            }
        }
    }

    /// Hands a queued message over; durable on return.
    pub fn hand_off(
        &self,
        origin: &str,
        id: &str,
        meta: &[u8],
        data: &[u8],
    ) -> Result<(), StoreError> {
        let mut value = (meta.len() as u32).to_be_bytes().to_vec();
        value.extend_from_slice(meta);
        value.extend_from_slice(data);
        self.handoff
            .insert(text_key(origin.as_bytes(), &format!("/{id}")), value)?;
        self.kv.flush()
    }

    /// Whether message `id` of `origin` is waiting to be taken.
    pub fn is_handed_off(&self, origin: &str, id: &str) -> Result<bool, StoreError> {
        self.handoff
            .contains_key(text_key(origin.as_bytes(), &format!("/{id}")))
    }

    /// Whether the handed-over message under `key` (a [`Handoff::key`]) is still waiting
    /// to be taken.
    pub fn is_waiting(&self, key: &str) -> Result<bool, StoreError> {
        self.handoff.contains_key(key.as_bytes())
    }

    /// Up to `limit` messages handed over by nodes other than `taker`.
    pub fn handed_off(&self, taker: &str, limit: usize) -> Result<Vec<Handoff>, StoreError> {
        let mut found = Vec::new();
        for pair in self.handoff.scan_prefix_paged(b"", 16) {
            let (key, value) = pair?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let origin = key.rsplit_once('/').map(|(o, _)| o).unwrap_or_default();
            if origin == taker {
                continue;
            }
            let corrupt = || StoreError::Corrupt(format!("handed-off message {key}"));
            let len: [u8; 4] = value
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(corrupt)?;
            let len = u32::from_be_bytes(len) as usize;
            let meta = value.get(4..4 + len).ok_or_else(corrupt)?.to_vec();
            found.push(Handoff {
                origin: origin.to_string(),
                data: value[4 + len..].to_vec(),
                meta,
                key,
            });
            if found.len() >= limit {
                break;
            }
        }
        Ok(found)
    }

    /// Removes a taken message; durable on return.
    pub fn taken(&self, key: &str) -> Result<(), StoreError> {
        self.handoff.remove(key.as_bytes())?;
        self.kv.flush()
    }
}
