//! One scope's state (an upstream as a whole, or one account on it): deliveries under
//! way, the sliding windows of what started, and a pause after the provider throttled.

use super::window::Window;
use crate::config::limits::SendLimits;
use tokio::time::{Duration, Instant};

/// A slot comes back this long after the window: the provider counts when the message
/// reaches it, a little after Postern counted it.
const SLACK: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60).saturating_add(SLACK);
const DAY: Duration = Duration::from_secs(24 * 3600).saturating_add(SLACK);
/// The longest pause a repeated throttling reply doubles up to.
pub const MAX_PAUSE: Duration = Duration::from_secs(15 * 60);

/// What one delivery asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// A connection (a request) for the delivery's duration.
    pub connection: bool,
    /// Transactions (a message split in several counts each).
    pub messages: u32,
    pub rcpts: u32,
}

/// Which limit a delivery waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Connections,
    MessagesPerMinute,
    MessagesPerDay,
    RecipientsPerDay,
    Throttled,
}

impl Kind {
    /// The `reason_kind` label of `postern_queue_waiting`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Connections => "connections",
            Kind::MessagesPerMinute => "messages_per_minute",
            Kind::MessagesPerDay => "messages_per_day",
            Kind::RecipientsPerDay => "recipients_per_day",
            Kind::Throttled => "throttled",
        }
    }

    /// The limit as a person reads it: `30 messages/minute`.
    pub fn describe(self, limit: u32) -> String {
        match self {
            Kind::Connections => format!("{limit} connections"),
            Kind::MessagesPerMinute => format!("{limit} messages/minute"),
            Kind::MessagesPerDay => format!("{limit} messages/day"),
            Kind::RecipientsPerDay => format!("{limit} recipients/day"),
            Kind::Throttled => "throttled by the provider".to_string(),
        }
    }
}

/// Why a delivery cannot start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub kind: Kind,
    pub limit: u32,
    /// When it may; `None`: once a connection is released.
    pub until: Option<Instant>,
}

/// One scope's state.
#[derive(Debug, Default)]
pub struct Bucket {
    /// Deliveries under way.
    pub in_use: u32,
    minute: Window,
    day_messages: Window,
    day_rcpts: Window,
    paused_until: Option<Instant>,
    /// The provider's last throttling reply.
    pub throttle_reply: String,
    /// The pause the next throttling reply brings (zero: the first one).
    next_pause: Duration,
}

impl Bucket {
    /// `Ok` if `ask` fits `limits` at `now`.
    pub fn check(&mut self, limits: &SendLimits, ask: &Ask, now: Instant) -> Result<(), Blocked> {
        if let Some(until) = self.paused_until {
            if until > now {
                return Err(Blocked {
                    kind: Kind::Throttled,
                    limit: 0,
                    until: Some(until),
                });
            }
            self.paused_until = None;
        }
        if let (true, Some(max)) = (ask.connection, limits.connections) {
            if self.in_use >= max {
                return Err(Blocked {
                    kind: Kind::Connections,
                    limit: max,
                    until: None,
                });
            }
        }
        let windows = [
            (
                &mut self.minute,
                MINUTE,
                limits.messages_per_minute,
                ask.messages,
                Kind::MessagesPerMinute,
            ),
            (
                &mut self.day_messages,
                DAY,
                limits.messages_per_day,
                ask.messages,
                Kind::MessagesPerDay,
            ),
            (
                &mut self.day_rcpts,
                DAY,
                limits.recipients_per_day,
                ask.rcpts,
                Kind::RecipientsPerDay,
            ),
        ];
        for (window, span, limit, n, kind) in windows {
            if let Some(max) = limit {
                window.room(now, span, max, n).map_err(|at| Blocked {
                    kind,
                    limit: max,
                    until: Some(at),
                })?;
            }
        }
        Ok(())
    }

    /// Takes what `ask` asks for (after `check` said it fits).
    pub fn take(&mut self, limits: &SendLimits, ask: &Ask, now: Instant) {
        if ask.connection {
            self.in_use += 1;
        }
        if limits.messages_per_minute.is_some() {
            self.minute.add(now, ask.messages);
        }
        if limits.messages_per_day.is_some() {
            self.day_messages.add(now, ask.messages);
        }
        if limits.recipients_per_day.is_some() {
            self.day_rcpts.add(now, ask.rcpts);
        }
    }

