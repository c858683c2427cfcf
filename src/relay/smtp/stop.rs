//! Envelopes that ride along. While a message on a pipelining connection waits for its
//! `354`, the connection is an open *stop*: one more delivery to the same upstream may
//! board it instead of taking a connection of its own. The leader then writes the rider's
//! MAIL, RCPT and DATA in the same write as its own data and final dot (RFC 2920 §3.1:
//! commands may follow the end of data), and once its final reply is in, hands the
//! connection, with the rider's replies still to read, and its connection slot to the
//! rider. Messages that queue up for one upstream then cost one write and one read each on
//! both ends instead of two.
//!
//! A rider whose envelope the leader does not send (the leader's transaction failed or
//! carries no data) is declined and goes the usual way. A rider whose envelope was sent
//! but whose connection then fails has failed on a reused connection before MAIL FROM was
//! accepted, which is retried once on a fresh connection like any other. An upstream
//! configured to reuse no connection (`pool_size` or `pool_idle_secs` 0) opens no stops.

use super::conn::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

/// A delivery waiting at a stop: its envelope, and where its connection will come.
pub(crate) struct Rider {
    pub(crate) envelope: Boarding,
    handoff: oneshot::Sender<Ride>,
}

/// What a rider gets: the connection its envelope was sent on, and its connection slot.
pub(crate) struct Ride {
    pub(crate) conn: Connection,
    pub(crate) slot: Option<OwnedSemaphorePermit>,
}

/// The envelope of a delivery about to board.
pub(crate) struct Boarding {
    /// Queue id, for the log.
    pub(crate) id: String,
    pub(crate) mail_from: String,
    pub(crate) rcpts: Vec<String>,
    pub(crate) smtputf8: bool,
    pub(crate) eight_bit: bool,
}

impl Rider {
    /// Hands the connection over; if the rider is gone the connection (whose envelope
    /// replies nobody will read) is closed and the slot freed.
    pub(crate) fn hand(self, ride: Ride) {
        let _ = self.handoff.send(ride);
    }
}

/// The open stops of one upstream.
#[derive(Default)]
pub(crate) struct Stops {
    open: Mutex<Vec<(u64, Option<Rider>)>>,
    next: AtomicU64,
}

impl Stops {
    fn lock(&self) -> MutexGuard<'_, Vec<(u64, Option<Rider>)>> {
        // A panic elsewhere cannot leave this list inconsistent.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a stop on a connection whose envelope is on its way; it closes when the
    /// handle is taken or dropped.
    pub(crate) fn open(&self) -> Stop<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().push((id, None));
        Stop {
            stops: self,
            id,
            closed: false,
        }
    }

    /// Boards the first open stop that has no rider yet with the envelope `boarding` makes
    /// (called only then; `None` stays off): the receiver gets the connection once the
    /// leader has sent this envelope, or an error if it will not.
    pub(crate) fn board(
        &self,
        boarding: impl FnOnce() -> Option<Boarding>,
    ) -> Option<oneshot::Receiver<Ride>> {
        let mut open = self.lock();
        let (_, seat) = open.iter_mut().find(|(_, rider)| rider.is_none())?;
        let boarding = boarding()?;
        let (handoff, ride) = oneshot::channel();
        *seat = Some(Rider {
            envelope: boarding,
            handoff,
        });
        Some(ride)
    }

    fn close(&self, id: u64) -> Option<Rider> {
        let mut open = self.lock();
        let at = open.iter().position(|(stop, _)| *stop == id)?;
        open.swap_remove(at).1
    }
}

/// An open stop, held by the leader until it sends its data.
pub(crate) struct Stop<'a> {
    stops: &'a Stops,
    id: u64,
    closed: bool,
}

impl Stop<'_> {
    /// Closes the stop and takes its rider, if one boarded.
    pub(crate) fn take(mut self) -> Option<Rider> {
        self.closed = true;
        self.stops.close(self.id)
    }
}

impl Drop for Stop<'_> {
    /// Closes the stop; a rider that boarded is declined (its receiver sees an error).
    fn drop(&mut self) {
        if !self.closed {
            drop(self.stops.close(self.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boarding(id: &str) -> Option<Boarding> {
        Some(Boarding {
            id: id.into(),
            mail_from: "a@example.com".into(),
            rcpts: vec!["b@example.net".into()],
            smtputf8: false,
            eight_bit: false,
        })
    }

    #[test]
    fn one_rider_per_stop_and_none_without_an_open_stop() {
        let stops = Stops::default();
        assert!(stops.board(|| boarding("x")).is_none(), "no stop is open");
        let stop = stops.open();
        assert!(stops.board(|| None).is_none(), "an envelope that stays off");
        let _first = stops.board(|| boarding("1")).expect("boards the open stop");
        assert!(stops.board(|| boarding("2")).is_none(), "the seat is taken");
        let rider = stop.take().expect("the rider");
        assert_eq!(rider.envelope.id, "1");
        assert!(
            stops.board(|| boarding("3")).is_none(),
            "a taken stop is closed"
        );
    }

    #[tokio::test]
    async fn a_dropped_stop_declines_its_rider() {
        let stops = Stops::default();
        let stop = stops.open();
        let ride = stops.board(|| boarding("1")).expect("boards");
        drop(stop);
        assert!(ride.await.is_err(), "declined");
        assert!(stops.lock().is_empty());
    }
}
