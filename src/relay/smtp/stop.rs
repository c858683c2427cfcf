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
//!
//! A delivery that finds no open stop and no free connection slot (`max_connections`)
//! *queues* for a seat: the next stop that opens takes the first queued rider at once, so
//! at the connection limit messages follow each other on the open connections at one round
//! trip each, instead of waiting for a whole transaction and an RSET. Whichever comes first
//! wins: a slot freed before any stop opens takes the delivery out of the queue.

use super::conn::Connection;
use std::collections::VecDeque;
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
    fn new(envelope: Boarding) -> (Rider, oneshot::Receiver<Ride>) {
        let (handoff, ride) = oneshot::channel();
        (Rider { envelope, handoff }, ride)
    }

    /// Hands the connection over; if the rider is gone the connection (whose envelope
    /// replies nobody will read) is closed and the slot freed.
    pub(crate) fn hand(self, ride: Ride) {
        let _ = self.handoff.send(ride);
    }
}

/// The open stops of one upstream, and the deliveries queued for the next one.
#[derive(Default)]
pub(crate) struct Stops {
    inner: Mutex<Inner>,
    next: AtomicU64,
}

#[derive(Default)]
struct Inner {
    /// Open stops, each with its rider once one boarded.
    open: Vec<(u64, Option<Rider>)>,
    /// Deliveries waiting for a seat, first come first seated.
    queued: VecDeque<(u64, Rider)>,
}

impl Stops {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave these lists inconsistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Opens a stop on a connection whose envelope is on its way, seating the first queued
    /// delivery if there is one; it closes when the handle is taken or dropped.
    pub(crate) fn open(&self) -> Stop<'_> {
        let id = self.next_id();
        let mut inner = self.lock();
        let rider = inner.queued.pop_front().map(|(_, rider)| rider);
        inner.open.push((id, rider));
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
        let mut inner = self.lock();
        let (_, seat) = inner.open.iter_mut().find(|(_, rider)| rider.is_none())?;
        let (rider, ride) = Rider::new(boarding()?);
        *seat = Some(rider);
        Some(ride)
    }

    /// Queues the envelope `boarding` makes for the next stop that opens (`None` stays
    /// off). Dropping the ticket leaves the queue.
    pub(crate) fn queue(&self, boarding: impl FnOnce() -> Option<Boarding>) -> Option<Ticket<'_>> {
        let (rider, ride) = Rider::new(boarding()?);
        let id = self.next_id();
        self.lock().queued.push_back((id, rider));
        Some(Ticket {
            stops: self,
            id,
            ride,
        })
    }

    /// Takes a queued delivery out of the queue; false if a stop has seated it already.
    fn leave(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let at = inner.queued.iter().position(|(queued, _)| *queued == id);
        at.and_then(|at| inner.queued.remove(at)).is_some()
    }

    fn close(&self, id: u64) -> Option<Rider> {
        let mut inner = self.lock();
        let at = inner.open.iter().position(|(stop, _)| *stop == id)?;
        inner.open.swap_remove(at).1
    }
}

/// A delivery's place in the queue for the next stop.
pub(crate) struct Ticket<'a> {
    stops: &'a Stops,
    id: u64,
    /// The connection, once a stop seated this delivery and its leader sent the envelope;
    /// an error if the leader will not.
    pub(crate) ride: oneshot::Receiver<Ride>,
}

impl Ticket<'_> {
    /// Leaves the queue; false if a stop has seated the delivery already, whose ride is
    /// then still to come (or to be declined).
    pub(crate) fn leave(&self) -> bool {
        self.stops.leave(self.id)
    }
}

impl Drop for Ticket<'_> {
    /// A delivery that gives up leaves the queue; one already seated is declined by the
    /// leader's handoff failing (the connection is then closed).
    fn drop(&mut self) {
        self.leave();
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

    #[test]
    fn the_next_stop_seats_the_first_queued_delivery() {
        let stops = Stops::default();
        let first = stops.queue(|| boarding("1")).expect("queued");
        let _second = stops.queue(|| boarding("2")).expect("queued");
        assert!(stops.queue(|| None).is_none(), "an envelope that stays off");
        let stop = stops.open();
        assert!(
            stops.board(|| boarding("3")).is_none(),
            "seated from the queue"
        );
        assert!(!first.leave(), "already seated: it cannot leave");
        assert_eq!(stop.take().expect("the rider").envelope.id, "1");
        assert_eq!(stops.open().take().expect("the next").envelope.id, "2");
    }

    #[test]
    fn a_delivery_that_leaves_or_gives_up_is_not_seated() {
        let stops = Stops::default();
        let leaving = stops.queue(|| boarding("1")).expect("queued");
        assert!(leaving.leave(), "still in the queue");
        drop(stops.queue(|| boarding("2")).expect("queued"));
        assert!(stops.open().take().is_none(), "nobody left to seat");
    }

    #[tokio::test]
    async fn a_dropped_stop_declines_its_rider() {
        let stops = Stops::default();
        let stop = stops.open();
        let ride = stops.board(|| boarding("1")).expect("boards");
        drop(stop);
        assert!(ride.await.is_err(), "declined");
        assert!(stops.lock().open.is_empty());
    }
}
