//! When each upstream's refresh token was last used with success (tree `oauth_refreshes`:
//! upstream name → record), so a warning that the provider is about to expire an unused
//! refresh token (`relay::oauth::watch`) survives a restart. The record names the
//! refresh token by a digest: a new token configured (after re-consent) starts afresh.

use super::kv::{Kv, Tree};
use super::records::{decode, encode};
use super::StoreError;
use serde::{Deserialize, Serialize};

const WHAT: &str = "refresh record";

/// The last successful refresh of one upstream's refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    /// A digest of the configured refresh token (never the token).
    pub token: String,
    /// Unix seconds.
    pub at: u64,
}

/// The refresh records.
#[derive(Clone)]
pub struct Refreshes {
    tree: Tree,
    kv: Kv,
}

impl Refreshes {
    pub(super) fn open(kv: &Kv) -> Result<Refreshes, StoreError> {
        Ok(Refreshes {
            tree: kv.open_tree("oauth_refreshes")?,
            kv: kv.clone(),
        })
    }

    /// The record of `upstream`, if any.
    pub fn get(&self, upstream: &str) -> Result<Option<Refresh>, StoreError> {
        self.tree
            .get(upstream.as_bytes())?
            .map(|raw| decode(&raw, WHAT))
            .transpose()
    }

    /// Records a successful refresh of `upstream`; durable on return.
    pub fn record(&self, upstream: &str, refresh: &Refresh) -> Result<(), StoreError> {
        self.tree.insert(upstream.as_bytes(), encode(refresh)?)?;
        self.kv.flush()
    }
}
