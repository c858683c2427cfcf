//! A newly queued message on its way to the delivery worker, with its bytes kept in memory
//! for the first attempt while they fit a budget (`BUDGET`, each message counted at its
//! length plus `OVERHEAD`): the worker then neither reads the journal back nor allocates
//! and copies the body again. Past the budget (an upstream slower than the intake) only the
//! id travels and the worker reads the journal as it does for retries.
//!
//! The journal stays the only durable copy; this is a cache with a size limit.

use super::meta::QueueId;
use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Memory held for first attempts, at most (64 MiB).
pub const BUDGET: usize = 64 * 1024 * 1024;
/// What a held message costs besides its length: the receive buffer it lives in has up to
/// 8 KiB of headroom and 16 KiB of spare capacity, so many small messages are counted at
/// what they really hold, not at their length.
pub const OVERHEAD: usize = 32 * 1024;

/// A message the worker has not tried yet.
pub struct Fresh {
    pub id: QueueId,
    pub body: Option<Held>,
}

/// Message bytes counted against the budget until dropped.
pub struct Held {
    bytes: Bytes,
    budget: Arc<AtomicUsize>,
}

impl Held {
    /// Keeps `bytes` if the budget (`used`, at most `BUDGET`) has room for them.
    pub fn try_new(bytes: Bytes, used: &Arc<AtomicUsize>) -> Option<Held> {
        let len = bytes.len() + OVERHEAD;
        used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
            (now + len <= BUDGET).then_some(now + len)
        })
        .ok()?;
        Some(Held {
            bytes,
            budget: used.clone(),
        })
    }

    /// The message bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget
            .fetch_sub(self.bytes.len() + OVERHEAD, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_bounds_what_is_held_and_is_given_back_on_drop() {
        let used = Arc::new(AtomicUsize::new(0));
        let half = Bytes::from(vec![0u8; BUDGET / 2 - OVERHEAD]);
        let a = Held::try_new(half.clone(), &used).expect("fits");
        let b = Held::try_new(half.clone(), &used).expect("fits exactly");
        assert!(Held::try_new(Bytes::from_static(b"x"), &used).is_none());
        drop(a);
        assert_eq!(used.load(Ordering::Acquire), BUDGET / 2);
        assert!(Held::try_new(Bytes::from_static(b"x"), &used).is_some());
        drop(b);
        assert_eq!(used.load(Ordering::Acquire), 0);
    }
}
