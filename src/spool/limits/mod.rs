//! Sending limits, enforced where the worker hands a message to its upstream: for each
//! account (mailbox: the envelope sender, per upstream) and for the upstream as a whole,
//! deliveries under way at once (connections, or requests) and sliding windows of
//! messages a minute, messages a day and recipients a day (`config::limits`).
//!
//! A delivery asks for its slot (`admit`: a connection, its transactions, its recipients)
//! and gets either a `Grant` — its rate slots taken at once, its connection given back
//! when the grant is dropped — or a `Wait`: when it may go (or "when a connection is
//! released", `notify`) and why, as the queue listing shows it. A provider's throttling
//! reply (`throttle`) pauses the account (`pause`): for the time the provider asked, else
//! 60 seconds doubling while it repeats up to 15 minutes, back to the first step once mail
//! gets through.
//!
//! - `window` — a sliding window of what started.
//! - `bucket` — one scope's state: connections, windows, pause.
//! - `throttle` — the providers' throttling replies.
//! - `board` — the messages waiting and why (API, metric).
//!
//! An upstream without limits costs one look at an atomic: no lock, no map.

mod board;
mod bucket;
mod throttle;
mod window;

pub use board::Board;
pub use bucket::{Ask, Kind};
pub use throttle::is_throttling;

use crate::config::limits::UpstreamLimits;
use bucket::{Blocked, Bucket};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

/// The sending limits' state on this node.
pub struct Limiter {
    shared: Arc<Shared>,
    /// The first pause after a throttling reply that named no wait.
    first_pause: Duration,
}

struct Shared {
    scopes: Mutex<HashMap<String, Scope>>,
    /// Woken when a connection is given back.
    released: Notify,
    /// The instant `paused_until_ms` counts from.
    base: Instant,
    /// Some scope may be paused until this many ms after `base`.
    paused_until_ms: AtomicU64,
    /// Scopes whose next pause is not the first step (they reset on success).
    stepped: AtomicUsize,
}

/// An upstream's state: as a whole, and per account (the envelope sender, lower-cased).
#[derive(Default)]
struct Scope {
    whole: Bucket,
    accounts: HashMap<String, Bucket>,
}

/// Why a delivery waits, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub kind: Kind,
    /// As the queue shows it: `waiting: 30 messages/minute for support@contoso.com`.
    pub reason: String,
    /// When it may go; `None`: when a connection is released (`Limiter::notify`).
    pub until: Option<Instant>,
}

/// A delivery's slot: its connection is given back on drop.
pub struct Grant {
    held: Option<Held>,
}

impl Grant {
    /// The slot of a delivery no limit applies to.
    pub fn free() -> Grant {
        Grant { held: None }
    }
}

struct Held {
    shared: Arc<Shared>,
    upstream: String,
    account: String,
}

fn unlimited(limits: &UpstreamLimits) -> bool {
    *limits == UpstreamLimits::default()
}

impl Limiter {
    /// No state yet; throttling pauses start at `first_pause`.
    pub fn new(first_pause: Duration) -> Limiter {
        Limiter {
            shared: Arc::new(Shared {
                scopes: Mutex::default(),
                released: Notify::new(),
                base: Instant::now(),
                paused_until_ms: AtomicU64::new(0),
                stepped: AtomicUsize::new(0),
            }),
            first_pause,
        }
    }

    /// Notified when a connection is given back: create the `notified()` future before
    /// `admit`, and wait on it after a `Wait` without `until`.
    pub fn notify(&self) -> &Notify {
        &self.shared.released
    }

    /// A slot for `ask` on `upstream` for `account` under `limits`, or why not yet.
    pub fn admit(
        &self,
        limits: &UpstreamLimits,
        upstream: &str,
        account: &str,
        ask: Ask,
    ) -> Result<Grant, Wait> {
        self.admit_at(Instant::now(), limits, upstream, account, ask)
    }

    /// `admit` at `now`.
    fn admit_at(
        &self,
        now: Instant,
        limits: &UpstreamLimits,
        upstream: &str,
        account: &str,
        ask: Ask,
    ) -> Result<Grant, Wait> {
        if unlimited(limits) && !self.maybe_paused(now) {
            return Ok(Grant { held: None });
        }
        let account = &account.to_ascii_lowercase();
        let mut scopes = self.shared.lock();
        let scope = scope(&mut scopes, upstream);
        let mine = account_bucket(&mut scope.accounts, account);
        let blocked = match mine.check(&limits.per_account, &ask, now) {
            Err(blocked) => Some((blocked, account.to_string(), mine.throttle_reply.clone())),
            Ok(()) => match scope.whole.check(&limits.per_upstream, &ask, now) {
                Err(blocked) => {
                    let reply = scope.whole.throttle_reply.clone();
                    Some((blocked, format!("upstream {upstream}"), reply))
                }
                Ok(()) => None,
            },
        };
        if let Some((blocked, whom, reply)) = blocked {
            return Err(wait(blocked, &whom, &reply));
        }
        scope.whole.take(&limits.per_upstream, &ask, now);
        account_bucket(&mut scope.accounts, account).take(&limits.per_account, &ask, now);
        Ok(Grant {
            held: ask.connection.then(|| Held {
                shared: self.shared.clone(),
                upstream: upstream.to_string(),
                account: account.to_string(),
            }),
        })
    }

