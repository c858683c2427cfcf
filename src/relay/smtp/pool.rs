//! Idle connections of one upstream, kept for reuse (at most `pool_size`, each for at most
//! `pool_idle_secs`).
//!
//! The lock is a `std::sync::Mutex` held only to push or pop; it is never held across an
//! `.await`. Expired connections are dropped when met, and by a small reaper task that ends
//! by itself once the upstream is dropped.

use super::conn::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

/// The idle connections of one upstream.
pub(crate) struct Pool {
    shared: Arc<Idle>,
    reaper_started: AtomicBool,
}

struct Idle {
    conns: Mutex<Vec<Connection>>,
    max: usize,
    max_idle: Duration,
}

impl Idle {
    fn lock(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A panic elsewhere cannot leave a Vec of connections inconsistent.
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes expired connections; they are closed after the lock is released.
    fn take_expired(&self) -> Vec<Connection> {
        let mut conns = self.lock();
        let keep_from = conns
            .iter()
            .position(|conn| conn.idle_since.elapsed() < self.max_idle)
            .unwrap_or(conns.len());
        conns.drain(..keep_from).collect()
    }
}

impl Pool {
    /// A pool keeping at most `max` connections, each idle at most `max_idle`.
    pub(crate) fn new(max: usize, max_idle: Duration) -> Self {
        Pool {
            shared: Arc::new(Idle {
                conns: Mutex::new(Vec::with_capacity(max.min(64))),
                max,
                max_idle,
            }),
            reaper_started: AtomicBool::new(false),
        }
    }

    /// False when the configuration keeps no connection for reuse (`pool_size = 0` or
    /// `pool_idle_secs = 0`): then every message gets a connection of its own.
    pub(crate) fn keeps_any(&self) -> bool {
        self.shared.max > 0 && !self.shared.max_idle.is_zero()
    }

    /// The most recently used idle connection that has not expired.
    pub(crate) fn take(&self) -> Option<Connection> {
        drop(self.shared.take_expired());
        self.shared.lock().pop()
    }

    /// Keeps `conn` for reuse if there is room; otherwise it is closed.
    pub(crate) fn put(&self, mut conn: Connection) {
        if !self.keeps_any() {
            return;
        }
        conn.idle_since = std::time::Instant::now();
        let expired = self.shared.take_expired();
        let overflow = {
            let mut conns = self.shared.lock();
            if conns.len() < self.shared.max {
                conns.push(conn);
                None
            } else {
                Some(conn)
            }
        };
        drop((expired, overflow));
        self.start_reaper();
    }

    /// Starts, once, the task that closes connections idle for too long.
    fn start_reaper(&self) {
        if self.reaper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Idle> = Arc::downgrade(&self.shared);
        let period = (self.shared.max_idle / 2).max(Duration::from_millis(500));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(idle) = weak.upgrade() else { break };
                drop(idle.take_expired());
            }
        });
    }
}
