//! The spool's records: message metadata (rewritten after every attempt), and the key
//! layout of the one sled tree that holds metadata, bodies and the due index.

use serde::{Deserialize, Serialize};

/// A queue id: unique and increasing, shown as 16 upper-case hex digits.
pub type QueueId = u64;

/// Formats a queue id the way it appears in replies and logs.
pub fn show_id(id: QueueId) -> String {
    format!("{id:016X}")
}

/// Where one recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RcptStatus {
    Pending,
    Delivered,
    Failed,
}

/// One envelope recipient and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rcpt {
    pub address: String,
    pub status: RcptStatus,
    /// The last reply (or error) seen for this recipient.
    #[serde(default)]
    pub last_reply: Option<String>,
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
}

/// The durable metadata of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Meta {
    /// Recipients still to be delivered.
    pub fn pending(&self) -> impl Iterator<Item = &Rcpt> {
        self.rcpts
            .iter()
            .filter(|r| r.status == RcptStatus::Pending)
    }
}

/// Key of a message's metadata.
pub fn meta_key(id: QueueId) -> [u8; 9] {
    prefixed(b'm', id)
}

/// Key of a message's bytes.
pub fn data_key(id: QueueId) -> [u8; 9] {
    prefixed(b'd', id)
}

/// Key of a message's entry in the due index: ordered by time, then id.
pub fn due_key(due_at: u64, id: QueueId) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = b'q';
    key[1..9].copy_from_slice(&due_at.to_be_bytes());
    key[9..].copy_from_slice(&id.to_be_bytes());
    key
}

/// Splits a due-index key into (due_at, id).
pub fn parse_due_key(key: &[u8]) -> Option<(u64, QueueId)> {
    if key.len() != 17 || key[0] != b'q' {
        return None;
    }
    let due = u64::from_be_bytes(key[1..9].try_into().ok()?);
    let id = u64::from_be_bytes(key[9..].try_into().ok()?);
    Some((due, id))
}

fn prefixed(prefix: u8, id: QueueId) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = prefix;
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_sort_by_time_then_id() {
        assert!(due_key(5, 9) < due_key(6, 1));
        assert!(due_key(5, 1) < due_key(5, 2));
        assert_eq!(parse_due_key(&due_key(7, 42)), Some((7, 42)));
        assert_eq!(parse_due_key(&meta_key(1)), None);
    }
}
