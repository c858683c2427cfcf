//! The delivery worker: dispatches due messages to their upstream with bounded
//! concurrency, records each attempt durably, and queues DSNs.
//!
//! At start every message in the spool is dispatched at once (recovery after a stop or a
//! crash); afterwards new messages arrive through a channel and retries through the due
//! index, scanned once a second (which also compacts the journal a step).
//!
//! A message that meets a sending limit waits in a task of its own (`pacing`) without the
//! worker's concurrency permit, and starts the moment the limit allows.

use super::attempt::{self, Applied};
use super::dsn::Notices;
use super::fresh::{Fresh, Held};
use super::limits::{is_throttling, Grant, Limiter};
use super::meta::{show_id, Meta, QueueId};
use super::pacing::{self, Next};
use super::{now_ms, Spool, SpoolError};
use crate::config::limits::UpstreamLimits;
use crate::metrics::Outcome;
use crate::relay::health::{self, HealthBook};
use crate::relay::{RcptOutcome, RelayError, Relays};
use crate::store::Health;
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

/// The longest first pause after a throttling reply that names no wait (shorter when the
/// queue's first retry interval is).
const FIRST_PAUSE: Duration = Duration::from_secs(60);

/// Delivers what the spool holds.
pub struct Worker {
    pub(super) spool: Arc<Spool>,
    pub(super) upstreams: Arc<Relays>,
    /// Where what each attempt says of its upstream is recorded.
    health: Option<Arc<HealthBook>>,
    /// Where DSNs are written and sent.
    notices: Arc<Notices>,
    pub(super) limit: Arc<Semaphore>,
    /// The sending limits' state (`limits`).
    pub(super) limiter: Limiter,
}

impl Worker {
    pub fn new(spool: Arc<Spool>, upstreams: Arc<Relays>, notices: Arc<Notices>) -> Worker {
        let limit = Arc::new(Semaphore::new(spool.queue_config().concurrency));
        let first_retry = spool.queue_config().retry_intervals_secs.first().copied();
        let first_pause = first_retry.map_or(FIRST_PAUSE, |secs| {
            FIRST_PAUSE.min(Duration::from_secs(secs.max(1)))
        });
        Worker {
            spool,
            upstreams,
            health: None,
            notices,
            limit,
            limiter: Limiter::new(first_pause),
        }
    }

    /// Records each attempt's verdict on its upstream's accounts in `book`.
    pub fn with_health(mut self, book: Arc<HealthBook>) -> Worker {
        self.health = Some(book);
        self
    }

