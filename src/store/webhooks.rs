//! Webhooks and their deliveries (SPEC §7): each webhook is a URL with a signing secret; each
//! event the hook posts to it is a delivery kept here until it is delivered or dead, so a
//! restart or a receiver that is down loses nothing.
//!
//! One tree under key prefixes: `h/` webhooks, `d/` deliveries, and `q/` the due index of
//! pending deliveries (`next_at` then id, so a scan from the start finds the earliest).
//! New deliveries are written in the same transaction as the ticket change that caused
//! them (`Tickets::change`), through `write_into`.

use super::kv::{Batch, Kv, Tree};
use super::records::{encode, get, key, scan};
use super::{ids::Ids, StoreError};
use serde::{Deserialize, Serialize};

const HOOK: &[u8] = b"h/";
const DELIVERY: &[u8] = b"d/";
const DUE: &[u8] = b"q/";
/// How a record that does not decode is named.
const WHAT: &str = "webhooks";

/// Attempts before a delivery is dead, unless the webhook says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: u64,
    pub name: String,
    /// `http://` or `https://` URL the events are POSTed to.
    pub url: String,
    /// The HMAC-SHA256 key of `X-Postern-Signature`.
    pub secret: String,
    /// Attempts before a delivery is given up (dead).
    pub max_attempts: u32,
    pub created_at: u64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Dead,
}

/// One event for one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: u64,
    pub webhook: u64,
    pub event: String,
    /// The exact JSON body that is signed and sent.
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// When the next attempt is due (Unix milliseconds).
    pub next_at: u64,
    /// HTTP status of the last answer, if there was one.
    #[serde(default)]
    pub last_status: Option<u16>,
    /// The start of the last answer's body, or why there was none.
    #[serde(default)]
    pub last_response: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// The webhooks tree.
#[derive(Clone)]
pub struct Webhooks {
    ids: Ids,
    pub(super) tree: Tree,
    kv: Kv,
}

/// Adds the entries that store `delivery` (and index it while pending) to `batch`.
pub(super) fn write_into(
    batch: &mut Batch,
    tree: &Tree,
    delivery: &Delivery,
) -> Result<(), StoreError> {
    batch.insert(tree, key(DELIVERY, &[delivery.id]), encode(delivery)?);
    if delivery.status == DeliveryStatus::Pending {
        batch.insert(tree, key(DUE, &[delivery.next_at, delivery.id]), []);
    }
    Ok(())
}

impl Webhooks {
    pub(super) fn open(kv: &Kv, ids: Ids) -> Result<Webhooks, StoreError> {
        Ok(Webhooks {
            ids,
            tree: kv.open_tree("webhooks")?,
            kv: kv.clone(),
        })
    }

    /// A fresh id.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        self.ids.next()
    }

    /// Stores a new webhook under a fresh id; durable on return.
    pub fn create(&self, mut hook: Webhook) -> Result<Webhook, StoreError> {
        hook.id = self.next_id()?;
        self.tree.insert(key(HOOK, &[hook.id]), encode(&hook)?)?;
        self.kv.flush()?;
        Ok(hook)
    }

    pub fn get(&self, id: u64) -> Result<Option<Webhook>, StoreError> {
        get(&self.tree, &key(HOOK, &[id]), WHAT)
    }

    pub fn all(&self) -> Result<Vec<Webhook>, StoreError> {
        scan(&self.tree, HOOK, WHAT)
    }

    /// Removes a webhook and its pending deliveries (delivered and dead ones stay listed
    /// until then); true if it existed. Durable on return.
    pub fn remove(&self, id: u64) -> Result<bool, StoreError> {
        let existed = self.tree.remove(key(HOOK, &[id]))?.is_some();
        for delivery in self.deliveries(id)? {
            if delivery.status == DeliveryStatus::Pending {
                self.tree
                    .remove(key(DUE, &[delivery.next_at, delivery.id]))?;
            }
            self.tree.remove(key(DELIVERY, &[delivery.id]))?;
        }
        self.kv.flush()?;
        Ok(existed)
    }

    pub fn delivery(&self, id: u64) -> Result<Option<Delivery>, StoreError> {
        get(&self.tree, &key(DELIVERY, &[id]), WHAT)
    }

    /// The deliveries of webhook `id`, oldest first.
    pub fn deliveries(&self, id: u64) -> Result<Vec<Delivery>, StoreError> {
        let all: Vec<Delivery> = scan(&self.tree, DELIVERY, WHAT)?;
        Ok(all.into_iter().filter(|d| d.webhook == id).collect())
    }

    /// Up to `limit` pending deliveries due at `now` (Unix ms), earliest first. An index
    /// entry that no longer matches its delivery (left by two changes that raced) is
    /// removed instead of being returned.
    pub fn due(&self, now: u64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut out = Vec::new();
        let end = key(DUE, &[now.saturating_add(1)]);
        for (index, _) in self.tree.range(DUE, Some(&end), false, usize::MAX)? {
            let (at, id) = (number(&index, 2)?, number(&index, 10)?);
            if at > now || out.len() >= limit {
                break;
            }
            match self.delivery(id)? {
                Some(d) if d.status == DeliveryStatus::Pending && d.next_at == at => out.push(d),
                _ => {
                    self.tree.remove(&index)?;
                }
            }
        }
        Ok(out)
    }

    /// When the earliest pending delivery is due (Unix ms), if any is pending.
    pub fn next_due(&self) -> Result<Option<u64>, StoreError> {
        let first = self.tree.range(DUE, None, false, 1)?;
        let Some((index, _)) = first.first() else {
            return Ok(None);
        };
        if !index.starts_with(DUE) {
            return Ok(None);
        }
        Ok(Some(number(index, 2)?))
    }

    /// Replaces `before` by `after` (an attempt's outcome), keeping the due index right;
    /// durable on return.
    pub fn update(&self, before: &Delivery, after: &Delivery) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        if before.status == DeliveryStatus::Pending {
            batch.remove(&self.tree, key(DUE, &[before.next_at, before.id]));
        }
        write_into(&mut batch, &self.tree, after)?;
        self.kv.commit(batch, &[])?;
        self.kv.flush()
    }
}

/// The big-endian number at `at` in a due-index key.
fn number(index: &[u8], at: usize) -> Result<u64, StoreError> {
    index
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt("webhook due index".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn pending(id: u64, next_at: u64) -> Delivery {
        Delivery {
            id,
            webhook: 1,
            event: "ticket.created".into(),
            payload: "{}".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_at,
            last_status: None,
            last_response: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_stale_due_entry_left_by_racing_updates_is_dropped_not_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let hooks = store.webhooks();
        let first = pending(7, 100);
        let mut batch = Batch::default();
        write_into(&mut batch, &hooks.tree, &first).unwrap();
        hooks.kv.commit(batch, &[]).unwrap();
        // Two retries raced from the same `before`: the second left the first's entry.
        hooks.update(&first, &pending(7, 200)).unwrap();
        let mut delivered = pending(7, 300);
        delivered.status = DeliveryStatus::Delivered;
        hooks.update(&first, &delivered).unwrap();
        assert_eq!(hooks.due(1_000, 10).unwrap(), Vec::<Delivery>::new());
        assert_eq!(hooks.next_due().unwrap(), None, "the stale entry is gone");
    }
}
