//! Warnings: what does not stop mail yet but will, or what fails beside it — a refresh
//! token refused or close to its provider's inactivity expiry, a client secret or
//! certificate near its end date, sent copies that cannot be filed. Each one makes the
//! accounts it concerns `degraded` in `/api/v1/accounts/{id}/status` (with the reason and
//! the date it fails), sets `postern_account_warning{subject,kind}` to 1 (0 once cleared)
//! and logs one warning line when it appears or its text changes.
//!
//! A warning is about an upstream (every account delivering through it) or one account.
//! They are kept in memory by the node that saw them: each node checks its own
//! credentials and copies, and says again what it sees after a restart.

use crate::metrics::Metrics;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What a warning is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// Every account delivering through this upstream.
    Upstream(String),
    /// One account, by id.
    Account(u64),
}

impl Subject {
    fn label(&self) -> String {
        match self {
            Subject::Upstream(name) => format!("upstream:{name}"),
            Subject::Account(id) => format!("account:{id}"),
        }
    }
}

/// One warning as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Warning {
    /// `refresh_token_refused`, `refresh_token_expiry`, `secret_expiry`,
    /// `certificate_expiry`, `sent_copy`, …
    pub kind: String,
    /// What is wrong and what to do, for an administrator.
    pub message: String,
    /// When mail stops (Unix seconds), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fails_at: Option<u64>,
    /// Since when it has been seen (Unix seconds).
    pub since: u64,
}

/// The warnings in force on this node.
pub struct Warnings {
    current: Mutex<BTreeMap<(Subject, String), Warning>>,
    metrics: Option<Arc<Metrics>>,
}

impl Warnings {
    /// Warnings exported as metrics on `metrics` (none: not exported, for tests).
    pub fn new(metrics: Option<Arc<Metrics>>) -> Arc<Warnings> {
        Arc::new(Warnings {
            current: Mutex::new(BTreeMap::new()),
            metrics,
        })
    }

    /// Raises (or updates) the warning `kind` about `subject`; logged when new or changed.
    pub fn raise(&self, subject: Subject, kind: &str, message: String, fails_at: Option<u64>) {
        let key = (subject, kind.to_string());
        let mut current = self.current.lock().expect("warnings lock");
        let changed = current
            .get(&key)
            .is_none_or(|w| w.message != message || w.fails_at != fails_at);
        if !changed {
            return;
        }
        let since = current
            .get(&key)
            .map(|w| w.since)
            .unwrap_or_else(|| crate::spool::now_ms() / 1000);
        tracing::warn!(subject = %key.0.label(), kind, fails_at, "{message}");
        if let Some(metrics) = &self.metrics {
            metrics.account_warning(&key.0.label(), kind, 1.0);
        }
        let warning = Warning {
            kind: kind.to_string(),
            message,
            fails_at,
            since,
        };
        current.insert(key, warning);
    }

    /// Clears the warning `kind` about `subject`, if raised.
    pub fn clear(&self, subject: &Subject, kind: &str) {
        let key = (subject.clone(), kind.to_string());
        let removed = self.current.lock().expect("warnings lock").remove(&key);
        if removed.is_some() {
            tracing::info!(subject = %subject.label(), kind, "warning cleared");
            if let Some(metrics) = &self.metrics {
                metrics.account_warning(&subject.label(), kind, 0.0);
            }
        }
    }

    /// The warnings about account `id` delivering through `upstream`, soonest failure first.
    pub fn about(&self, id: u64, upstream: &str) -> Vec<Warning> {
        let current = self.current.lock().expect("warnings lock");
        let mut found: Vec<Warning> = current
            .iter()
            .filter(|((subject, _), _)| match subject {
                Subject::Upstream(name) => name == upstream,
                Subject::Account(account) => *account == id,
            })
            .map(|(_, w)| w.clone())
            .collect();
        found.sort_by_key(|w| w.fails_at.unwrap_or(u64::MAX));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_concerns_its_upstreams_accounts_or_its_account_until_cleared() {
        let warnings = Warnings::new(None);
        let up = Subject::Upstream("m365".into());
        warnings.raise(
            up.clone(),
            "secret_expiry",
            "secret ends".into(),
            Some(2_000),
        );
        warnings.raise(Subject::Account(7), "sent_copy", "no APPEND".into(), None);
        assert_eq!(warnings.about(7, "m365").len(), 2);
        assert_eq!(warnings.about(7, "m365")[0].kind, "secret_expiry");
        assert_eq!(warnings.about(8, "m365").len(), 1);
        assert!(warnings.about(8, "other").is_empty());
        warnings.clear(&up, "secret_expiry");
        assert_eq!(warnings.about(8, "m365").len(), 0);
    }
}
