//! When each upstream's refresh token was last used with success, and the refresh token in
//! force (tree `oauth_refreshes`: upstream name → record), so that a restart neither
//! forgets how close the provider is to expiring an unused one (`relay::oauth::watch`)
//! nor falls back to the configured token after the provider rotated it (a Microsoft
//! refresh token replaces itself at each use; the configured one, unused since, would
//! expire after 90 days). The record names the configured token by a digest: a new token
//! configured (after re-consent) starts afresh. The token in force is a secret, as the
//! upstreams' own settings in this store are: it is never logged.

use super::kv::{Kv, Tree};
use super::records::{decode, encode};
use super::StoreError;
use serde::{Deserialize, Serialize};

const WHAT: &str = "refresh record";

/// The last successful refresh of one upstream's refresh token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    /// A digest of the configured refresh token (never the token).
    pub token: String,
    /// Unix seconds.
    pub at: u64,
    /// The refresh token in force after that refresh (the provider's rotated one).
    #[serde(default)]
    pub current: Option<String>,
}

impl std::fmt::Debug for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresh")
            .field("token", &self.token)
            .field("at", &self.at)
            .field("current", &self.current.as_ref().map(|_| "[redacted]"))
            .finish()
    }
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
