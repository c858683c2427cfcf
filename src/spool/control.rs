//! What an administrator does to the queue (through the API): list messages with filters,
//! show one (and why it waits, when a sending limit holds it), retry it now, delete it, or
//! bounce it (delete and send its sender a DSN).
//!
//! A retry goes through the worker's own channel, so a message already being delivered is
//! not tried twice at once. A deletion is durable before it is reported; a delivery that
//! was already under way when it was deleted may still complete (the upstream has the
//! message by then), which the answer cannot rule out, so the API says so.

use super::attempt::Failed;
use super::dsn::Notices;
use super::fresh::Fresh;
use super::meta::{Meta, QueueId, RcptStatus};
use super::{Spool, SpoolError};
use std::sync::Arc;

/// Which queued messages a listing wants.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// Only messages with a larger id (paging forward).
    pub after: QueueId,
    pub upstream: Option<String>,
    /// Case-insensitive substring of the envelope sender.
    pub sender: Option<String>,
    /// Case-insensitive substring of any recipient.
    pub recipient: Option<String>,
    /// Only messages tried at least once (waiting for a retry).
    pub deferred: bool,
    pub limit: usize,
}

impl QueueFilter {
    /// The filter with `sender` and `recipient` lower-cased, as `admits` compares them.
    pub fn lowered(&self) -> QueueFilter {
        QueueFilter {
            sender: self.sender.as_ref().map(|s| s.to_lowercase()),
            recipient: self.recipient.as_ref().map(|r| r.to_lowercase()),
            ..self.clone()
        }
    }

    /// Whether a message with this envelope passes (a filter made by `lowered`).
    pub fn admits<'a>(
        &self,
        upstream: &str,
        mail_from: &str,
        mut rcpts: impl Iterator<Item = &'a str>,
        attempts: u32,
    ) -> bool {
        let has = |text: &str, part: &Option<String>| {
            part.as_ref()
                .is_none_or(|p| text.to_lowercase().contains(p.as_str()))
        };
        self.upstream
            .as_ref()
            .is_none_or(|u| upstream.eq_ignore_ascii_case(u))
            && has(mail_from, &self.sender)
            && (self.recipient.is_none() || rcpts.any(|r| has(r, &self.recipient)))
            && (!self.deferred || attempts > 0)
    }

    fn admits_meta(&self, meta: &Meta) -> bool {
        let rcpts = meta.rcpts.iter().map(|r| r.address.as_str());
        self.admits(&meta.upstream, &meta.mail_from, rcpts, meta.attempts)
    }
}

/// The queue as an administrator sees it.
pub struct QueueControl {
    spool: Arc<Spool>,
    notices: Arc<Notices>,
}

impl QueueControl {
    /// `notices` are those the worker sends its own DSNs with.
    pub fn new(spool: Arc<Spool>, notices: Arc<Notices>) -> QueueControl {
        QueueControl { spool, notices }
    }

    /// Queued messages in id order.
    pub fn list(&self, filter: &QueueFilter) -> Vec<Meta> {
        let filter = filter.lowered();
        self.spool
            .journal
            .list(filter.after, filter.limit, |m| filter.admits_meta(m))
    }

    /// One queued message.
    pub fn show(&self, id: QueueId) -> Option<Meta> {
        self.spool.meta(id)
    }

    /// Why the message waits in the worker for a sending limit (`waiting: 30
    /// messages/minute for support@…`), if it does.
    pub fn waiting(&self, id: QueueId) -> Option<String> {
        self.spool.waiting().reason(id)
    }

    /// Hands the message to the worker for an attempt now; false if it is not queued.
    pub fn retry(&self, id: QueueId) -> bool {
        if self.spool.meta(id).is_none() {
            return false;
        }
        self.spool.notify.send(Fresh { id, body: None }).is_ok()
    }

    /// Deletes the message durably; with `bounce`, its pending recipients are then reported
    /// to its submitter (`dsn`: not for the null sender or a DSN). Only the caller that
    /// actually removed the message sends a DSN, so two bounces at once send one. Returns
    /// the message as it was, or `None` if it is not queued.
    pub async fn delete(&self, id: QueueId, bounce: bool) -> Result<Option<Meta>, SpoolError> {
        let loaded = match bounce {
            true => self.spool.load(id)?,
            false => self.spool.meta(id).map(|meta| (meta, Vec::new())),
        };
        let Some((meta, data)) = loaded else {
            return Ok(None);
        };
        if !self.spool.journal.remove(id) {
            return Ok(None);
        }
        self.spool.metrics.spool_depth.decrement(1.0);
        let failed: Vec<Failed> = meta
            .rcpts
            .iter()
            .filter(|r| r.status == RcptStatus::Pending)
            .map(|r| Failed {
                address: r.address.clone(),
                reply: "5.0.0 deleted from the queue by an administrator".into(),
                expired: false,
            })
            .collect();
        // A DSN's own commit makes the removal durable with it.
        let sent = match bounce {
            true => {
                self.notices
                    .send(&self.spool, &meta, &data, &failed)
                    .await?
            }
            false => None,
        };
        if sent.is_none() {
            self.spool.sync().await?;
        }
        Ok(Some(meta))
    }
}