    /// The provider throttled `account` on `upstream` (`reply`): it waits `wait` (as the
    /// provider asked) or the next step of the doubling pause. Returns the pause when it
    /// is a new one (to log once per pause).
    pub fn pause(
        &self,
        upstream: &str,
        account: &str,
        wait: Option<Duration>,
        reply: &str,
    ) -> Option<Duration> {
        self.pause_at(Instant::now(), upstream, account, wait, reply)
    }

    /// `pause` at `now`.
    fn pause_at(
        &self,
        now: Instant,
        upstream: &str,
        account: &str,
        wait: Option<Duration>,
        reply: &str,
    ) -> Option<Duration> {
        let account = &account.to_ascii_lowercase();
        let mut scopes = self.shared.lock();
        let bucket = account_bucket(&mut scope(&mut scopes, upstream).accounts, account);
        let first_step = bucket.at_first_step();
        let (pause, fresh) = bucket.pause(now, wait, self.first_pause, reply);
        if first_step && !bucket.at_first_step() {
            self.shared.stepped.fetch_add(1, Ordering::AcqRel);
        }
        let until = (now + pause).duration_since(self.shared.base).as_millis() as u64;
        self.shared
            .paused_until_ms
            .fetch_max(until.saturating_add(1), Ordering::AcqRel);
        fresh.then_some(pause)
    }

    /// Mail of `account` got through `upstream`: its next throttling pause is the first
    /// step again. No lock unless some account's pause has doubled.
    pub fn succeeded(&self, upstream: &str, account: &str) {
        if self.shared.stepped.load(Ordering::Acquire) == 0 {
            return;
        }
        let account = account.to_ascii_lowercase();
        let mut scopes = self.shared.lock();
        let Some(bucket) = scopes
            .get_mut(upstream)
            .and_then(|s| s.accounts.get_mut(&account))
        else {
            return;
        };
        if !bucket.at_first_step() {
            bucket.succeeded();
            self.shared.stepped.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Whether a delivery on an upstream with `limits` is granted without a look at the
    /// state: no limit, and no pause in force anywhere (the hot path).
    pub fn is_free(&self, limits: &UpstreamLimits) -> bool {
        unlimited(limits)
            && (self.shared.paused_until_ms.load(Ordering::Acquire) == 0
                || !self.maybe_paused(Instant::now()))
    }

    /// Whether some scope may still be paused at `now`.
    fn maybe_paused(&self, now: Instant) -> bool {
        let until = self.shared.paused_until_ms.load(Ordering::Acquire);
        until > 0 && now.duration_since(self.shared.base).as_millis() as u64 <= until
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Scope>> {
        self.scopes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn scope<'a>(scopes: &'a mut HashMap<String, Scope>, upstream: &str) -> &'a mut Scope {
    if !scopes.contains_key(upstream) {
        scopes.insert(upstream.to_string(), Scope::default());
    }
    scopes.get_mut(upstream).expect("just inserted")
}

fn account_bucket<'a>(accounts: &'a mut HashMap<String, Bucket>, account: &str) -> &'a mut Bucket {
    if !accounts.contains_key(account) {
        accounts.insert(account.to_string(), Bucket::default());
    }
    accounts.get_mut(account).expect("just inserted")
}

fn wait(blocked: Blocked, whom: &str, reply: &str) -> Wait {
    let whom = match whom {
        "" => "<>",
        whom => whom,
    };
    let mut reason = format!(
        "waiting: {} for {whom}",
        blocked.kind.describe(blocked.limit)
    );
    if blocked.kind == Kind::Throttled && !reply.is_empty() {
        reason.push_str(&format!(" ({reply})"));
    }
    Wait {
        kind: blocked.kind,
        reason,
        until: blocked.until,
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        {
            let mut scopes = held.shared.lock();
            if let Some(scope) = scopes.get_mut(&held.upstream) {
                scope.whole.in_use = scope.whole.in_use.saturating_sub(1);
                if let Some(bucket) = scope.accounts.get_mut(&held.account) {
                    bucket.in_use = bucket.in_use.saturating_sub(1);
                }
            }
        }
        held.shared.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests;
