//! Applying one delivery attempt's outcome to a message's metadata: pure code, so the
//! retry, bounce and expiry rules are tested without a network.

use super::meta::{Meta, RcptStatus};
use super::schedule;
use crate::relay::{RcptOutcome, RelayError};

/// A recipient that failed for good in this attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub address: String,
    pub reply: String,
    /// Failed because the message expired, not because the upstream refused it.
    pub expired: bool,
}

/// What one attempt changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub delivered: usize,
    pub deferred: usize,
    pub failed: Vec<Failed>,
    /// Recipients the provider's throttling turned away: they stay pending, not deferred
    /// (no retry scheduled for them), and wait for the sending limits again.
    pub throttled: usize,
}

/// Applies `result` (for the pending recipients, in order) to `meta` at time `now`.
pub fn apply(
    meta: &mut Meta,
    result: &Result<Vec<RcptOutcome>, RelayError>,
    now: u64,
    intervals_secs: &[u64],
) -> Applied {
    apply_with(meta, result, now, intervals_secs, |_| false)
}

/// `apply`, where a temporary refusal whose reply `throttled` recognises leaves its
/// recipient pending without a retry: an attempt throttled as a whole counts as none.
pub fn apply_with(
    meta: &mut Meta,
    result: &Result<Vec<RcptOutcome>, RelayError>,
    now: u64,
    intervals_secs: &[u64],
    throttled: impl Fn(&str) -> bool,
) -> Applied {
    let mut applied = Applied::default();
    let pending: Vec<usize> = (0..meta.rcpts.len())
        .filter(|&i| meta.rcpts[i].status == RcptStatus::Pending)
        .collect();
    for (n, &i) in pending.iter().enumerate() {
        let (status, reply) = outcome_for(result, n);
        let rcpt = &mut meta.rcpts[i];
        if status == RcptStatus::Pending && throttled(&reply) {
            rcpt.last_reply = Some(reply);
            applied.throttled += 1;
            continue;
        }
        rcpt.status = status;
        rcpt.last_reply = Some(reply.clone());
        match status {
            RcptStatus::Delivered => applied.delivered += 1,
            RcptStatus::Pending => applied.deferred += 1,
            RcptStatus::Failed => applied.failed.push(Failed {
                address: rcpt.address.clone(),
                reply,
                expired: false,
            }),
        }
    }
    if applied.throttled < pending.len() {
        meta.attempts += 1;
    }
    if applied.deferred > 0 {
        match schedule::next_due(now, meta.attempts, intervals_secs, meta.expires_at) {
            Some(due) => meta.due_at = due,
            None => expire(meta, &mut applied),
        }
    }
    applied
}

fn outcome_for(result: &Result<Vec<RcptOutcome>, RelayError>, n: usize) -> (RcptStatus, String) {
    match result {
        Ok(outcomes) => match outcomes.get(n) {
            Some(RcptOutcome::Delivered(reply)) => (RcptStatus::Delivered, reply.clone()),
            Some(RcptOutcome::Temporary(reply)) => (RcptStatus::Pending, reply.clone()),
            Some(RcptOutcome::Permanent(reply)) => (RcptStatus::Failed, reply.clone()),
            None => (RcptStatus::Pending, "no outcome reported".to_string()),
        },
        Err(error) if error.is_temporary() => (RcptStatus::Pending, error.to_string()),
        Err(error) => (RcptStatus::Failed, error.to_string()),
    }
}

fn expire(meta: &mut Meta, applied: &mut Applied) {
    for rcpt in meta.rcpts.iter_mut() {
        if rcpt.status == RcptStatus::Pending {
            rcpt.status = RcptStatus::Failed;
            let last = rcpt.last_reply.clone().unwrap_or_default();
            applied.failed.push(Failed {
                address: rcpt.address.clone(),
                reply: format!("message expired in queue; last reply: {last}"),
                expired: true,
            });
            applied.deferred -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::{ErrorKind, Retry, Side};
    use crate::spool::meta::Rcpt;

    fn meta(rcpts: &[&str]) -> Meta {
        Meta {
            id: 1,
            mail_from: "a@x".into(),
            rcpts: rcpts
                .iter()
                .map(|r| Rcpt {
                    address: r.to_string(),
                    status: RcptStatus::Pending,
                    last_reply: None,
                })
                .collect(),
            upstream: "u".into(),
            principal: None,
            smtputf8: false,
            eight_bit: false,
            is_dsn: false,
            size: 10,
            received_at: 0,
            attempts: 0,
            due_at: 0,
            expires_at: 1_000_000,
            verdicts: None,
            keep: None,
        }
    }

    #[test]
    fn mixed_outcomes() {
        let mut m = meta(&["a", "b", "c"]);
        let result = Ok(vec![
            RcptOutcome::Delivered("250 ok".into()),
            RcptOutcome::Temporary("450 busy".into()),
            RcptOutcome::Permanent("550 no".into()),
        ]);
        let applied = apply(&mut m, &result, 100, &[60]);
        assert_eq!(applied.delivered, 1);
        assert_eq!(applied.deferred, 1);
        assert_eq!(applied.failed.len(), 1);
        assert_eq!(applied.failed[0].address, "c");
        assert_eq!(m.due_at, 60_100);
        // the next attempt only concerns "b"
        let again = Ok(vec![RcptOutcome::Delivered("250 ok".into())]);
        let applied = apply(&mut m, &again, 200, &[60]);
        assert_eq!(applied.delivered, 1);
        assert!(m.pending().next().is_none());
    }

    #[test]
    fn temporary_error_defers_all_and_expiry_fails_them() {
        let mut m = meta(&["a", "b"]);
        let err = Err(RelayError::new(
            ErrorKind::Connect,
            Side::Upstream,
            Retry::Later,
            "refused",
        ));
        let applied = apply(&mut m, &err, 100, &[60]);
        assert_eq!(applied.deferred, 2);
        let applied = apply(&mut m, &err, 1_000_000, &[60]);
        assert_eq!(applied.deferred, 0);
        assert_eq!(applied.failed.len(), 2);
        assert!(applied.failed.iter().all(|f| f.expired));
    }

    #[test]
    fn throttled_recipients_stay_pending_without_an_attempt_or_a_retry() {
        let mut m = meta(&["a", "b"]);
        let throttle = |r: &str| r.contains("4.3.2");
        let result = Ok(vec![
            RcptOutcome::Temporary("432 4.3.2 thread limit".into()),
            RcptOutcome::Temporary("432 4.3.2 thread limit".into()),
        ]);
        let applied = apply_with(&mut m, &result, 100, &[60], throttle);
        assert_eq!((applied.throttled, applied.deferred), (2, 0));
        assert_eq!((m.attempts, m.due_at), (0, 0), "no attempt, no retry");
        assert_eq!(m.pending().count(), 2);
        let result = Ok(vec![
            RcptOutcome::Delivered("250 ok".into()),
            RcptOutcome::Temporary("432 4.3.2 thread limit".into()),
        ]);
        let applied = apply_with(&mut m, &result, 100, &[60], throttle);
        assert_eq!((applied.delivered, applied.throttled), (1, 1));
        assert_eq!(m.attempts, 1);
        assert_eq!(m.pending().count(), 1);
    }

    #[test]
    fn permanent_error_fails_all() {
        let mut m = meta(&["a"]);
        let err = Err(RelayError::new(
            ErrorKind::Rejected,
            Side::Upstream,
            Retry::Never,
            "554",
        ));
        let applied = apply(&mut m, &err, 100, &[60]);
        assert_eq!(applied.failed.len(), 1);
        assert!(!applied.failed[0].expired);
    }
}
