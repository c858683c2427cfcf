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
    let store = &catalog.store;
    let busy = store
        .backups()
        .all()?
        .iter()
        .any(|b| matches!(b.status, BackupStatus::Pending | BackupStatus::Running));
    if busy {
        return Ok(0);
    }
    let mut expired: Vec<ArchivedMessage> = Vec::new();
    let mut remaining: HashMap<u32, usize> = HashMap::new();
    for message in store.archive().all() {
        let message = message?;
        let seg = message.extent.seg;
        let ended = message.expires_at.is_some_and(|at| at <= now);
        if ended && catalog.spool.is_retired(seg) {
            expired.push(message);
        } else {
            *remaining.entry(seg).or_default() += 1;
        }
    }
    if expired.is_empty() {
        return Ok(0);
    }
    store.archive().remove(&expired)?;
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
