//! Failed console logins counted per login name and per client IP in a fixed 15-minute
//! window: past `max_failed_logins` in either, further attempts are refused (429) until
//! the window ends, before any password is checked, so a guessing run costs the server
//! nothing and gets nowhere. A successful login clears its name's count.
//!
//! In memory: a restart forgets the counts, which gives an attacker at most one more
//! window per restart.

use dashmap::DashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a window lasts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Entries kept before expired ones are swept (bounds memory under a spray of names).
const SWEEP_AT: usize = 10_000;

/// What is being counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Login(String),
    Ip(IpAddr),
}

/// The failure counts.
#[derive(Debug)]
pub struct Limiter {
    max: u32,
    failures: DashMap<Key, (Instant, u32)>,
}

impl Limiter {
    /// Refuses after `max` failures per window.
    pub fn new(max: u32) -> Limiter {
        Limiter {
            max,
            failures: DashMap::new(),
        }
    }

    /// How long until `login` from `ip` may try again; `None`: it may now.
    pub fn blocked(&self, login: &str, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        [Key::Login(login.to_lowercase()), Key::Ip(ip)]
            .iter()
            .filter_map(|key| {
                let entry = self.failures.get(key)?;
                let (start, count) = *entry;
                let left = WINDOW.checked_sub(now.duration_since(start))?;
                (count >= self.max).then_some(left)
            })
            .max()
    }

    /// Counts a failed attempt of `login` from `ip`.
    pub fn failed(&self, login: &str, ip: IpAddr) {
        let now = Instant::now();
        if self.failures.len() >= SWEEP_AT {
            self.failures
                .retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        for key in [Key::Login(login.to_lowercase()), Key::Ip(ip)] {
            let mut entry = self.failures.entry(key).or_insert((now, 0));
            if now.duration_since(entry.0) >= WINDOW {
                *entry = (now, 0);
            }
            entry.1 += 1;
        }
    }

    /// Forgets `login`'s failures after it logged in.
    pub fn succeeded(&self, login: &str) {
        self.failures.remove(&Key::Login(login.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_max_failures_by_name_or_ip() {
        let limiter = Limiter::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        limiter.failed("Alice", a);
        assert!(limiter.blocked("alice", a).is_none());
        limiter.failed("alice", b);
        // Two failures for the name, from two addresses: the name is blocked everywhere.
        assert!(limiter
            .blocked("alice", "192.0.2.3".parse().unwrap())
            .is_some());
        assert!(limiter.blocked("bob", a).is_none());
        limiter.failed("carol", a);
        // Two failures from `a` (alice, carol): any name from `a` is blocked.
        assert!(limiter.blocked("dave", a).is_some());
        limiter.succeeded("alice");
        assert!(limiter
            .blocked("alice", "192.0.2.3".parse().unwrap())
            .is_none());
    }
}
