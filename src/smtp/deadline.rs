//! Deadlines of one SMTP session, after Postfix's `smtpd_per_record_deadline` and
//! `smtpd_min_data_rate`: a time limit bounds a whole unit of work, never a single read, so
//! a client trickling one byte at a time cannot hold a session open.
//!
//! - A command line (or an AUTH answer) must arrive whole within `idle_timeout_secs` of the
//!   moment the server starts waiting for it; writing the replies before it counts too.
//! - DATA and a BDAT chunk start with the same allowance and earn `n / min_data_rate`
//!   seconds more for every `n` octets received, never more than `idle_timeout_secs` ahead
//!   of the last read (credit earned by a fast burst is not kept for a trickle after it).
//! - The session ends at `session_timeout_secs` whatever it is doing: every deadline is
//!   capped by it.
//! - A TLS handshake must end within `idle_timeout_secs` (at most `HANDSHAKE_MAX`).
//!
//! A read or write that runs into a deadline fails with an `io::Error` of kind `TimedOut`
//! carrying `Expired` (which limit); the session turns it into `421 4.4.2`. This module
//! only measures time: it sends nothing.

use super::reply;
use crate::config::Limits;
use crate::metrics::Reject;
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

/// The longest a TLS handshake may take, however long `idle_timeout_secs` is.
pub const HANDSHAKE_MAX: Duration = Duration::from_secs(30);

/// The longest the last reply of a session (a `421`) may take to write; it is written after
/// the deadline that caused it, so it has its own.
pub const LAST_REPLY_MAX: Duration = Duration::from_secs(10);

/// The time limit a session ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A command line, AUTH answer or reply write took longer than `idle_timeout_secs`.
    Idle,
    /// DATA or a BDAT chunk came slower than `min_data_rate`.
    DataRate,
    /// The session lasted `session_timeout_secs`.
    Session,
    /// The TLS handshake did not end in time.
    Handshake,
}

impl Limit {
    /// The limit's name in the `421` reply and the log.
    pub fn reason(self) -> &'static str {
        match self {
            Limit::Idle => "idle timeout",
            Limit::DataRate => "data rate too low",
            Limit::Session => "session time limit exceeded",
            Limit::Handshake => "TLS handshake timeout",
        }
    }

    /// The reason counted in `/metrics`.
    pub fn reject(self) -> Reject {
        match self {
            Limit::Idle => Reject::IdleTimeout,
            Limit::DataRate => Reject::DataRate,
            Limit::Session => Reject::SessionTimeout,
            Limit::Handshake => Reject::HandshakeTimeout,
        }
    }

    /// The final reply (`421 4.4.2`).
    pub fn reply(self) -> &'static str {
        match self {
            Limit::Idle => reply::IDLE_TIMEOUT,
            Limit::DataRate => reply::DATA_RATE,
            Limit::Session => reply::SESSION_TIMEOUT,
            Limit::Handshake => reply::IDLE_TIMEOUT,
        }
    }
}

/// A read or write ran into a deadline.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{}", .0.reason())]
pub struct Expired(pub Limit);

impl From<Expired> for io::Error {
    fn from(expired: Expired) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, expired)
    }
}

/// The limit an I/O error reports, if it is a deadline's.
pub fn expired(error: &io::Error) -> Option<Limit> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Expired>())
        .map(|expired| expired.0)
}

/// One point in time and the limit that set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub at: Instant,
    pub limit: Limit,
}

impl Deadline {
    /// The earlier of two deadlines (the session's wins a tie: it is final).
    fn min(self, other: Deadline) -> Deadline {
        if other.at <= self.at {
            other
        } else {
            self
        }
    }

    /// Runs `work` until it ends or the deadline passes.
    pub async fn run<T>(self, work: impl Future<Output = io::Result<T>>) -> io::Result<T> {
        tokio::time::timeout_at(self.at.into(), work)
            .await
            .map_err(|_| Expired(self.limit))?
    }
}

/// The time limits of one session.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// When the session ends.
    pub session_end: Instant,
    /// How long a command line, an AUTH answer or a write may take.
    pub idle: Duration,
    /// Octets per second DATA and BDAT must keep to (0: only `idle` applies to each read).
    pub min_data_rate: u64,
}

