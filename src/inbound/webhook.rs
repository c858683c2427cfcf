//! Webhook calls (SPEC §7): each pending delivery is POSTed as JSON with
//! `X-Postern-Signature: sha256=<hex HMAC-SHA256 of the body under the webhook's secret>`,
//! `X-Postern-Event` and `X-Postern-Delivery`. A 2xx answer delivers it; anything else (or
//! no answer) is retried on the configured schedule until the webhook's `max_attempts`,
//! after which it is dead. Every outcome is durable before the next attempt, so a restart
//! resumes where it stopped; a delivery may be sent twice after a crash (receivers
//! deduplicate on `X-Postern-Delivery`).
//!
//! With several nodes on one store, every node runs a dispatcher; a node attempts a
//! delivery only under its lease (`Store::lease`, expiring on the database's clock), so
//! one node calls at a time, and a node that dies mid-call leaves it to another once the
//! lease has run out.

use crate::config::WebhookConfig;
use crate::net::http::{parse_url, Client};
use crate::store::{Delivery, DeliveryStatus, Store, StoreError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

/// Seconds a delivery's lease outlasts the call's timeout.
const LEASE_MARGIN_SECS: u64 = 30;

/// The due deliveries this node may attempt: those whose lease it took (no other node
/// is attempting them), still pending as read once the lease was held (another node may
/// have attempted one meanwhile).
fn claim(store: &Store, due: Vec<Delivery>, ttl: Duration) -> Result<Vec<Delivery>, StoreError> {
    let mut mine = Vec::new();
    for delivery in due {
        let lease = lease_name(&delivery);
        if !store.lease(&lease, store.node(), ttl)? {
            continue;
        }
        match store.webhooks().delivery(delivery.id)? {
            Some(now) if now == delivery => mine.push(delivery),
            _ => store.release(&lease, store.node())?,
        }
    }
    Ok(mine)
}

fn lease_name(delivery: &Delivery) -> String {
    format!("webhook-delivery/{}", delivery.id)
}

/// Longest part of an answer kept with a delivery.
const KEPT_RESPONSE: usize = 1024;

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Runs due deliveries until stopped.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    client: Client,
    config: WebhookConfig,
    wake: Arc<Notify>,
}

impl Dispatcher {
    /// `wake` is notified by the hook when it queues deliveries; calls go out on `client`
    /// (the one every caller shares), each within `config.timeout_secs`.
    pub fn new(
        store: Store,
        config: WebhookConfig,
        wake: Arc<Notify>,
        client: Client,
    ) -> Dispatcher {
        Dispatcher {
            client,
            store,
            config,
            wake,
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let limit = self.config.concurrency;
            let ttl = self.lease_ttl();
            let due = self
                .blocking(move |s| claim(s, s.webhooks().due(crate::spool::now_ms(), limit)?, ttl));
            let due = match due.await {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(%error, "webhook deliveries not read");
                    Vec::new()
                }
            };
            let busy = !due.is_empty();
            let mut calls = JoinSet::new();
            for delivery in due {
                let this = self.clone();
                calls.spawn(async move { this.attempt(delivery).await });
            }
            while calls.join_next().await.is_some() {}
            if busy {
                continue;
            }
            let wait = self.until_next_due().await;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// How long a node holds a delivery it is attempting: the call's timeout, and a
    /// margin for saving its outcome. A node that dies mid-call leaves the delivery to
    /// another node once this has passed.
    fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.config.timeout_secs + LEASE_MARGIN_SECS)
    }

    /// How long to sleep before the next due delivery (at most a second, so a change made
    /// elsewhere is never missed for long).
    async fn until_next_due(&self) -> Duration {
        let next = self
            .blocking(|s| s.webhooks().next_due())
            .await
            .ok()
            .flatten();
        let now = crate::spool::now_ms();
        let ms = next.map_or(1000, |at| at.saturating_sub(now).min(1000));
        Duration::from_millis(ms.max(10))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// One call of `delivery`, and its outcome made durable.
    async fn attempt(&self, delivery: Delivery) {
        let id = delivery.webhook;
        let hook = match self.blocking(move |s| s.webhooks().get(id)).await {
            Ok(hook) => hook,
            Err(error) => {
                tracing::error!(%error, delivery = delivery.id, "webhook not read");
                return;
            }
        };
        let mut after = delivery.clone();
        after.attempts += 1;
        after.updated_at = crate::spool::now_ms() / 1000;
        let Some(hook) = hook else {
            after.status = DeliveryStatus::Dead;
            after.last_response = Some("the webhook was deleted".into());
            self.save(delivery, after).await;
            return;
        };
        let result = match parse_url(&hook.url) {
            Ok(url) => {
                let headers = [
                    ("Content-Type", "application/json".to_string()),
                    ("User-Agent", "Postern".to_string()),
                    ("X-Postern-Event", delivery.event.clone()),
                    ("X-Postern-Delivery", delivery.id.to_string()),
                    (
                        "X-Postern-Signature",
                        sign(&hook.secret, delivery.payload.as_bytes()),
                    ),
                ];
                let timeout = Duration::from_secs(self.config.timeout_secs);
                let body = delivery.payload.as_bytes().to_vec();
                self.client
                    .send_within("POST", &url.to_string(), &headers, body, timeout)
                    .await
            }
            Err(error) => Err(error),
        };
        let delivered = match result {
            Ok(response) => {
                after.last_status = Some(response.status);
                after.last_response = Some(response.body.chars().take(KEPT_RESPONSE).collect());
                (200..300).contains(&response.status)
            }
            Err(error) => {
                after.last_status = None;
                after.last_response = Some(error.to_string());
                false
            }
        };
        after.status = match (delivered, after.attempts >= hook.max_attempts) {
            (true, _) => DeliveryStatus::Delivered,
            (false, true) => DeliveryStatus::Dead,
            (false, false) => {
                after.next_at = crate::spool::now_ms() + 1000 * self.delay(after.attempts);
                DeliveryStatus::Pending
            }
        };
        match after.status {
            DeliveryStatus::Delivered => {
                tracing::info!(delivery = after.id, webhook = hook.name, event = %after.event, "webhook delivered")
            }
            DeliveryStatus::Dead => {
                tracing::warn!(delivery = after.id, webhook = hook.name, attempts = after.attempts, last = ?after.last_response, "webhook delivery dead")
            }
            DeliveryStatus::Pending => {
                tracing::info!(delivery = after.id, webhook = hook.name, attempts = after.attempts, last = ?after.last_response, "webhook call failed; will retry")
            }
        }
        self.save(delivery, after).await;
    }

    /// Seconds before retry number `attempts` (the last interval repeats).
    fn delay(&self, attempts: u32) -> u64 {
        let intervals = &self.config.retry_intervals_secs;
        let at = (attempts as usize)
            .saturating_sub(1)
            .min(intervals.len() - 1);
        intervals[at]
    }

    async fn save(&self, before: Delivery, after: Delivery) {
        let id = after.id;
        let lease = lease_name(&before);
        let saved = move |s: &Store| {
            s.webhooks().update(&before, &after)?;
            s.release(&lease, s.node())
        };
        if let Err(error) = self.blocking(saved).await {
            tracing::error!(%error, delivery = id, "webhook delivery outcome not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sign;

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
