//! The audit log: one record per change made through the control API (who, what, when,
//! the object before and after, secrets already redacted by the caller). Keyed by a
//! big-endian sequence number, so iteration is chronological and ids never repeat.
//! Append-only: nothing here updates or deletes an entry.

use super::kv::{Batch, Kv, Tree};
use super::{ids::Ids, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Assigned when recorded; increasing.
    #[serde(default)]
    pub id: u64,
    /// Unix seconds.
    pub at: u64,
    /// The user who made the change; `None` for the bootstrap admin token.
    pub actor_id: Option<u64>,
    /// The actor's login, or `admin-token`.
    pub actor: String,
    /// What was done, as `resource.verb` (`user.create`, `account.grants`, …).
    pub action: String,
    /// What it was done to (`user/7`, `role/helpdesk`, `settings`).
    pub target: String,
    /// The object before the change (`None` for a creation).
    pub before: Option<serde_json::Value>,
    /// The object after the change (`None` for a removal).
    pub after: Option<serde_json::Value>,
}

/// Which entries a listing wants.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries with a larger id (paging forward).
    pub after: Option<u64>,
    /// Only entries with a smaller id, newest first (paging backward from the end).
    pub before: Option<u64>,
    pub actor: Option<String>,
    /// An exact action, or a resource prefix such as `user.`.
    pub action: Option<String>,
    pub target: Option<String>,
    pub limit: usize,
}

impl AuditFilter {
    fn admits(&self, entry: &AuditEntry) -> bool {
        self.actor.as_ref().is_none_or(|a| &entry.actor == a)
            && self.action.as_ref().is_none_or(|a| {
                &entry.action == a || (a.ends_with('.') && entry.action.starts_with(a.as_str()))
            })
            && self.target.as_ref().is_none_or(|t| &entry.target == t)
    }
}

/// The audit tree.
#[derive(Clone)]
pub struct Audit {
    ids: Ids,
    tree: Tree,
    kv: Kv,
    /// Held from taking an id to inserting under it, so entries appear in id order and a
    /// reader paging with `after` never skips one that was still being written.
    order: Arc<Mutex<()>>,
}

impl Audit {
    pub(super) fn open(kv: &Kv, ids: Ids) -> Result<Audit, StoreError> {
        Ok(Audit {
            ids,
            tree: kv.open_tree("audit")?,
            kv: kv.clone(),
            order: Arc::default(),
        })
    }

    /// Appends `entry` under a fresh id; durable on return.
    pub fn record(&self, mut entry: AuditEntry) -> Result<AuditEntry, StoreError> {
        {
            let _in_order = self.order.lock().unwrap_or_else(|p| p.into_inner());
            entry.id = self.ids.next()?;
            let raw = serde_json::to_vec(&entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.tree.insert(entry.id.to_be_bytes(), raw)?;
        }
        self.kv.flush()?;
        Ok(entry)
    }

    /// Runs `write` with a batch that appends `entry` (under a fresh id) to the log, so
    /// the change `write` commits and its entry are one transaction; the entry as
    /// recorded. Entries still appear in id order.
    pub(super) fn with_entry<T>(
        &self,
        mut entry: AuditEntry,
        write: impl FnOnce(Batch) -> Result<T, StoreError>,
    ) -> Result<(T, AuditEntry), StoreError> {
        let _in_order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        entry.id = self.ids.next()?;
        let raw = serde_json::to_vec(&entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut batch = Batch::default();
        batch.insert(&self.tree, entry.id.to_be_bytes(), raw);
        Ok((write(batch)?, entry))
    }

    /// Entries in the order they were recorded (newest first with `before`), filtered, at
    /// most `filter.limit`.
    pub fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let start = filter.after.map_or(0, |id| id.saturating_add(1));
        let (to, newest_first) = match filter.before {
            Some(before) if before <= start => return Ok(Vec::new()),
            Some(before) => (Some(before.to_be_bytes()), true),
            None => (None, false),
        };
        let items = self.tree.range(
            &start.to_be_bytes(),
            to.as_ref().map(|t| &t[..]),
            newest_first,
            usize::MAX,
        )?;
        let mut found = Vec::new();
        for (_, raw) in items {
            let entry: AuditEntry = serde_json::from_slice(&raw)
                .map_err(|e| StoreError::Corrupt(format!("audit entry: {e}")))?;
            if filter.admits(&entry) {
                found.push(entry);
                if found.len() >= filter.limit {
                    break;
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn entry(actor: &str, action: &str) -> AuditEntry {
        AuditEntry {
            id: 0,
            at: 1,
            actor_id: None,
            actor: actor.into(),
            action: action.into(),
            target: "user/1".into(),
            before: None,
            after: Some(serde_json::json!({"login": "a"})),
        }
    }

    #[test]
    fn entries_come_back_in_order_filtered_and_paged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let audit = store.audit();
        let first = audit.record(entry("root", "user.create")).unwrap();
        let second = audit.record(entry("bob", "role.create")).unwrap();
        let third = audit.record(entry("root", "user.update")).unwrap();
        assert!(first.id < second.id && second.id < third.id);
        let all = |f: AuditFilter| audit.list(&AuditFilter { limit: 10, ..f }).unwrap();
        let ids = |v: Vec<AuditEntry>| v.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(
            ids(all(AuditFilter::default())),
            [first.id, second.id, third.id]
        );
        let by_root = AuditFilter {
            actor: Some("root".into()),
            ..Default::default()
        };
        assert_eq!(ids(all(by_root)), [first.id, third.id]);
        let users = AuditFilter {
            action: Some("user.".into()),
            ..Default::default()
        };
        assert_eq!(ids(all(users)), [first.id, third.id]);
        let page = AuditFilter {
            after: Some(first.id),
            limit: 1,
            ..Default::default()
        };
        assert_eq!(ids(audit.list(&page).unwrap()), [second.id]);
        let newest = AuditFilter {
            before: Some(third.id),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(ids(audit.list(&newest).unwrap()), [second.id, first.id]);
        drop(store);
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(
            reopened
                .audit()
                .list(&AuditFilter {
                    limit: 10,
                    ..Default::default()
                })
                .unwrap()
                .len(),
            3
        );
    }
}