impl Timing {
    /// The timing of a session that ends at `session_end`.
    pub fn new(limits: &Limits, session_end: Instant) -> Timing {
        Timing {
            session_end,
            idle: Duration::from_secs(limits.idle_timeout_secs),
            min_data_rate: limits.min_data_rate,
        }
    }

    fn session(&self) -> Deadline {
        Deadline {
            at: self.session_end,
            limit: Limit::Session,
        }
    }

    /// The deadline of one command line whose wait starts now.
    pub fn line(&self) -> Deadline {
        let idle = Deadline {
            at: Instant::now() + self.idle,
            limit: Limit::Idle,
        };
        idle.min(self.session())
    }

    /// The deadline of a TLS handshake that starts now.
    pub fn handshake(&self) -> Deadline {
        let handshake = Deadline {
            at: Instant::now() + self.idle.min(HANDSHAKE_MAX),
            limit: Limit::Handshake,
        };
        handshake.min(self.session())
    }

    /// The deadline of a DATA payload or a BDAT chunk that starts now.
    pub fn payload(&self) -> Rate {
        Rate {
            timing: *self,
            at: Instant::now() + self.idle,
            limit: Limit::Idle,
        }
    }
}

/// The deadline of a payload, moved on by what it receives.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    timing: Timing,
    at: Instant,
    /// What set `at`: `Idle` when the client was silent for `idle` since its last octets,
    /// `DataRate` when it has not sent enough octets for the time that has passed.
    limit: Limit,
}

impl Rate {
    /// The deadline of the next read.
    pub fn deadline(&self) -> Deadline {
        let own = Deadline {
            at: self.at,
            limit: self.limit,
        };
        own.min(self.timing.session())
    }

    /// Credits `n` octets just received.
    pub fn received(&mut self, n: usize) {
        let now = Instant::now();
        let cap = now + self.timing.idle;
        let earned = match self.timing.min_data_rate {
            0 => cap,
            rate => self.at + credit(n, rate),
        };
        (self.at, self.limit) = match earned < cap {
            true => (earned, Limit::DataRate),
            false => (cap, Limit::Idle),
        };
    }
}

/// The time `n` octets earn at `rate` octets per second.
fn credit(n: usize, rate: u64) -> Duration {
    let nanos = n as u128 * 1_000_000_000 / u128::from(rate);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(rate: u64) -> Timing {
        Timing {
            session_end: Instant::now() + Duration::from_secs(100),
            idle: Duration::from_secs(10),
            min_data_rate: rate,
        }
    }

    #[test]
    fn a_slow_payload_is_cut_by_its_rate() {
        // As if 9 of the 10 idle seconds had passed with nothing received.
        let start = Instant::now() + Duration::from_secs(1);
        let mut rate = Rate {
            at: start,
            ..timing(500).payload()
        };
        rate.received(500);
        let deadline = rate.deadline();
        assert_eq!(deadline.limit, Limit::DataRate);
        assert_eq!(deadline.at, start + Duration::from_secs(1));
    }

    #[test]
    fn credit_never_reaches_beyond_idle() {
        let mut rate = timing(500).payload();
        rate.received(1_000_000);
        let deadline = rate.deadline();
        assert_eq!(deadline.limit, Limit::Idle);
        assert!(deadline.at <= Instant::now() + Duration::from_secs(10));
    }

    #[test]
    fn the_session_end_caps_every_deadline() {
        let t = Timing {
            session_end: Instant::now() + Duration::from_secs(1),
            ..timing(500)
        };
        assert_eq!(t.line().limit, Limit::Session);
        assert_eq!(t.payload().deadline().limit, Limit::Session);
        assert_eq!(t.handshake().limit, Limit::Session);
    }

    #[test]
    fn an_expired_error_names_its_limit() {
        let error: io::Error = Expired(Limit::DataRate).into();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(expired(&error), Some(Limit::DataRate));
        assert_eq!(expired(&io::Error::other("x")), None);
    }
}
