//! Group commit: many writers wait on one sync. One dedicated thread drains every pending
//! request, flushes the store once, and wakes all of them with the result. While one flush
//! runs, new requests gather for the next.
//!
//! The thread is long-lived (not a `spawn_blocking` per batch), so a commit costs one
//! wake-up of that thread and one of each waiter, not a trip through the blocking pool.
//!
//! `commit_soon` is for writes whose loss at a crash is harmless but that should not stay
//! volatile for long (a delivered message's removal: losing it means one more delivery,
//! which at-least-once allows). They ride along with the next real commit, or are flushed
//! after `LAZY_WINDOW` when none comes.

use crate::store::Store;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), String>>;

/// Longest a `commit_soon` write waits for a real commit to ride along with.
const LAZY_WINDOW: Duration = Duration::from_millis(200);

enum Request {
    Wait(Waiter),
    Soon,
}

/// Handle to the group-commit thread.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Request>,
}

impl Committer {
    /// Starts the commit thread for `store`. It ends when every handle is dropped.
    pub fn start(store: Store) -> Committer {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("postern-commit".into())
            .spawn(move || run(store, rx));
        if let Err(error) = spawned {
            // Without the thread every commit fails with "commit thread stopped": the
            // sessions answer 451 and nothing is acknowledged that is not durable.
            tracing::error!(%error, "cannot start the group-commit thread");
        }
        Committer { tx }
    }

    /// Returns once everything written before the call is on disk.
    pub async fn commit(&self) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request::Wait(done))
            .map_err(|_| "commit thread stopped".to_string())?;
        wait.await
            .map_err(|_| "commit thread stopped".to_string())?
    }

    /// Asks for everything written so far to become durable soon, without waiting.
    pub fn commit_soon(&self) {
        let _ = self.tx.send(Request::Soon);
    }
}

fn run(store: Store, rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(64);
    while let Ok(first) = rx.recv() {
        collect(first, &mut batch);
        rx.try_iter().for_each(|r| collect(r, &mut batch));
        if batch.is_empty() {
            // Only lazy writes so far: give a real commit the chance to carry them.
            if let Ok(next) = rx.recv_timeout(LAZY_WINDOW) {
                collect(next, &mut batch);
                rx.try_iter().for_each(|r| collect(r, &mut batch));
            }
        }
        let result = store.flush().map_err(|e| e.to_string());
        if let Err(error) = &result {
            tracing::error!(%error, "group commit failed");
        }
        for waiter in batch.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }
}

fn collect(request: Request, batch: &mut Vec<Waiter>) {
    if let Request::Wait(waiter) = request {
        batch.push(waiter);
    }
}
