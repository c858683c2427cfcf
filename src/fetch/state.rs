//! The fetch state of one mailbox (`store::FetchState`) as the sessions use it: read (and
//! started afresh when the settings now name another server, login or folder), written
//! (synced) before anything is acknowledged at the server, and the set-aside list with
//! its backoff: the first retry after a minute, doubling up to six hours.

use super::supervise::Job;
use super::FetchError;
use crate::store::{FetchState, SetAside};

const FIRST_RETRY_SECS: u64 = 60;
const LAST_RETRY_SECS: u64 = 6 * 3600;

impl Job {
    /// The mailbox's state (a fresh one for new settings).
    pub async fn state(&self) -> Result<FetchState, FetchError> {
        let store = self.store.clone();
        let id = self.account.id;
        let source = self
            .account
            .fetch_source()
            .unwrap_or_else(|| self.fetch.source());
        let stored = tokio::task::spawn_blocking(move || store.fetch_states().get(id))
            .await
            .map_err(|e| FetchError::Store(e.to_string()))??;
        Ok(match stored {
            Some(state) if state.source == source => state,
            _ => FetchState {
                source,
                since: super::now(),
                ..FetchState::default()
            },
        })
    }

    /// Writes the mailbox's state; durable on return. Updates the set-aside count shown.
    pub async fn save(&self, state: &FetchState) -> Result<(), FetchError> {
        let store = self.store.clone();
        let id = self.account.id;
        let owned = state.clone();
        tokio::task::spawn_blocking(move || store.fetch_states().put(id, &owned))
            .await
            .map_err(|e| FetchError::Store(e.to_string()))??;
        self.status
            .set_aside(self.account.id, &self.account.name, state.set_aside.len());
        Ok(())
    }
}

/// Records that message `key` failed for `reason` (again): it is tried again later.
pub fn set_aside(state: &mut FetchState, key: &str, reason: &str, now: u64) {
    match state.set_aside.iter_mut().find(|s| s.key == key) {
        Some(entry) => {
            entry.attempts += 1;
            entry.reason = reason.to_string();
            entry.next_try = now + retry_after(entry.attempts);
        }
        None => state.set_aside.push(SetAside {
            key: key.to_string(),
            reason: reason.to_string(),
            attempts: 1,
            since: now,
            next_try: now + retry_after(1),
            move_to: None,
        }),
    }
}

/// The set-aside messages due for another try (or asked to be moved) at `now`.
pub fn due(state: &FetchState, now: u64) -> Vec<SetAside> {
    state
        .set_aside
        .iter()
        .filter(|s| s.next_try <= now || s.move_to.is_some())
        .cloned()
        .collect()
}

/// Seconds until the next set-aside message is due, if any.
pub fn next_due(state: &FetchState, now: u64) -> Option<u64> {
    state
        .set_aside
        .iter()
        .map(|s| s.next_try.saturating_sub(now))
        .min()
}

/// Forgets set-aside message `key` (read at last, or moved away).
pub fn forget(state: &mut FetchState, key: &str) {
    state.set_aside.retain(|s| s.key != key);
}

fn retry_after(attempts: u32) -> u64 {
    FIRST_RETRY_SECS
        .saturating_mul(1 << attempts.saturating_sub(1).min(20))
        .min(LAST_RETRY_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_aside_message_is_retried_later_and_later() {
        let mut state = FetchState::default();
        set_aside(&mut state, "7", "no From", 1000);
        assert_eq!(state.set_aside[0].next_try, 1060);
        assert!(due(&state, 1059).is_empty());
        assert_eq!(due(&state, 1060).len(), 1);
        set_aside(&mut state, "7", "no From", 1060);
        assert_eq!(state.set_aside[0].next_try, 1180);
        assert_eq!(state.set_aside[0].attempts, 2);
        for _ in 0..30 {
            set_aside(&mut state, "7", "no From", 2000);
        }
        assert_eq!(state.set_aside[0].next_try, 2000 + LAST_RETRY_SECS);
        assert_eq!(next_due(&state, 2000), Some(LAST_RETRY_SECS));
        forget(&mut state, "7");
        assert!(state.set_aside.is_empty());
    }
}