    /// Runs until `shutdown` turns true, then delivers what was queued meanwhile and waits
    /// (bounded) for attempts in flight.
    pub async fn run(
        self,
        mut new: mpsc::UnboundedReceiver<Fresh>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let this = Arc::new(self);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<QueueId>();
        let mut in_flight = HashSet::new();
        let tasks = Tasks {
            done: done_tx,
            stop: shutdown.clone(),
        };
        for id in this.spool.due(u64::MAX, usize::MAX) {
            this.dispatch(id, None, &mut in_flight, &tasks).await;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                biased;
                Some(fresh) = new.recv() => this.dispatch(fresh.id, fresh.body, &mut in_flight, &tasks).await,
                Some(id) = done_rx.recv() => { in_flight.remove(&id); }
                _ = tick.tick() => {
                    for id in this.spool.due(now_ms(), 10_000) {
                        this.dispatch(id, None, &mut in_flight, &tasks).await;
                    }
                    this.compact();
                }
                _ = shutdown.changed() => break,
            }
        }
        // Messages accepted while the listeners drained are delivered before we stop.
        while let Ok(fresh) = new.try_recv() {
            this.dispatch(fresh.id, fresh.body, &mut in_flight, &tasks)
                .await;
        }
        let total = this.spool.queue_config().concurrency as u32;
        let _ = tokio::time::timeout(Duration::from_secs(10), this.limit.acquire_many(total)).await;
        if let Err(error) = this.spool.sync().await {
            tracing::error!(%error, "cannot sync the spool at shutdown");
        }
    }

    fn compact(&self) {
        match self.spool.compact() {
            Ok(0) => {}
            Ok(moved) => tracing::info!(moved, "compacted the spool journal"),
            Err(error) => tracing::warn!(%error, "spool journal compaction failed"),
        }
    }

    /// Starts an attempt for `id` (with its bytes, when in hand) unless one runs already.
    /// A message that meets a sending limit gives its permit back and waits (`pacing`).
    async fn dispatch(
        self: &Arc<Self>,
        id: QueueId,
        body: Option<Held>,
        in_flight: &mut HashSet<QueueId>,
        tasks: &Tasks,
    ) {
        if !in_flight.insert(id) {
            return;
        }
        let Ok(permit) = self.limit.clone().acquire_owned().await else {
            return;
        };
        let this = self.clone();
        let (done, stop) = (tasks.done.clone(), tasks.stop.clone());
        tokio::spawn(async move {
            this.deliver_paced(id, body, permit, stop).await;
            let _ = done.send(id);
        });
    }

    /// One attempt under `grant` (with the permit `_permit`); `limits` split the message
    /// into transactions. `Next::Again`: the provider throttled the account and the
    /// message waits again (no attempt counted, nothing written).
    pub(super) async fn attempt(
        &self,
        id: QueueId,
        body: Option<Held>,
        limits: &UpstreamLimits,
        grant: Grant,
        _permit: OwnedSemaphorePermit,
    ) -> Result<Next, SpoolError> {
        // A draining node starts no attempt, and hands nothing over while one runs.
        if self.spool.is_paused() {
            return Ok(Next::Done);
        }
        let _attempting = self.spool.gate.read().await;
        if self.spool.is_paused() {
            return Ok(Next::Done);
        }
        // The bytes in hand (counted against the budget until this attempt ends), or the
        // journal's copy.
        let loaded = match &body {
            Some(held) => self.spool.meta(id).map(|meta| (meta, held.bytes().clone())),
            None => self
                .spool
                .load(id)?
                .map(|(meta, data)| (meta, Bytes::from(data))),
        };
        let Some((mut meta, data)) = loaded else {
            return Ok(Next::Done);
        };
        let rcpts: Vec<String> = meta.pending().map(|r| r.address.clone()).collect();
        if rcpts.is_empty() {
            self.spool.save(&meta).await?;
            return Ok(Next::Done);
        }
        let per_message = pacing::per_message(limits);
        let mut result = self.deliver(&meta, &rcpts, &data, per_message).await;
        drop(grant);
        self.observe(&meta.upstream, &mut result);
        let now = now_ms();
        // Past its expiry a throttled message expires as any other.
        let throttled = self.throttled(&meta, &result) && now < meta.expires_at;
        let intervals = &self.spool.queue_config().retry_intervals_secs;
        let applied = match throttled {
            false => attempt::apply(&mut meta, &result, now, intervals),
            true => {
                let whole = matches!(&result, Err(e) if e.retry_after.is_some() || is_throttling(&e.message));
                attempt::apply_with(&mut meta, &result, now, intervals, |reply| {
                    whole || is_throttling(reply)
                })
            }
        };
        let again = applied.throttled > 0 && applied.deferred == 0;
        if again && applied.delivered == 0 && applied.failed.is_empty() {
            // Nothing changed but the replies: the message waits again, nothing written.
            return Ok(Next::Again);
        }
        self.record(&meta, &applied, &result, now);
        // Null sender, a DSN, nobody to tell: the notices decide (and log) it.
        self.notices
            .send(&self.spool, &meta, &data, &applied.failed)
            .await?;
        self.spool.save(&meta).await?;
        Ok(if again { Next::Again } else { Next::Done })
    }

    /// Whether the provider throttled the account in this attempt: if so the account is
    /// paused (logged once per pause); mail that got through resets the pause.
    fn throttled(&self, meta: &Meta, result: &Result<Vec<RcptOutcome>, RelayError>) -> bool {
        let found = match result {
            Err(error) if error.retry_after.is_some() || is_throttling(&error.message) => {
                Some((error.retry_after, error.message.as_str()))
            }
            Err(_) => None,
            Ok(outcomes) => {
                if outcomes
                    .iter()
                    .any(|o| matches!(o, RcptOutcome::Delivered(_)))
                {
                    self.limiter.succeeded(&meta.upstream, &meta.mail_from);
                }
                outcomes.iter().find_map(|o| match o {
                    RcptOutcome::Temporary(reply) if is_throttling(reply) => {
                        Some((None, reply.as_str()))
                    }
                    _ => None,
                })
            }
        };
        let Some((wait, reply)) = found else {
            return false;
        };
        if let Some(pause) = self
            .limiter
            .pause(&meta.upstream, &meta.mail_from, wait, reply)
        {
            tracing::warn!(
                queue_id = %show_id(meta.id),
                upstream = %meta.upstream,
                account = %meta.mail_from,
                pause_secs = pause.as_secs_f64(),
                reply = %reply,
                "the provider throttles this account: its mail waits"
            );
        }
        true
    }

    /// Records what the attempt says of the upstream's account(s); a refusal that is the
    /// account's own problem keeps the message queued. An upstream whose answers come from
    /// the recipients' servers (or none) only ever says "healthy", when mail got through:
    /// an account moved onto it does not keep the status of its former upstream.
    fn observe(&self, upstream: &str, result: &mut Result<Vec<RcptOutcome>, RelayError>) {
        let Some(book) = &self.health else {
            return;
        };
        let judges = self
            .upstreams
            .get(upstream)
            .is_some_and(|u| u.judges_account());
        let Some(observed) = health::classify(result) else {
            return;
        };
        if !judges && observed.health != Health::Healthy {
            return;
        }
        if observed.holds_mail() {
            health::hold(result);
        }
        if book.changes(upstream, &observed) {
            let (book, upstream) = (book.clone(), upstream.to_string());
            tokio::task::spawn_blocking(move || book.record(&upstream, &observed));
        }
    }

    fn record(
        &self,
        meta: &Meta,
        applied: &Applied,
        result: &Result<Vec<RcptOutcome>, RelayError>,
        now: u64,
    ) {
        let metrics = self.spool.metrics();
        let id = show_id(meta.id);
        for _ in 0..applied.delivered {
            metrics.delivery(Outcome::Delivered);
        }
        for _ in 0..applied.deferred {
            metrics.delivery(Outcome::Deferred);
        }
        for _ in 0..applied.failed.len() {
            metrics.delivery(Outcome::Bounced);
        }
        if meta.pending().next().is_none() {
            let secs = now.saturating_sub(meta.received_at) as f64 / 1000.0;
            metrics.delivery_latency.record(secs);
        }
        match result {
            Err(error) => {
                tracing::warn!(queue_id = %id, upstream = %meta.upstream, attempts = meta.attempts, %error, "delivery attempt failed")
            }
            Ok(_) => tracing::info!(
                queue_id = %id,
                upstream = %meta.upstream,
                delivered = applied.delivered,
                deferred = applied.deferred,
                failed = applied.failed.len(),
                "delivery attempt"
            ),
        }
    }
}

/// What each attempt's task needs of the loop: where to say it ended, and the shutdown.
struct Tasks {
    done: mpsc::UnboundedSender<QueueId>,
    stop: watch::Receiver<bool>,
}
