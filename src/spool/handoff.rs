//! Draining: a node asked to drain hands its queued messages to the other nodes sharing
//! its store, and takes in what draining nodes hand over.
//!
//! Handing over: no attempt runs meanwhile (the spool's delivery gate is held, and the
//! worker starts none while the spool is paused); each message — its envelope with the
//! recipients' states and attempt count, and its bytes — is written to the shared store
//! durably, and only then taken out of this spool. Taking in: a node takes a handed-over
//! message under a lease, writes it into its own spool durably (a new queue id there; the
//! bytes, and so the Message-ID, unchanged), and only then removes it from the store.
//!
//! So a crash on either side loses nothing; it can deliver a message twice (a crash
//! after the write and before the removal on either side): at least once, never lost.

use super::{encode, now_ms, show_id, Meta, Spool, SpoolError};
use crate::store::Store;
use std::time::Duration;

/// How long a node holds a handed-over message it is taking in.
const TAKE_LEASE: Duration = Duration::from_secs(60);
/// Messages taken in per round.
const TAKE_BATCH: usize = 64;

impl Spool {
    /// Stops (or resumes) new delivery attempts on this node.
    pub fn pause(&self, paused: bool) {
        self.paused
            .store(paused, std::sync::atomic::Ordering::Release);
    }

    /// Whether new delivery attempts are stopped.
    pub fn is_paused(&self) -> bool {
        self.paused.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Hands every queued message to the other nodes through `store`; how many. Call
    /// after `pause(true)`.
    pub async fn hand_off(&self, store: &Store) -> Result<usize, SpoolError> {
        let _no_attempts = self.gate.write().await;
        let node = store.node().to_string();
        let mut moved = 0;
        for meta in self.queued(usize::MAX, |_| true) {
            let id = show_id(meta.id);
            let Some((meta, data)) = self.load(meta.id)? else {
                continue;
            };
            let json = encode(&meta)?;
            let (nodes, node_name, key) = (store.nodes().clone(), node.clone(), id.clone());
            tokio::task::spawn_blocking(move || nodes.hand_off(&node_name, &key, &json, &data))
                .await
                .map_err(|e| SpoolError::Flush(e.to_string()))??;
            self.finish(meta.id, false);
            tracing::info!(queue_id = %id, "handed to the other nodes (draining)");
            moved += 1;
        }
        if moved > 0 {
            self.sync().await?;
        }
        Ok(moved)
    }

    /// Takes in messages other nodes handed over; how many.
    pub async fn take_in(&self, store: &Store) -> Result<usize, SpoolError> {
        let (taker, found) = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                let node = store.node().to_string();
                let found = store.nodes().handed_off(&node, TAKE_BATCH)?;
                Ok::<_, crate::store::StoreError>((node, found))
            })
            .await
            .map_err(|e| SpoolError::Flush(e.to_string()))??
        };
        let mut taken = 0;
        for handed in found {
            let lease = format!("handoff/{}", handed.key);
            let (s, l, t) = (store.clone(), lease.clone(), taker.clone());
            let mine = tokio::task::spawn_blocking(move || s.lease(&l, &t, TAKE_LEASE))
                .await
                .map_err(|e| SpoolError::Flush(e.to_string()))??;
            if !mine {
                continue;
            }
            // Another node may have taken it (and released its lease) since the list was
            // read: only a message still waiting under this node's lease is taken.
            let (s, key, l, t) = (
                store.clone(),
                handed.key.clone(),
                lease.clone(),
                taker.clone(),
            );
            let waiting = tokio::task::spawn_blocking(move || {
                let waiting = s.nodes().is_waiting(&key)?;
                if !waiting {
                    s.release(&l, &t)?;
                }
                Ok::<_, crate::store::StoreError>(waiting)
            })
            .await
            .map_err(|e| SpoolError::Flush(e.to_string()))??;
            if !waiting {
                continue;
            }
            let mut meta: Meta = serde_json::from_slice(&handed.meta)
                .map_err(|e| SpoolError::Corrupt(handed.key.clone(), e.to_string()))?;
            let origin = show_id(meta.id);
            meta.id = self.new_id()?;
            meta.due_at = meta.due_at.min(now_ms());
            self.put(&meta, &handed.data).await?;
            let (s, key, t) = (store.clone(), handed.key.clone(), taker.clone());
            tokio::task::spawn_blocking(move || {
                s.nodes().taken(&key)?;
                s.release(&lease, &t)
            })
            .await
            .map_err(|e| SpoolError::Flush(e.to_string()))??;
            tracing::info!(queue_id = %show_id(meta.id), from = %handed.origin, was = %origin, "took over a message of a draining node");
            taken += 1;
        }
        Ok(taken)
    }
}
