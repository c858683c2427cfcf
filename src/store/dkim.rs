//! DKIM keys (SPEC §5): one record per domain and selector, holding the private key the
//! relay signs with and the public key the administrator publishes. A key is created
//! `pending` (its DNS record not yet published), made `active` by an administrator, and
//! `retired` when another key of the same domain and algorithm is activated. At most one
//! key per domain and algorithm is active, so a domain can be signed with RSA and Ed25519
//! at once.
//!
//! Keys: the domain, a `/`, the selector (neither may hold a `/`).

use super::kv::{Batch, Kv, Tree};
use super::records::{decode, encode, get, text_key};
use super::StoreError;
use serde::{Deserialize, Serialize};

/// The signing algorithm of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum DkimAlgorithm {
    /// RSA with 2048-bit keys, signed `rsa-sha256`.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// Ed25519 (RFC 8463), signed `ed25519-sha256`.
    #[serde(rename = "ed25519")]
    Ed25519,
}

/// Whether the relay signs with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DkimStatus {
    /// Created; waits for its DNS record to be published.
    Pending,
    /// Signs the domain's outgoing mail.
    Active,
    /// Replaced by a newer active key; kept so its DNS record can stay while mail signed
    /// with it is still on its way.
    Retired,
}

/// One DKIM key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimKey {
    /// Lower-cased signing domain (`d=`).
    pub domain: String,
    /// Lower-cased selector (`s=`).
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub status: DkimStatus,
    /// The public key as published (`p=`), base64.
    pub public_key: String,
    /// The private key, DER (PKCS#1 for RSA, PKCS#8 for Ed25519), base64. Never shown by
    /// the API.
    pub private_key: String,
    /// Unix seconds.
    pub created_at: u64,
    pub created_by: String,
    /// Unix seconds of the last activation, if any.
    #[serde(default)]
    pub activated_at: Option<u64>,
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// The DKIM key tree.
#[derive(Clone)]
pub struct DkimKeys {
    tree: Tree,
    kv: Kv,
}

fn record_key(domain: &str, selector: &str) -> Vec<u8> {
    text_key(format!("{domain}/").as_bytes(), selector)
}

impl DkimKeys {
    pub(super) fn open(kv: &Kv) -> Result<DkimKeys, StoreError> {
        Ok(DkimKeys {
            tree: kv.open_tree("dkim_keys")?,
            kv: kv.clone(),
        })
    }

    /// Adds `key`; a conflict if its domain already has that selector. An `active` key
    /// retires the domain's other active key of its algorithm in the same write; that key
    /// is returned. Durable on return. Callers serialise changes (the API's write lock).
    pub fn add(&self, key: &DkimKey) -> Result<Option<DkimKey>, StoreError> {
        if self.get(&key.domain, &key.selector)?.is_some() {
            return Err(StoreError::Conflict(format!(
                "DKIM key {}._domainkey.{}",
                key.selector, key.domain
            )));
        }
        let mut batch = Batch::default();
        let retired = match key.status {
            DkimStatus::Active => self.retire_others(&mut batch, key)?,
            _ => None,
        };
        batch.insert(
            &self.tree,
            record_key(&key.domain, &key.selector),
            encode(key)?,
        );
        self.kv.commit(batch, &[])?;
        self.kv.flush()?;
        Ok(retired)
    }

    /// The key of `domain` with `selector`.
    pub fn get(&self, domain: &str, selector: &str) -> Result<Option<DkimKey>, StoreError> {
        get(&self.tree, &record_key(domain, selector), "DKIM key")
    }

    /// Every key, by domain then selector.
    pub fn all(&self) -> Result<Vec<DkimKey>, StoreError> {
        self.tree
            .values()?
            .iter()
            .map(|raw| decode(raw, "DKIM key"))
            .collect()
    }

    /// Makes the key of `domain` with `selector` active at `now` and retires the domain's
    /// other active key of the same algorithm, in one durable write. The activated key and
    /// the one it retired, or `None` if there is no such key.
    pub fn activate(
        &self,
        domain: &str,
        selector: &str,
        now: u64,
    ) -> Result<Option<(DkimKey, Option<DkimKey>)>, StoreError> {
        let Some(mut key) = self.get(domain, selector)? else {
            return Ok(None);
        };
        let mut batch = Batch::default();
        let retired = self.retire_others(&mut batch, &key)?;
        key.status = DkimStatus::Active;
        key.activated_at = Some(now);
        batch.insert(&self.tree, record_key(domain, selector), encode(&key)?);
        self.kv.commit(batch, &[])?;
        self.kv.flush()?;
        Ok(Some((key, retired)))
    }

    /// Adds to `batch` the retirement of `key`'s domain's other active key of its
    /// algorithm, if there is one (at most one is active); returns it.
    fn retire_others(
        &self,
        batch: &mut Batch,
        key: &DkimKey,
    ) -> Result<Option<DkimKey>, StoreError> {
        let mut retired = None;
        let prefix = format!("{}/", key.domain);
        for (_, raw) in self.tree.scan_prefix(prefix.as_bytes())? {
            let mut other: DkimKey = decode(&raw, "DKIM key")?;
            if other.selector != key.selector
                && other.algorithm == key.algorithm
                && other.status == DkimStatus::Active
            {
                other.status = DkimStatus::Retired;
                batch.insert(
                    &self.tree,
                    record_key(&key.domain, &other.selector),
                    encode(&other)?,
                );
                retired = Some(other);
            }
        }
        Ok(retired)
    }

    /// Removes the key of `domain` with `selector`; the removed key, if it existed.
    /// Durable on return.
    pub fn remove(&self, domain: &str, selector: &str) -> Result<Option<DkimKey>, StoreError> {
        let Some(raw) = self.tree.remove(record_key(domain, selector))? else {
            return Ok(None);
        };
        self.kv.flush()?;
        decode(&raw, "DKIM key").map(Some)
    }
}
