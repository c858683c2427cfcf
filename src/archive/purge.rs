//! The purge job: messages whose retention ended leave the catalog, and their journal
//! records are punched out of the retired segments (a segment left with nothing is
//! deleted). A message still in a live journal segment waits until that segment retires;
//! nothing is purged while a backup job is pending or running (it may still read them).

use super::{ArchiveError, Catalog};
use crate::store::{ArchivedMessage, BackupStatus};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;

/// Runs the purge every `purge_interval_secs` until `stop`.
pub async fn run(catalog: Catalog, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(catalog.config.purge_interval_secs);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let work = catalog.clone();
        let now = crate::spool::now_ms();
        match tokio::task::spawn_blocking(move || purge(&work, now)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(messages = n, "archive retention ended; purged"),
            Ok(Err(error)) => tracing::error!(%error, "archive purge failed"),
            Err(error) => tracing::error!(%error, "archive purge task failed"),
        }
    }
}

/// Purges what retention ended at `now` (Unix ms); returns how many messages. Blocking.
pub fn purge(catalog: &Catalog, now: u64) -> Result<usize, ArchiveError> {
    let _no_reader = catalog.reading();
    let store = &catalog.store;
    let busy = store
        .backups()
        .all()?
        .iter()
        .any(|b| matches!(b.status, BackupStatus::Pending | BackupStatus::Running));
    if busy {
        return Ok(0);
    }
    // Each node purges the messages whose bytes lie in its own journal.
    let node = store.node();
    let ended = |m: &ArchivedMessage| {
        m.is_on(node)
            && m.expires_at.is_some_and(|at| at <= now)
            && catalog.spool.is_retired(m.extent.seg)
    };
    let mut expired: Vec<ArchivedMessage> = Vec::new();
    let mut remaining: HashMap<u32, usize> = HashMap::new();
    for batch in store.archive().batches() {
        let (seq, messages) = batch?;
        let (gone, left): (Vec<_>, Vec<_>) = messages.iter().cloned().partition(|m| ended(m));
        for message in left.iter().filter(|m| m.is_on(node)) {
            *remaining.entry(message.extent.seg).or_default() += 1;
        }
        if !gone.is_empty() {
            store.archive().replace(seq, &messages, &left)?;
            expired.extend(gone);
        }
    }
    if expired.is_empty() {
        return Ok(0);
    }
    store.archive().flush()?;
    let mut emptied: Vec<u32> = Vec::new();
    for message in &expired {
        let e = message.extent;
        if !remaining.contains_key(&e.seg) {
            if !emptied.contains(&e.seg) {
                catalog.spool.forget_kept(e.seg, 0, 0, true)?;
                emptied.push(e.seg);
            }
            continue;
        }
        catalog
            .spool
            .forget_kept(e.seg, e.record_start, e.offset + e.len, false)?;
    }
    Ok(expired.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ArchiveConfig, QueueConfig};
    use crate::policy::Policy;
    use crate::spool::{Envelope, Keep, Spool, ARCHIVE_DIR};
    use crate::store::Store;

    const DAY_MS: u64 = 86_400_000;

    fn envelope(owner: u64) -> Envelope {
        Envelope {
            mail_from: "lee@help.example".into(),
            rcpts: vec!["ann@customer.example".into()],
            upstream: "local".into(),
            principal: None,
            smtputf8: false,
            eight_bit: false,
            is_dsn: false,
            verdicts: None,
            keep: Some(Keep {
                owners: vec![owner],
                account: None,
            }),
        }
    }

    #[tokio::test]
    async fn retention_ends_in_the_catalog_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let policy = Policy::load(store.clone(), "local").unwrap();
        let spool_dir = dir.path().join("spool");
        let metrics = crate::metrics::Metrics::new();
        let (spool, _fresh) = Spool::open_with(
            store.clone(),
            &spool_dir,
            metrics,
            QueueConfig::default(),
            2048,
        )
        .await
        .unwrap();
        let mut kept = spool.kept_messages().unwrap();
        let config = ArchiveConfig {
            complete_days: 1,
            ..ArchiveConfig::default()
        };
        let catalog = Catalog {
            store: store.clone(),
            spool: spool.clone(),
            policy,
            config,
            readers: Default::default(),
        };
        // Twenty kept messages across several small segments, then one more to move the
        // journal past them.
        for n in 1..=21u64 {
            let id = spool.new_id().unwrap();
            let body = format!("Subject: kept {n}\r\n\r\n{}\r\n", "x".repeat(300));
            spool
                .enqueue(id, envelope(7), body.into_bytes().into())
                .await
                .unwrap();
            assert!(spool.finish(id, true));
        }
        spool.sync().await.unwrap();
        let mut batch = Vec::new();
        while let Ok(k) = kept.try_recv() {
            batch.push(k);
        }
        assert_eq!(batch.len(), 21);
        catalog.record(batch).unwrap();
        let retired = crate::spool::journal_segments(&spool_dir.join(ARCHIVE_DIR));
        assert!(retired >= 2, "segments retired: {retired}");
        let all = store.archive().all().unwrap();
        assert_eq!(all.len(), 21);
        let expires = all[0].expires_at.unwrap();
        assert_eq!(expires, all[0].received_at + DAY_MS);

        assert_eq!(purge(&catalog, expires - 1).unwrap(), 0, "not yet");
        let purged = purge(&catalog, expires + 5 * DAY_MS).unwrap();
        let left = store.archive().all().unwrap();
        assert_eq!(purged + left.len(), 21);
        assert!(purged > 0);
        // What is left lies in segments not retired yet; the retired ones are gone.
        for message in &left {
            assert!(!spool.is_retired(message.extent.seg));
        }
        assert_eq!(
            crate::spool::journal_segments(&spool_dir.join(ARCHIVE_DIR)),
            0
        );
        assert!(store.archive().of_user(7).unwrap().len() == left.len());
    }
}
