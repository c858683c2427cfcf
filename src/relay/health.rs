//! Upstream health (SPEC §5): each delivery attempt's result is classified — accepted,
//! authentication failure, "send as" denied, relay limit or quota, TLS failure, DNS failure,
//! greylisting — and becomes the status of the accounts that deliver through that upstream:
//! `healthy`, `degraded` (mail is slowed down) or `failing` (mail cannot leave until an
//! administrator acts), with the last error and since when. The status follows the
//! account: an attempt's verdict is written to every account delivering through the
//! upstream whose status says otherwise (an account moved here from a failing upstream
//! becomes healthy with the first message that gets through), and only then (store write,
//! policy snapshot rebuilt): the check on every attempt is a look at the snapshot. It is
//! exported as `postern_account_health{account}` (0 healthy, 1 degraded, 2 failing).
//!
//! A refusal that says the account itself cannot send (authentication, "send as" denied,
//! TLS) keeps the message queued instead of bouncing it: it is the account's problem, not
//! the recipient's, and it leaves once the cause is fixed (or the message expires).

use super::{ErrorKind, RcptOutcome, RelayError};
use crate::metrics::Metrics;
use crate::policy::{Policy, Snapshot};
use crate::store::{AccountStatus, Health, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// What one attempt says about the account behind an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub health: Health,
    /// `ok`, `auth_failure`, `send_as_denied`, `rate_limited`, `tls_failure`,
    /// `dns_failure`, `greylisted`, `unreachable`.
    pub class: &'static str,
    /// The upstream's reply or the error (none when healthy).
    pub detail: Option<String>,
}

impl Observed {
    /// True when the account cannot send at all: its refusals keep mail queued.
    pub fn holds_mail(&self) -> bool {
        self.health == Health::Failing
    }
}

/// Turns the refusals of an attempt into temporary ones (the account cannot send: the
/// message waits for the cause to be fixed instead of bouncing).
pub fn hold(result: &mut Result<Vec<RcptOutcome>, RelayError>) {
    match result {
        Ok(outcomes) => {
            for outcome in outcomes.iter_mut() {
                let RcptOutcome::Permanent(reply) = outcome else {
                    continue;
                };
                // Only the refusals that are the account's own problem: a recipient's
                // 5.1.1 in the same transaction still bounces.
                if by_reply(reply).is_some_and(|o| o.holds_mail()) {
                    *outcome = RcptOutcome::Temporary(std::mem::take(reply));
                }
            }
        }
        Err(error) => error.retry = super::Retry::Later,
    }
}

/// Classifies an attempt; `None` when it says nothing about the account (a recipient's own
/// refusal, a local problem).
pub fn classify(result: &Result<Vec<RcptOutcome>, RelayError>) -> Option<Observed> {
    match result {
        Err(error) => classify_error(error),
        Ok(outcomes) => {
            // One recipient accepted: the account can send, whatever the others got.
            if outcomes
                .iter()
                .any(|o| matches!(o, RcptOutcome::Delivered(_)))
            {
                return Some(observed(Health::Healthy, "ok", None));
            }
            let replies = outcomes.iter().filter_map(|o| match o {
                RcptOutcome::Delivered(_) => None,
                RcptOutcome::Temporary(reply) | RcptOutcome::Permanent(reply) => Some(reply),
            });
            replies.into_iter().find_map(|reply| by_reply(reply))
        }
    }
}

fn classify_error(error: &RelayError) -> Option<Observed> {
    let text = error.message.to_string();
    let lower = text.to_ascii_lowercase();
    let found = match error.kind {
        ErrorKind::Auth => Some((Health::Failing, "auth_failure")),
        ErrorKind::Tls => Some((Health::Failing, "tls_failure")),
        ErrorKind::Connect if DNS.iter().any(|p| lower.contains(p)) => {
            Some((Health::Degraded, "dns_failure"))
        }
        ErrorKind::Connect | ErrorKind::Timeout => Some((Health::Degraded, "unreachable")),
        _ => return by_reply(&text),
    };
    found.map(|(health, class)| observed(health, class, Some(text)))
}

