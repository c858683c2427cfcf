//! The delivery worker: dispatches due messages to their upstream with bounded
//! concurrency, records each attempt durably, and queues DSNs.
//!
//! At start every message in the spool is dispatched at once (recovery after a stop or a
//! crash); afterwards new messages arrive through a channel and retries through the due
//! index, scanned once a second (which also compacts the journal a step).

use super::attempt::{self, Applied};
use super::dsn::Notices;
use super::fresh::{Fresh, Held};
use super::meta::{show_id, Meta, QueueId};
use super::{now_ms, Spool, SpoolError};
use crate::metrics::Outcome;
use crate::relay::health::{self, HealthBook};
use crate::relay::{ErrorKind, Outgoing, RelayError, Relays, Retry, Side};
use crate::store::Health;
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};

/// Delivers what the spool holds.
pub struct Worker {
    spool: Arc<Spool>,
    upstreams: Arc<Relays>,
    /// Where what each attempt says of its upstream is recorded.
    health: Option<Arc<HealthBook>>,
    /// Where DSNs are written and sent.
    notices: Arc<Notices>,
    limit: Arc<Semaphore>,
}

impl Worker {
    pub fn new(spool: Arc<Spool>, upstreams: Arc<Relays>, notices: Arc<Notices>) -> Worker {
        let limit = Arc::new(Semaphore::new(spool.queue_config().concurrency));
        Worker {
            spool,
            upstreams,
            health: None,
            notices,
            limit,
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
        for id in this.spool.due(u64::MAX, usize::MAX) {
            this.dispatch(id, None, &mut in_flight, &done_tx).await;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                biased;
                Some(fresh) = new.recv() => this.dispatch(fresh.id, fresh.body, &mut in_flight, &done_tx).await,
                Some(id) = done_rx.recv() => { in_flight.remove(&id); }
                _ = tick.tick() => {
                    for id in this.spool.due(now_ms(), 10_000) {
                        this.dispatch(id, None, &mut in_flight, &done_tx).await;
                    }
                    this.compact();
                }
                _ = shutdown.changed() => break,
            }
        }
        // Messages accepted while the listeners drained are delivered before we stop.
        while let Ok(fresh) = new.try_recv() {
            this.dispatch(fresh.id, fresh.body, &mut in_flight, &done_tx)
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
    async fn dispatch(
        self: &Arc<Self>,
        id: QueueId,
        body: Option<Held>,
        in_flight: &mut HashSet<QueueId>,
        done: &mpsc::UnboundedSender<QueueId>,
    ) {
        if !in_flight.insert(id) {
            return;
        }
        let Ok(permit) = self.limit.clone().acquire_owned().await else {
            return;
        };
        let this = self.clone();
        let done = done.clone();
        tokio::spawn(async move {
            if let Err(error) = this.attempt(id, body).await {
                tracing::error!(queue_id = %show_id(id), %error, "delivery attempt not recorded");
            }
            drop(permit);
            let _ = done.send(id);
        });
    }

    async fn attempt(&self, id: QueueId, body: Option<Held>) -> Result<(), SpoolError> {
        // A draining node starts no attempt, and hands nothing over while one runs.
        if self.spool.is_paused() {
            return Ok(());
        }
        let _attempting = self.spool.gate.read().await;
        if self.spool.is_paused() {
            return Ok(());
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
            return Ok(());
        };
        let rcpts: Vec<String> = meta.pending().map(|r| r.address.clone()).collect();
        if rcpts.is_empty() {
            return self.spool.save(&meta).await;
        }
        let mut result = self.deliver(&meta, &rcpts, &data).await;
        self.observe(&meta.upstream, &mut result);
        let now = now_ms();
        let applied = attempt::apply(
            &mut meta,
            &result,
            now,
            &self.spool.queue_config().retry_intervals_secs,
        );
        self.record(&meta, &applied, &result, now);
        // Null sender, a DSN, nobody to tell: the notices decide (and log) it.
        self.notices
            .send(&self.spool, &meta, &data, &applied.failed)
            .await?;
        self.spool.save(&meta).await
    }

    /// Records what the attempt says of the upstream's account(s); a refusal that is the
    /// account's own problem keeps the message queued. An upstream whose answers come from
    /// the recipients' servers (or none) only ever says "healthy", when mail got through:
    /// an account moved onto it does not keep the status of its former upstream.
    fn observe(
        &self,
        upstream: &str,
        result: &mut Result<Vec<crate::relay::RcptOutcome>, RelayError>,
    ) {
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

    async fn deliver(
        &self,
        meta: &Meta,
        rcpts: &[String],
        data: &[u8],
    ) -> Result<Vec<crate::relay::RcptOutcome>, RelayError> {
        let Some(upstream) = self.upstreams.get(&meta.upstream) else {
            return Err(RelayError::new(
                ErrorKind::Protocol,
                Side::Local,
                Retry::Later,
                format!("no upstream named {:?} is configured", meta.upstream),
            ));
        };
        let id = show_id(meta.id);
        let out = Outgoing {
            id: &id,
            mail_from: &meta.mail_from,
            rcpts,
            data,
            smtputf8: meta.smtputf8,
            eight_bit: meta.eight_bit,
        };
        upstream.deliver(&out).await
    }

    fn record(
        &self,
        meta: &Meta,
        applied: &Applied,
        result: &Result<Vec<crate::relay::RcptOutcome>, RelayError>,
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
