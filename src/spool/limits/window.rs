//! A sliding window: how much was started in the last `span`, and when enough of it will
//! have left for more. Marks are kept only for the limits that apply (a day of messages at
//! 30 a minute is 43,200 marks of 16 bytes).

use std::collections::VecDeque;
use tokio::time::{Duration, Instant};

/// What was started in a window, oldest first.
#[derive(Debug, Default)]
pub struct Window {
    marks: VecDeque<(Instant, u32)>,
    total: u64,
}

impl Window {
    /// Forgets what started `span` or longer before `now`.
    fn expire(&mut self, now: Instant, span: Duration) {
        while let Some(&(at, n)) = self.marks.front() {
            if at + span > now {
                break;
            }
            self.marks.pop_front();
            self.total -= u64::from(n);
        }
    }

    /// `Ok` if `n` more fit under `limit` in the `span` ending at `now`; else the instant
    /// they will. An empty window takes anything (a request larger than the limit would
    /// otherwise never go).
    pub fn room(
        &mut self,
        now: Instant,
        span: Duration,
        limit: u32,
        n: u32,
    ) -> Result<(), Instant> {
        self.expire(now, span);
        let (limit, n) = (u64::from(limit), u64::from(n));
        if self.total == 0 || self.total + n <= limit {
            return Ok(());
        }
        let mut left = self.total;
        for &(at, k) in &self.marks {
            left -= u64::from(k);
            if left == 0 || left + n <= limit {
                return Err(at + span);
            }
        }
        Err(now + span)
    }

    /// Records `n` started at `now`.
    pub fn add(&mut self, now: Instant, n: u32) {
        if n > 0 {
            self.marks.push_back((now, n));
            self.total += u64::from(n);
        }
    }

    /// Nothing started within the window (once expired at `now`).
    #[cfg(test)]
    pub fn is_empty(&mut self, now: Instant, span: Duration) -> bool {
        self.expire(now, span);
        self.marks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_full_window_opens_when_its_oldest_mark_leaves() {
        let t0 = Instant::now();
        let mut w = Window::default();
        for i in 0..3 {
            let at = t0 + Duration::from_secs(i * 10);
            assert_eq!(w.room(at, MINUTE, 3, 1), Ok(()));
            w.add(at, 1);
        }
        let at = t0 + Duration::from_secs(30);
        assert_eq!(w.room(at, MINUTE, 3, 1), Err(t0 + MINUTE));
        // two more need the second mark gone too
        assert_eq!(w.room(at, MINUTE, 3, 2), Err(t0 + Duration::from_secs(70)));
        assert_eq!(w.room(t0 + MINUTE, MINUTE, 3, 1), Ok(()));
        assert!(!w.is_empty(t0 + MINUTE, MINUTE));
        assert!(w.is_empty(t0 + Duration::from_secs(80), MINUTE));
    }

    #[test]
    fn an_empty_window_takes_more_than_the_limit_once() {
        let t0 = Instant::now();
        let mut w = Window::default();
        assert_eq!(w.room(t0, MINUTE, 10, 25), Ok(()));
        w.add(t0, 25);
        assert_eq!(w.room(t0, MINUTE, 10, 1), Err(t0 + MINUTE));
    }
}