/// The classes a reply text names (enhanced codes and the providers' wording).
fn by_reply(reply: &str) -> Option<Observed> {
    let lower = reply.to_ascii_lowercase();
    let class = if SEND_AS.iter().any(|p| lower.contains(p)) {
        (Health::Failing, "send_as_denied")
    } else if AUTH.iter().any(|p| lower.contains(p)) {
        (Health::Failing, "auth_failure")
    } else if GREYLIST.iter().any(|p| lower.contains(p)) {
        (Health::Degraded, "greylisted")
    } else if RATE.iter().any(|p| lower.contains(p)) {
        (Health::Degraded, "rate_limited")
    } else {
        return None;
    };
    Some(observed(class.0, class.1, Some(reply.to_string())))
}

const SEND_AS: &[&str] = &["5.7.60", "sendasdenied", "not owned by user"];
const AUTH: &[&str] = &[
    "5.7.8",
    "5.7.3 authentication",
    "5.7.139",
    "authentication unsuccessful",
];
const GREYLIST: &[&str] = &["greylist", "graylist"];
const RATE: &[&str] = &[
    "4.7.28",
    "5.4.5",
    "sending quota",
    "sending limit",
    "rate limit",
    "too many messages",
    "too many connections",
    "throttl",
];
const DNS: &[&str] = &[
    "failed to lookup address",
    "name or service not known",
    "no address associated",
    "temporary failure in name resolution",
    "nxdomain",
];

fn observed(health: Health, class: &'static str, detail: Option<String>) -> Observed {
    Observed {
        health,
        class,
        detail,
    }
}

/// The health of every upstream as last seen, and where it is recorded.
pub struct HealthBook {
    store: Store,
    policy: Arc<Policy>,
    metrics: Arc<Metrics>,
    /// The last status seen per upstream (the cheap check on every attempt).
    last: Mutex<HashMap<String, (Health, &'static str)>>,
    /// Per upstream, the policy snapshot in which every account on it last showed this
    /// health: while the snapshot is the same, the accounts need no second look. (A `Weak`
    /// keeps the allocation, so a later snapshot can never be taken for this one.)
    agreed: Mutex<HashMap<String, (Weak<Snapshot>, Health)>>,
    /// The lock writes take.
    writing: Mutex<()>,
}

impl HealthBook {
    pub fn new(store: Store, policy: Arc<Policy>, metrics: Arc<Metrics>) -> HealthBook {
        HealthBook {
            store,
            policy,
            metrics,
            last: Mutex::new(HashMap::new()),
            agreed: Mutex::new(HashMap::new()),
            writing: Mutex::new(()),
        }
    }

    /// Whether `observed` changes what is recorded for the accounts behind `upstream`:
    /// its class differs from the upstream's last one, or an account delivering through
    /// `upstream` shows another health (one moved here from another upstream keeps its old
    /// status until this one's verdict is written over it). The class is remembered.
    pub fn changes(&self, upstream: &str, observed: &Observed) -> bool {
        let now = (observed.health, observed.class);
        let new_class = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            match last.get(upstream) {
                // The common case (healthy again and again): no allocation.
                Some(before) if *before == now => false,
                _ => {
                    last.insert(upstream.to_string(), now);
                    true
                }
            }
        };
        (new_class && observed.health != Health::Healthy) || !self.agree(upstream, observed.health)
    }

    /// Whether every account delivering through `upstream` shows `health`.
    fn agree(&self, upstream: &str, health: Health) -> bool {
        let snapshot = self.policy.snapshot();
        let mut agreed = self.agreed.lock().unwrap_or_else(|p| p.into_inner());
        if agreed.get(upstream).is_some_and(|(seen, was)| {
            *was == health && std::ptr::eq(seen.as_ptr(), Arc::as_ptr(&snapshot))
        }) {
            return true;
        }
        let all = snapshot
            .accounts()
            .iter()
            .all(|a| a.upstream != upstream || a.status.health == health);
        if all {
            agreed.insert(upstream.to_string(), (Arc::downgrade(&snapshot), health));
        }
        all
    }

