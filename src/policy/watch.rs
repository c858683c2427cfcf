//! Keeps the policy snapshot current when other nodes share the store: a thread waits on
//! the store's change counter (woken by the database's notifications, and polling, so a
//! change is seen within a second either way) and rebuilds the snapshot when it moves,
//! so SMTP sessions decide from memory and never wait on the network. While the database
//! cannot be reached the snapshot in force stays, and `postern_policy_snapshot_age_seconds`
//! grows.

use super::Policy;
use crate::metrics::Metrics;
use crate::store::Store;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long one wait on the counter lasts (the age metric's resolution).
const WAIT: Duration = Duration::from_millis(500);
/// Pause after the store failed, before trying again.
const BACKOFF: Duration = Duration::from_secs(1);

/// Starts the watcher when the store is shared (one node needs none: its own writes
/// reach its snapshot directly). It ends soon after `policy` is dropped.
pub fn spawn(policy: &Arc<Policy>, store: Store, metrics: Arc<Metrics>) -> std::io::Result<()> {
    if !store.is_shared() {
        return Ok(());
    }
    let policy = Arc::downgrade(policy);
    std::thread::Builder::new()
        .name("postern-policy-watch".into())
        .spawn(move || run(policy, store, metrics))?;
    Ok(())
}

fn run(policy: Weak<Policy>, store: Store, metrics: Arc<Metrics>) {
    let mut seen = None;
    let mut current_at = Instant::now();
    while let Some(policy) = policy.upgrade() {
        match step(&policy, &store, seen) {
            Ok(now) => {
                seen = Some(now);
                current_at = Instant::now();
            }
            Err(error) => {
                tracing::warn!(%error, "cannot follow the shared store's changes; the policy snapshot in force stays");
                drop(policy);
                std::thread::sleep(BACKOFF);
            }
        }
        metrics.snapshot_age.set(current_at.elapsed().as_secs_f64());
    }
}

/// Waits for the counter to move from `seen`, rebuilds if it did; the counter the
/// snapshot now matches.
fn step(policy: &Policy, store: &Store, seen: Option<u64>) -> Result<u64, String> {
    let now = match seen {
        Some(seen) => store.wait_change(seen, WAIT),
        None => store.changes(),
    }
    .map_err(|e| e.to_string())?;
    if seen != Some(now) {
        policy.rebuild().map_err(|e| e.to_string())?;
        tracing::debug!(
            changes = now,
            "policy snapshot rebuilt after a change in the shared store"
        );
    }
    Ok(now)
}
