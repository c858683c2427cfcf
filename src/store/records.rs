//! JSON records under key prefixes in one tree — how the ticket store and the webhooks
//! keep several kinds of record side by side: the key layout (a prefix, then big-endian
//! numbers or text, so scans run in id order) and the codec.

use super::kv::Tree;
use super::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// `prefix` followed by each of `parts` big-endian.
pub(super) fn key(prefix: &[u8], parts: &[u64]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    for part in parts {
        key.extend_from_slice(&part.to_be_bytes());
    }
    key
}

/// `prefix` followed by `text`.
pub(super) fn text_key(prefix: &[u8], text: &str) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(text.as_bytes());
    key
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn decode<T: DeserializeOwned>(raw: &[u8], what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// The record at `key`, if any.
pub(super) fn get<T: DeserializeOwned>(
    tree: &Tree,
    key: &[u8],
    what: &str,
) -> Result<Option<T>, StoreError> {
    tree.get(key)?.map(|raw| decode(&raw, what)).transpose()
}

/// Every record under `prefix`, in key order.
pub(super) fn scan<T: DeserializeOwned>(
    tree: &Tree,
    prefix: &[u8],
    what: &str,
) -> Result<Vec<T>, StoreError> {
    tree.scan_prefix(prefix)?
        .iter()
        .map(|(_, raw)| decode(raw, what))
        .collect()
}
