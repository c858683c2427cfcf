//! This node among the nodes sharing one store (only when the store is shared): every
//! `BEAT` it publishes its record (start time, queue depth, its oldest queued messages,
//! for a queue view of every node) and reads whether it was asked to drain. Draining, it
//! accepts no mail (listeners answer `421 4.3.2`), starts no delivery attempt, and hands
//! its queue to the other nodes; otherwise it takes in what draining nodes handed over
//! (`spool::handoff`). It also notices the first ticket another node made, so replies
//! submitted here are threaded from then on.

use crate::spool::{show_id, Spool};
use crate::store::{NodeRecord, QueuedEntry, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often a node publishes its record and looks for work handed over.
const BEAT: Duration = Duration::from_secs(1);
/// Queued messages a node reports to the others.
const QUEUE_SAMPLE: usize = 200;

/// Starts the membership task when the store is shared.
pub fn start(store: &Store, spool: &Arc<Spool>, stop: watch::Receiver<bool>) {
    if !store.is_shared() {
        return;
    }
    let started_at = crate::spool::now_ms() / 1000;
    tokio::spawn(run(store.clone(), spool.clone(), started_at, stop));
}

async fn run(store: Store, spool: Arc<Spool>, started_at: u64, mut stop: watch::Receiver<bool>) {
    let mut draining = false;
    loop {
        match beat(&store, &spool, started_at).await {
            Ok(now) => {
                if now != draining {
                    tracing::warn!(node = %store.node(), draining = now, "node drain state changed");
                    draining = now;
                }
            }
            Err(error) => tracing::warn!(%error, "node membership round failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(BEAT) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One round: publish, follow the drain flag, move messages; whether the node drains.
async fn beat(store: &Store, spool: &Arc<Spool>, started_at: u64) -> Result<bool, String> {
    let record = NodeRecord {
        node: store.node().to_string(),
        started_at,
        seen_at: crate::spool::now_ms() / 1000,
        draining: false,
        queue_depth: spool.len() as u64,
        queue: spool
            .queued(QUEUE_SAMPLE, |_| true)
            .into_iter()
            .map(|m| QueuedEntry {
                id: show_id(m.id),
                pending: m.pending().map(|r| r.address.clone()).collect(),
                mail_from: m.mail_from,
                upstream: m.upstream,
                received_at: m.received_at / 1000,
                attempts: m.attempts,
                next_attempt_at: m.due_at / 1000,
            })
            .collect(),
    };
    let s = store.clone();
    let published = tokio::task::spawn_blocking(move || {
        // Threading of replies starts here once any node made the first ticket.
        s.tickets().look_again()?;
        s.nodes().publish(record)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    spool.pause(published.draining);
    match published.draining {
        true => spool.hand_off(store).await.map_err(|e| e.to_string())?,
        false => spool.take_in(store).await.map_err(|e| e.to_string())?,
    };
    Ok(published.draining)
}
