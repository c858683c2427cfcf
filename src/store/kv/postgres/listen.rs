//! Waking waiters when another node changes control state: a connection of its own (not
//! pooled) runs `LISTEN postern_changes`; every notification carries the change counter
//! the notifying transaction committed. The connection is made again (each second) when
//! it drops; notifications sent meanwhile are lost, so the counter is read again after
//! each `LISTEN`, and waiters poll it too (`POLL`).

use super::connect::Target;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How often a waiter reads the counter itself.
pub(super) const POLL: Duration = Duration::from_millis(250);

/// How long the listener waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

/// The latest change counter seen, and the waiters on it.
#[derive(Default)]
pub(super) struct Latest {
    counter: Mutex<u64>,
    moved: Condvar,
}

impl Latest {
    /// Records counter `n` (counters only grow) and wakes the waiters.
    pub(super) fn publish(&self, n: u64) {
        let mut counter = self.counter.lock().unwrap_or_else(|p| p.into_inner());
        if n > *counter {
            *counter = n;
            self.moved.notify_all();
        }
    }

    /// Blocks until a counter above `seen` is published or `timeout` passes.
    pub(super) fn wait_above(&self, seen: u64, timeout: Duration) {
        let counter = self.counter.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .moved
            .wait_timeout_while(counter, timeout, |n| *n <= seen)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// Listens for ever (until the runtime stops), publishing into `latest`.
pub(super) async fn listen(target: Target, latest: std::sync::Arc<Latest>) {
    let mut reported = false;
    loop {
        let (notices, mut received) = tokio::sync::mpsc::unbounded_channel();
        match target.connect(notices).await {
            Ok((client, task)) => {
                match client.batch_execute("LISTEN postern_changes").await {
                    Ok(()) => {
                        reported = false;
                        let read = "SELECT counter FROM postern_changes";
                        if let Ok(row) = client.query_one(read, &[]).await {
                            latest.publish(row.get::<_, i64>(0) as u64);
                        }
                        while let Some(payload) = received.recv().await {
                            if let Ok(n) = payload.parse() {
                                latest.publish(n);
                            }
                        }
                    }
                    Err(error) => report(&mut reported, &error.to_string()),
                }
                task.abort();
            }
            Err(error) => report(&mut reported, &error.to_string()),
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// Logs the first failure of a run of them.
fn report(reported: &mut bool, error: &str) {
    if !*reported {
        tracing::warn!(%error, "store: the LISTEN connection failed; polling until it is back");
        *reported = true;
    }
}
