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
use crate::store::{DkimKey, DkimKeys, DkimStatus, StoreError};
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

/// What mail from one domain is signed with.
struct Domain {
    signers: Vec<Arc<Signer>>,
    /// Why one of its active keys did not load: its mail waits instead of leaving with
    /// fewer signatures than the administrator set up.
    broken: Option<String>,
}

/// The active keys, by signing domain.
#[derive(Default)]
pub struct Signers {
    by_domain: ArcSwap<HashMap<String, Domain>>,
    /// Held from reading the store to swapping the set, so the last reload to run is the
    /// one that read the newest keys.
    reloading: std::sync::Mutex<()>,
}

impl Signers {
    pub fn new() -> Signers {
        Signers::default()
    }

    /// Replaces the set with the active keys of the store (blocking: a sled scan).
    pub fn reload(&self, store: &DkimKeys) -> Result<(), StoreError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        self.load(&store.all()?);
        Ok(())
    }

    /// Replaces the set with the active ones of `keys`. A key that does not load is
    /// logged, and its domain's mail waits (`broken`) until it is replaced or deleted.
    fn load(&self, keys: &[DkimKey]) {
        let mut by_domain: HashMap<String, Domain> = HashMap::new();
        for key in keys.iter().filter(|k| k.status == DkimStatus::Active) {
            let domain = by_domain.entry(key.domain.clone()).or_insert(Domain {
                signers: Vec::new(),
                broken: None,
            });
            match Signer::load(key) {
                Ok(signer) => domain.signers.push(Arc::new(signer)),
                Err(error) => {
                    tracing::error!(domain = %key.domain, selector = %key.selector, %error, "DKIM key not loaded; the domain's mail waits");
                    domain.broken = Some(format!("key {}: {error}", key.selector));
                }
            }
        }
        self.by_domain.store(Arc::new(by_domain));
    }

    /// True when no key is active (nothing to sign, nothing to look at).
    pub fn is_empty(&self) -> bool {
        self.by_domain.load().is_empty()
    }

    /// The signers for mail from `domain` (ASCII, any case): its own keys, else those of
    /// its nearest parent domain that has some; an error if one of them did not load.
    pub fn for_domain(&self, domain: &str) -> Result<Option<Vec<Arc<Signer>>>, DkimError> {
        let by_domain = self.by_domain.load();
        let domain = domain.to_ascii_lowercase();
        let mut name = domain.as_str();
        loop {
            if let Some(found) = by_domain.get(name) {
                if let Some(broken) = &found.broken {
                    return Err(DkimError::Key(format!("{name}: {broken}")));
                }
                return Ok(Some(found.signers.clone()));
            }
            let Some((_, parent)) = name.split_once('.') else {
                return Ok(None);
            };
            name = parent;
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
        let Some(domain) = from_domain(data) else {
            return Ok(None);
        };
        let Some(signers) = self.signers.for_domain(&domain)? else {
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

    fn max_message_size(&self) -> Option<usize> {
        self.inner.max_message_size()
    }
}

/// The domain of the message's one `From` mailbox, in ASCII (an internationalised one as
/// its `xn--` form, which is how keys are named).
fn from_domain(data: &[u8]) -> Option<String> {
    let inspected = crate::rewrite::inspect(data).ok()?;
    let (_, domain) = inspected.from.address.rsplit_once('@')?;
    if domain.is_ascii() {
        return Some(domain.to_string());
    }
    let name = hickory_resolver::proto::rr::Name::from_utf8(domain).ok()?;
    Some(name.to_ascii().trim_end_matches('.').to_string())
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
        assert!(signers.is_empty() && signers.for_domain("corp.example").unwrap().is_none());
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
                .unwrap()
                .map(|s| s.iter().map(|s| s.selector.clone()).collect())
        };
        assert_eq!(selectors("corp.example"), Some(vec!["a".to_string()]));
        assert_eq!(selectors("EU.Corp.Example"), Some(vec!["a".to_string()]));
        assert_eq!(selectors("other.example"), None);
        assert_eq!(selectors("example"), None);

        // A damaged active key holds its domain's (and subdomains') mail back.
        let mut damaged = key("corp.example", "d", DkimStatus::Active);
        damaged.private_key = "AAAA".into();
        signers.load(&[key("corp.example", "a", DkimStatus::Active), damaged]);
        assert!(matches!(
            signers.for_domain("eu.corp.example"),
            Err(DkimError::Key(_))
        ));
        assert!(signers.for_domain("other.example").unwrap().is_none());
    }

    #[test]
    fn the_from_domain_is_read_from_the_header_block() {
        let message = b"Subject: x\r\nFrom: Desk <desk@Corp.Example>\r\n\r\nFrom: a@b.c\r\n";
        assert_eq!(from_domain(message).as_deref(), Some("Corp.Example"));
        assert_eq!(from_domain(b"Subject: no from\r\n\r\n"), None);
        let idn = "From: b\u{fc}cher@B\u{fc}cher.example\r\n\r\n".as_bytes();
        assert_eq!(from_domain(idn).as_deref(), Some("xn--bcher-kva.example"));
    }
}