    /// Writes `observed` as the status of every account delivering through `upstream`
    /// whose status says otherwise. One write at a time, and only while `observed` is the
    /// upstream's latest verdict, so the last one seen is the last one recorded. Blocking
    /// (store writes).
    pub fn record(&self, upstream: &str, observed: &Observed) {
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        {
            // A later attempt saw something else: this one is stale, the later one writes.
            let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.get(upstream) != Some(&(observed.health, observed.class)) {
                return;
            }
        }
        let status = AccountStatus {
            health: observed.health,
            last_error: observed.detail.clone(),
            since: crate::spool::now_ms() / 1000,
        };
        let accounts = match self.store.accounts().all() {
            Ok(accounts) => accounts,
            Err(error) => return tracing::error!(%error, "account status not recorded"),
        };
        let value = match observed.health {
            Health::Healthy => 0.0,
            Health::Degraded => 1.0,
            Health::Failing => 2.0,
        };
        let mut written = 0;
        for account in accounts.into_iter().filter(|a| a.upstream == upstream) {
            self.metrics.account_health(&account.name, value);
            match self
                .store
                .accounts()
                .set_status(account.id, upstream, &status)
            {
                Ok(true) => written += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(account = %account.name, %error, "account status not recorded")
                }
            }
        }
        if written == 0 {
            return;
        }
        let _ = self.policy.reload();
        match observed.health {
            Health::Healthy => {
                tracing::info!(upstream, accounts = written, "accounts healthy again")
            }
            health => tracing::warn!(
                upstream,
                accounts = written,
                ?health,
                class = observed.class,
                detail = observed.detail.as_deref().unwrap_or(""),
                "upstream health changed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::{Retry, Side};

    fn refused(reply: &str) -> Result<Vec<RcptOutcome>, RelayError> {
        Ok(vec![RcptOutcome::Permanent(reply.into())])
    }

    fn class(result: Result<Vec<RcptOutcome>, RelayError>) -> Option<(Health, &'static str)> {
        classify(&result).map(|o| (o.health, o.class))
    }

    #[test]
    fn only_the_accounts_own_refusals_are_held() {
        let mut result = Ok(vec![
            RcptOutcome::Permanent(
                "550 5.7.60 SMTP; Client does not have permissions to send as this sender".into(),
            ),
            RcptOutcome::Permanent("550 5.1.1 no such user".into()),
        ]);
        assert!(classify(&result).unwrap().holds_mail());
        hold(&mut result);
        let outcomes = result.unwrap();
        assert!(
            matches!(outcomes[0], RcptOutcome::Temporary(_)),
            "held: the account's problem"
        );
        assert!(
            matches!(outcomes[1], RcptOutcome::Permanent(_)),
            "a bad recipient still bounces"
        );
        let resend = refused("550 5.7.1 Please resend as plain text to this group");
        assert_eq!(class(resend), None, "free wording is no account verdict");
    }

    #[test]
    fn replies_and_errors_fall_into_their_classes() {
        let error =
            |kind, text: &str| Err(RelayError::new(kind, Side::Upstream, Retry::Later, text));
        assert_eq!(
            class(refused(
                "550 5.7.60 SMTP; Client does not have permissions to send as this sender"
            )),
            Some((Health::Failing, "send_as_denied"))
        );
        assert_eq!(
            class(error(
                ErrorKind::Auth,
                "upstream m365: authentication failed: 535 5.7.3 Authentication unsuccessful"
            )),
            Some((Health::Failing, "auth_failure"))
        );
        assert_eq!(
            class(error(ErrorKind::Tls, "tls: STARTTLS not offered")),
            Some((Health::Failing, "tls_failure"))
        );
        assert_eq!(
            class(error(ErrorKind::Connect, "cannot connect to smtp.example:587: failed to lookup address information: Name or service not known")),
            Some((Health::Degraded, "dns_failure"))
        );
        assert_eq!(
            class(Ok(vec![RcptOutcome::Temporary(
                "451 4.7.28 Our system has detected an unusual rate of unsolicited mail".into()
            )])),
            Some((Health::Degraded, "rate_limited"))
        );
        assert_eq!(
            class(Ok(vec![RcptOutcome::Temporary(
                "450 4.2.0 Greylisted, please try again later".into()
            )])),
            Some((Health::Degraded, "greylisted"))
        );
        assert_eq!(
            class(refused("550 5.1.1 no such user")),
            None,
            "a recipient's problem"
        );
        assert_eq!(
            class(Ok(vec![
                RcptOutcome::Delivered("250 ok".into()),
                RcptOutcome::Permanent("550 5.1.1 no such user".into())
            ])),
            Some((Health::Healthy, "ok"))
        );
    }
}
