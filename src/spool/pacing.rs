//! Pacing the worker's deliveries to the sending limits (`limits`): a message that meets
//! a limit waits in its task — without the worker's concurrency permit, without its bytes
//! (read back from the journal when it goes), with no journal write, no retry scheduled
//! and no attempt counted — and starts the moment the limit allows; the queue listing
//! shows why it waits. A message with more recipients than a transaction may carry goes
//! in several transactions (the same bytes, each recipient once), their outcomes in
//! recipient order.

use super::fresh::Held;
use super::limits::{Ask, Grant, Wait};
use super::meta::{show_id, Meta, QueueId};
use super::worker::Worker;
use crate::config::limits::UpstreamLimits;
use crate::relay::{ErrorKind, Outgoing, RcptOutcome, RelayError, Retry, Side};
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::{Duration, Instant};

/// How long a message waiting for a connection waits at most before it looks again.
const RECHECK: Duration = Duration::from_secs(3600);

/// What follows an attempt.
pub enum Next {
    Done,
    /// The provider throttled the account: wait again.
    Again,
}

/// Recipients one transaction may carry under `limits`, if they say.
pub fn per_message(limits: &UpstreamLimits) -> Option<usize> {
    let a = limits.per_account.recipients_per_message;
    let u = limits.per_upstream.recipients_per_message;
    a.into_iter().chain(u).min().map(|n| n.max(1) as usize)
}

/// What a message asks of the limits: a connection, one transaction per `per_message`
/// recipients, its pending recipients.
fn ask(limits: &UpstreamLimits, rcpts: usize) -> Ask {
    let messages = match per_message(limits) {
        Some(per) => rcpts.div_ceil(per).max(1),
        None => 1,
    };
    Ask {
        connection: true,
        messages: messages as u32,
        rcpts: rcpts as u32,
    }
}

/// Whose limits a message meets: its upstream and account, its pending recipients.
struct Key {
    upstream: String,
    account: String,
    rcpts: usize,
}

impl Worker {
    /// Delivers `id` within the sending limits, holding `permit` (given back while the
    /// message waits), until it is done or `stop` turns true while it waits.
    pub(super) async fn deliver_paced(
        &self,
        id: QueueId,
        mut body: Option<Held>,
        permit: OwnedSemaphorePermit,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut permit = Some(permit);
        loop {
            let Some((limits, key)) = self.spool.peek(id, |meta| self.key(meta)) else {
                return;
            };
            let grant = match &key {
                // The hot path: no limit, no pause; nothing looked up, nothing taken.
                None => Grant::free(),
                Some(key) => {
                    let asked = ask(&limits, key.rcpts);
                    match self
                        .limiter
                        .admit(&limits, &key.upstream, &key.account, asked)
                    {
                        Ok(grant) => grant,
                        Err(_) => {
                            // Waiting holds neither a permit nor the bytes.
                            permit = None;
                            body = None;
                            match self.park(id, key, &mut stop).await {
                                Some(grant) => grant,
                                None => return,
                            }
                        }
                    }
                }
            };
            let held = match permit.take() {
                Some(held) => held,
                None => {
                    let acquired = tokio::select! {
                        permit = self.limit.clone().acquire_owned() => permit.ok(),
                        _ = stop.changed() => None,
                    };
                    match acquired {
                        Some(held) if !*stop.borrow() => held,
                        _ => return,
                    }
                }
            };
            match self.attempt(id, body.take(), &limits, grant, held).await {
                Ok(Next::Done) => return,
                Ok(Next::Again) => continue,
                Err(error) => {
                    tracing::error!(queue_id = %show_id(id), %error, "delivery attempt not recorded");
                    return;
                }
            }
        }
    }

    /// The limits of `meta`'s upstream, and its key when they (or a pause) apply.
    fn key(&self, meta: &Meta) -> (UpstreamLimits, Option<Key>) {
        let limits = self.upstreams.limits(&meta.upstream);
        if self.limiter.is_free(&limits) {
            return (limits, None);
        }
        let key = Key {
            upstream: meta.upstream.clone(),
            account: meta.mail_from.clone(),
            rcpts: meta.pending().count(),
        };
        (limits, Some(key))
    }

    /// Waits until the limits admit `key` (the reason shown meanwhile), or `None` once
    /// `stop` turns true.
    async fn park(
        &self,
        id: QueueId,
        key: &Key,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Grant> {
        let (board, metrics) = (self.spool.waiting(), self.spool.metrics());
        let granted = loop {
            // Stopping, or deleted (or handed over) while it waited.
            if *stop.borrow() || self.spool.peek(id, |_| ()).is_none() {
                break None;
            }
            // Registered before the look, so a connection given back meanwhile wakes it.
            let released = self.limiter.notify().notified();
            let limits = self.upstreams.limits(&key.upstream);
            let asked = ask(&limits, key.rcpts);
            let wait: Wait = match self
                .limiter
                .admit(&limits, &key.upstream, &key.account, asked)
            {
                Ok(grant) => break Some(grant),
                Err(wait) => wait,
            };
            board.set(metrics, id, wait.kind, wait.reason);
            let until = wait.until;
            // Waiting for a connection: looked at again at least hourly all the same.
            let sleep = tokio::time::sleep_until(until.unwrap_or_else(|| Instant::now() + RECHECK));
            tokio::select! {
                _ = released, if until.is_none() => {}
                _ = sleep => {}
                _ = stop.changed() => break None,
            }
        };
        board.clear(metrics, id);
        granted
    }

    /// Hands the message to its upstream for `rcpts`: in transactions of `per_message`
    /// recipients at most (each recipient once, the outcomes in recipient order).
    pub(super) async fn deliver(
        &self,
        meta: &Meta,
        rcpts: &[String],
        data: &[u8],
        per_message: Option<usize>,
    ) -> Result<Vec<RcptOutcome>, RelayError> {
        let Some(upstream) = self.upstreams.get(&meta.upstream) else {
            return Err(RelayError::new(
                ErrorKind::Protocol,
                Side::Local,
                Retry::Later,
                format!("no upstream named {:?} is configured", meta.upstream),
            ));
        };
        let id = show_id(meta.id);
        let size = per_message.unwrap_or(rcpts.len()).max(1);
        let mut outcomes = Vec::with_capacity(rcpts.len());
        for (n, part) in rcpts.chunks(size).enumerate() {
            let out = Outgoing {
                id: &id,
                mail_from: &meta.mail_from,
                rcpts: part,
                data,
                smtputf8: meta.smtputf8,
                eight_bit: meta.eight_bit,
            };
            match upstream.deliver(&out).await {
                Ok(mut some) => {
                    some.resize(
                        part.len(),
                        RcptOutcome::Temporary("no outcome reported".into()),
                    );
                    outcomes.append(&mut some);
                }
                // Nothing went yet: the error stands for the whole attempt.
                Err(error) if n == 0 => return Err(error),
                // Later transactions are not tried; their recipients get the error.
                Err(error) => {
                    let reply = error.to_string();
                    let outcome = match error.is_temporary() {
                        true => RcptOutcome::Temporary(reply),
                        false => RcptOutcome::Permanent(reply),
                    };
                    outcomes.resize(rcpts.len(), outcome);
                    break;
                }
            }
        }
        Ok(outcomes)
    }
}
