//! Group commit: many writers wait on one fsync. A single task drains every pending
//! request, flushes the store once on a blocking thread, and wakes all of them with the
//! result. While one flush runs, new requests gather for the next.

use crate::store::Store;
use tokio::sync::{mpsc, oneshot};

type Waiter = oneshot::Sender<Result<(), String>>;

/// Handle to the group-commit task.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl Committer {
    /// Starts the commit task for `store`. It ends when every handle is dropped.
    pub fn start(store: Store) -> Committer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx));
        Committer { tx }
    }

    /// Returns once everything written before the call is on disk.
    pub async fn commit(&self) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(done)
            .map_err(|_| "commit task stopped".to_string())?;
        wait.await.map_err(|_| "commit task stopped".to_string())?
    }
}

async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, 4096).await > 0 {
        let flusher = store.clone();
        let result = tokio::task::spawn_blocking(move || flusher.flush())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()));
        for waiter in batch.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }
}
