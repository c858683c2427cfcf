//! `postern store copy`: moves an installation's control state from one store into an
//! empty other one (sled into PostgreSQL), tree by tree, in batches, then verifies that
//! every tree holds as many records on both sides. Ids keep their values, and the target
//! hands out new ids only above the source's. Run it with the gateway stopped (sled's
//! lock refuses a second opener anyway). The Message-ID registry's runs are files of this
//! node (`data_dir/store/message-ids`) and stay where they are.

use super::{Store, StoreError};

/// Records written per transaction.
const BATCH: usize = 500;

/// How many records one tree held, on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub tree: String,
    pub records: usize,
}

/// Copies every record of `from` into `to`, which must hold none but its settings; the
/// counts per tree, verified equal on both sides.
pub fn copy(from: &Store, to: &Store) -> Result<Vec<Copied>, StoreError> {
    // Opening a store writes its schema version in `settings`: that alone is empty.
    if to.kv.tree_names()?.iter().any(|t| t != "settings") {
        return Err(StoreError::Conflict(
            "records in the target store (copy only into an empty one)".into(),
        ));
    }
    let mut copied = Vec::new();
    for name in from.kv.tree_names()? {
        let source = from.kv.open_tree(&name)?;
        let target = to.kv.open_tree(&name)?;
        let mut batch = super::kv::Batch::default();
        let mut pending = 0;
        for pair in source.scan_prefix_paged(b"", BATCH) {
            let (key, value) = pair?;
            batch.insert(&target, key, value);
            pending += 1;
            if pending == BATCH {
                to.kv.commit(std::mem::take(&mut batch), &[])?;
                pending = 0;
            }
        }
        to.kv.commit(batch, &[])?;
        let (had, has) = (source.len()?, target.len()?);
        if had != has {
            return Err(StoreError::Corrupt(format!(
                "tree {name}: {had} records in the source, {has} in the target"
            )));
        }
        copied.push(Copied {
            tree: name,
            records: has,
        });
    }
    to.kv.ids_above(from.next_id()?)?;
    to.kv.flush()?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BlockEntry, BlockKind, NewUser};

    #[test]
    fn every_record_is_copied_and_new_ids_stay_above_the_source() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let from = Store::open(a.path()).unwrap();
        let user = from
            .users()
            .create(
                NewUser {
                    login: "ann".into(),
                    email: "ann@example.com".into(),
                    ..NewUser::default()
                },
                1,
            )
            .unwrap();
        from.blocklist()
            .add(&BlockEntry {
                entry: "spam.example".into(),
                kind: BlockKind::Domain,
                reason: String::new(),
                created_at: 1,
                created_by: "root".into(),
            })
            .unwrap();
        let to = Store::open(b.path()).unwrap();
        let copied = copy(&from, &to).unwrap();
        assert!(copied.iter().any(|c| c.tree == "users" && c.records == 1));
        assert_eq!(to.users().by_login("ann").unwrap().unwrap().id, user.id);
        assert_eq!(to.blocklist().all().unwrap().len(), 1);
        assert!(to.next_id().unwrap() > user.id);
        let again = copy(&from, &to).unwrap_err();
        assert!(matches!(again, StoreError::Conflict(_)), "{again}");
    }
}
