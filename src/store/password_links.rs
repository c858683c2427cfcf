//! "Set your password" links (SPEC §7): a single-use token per link, kept only as its
//! SHA-256 digest with the user it is for and when it expires. Using a link removes it.

use super::kv::{Kv, Tree};
use super::StoreError;
use serde::{Deserialize, Serialize};

/// What a link is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordLink {
    pub user: u64,
    /// Unix seconds after which the link no longer works.
    pub expires_at: u64,
}

/// The links tree, keyed by the token's hex SHA-256 digest.
#[derive(Clone)]
pub struct PasswordLinks {
    tree: Tree,
    kv: Kv,
}

impl PasswordLinks {
    pub(super) fn open(kv: &Kv) -> Result<PasswordLinks, StoreError> {
        Ok(PasswordLinks {
            tree: kv.open_tree("password_links")?,
            kv: kv.clone(),
        })
    }

    /// Stores a link under `digest`; durable on return.
    pub fn create(&self, digest: &str, link: &PasswordLink) -> Result<(), StoreError> {
        let raw = serde_json::to_vec(link).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tree.insert(digest.as_bytes(), raw)?;
        self.kv.flush()
    }

    /// The link stored under `digest`, if it exists and has not expired at `now`.
    pub fn get(&self, digest: &str, now: u64) -> Result<Option<PasswordLink>, StoreError> {
        let Some(raw) = self.tree.get(digest.as_bytes())? else {
            return Ok(None);
        };
        let link: PasswordLink = serde_json::from_slice(&raw)
            .map_err(|e| StoreError::Corrupt(format!("password link: {e}")))?;
        Ok((link.expires_at > now).then_some(link))
    }

    /// Uses the link: removes it and returns it if it was still valid at `now` (a second
    /// use, or a use after expiry, gets `None`). Durable on return.
    pub fn take(&self, digest: &str, now: u64) -> Result<Option<PasswordLink>, StoreError> {
        let link = self.get(digest, now)?;
        let removed = self.tree.remove(digest.as_bytes())?;
        self.kv.flush()?;
        Ok(link.filter(|_| removed.is_some()))
    }
}
