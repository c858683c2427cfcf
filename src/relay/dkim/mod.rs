//! DKIM signing of outgoing mail (SPEC §5): `Signing` wraps an `smtp` or `mx` upstream and
//! adds one `DKIM-Signature` per active key of the message's `From` domain (or of the
//! nearest parent domain that has keys) before handing the message on. The message it
//! signs is the rewritten one the spool holds, so `d=` aligns with the `From` the sender
//! is allowed to use. Never wraps `microsoft365` or `google`, which sign themselves.
//!
//! Signing runs on the blocking pool (an RSA-2048 signature is CPU work), once per
//! attempt; with no active key at all nothing is read, a domain without keys costs one
//! header scan. `keys` makes and publishes keys;
//! `Signers` holds the active ones, reloaded when the API changes them.

pub mod keys;

use super::{BoxFuture, Deliver, ErrorKind, Outgoing, RcptOutcome, RelayError, Retry, Side};
use crate::store::{DkimKey, DkimStatus};
use arc_swap::ArcSwap;
use keys::Signer;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a key could not be made, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("DKIM key: {0}")]
    Key(String),
    #[error("DKIM signing failed: {0}")]
    Sign(String),
    #[error("DKIM signing task failed: {0}")]
    Task(String),
}

/// The active keys, by signing domain.
#[derive(Default)]
pub struct Signers {
    by_domain: ArcSwap<HashMap<String, Vec<Arc<Signer>>>>,
}

impl Signers {
    pub fn new() -> Signers {
        Signers::default()
    }

    /// Replaces the set with the active ones of `keys`. A key that does not load is left
    /// out and logged (its domain is then signed with its other keys, if any).
    pub fn load(&self, keys: &[DkimKey]) {
        let mut by_domain: HashMap<String, Vec<Arc<Signer>>> = HashMap::new();
        for key in keys.iter().filter(|k| k.status == DkimStatus::Active) {
            match Signer::load(key) {
                Ok(signer) => by_domain
                    .entry(key.domain.clone())
                    .or_default()
                    .push(Arc::new(signer)),
                Err(error) => {
                    tracing::error!(domain = %key.domain, selector = %key.selector, %error, "DKIM key not loaded; not signing with it")
                }
            }
        }
        self.by_domain.store(Arc::new(by_domain));
    }

    /// True when no key is active (nothing to sign, nothing to look at).
    pub fn is_empty(&self) -> bool {
        self.by_domain.load().is_empty()
    }

    /// The signers for mail from `domain`: its own keys, else those of its nearest parent
    /// domain that has some.
    pub fn for_domain(&self, domain: &str) -> Option<Vec<Arc<Signer>>> {
        let by_domain = self.by_domain.load();
        let domain = domain.to_ascii_lowercase();
        let mut name = domain.as_str();
        loop {
            if let Some(signers) = by_domain.get(name) {
                return Some(signers.clone());
            }
            name = name.split_once('.')?.1;
        }
    }
}

/// An upstream whose messages are signed first.
pub struct Signing {
    inner: Arc<dyn Deliver>,
    signers: Arc<Signers>,
}

impl Signing {
    pub fn new(inner: Arc<dyn Deliver>, signers: Arc<Signers>) -> Signing {
        Signing { inner, signers }
    }

    /// The signature fields for `data`, none when its domain has no keys.
    async fn signatures(&self, data: &[u8]) -> Result<Option<String>, DkimError> {
        if self.signers.is_empty() {
            return Ok(None);
        }
        let Some(signers) = from_domain(data).and_then(|d| self.signers.for_domain(&d)) else {
            return Ok(None);
        };
        let data = data.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut fields = String::new();
            for signer in &signers {
                fields.push_str(&signer.sign(&data)?);
            }
            Ok(Some(fields))
        })
        .await
        .map_err(|e| DkimError::Task(e.to_string()))?
    }
}

impl Deliver for Signing {
    fn deliver<'a>(
        &'a self,
        msg: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Vec<RcptOutcome>, RelayError>> {
        Box::pin(async move {
            let fields = self.signatures(msg.data).await.map_err(|error| {
                // Mail of a domain that has keys never leaves unsigned: it waits.
                RelayError::new(
                    ErrorKind::Protocol,
                    Side::Local,
                    Retry::Later,
                    error.to_string(),
                )
            })?;
            let Some(fields) = fields else {
                return self.inner.deliver(msg).await;
            };
            let mut signed = Vec::with_capacity(fields.len() + msg.data.len());
            signed.extend_from_slice(fields.as_bytes());
            signed.extend_from_slice(msg.data);
            let out = Outgoing {
                data: &signed,
                ..*msg
            };
            self.inner.deliver(&out).await
        })
    }

    fn judges_account(&self) -> bool {
        self.inner.judges_account()
    }
}

/// The domain of the message's one `From` mailbox.
fn from_domain(data: &[u8]) -> Option<String> {
    let inspected = crate::rewrite::inspect(data).ok()?;
    let (_, domain) = inspected.from.address.rsplit_once('@')?;
    Some(
        domain
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DkimAlgorithm;

    fn key(domain: &str, selector: &str, status: DkimStatus) -> DkimKey {
        keys::test_key(domain, selector, DkimAlgorithm::Ed25519, status)
    }

    #[test]
    fn only_active_keys_sign_and_parents_cover_subdomains() {
        let signers = Signers::new();
        assert!(signers.is_empty() && signers.for_domain("corp.example").is_none());
        signers.load(&[
            key("corp.example", "a", DkimStatus::Active),
            key("corp.example", "p", DkimStatus::Pending),
            key("corp.example", "r", DkimStatus::Retired),
            key("other.example", "o", DkimStatus::Pending),
        ]);
        assert!(!signers.is_empty());
        let selectors = |d: &str| -> Option<Vec<String>> {
            signers
                .for_domain(d)
                .map(|s| s.iter().map(|s| s.selector.clone()).collect())
        };
        assert_eq!(selectors("corp.example"), Some(vec!["a".to_string()]));
        assert_eq!(selectors("EU.Corp.Example"), Some(vec!["a".to_string()]));
        assert_eq!(selectors("other.example"), None);
        assert_eq!(selectors("example"), None);
    }

    #[test]
    fn the_from_domain_is_read_from_the_header_block() {
        let message = b"Subject: x\r\nFrom: Desk <desk@Corp.Example>\r\n\r\nFrom: a@b.c\r\n";
        assert_eq!(from_domain(message).as_deref(), Some("Corp.Example"));
        assert_eq!(from_domain(b"Subject: no from\r\n\r\n"), None);
    }
}