    /// Pauses after a throttling reply: for `wait` when the provider said, else for the
    /// next step of the doubling pause (from `first` up to `MAX_PAUSE`). Returns the pause
    /// and whether the scope was not paused already (to log once per pause).
    pub fn pause(
        &mut self,
        now: Instant,
        wait: Option<Duration>,
        first: Duration,
        reply: &str,
    ) -> (Duration, bool) {
        let fresh = self.paused_until.is_none_or(|until| until <= now);
        let pause = match wait {
            Some(wait) => wait.min(MAX_PAUSE),
            None if !fresh => return (self.paused_until.map_or(first, |u| u - now), false),
            None => {
                let pause = match self.next_pause.is_zero() {
                    true => first,
                    false => self.next_pause,
                };
                self.next_pause = (pause * 2).min(MAX_PAUSE);
                pause
            }
        };
        let until = now + pause;
        self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
        self.throttle_reply = reply.chars().take(200).collect();
        (pause, fresh)
    }

    /// Whether the next throttling pause is the first step.
    pub fn at_first_step(&self) -> bool {
        self.next_pause.is_zero()
    }

    /// Mail got through: the next throttling pause starts from the first step again.
    pub fn succeeded(&mut self) {
        self.next_pause = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SendLimits {
        SendLimits {
            connections: Some(2),
            messages_per_minute: Some(30),
            messages_per_day: None,
            recipients_per_day: Some(100),
            recipients_per_message: Some(10),
        }
    }

    const ONE: Ask = Ask {
        connection: true,
        messages: 1,
        rcpts: 1,
    };

    #[test]
    fn connections_are_counted_until_released() {
        let (mut b, now) = (Bucket::default(), Instant::now());
        for _ in 0..2 {
            b.check(&limits(), &ONE, now).unwrap();
            b.take(&limits(), &ONE, now);
        }
        let blocked = b.check(&limits(), &ONE, now).unwrap_err();
        assert_eq!((blocked.kind, blocked.until), (Kind::Connections, None));
        b.in_use -= 1;
        assert!(b.check(&limits(), &ONE, now).is_ok());
    }

    #[test]
    fn recipients_per_day_wait_for_the_day_to_slide() {
        let (mut b, now) = (Bucket::default(), Instant::now());
        let big = Ask {
            connection: false,
            messages: 1,
            rcpts: 90,
        };
        b.take(&limits(), &big, now);
        let blocked = b.check(&limits(), &big, now).unwrap_err();
        assert_eq!(blocked.kind, Kind::RecipientsPerDay);
        assert_eq!(blocked.until, Some(now + DAY));
        assert_eq!(DAY, Duration::from_secs(86_401));
        assert_eq!(Kind::RecipientsPerDay.describe(100), "100 recipients/day");
    }

    #[test]
    fn a_pause_doubles_while_throttling_repeats_and_resets_on_success() {
        let (mut b, now) = (Bucket::default(), Instant::now());
        let first = Duration::from_secs(60);
        assert_eq!(b.pause(now, None, first, "432 4.3.2"), (first, true));
        // more replies of the same pause: not a new pause
        assert!(!b.pause(now, None, first, "432 4.3.2").1);
        assert_eq!(
            b.check(&limits(), &ONE, now).unwrap_err().kind,
            Kind::Throttled
        );
        let later = now + first;
        assert!(b.check(&limits(), &ONE, later).is_ok());
        assert_eq!(b.pause(later, None, first, "x"), (first * 2, true));
        let much_later = later + MAX_PAUSE;
        for _ in 0..6 {
            b.pause(much_later + MAX_PAUSE * 10, None, first, "x");
        }
        assert!(b.next_pause <= MAX_PAUSE);
        b.succeeded();
        let (pause, _) = b.pause(much_later + MAX_PAUSE * 100, None, first, "x");
        assert_eq!(pause, first);
        let (pause, _) = b.pause(now, Some(Duration::from_secs(7)), first, "429");
        assert_eq!(pause, Duration::from_secs(7));
    }
}
