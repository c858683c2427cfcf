//! API bearer tokens, by the SHA-256 digest of the token (tree `api_tokens`: digest →
//! user id, creation time, label, expiry). The token itself is never stored.

use super::kv::{Batch, Kv, Tree};
use super::records::{decode, encode};
use super::StoreError;
use serde::{Deserialize, Serialize};

const WHAT: &str = "token";

/// One stored token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredToken {
    pub user_id: u64,
    pub created_at: u64,
    #[serde(default)]
    pub label: String,
    /// Unix seconds after which the token is refused; `None`: until revoked.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// The token tree.
#[derive(Clone)]
pub struct Tokens {
    tree: Tree,
    kv: Kv,
}

impl Tokens {
    pub(super) fn open(kv: &Kv) -> Result<Tokens, StoreError> {
        Ok(Tokens {
            tree: kv.open_tree("api_tokens")?,
            kv: kv.clone(),
        })
    }

    /// The token whose digest is `digest`.
    pub fn get(&self, digest: &str) -> Result<Option<StoredToken>, StoreError> {
        self.tree
            .get(digest.as_bytes())?
            .map(|raw| decode(&raw, WHAT))
            .transpose()
    }

    /// Stores a token under its digest; durable on return.
    pub fn insert(&self, digest: &str, token: &StoredToken) -> Result<(), StoreError> {
        self.tree.insert(digest.as_bytes(), encode(token)?)?;
        self.kv.flush()
    }

    /// Every token of user `user`, with its digest.
    pub fn of_user(&self, user: u64) -> Result<Vec<(String, StoredToken)>, StoreError> {
        let mut found = Vec::new();
        for (key, raw) in self.tree.iter()? {
            let token: StoredToken = decode(&raw, WHAT)?;
            if token.user_id == user {
                found.push((String::from_utf8_lossy(&key).into_owned(), token));
            }
        }
        Ok(found)
    }

    /// Removes the token whose digest is `digest`; whether it existed. Durable on return.
    pub fn remove(&self, digest: &str) -> Result<bool, StoreError> {
        let existed = self.tree.remove(digest.as_bytes())?.is_some();
        self.kv.flush()?;
        Ok(existed)
    }

    /// Removes every token of user `user` at once; how many there were. Durable on return.
    pub fn remove_of_user(&self, user: u64) -> Result<u64, StoreError> {
        let mut batch = Batch::default();
        let tokens = self.of_user(user)?;
        for (digest, _) in &tokens {
            batch.remove(&self.tree, digest.as_bytes());
        }
        self.kv.commit(batch, &[])?;
        self.kv.flush()?;
        Ok(tokens.len() as u64)
    }
}
