//! A queued message's metadata (rewritten after every attempt) and the envelope a session
//! hands to the spool.

use crate::store::Verdicts;
use serde::{Deserialize, Serialize};

/// A queue id: unique and increasing, shown as 16 upper-case hex digits.
pub type QueueId = u64;

/// Formats a queue id the way it appears in replies and logs: 16 upper-case hex digits
/// (as `{:016X}`, written directly: it is formatted several times per message).
pub fn show_id(id: QueueId) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut text = String::with_capacity(16);
    for shift in (0..16).rev() {
        text.push(DIGITS[(id >> (shift * 4)) as usize & 0xF] as char);
    }
    text
}

/// Where one recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RcptStatus {
    Pending,
    Delivered,
    Failed,
}

/// One envelope recipient and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rcpt {
    pub address: String,
    pub status: RcptStatus,
    /// The last reply (or error) seen for this recipient.
    #[serde(default)]
    pub last_reply: Option<String>,
}

/// Whose mail a message is, for the archive (SPEC §8): decided when it is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Keep {
    /// The users (account type not `private`) whose mail it is.
    pub owners: Vec<u64>,
    /// The email account it goes through (or arrived for).
    #[serde(default)]
    pub account: Option<u64>,
}

/// What the session hands to the spool with the message bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Envelope sender; empty for `<>`.
    pub mail_from: String,
    pub rcpts: Vec<String>,
    /// Name of the upstream that delivers it.
    pub upstream: String,
    /// Login of the principal that submitted it, if any.
    pub principal: Option<String>,
    pub smtputf8: bool,
    pub eight_bit: bool,
    /// This message is itself a delivery status notification.
    pub is_dsn: bool,
    /// Authentication verdicts of an inbound message, found before its `250`.
    pub verdicts: Option<Verdicts>,
    /// Set: the archive keeps the message once it leaves the queue.
    pub keep: Option<Keep>,
}

/// The durable metadata of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Meta {
    pub id: QueueId,
    pub mail_from: String,
    pub rcpts: Vec<Rcpt>,
    pub upstream: String,
    pub principal: Option<String>,
    pub smtputf8: bool,
    pub eight_bit: bool,
    pub is_dsn: bool,
    pub size: u64,
    /// Unix milliseconds.
    pub received_at: u64,
    pub attempts: u32,
    /// Unix milliseconds of the next attempt (the due-index key).
    pub due_at: u64,
    pub expires_at: u64,
    /// Authentication verdicts of an inbound message (what the hook's payload carries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdicts: Option<Verdicts>,
    /// Set: the archive keeps the message once it leaves the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<Keep>,
}

impl Meta {
    /// Recipients still to be delivered.
    pub fn pending(&self) -> impl Iterator<Item = &Rcpt> {
        self.rcpts
            .iter()
            .filter(|r| r.status == RcptStatus::Pending)
    }
}

#[cfg(test)]
mod tests {
    use super::show_id;

    #[test]
    fn queue_ids_show_as_sixteen_upper_case_hex_digits() {
        for id in [0, 1, 0x9C41, 0x0123_4567_89AB_CDEF, u64::MAX] {
            assert_eq!(show_id(id), format!("{id:016X}"));
        }
        assert_eq!(show_id(0xABC), "0000000000000ABC");
    }
}
