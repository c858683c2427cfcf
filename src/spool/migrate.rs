//! Moving messages out of the spool format of earlier versions (three kinds of record in
//! the store's `spool` tree: `m` + id metadata, `d` + id bytes, `q` + due + id) into the
//! journal. Each message is written to the journal durably before the old tree is dropped,
//! so a crash during the move delivers a message twice at worst, never loses it.

use super::{Meta, Spool, SpoolError};

const LEGACY_TREE: &str = "spool";

/// Moves every message of the legacy tree into `spool`'s journal, then drops the tree.
pub async fn from_sled(spool: &Spool) -> Result<(), SpoolError> {
    let Some(tree) = spool.store.existing_tree(LEGACY_TREE)? else {
        return Ok(());
    };
    let mut moved = 0usize;
    for (key, raw) in tree.scan_prefix(b"m")? {
        let meta: Meta = serde_json::from_slice(&raw)
            .map_err(|e| SpoolError::Corrupt(format!("{key:?}"), e.to_string()))?;
        let mut data_key = key.to_vec();
        data_key[0] = b'd';
        let Some(data) = tree.get(&data_key)? else {
            tracing::error!(queue_id = %super::show_id(meta.id), "legacy spool message without bytes: skipped");
            continue;
        };
        if spool.journal.meta(meta.id).is_none() {
            spool.put(&meta, &data).await?;
            moved += 1;
        }
    }
    spool.store.drop_tree(LEGACY_TREE)?;
    tracing::info!(moved, "moved the spool into the journal");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QueueConfig;
    use crate::metrics::Metrics;
    use crate::spool::{Rcpt, RcptStatus};
    use crate::store::Store;

    fn legacy_key(prefix: u8, id: u64) -> Vec<u8> {
        let mut key = vec![prefix];
        key.extend_from_slice(&id.to_be_bytes());
        key
    }

    #[tokio::test]
    async fn messages_of_the_old_spool_tree_move_into_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let tree = store.tree(LEGACY_TREE).unwrap();
        let meta = Meta {
            id: 42,
            mail_from: "a@b.example".into(),
            rcpts: vec![Rcpt {
                address: "c@d.example".into(),
                status: RcptStatus::Pending,
                last_reply: None,
            }],
            upstream: "u".into(),
            principal: None,
            smtputf8: false,
            eight_bit: false,
            is_dsn: false,
            size: 5,
            received_at: 1,
            attempts: 3,
            due_at: 7,
            expires_at: u64::MAX,
            verdicts: None,
            keep: None,
        };
        tree.insert(legacy_key(b'm', 42), serde_json::to_vec(&meta).unwrap())
            .unwrap();
        tree.insert(legacy_key(b'd', 42), &b"hello"[..]).unwrap();
        drop(tree);
        let open = |store: Store| {
            let path = dir.path().join("spool");
            async move {
                Spool::open(store, &path, Metrics::new(), QueueConfig::default())
                    .await
                    .unwrap()
                    .0
            }
        };
        let spool = open(store.clone()).await;
        assert_eq!(spool.due(u64::MAX, 10), vec![42]);
        let (moved, data) = spool.load(42).unwrap().unwrap();
        assert_eq!((moved, data), (meta, b"hello".to_vec()));
        assert!(store.existing_tree(LEGACY_TREE).unwrap().is_none());
        drop(spool);
        // A second start finds the message in the journal only, once.
        let spool = open(store).await;
        assert_eq!(spool.len(), 1);
    }
}
