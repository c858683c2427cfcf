//! The Message-ID registry: every message sent through an account records its Message-ID
//! with the account (and later the ticket), so replies can be threaded.
//!
//! Records are not written one by one on the hot path: they wait in memory (where `get`
//! sees them), and the store's periodic sync (`Store::sync_if_dirty`, once a second)
//! writes them as one sorted run file in `message-ids/` (see `runs`), synced before the
//! records leave memory. A crash loses at most the last second of records, which only
//! means a reply to one of those messages is threaded as new mail.
//!
//! Why not a sled tree: at a few thousand messages a second, one sled insert per record
//! (a node copy each, splits as the tree grows by random keys) cost about a fifth of the
//! gateway's CPU per message; a run is one sequential write a second, and merges keep
//! the number of runs logarithmic. Records an older version kept in sled are still read.
//!
//! With several nodes on one shared store, each flush also writes its records to the
//! backend's shared registry in one round trip (`Backend::record_message_ids`), and a
//! lookup that finds nothing on this node asks it, so a reply arriving at another node
//! threads too. If the database cannot be reached, the records stay on this node only
//! (logged): the flush, and so acceptance, never waits for it to come back.
//!
//! An entry is `ENTRY` octets: the first 16 of SHA-256 over the Message-ID as written
//! (angle brackets and case kept), the account, the ticket, the time, a flags octet
//! (bit 0: a ticket; bits 1–2: the direction) and the queue id (at most 22 octets).

mod runs;

use self::runs::{Entry, Key, Run, ENTRY, FAN_IN, KEY};
use super::kv::{Kv, Tree};
use super::StoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What is known about a Message-ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub account: u64,
    pub queue_id: String,
    /// `outbound` for mail sent through Postern (`inbound` is the only other direction).
    pub direction: String,
    #[serde(default)]
    pub ticket: Option<u64>,
    pub at: u64,
}

/// The registry (cheap to clone: clones share it).
#[derive(Clone)]
pub struct MessageIds {
    /// Records of versions that kept them in sled: read, never written.
    legacy: Tree,
    /// The backend, for the registry shared by nodes.
    kv: Kv,
    dir: PathBuf,
    pending: Arc<Mutex<HashMap<Key, Entry>>>,
    /// The runs on disk, newest first.
    runs: Arc<Mutex<Vec<Arc<Run>>>>,
    /// Held while a flush writes a run (flushes take their sequence numbers in order).
    flushing: Arc<Mutex<u64>>,
    /// Held while runs are merged.
    merging: Arc<Mutex<()>>,
    /// The background merge: running, or failed (and when).
    merge_state: Arc<Mutex<MergeState>>,
}

#[derive(Default)]
struct MergeState {
    running: bool,
    failed_at: Option<Instant>,
}

/// How long after a failed merge the next one is tried.
const MERGE_BACKOFF: Duration = Duration::from_secs(60);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl MessageIds {
    /// Opens the registry: the legacy tree of `db` and the runs in `dir` (created).
    pub(super) fn open(kv: &Kv, dir: &Path) -> Result<MessageIds, StoreError> {
        std::fs::create_dir_all(dir)?;
        let runs = runs::open_all(dir)?;
        // Names never carry u64::MAX (see `runs::parse_name`), so this cannot wrap.
        let next = runs.iter().map(|r| r.max + 1).max().unwrap_or(1);
        Ok(MessageIds {
            legacy: kv.open_tree("message_ids")?,
            kv: kv.clone(),
            dir: dir.to_path_buf(),
            pending: Arc::default(),
            runs: Arc::new(Mutex::new(runs.into_iter().map(Arc::new).collect())),
            flushing: Arc::new(Mutex::new(next)),
            merging: Arc::default(),
            merge_state: Arc::default(),
        })
    }

    /// Records `message_id` (angle brackets and case kept as written).
    pub fn record(&self, message_id: &str, record: &MessageRecord) -> Result<(), StoreError> {
        let entry = encode(message_id, record)?;
        lock(&self.pending).insert(runs::key(&entry), entry);
        Ok(())
    }

    pub fn get(&self, message_id: &str) -> Result<Option<MessageRecord>, StoreError> {
        let key = hash(message_id);
        if let Some(entry) = lock(&self.pending).get(&key) {
            return decode(entry).map(Some);
        }
        let runs: Vec<Arc<Run>> = lock(&self.runs).clone();
        for run in runs {
            if let Some(entry) = run.get(&key)? {
                return decode(&entry).map(Some);
            }
        }
        if let Some(raw) = self.legacy.get(message_id.as_bytes())? {
            return serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(e.to_string()));
        }
        if !self.kv.is_shared() {
            return Ok(None);
        }
        match self.kv.message_id(&key)? {
            Some(raw) => {
                let entry: Entry = raw
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("shared Message-ID entry".into()))?;
                decode(&entry).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Writes the waiting records as one run and makes it durable; true if there were
    /// any. Records stay visible in memory until their run is listed.
    pub(super) fn write_pending(&self) -> Result<bool, StoreError> {
        let mut seq = lock(&self.flushing);
        let mut entries: Vec<Entry> = lock(&self.pending).values().copied().collect();
        if entries.is_empty() {
            return Ok(false);
        }
        entries.sort_unstable_by_key(runs::key);
        self.share(&entries);
        let mut writer = runs::RunWriter::create(&self.dir, 0, *seq, *seq)?;
        for entry in &entries {
            writer.push(entry)?;
        }
        let run = Arc::new(writer.finish()?);
        *seq += 1;
        {
            let mut list = lock(&self.runs);
            list.push(run);
            runs::sort_newest_first(&mut list);
        }
        let mut pending = lock(&self.pending);
        for entry in &entries {
            let key = runs::key(entry);
            // A record written again meanwhile stays for the next run.
            if pending.get(&key) == Some(entry) {
                pending.remove(&key);
            }
        }
        Ok(true)
    }

    /// Writes `entries` to the registry shared by nodes, if there is one; a failure is
    /// logged, and the entries stay this node's.
    fn share(&self, entries: &[Entry]) {
        if !self.kv.is_shared() {
            return;
        }
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = entries
            .iter()
            .map(|e| (runs::key(e).to_vec(), e.to_vec()))
            .collect();
        if let Err(error) = self.kv.record_message_ids(&pairs) {
            tracing::warn!(%error, records = pairs.len(), "cannot share Message-ID records with the other nodes; they stay on this node");
        }
    }

    /// Merges full levels on a thread of its own, so flushes go on meanwhile; not while
    /// a merge runs, nor within `MERGE_BACKOFF` of a failed one.
    pub(super) fn compact_in_background(&self) {
        if self.full_level().is_none() {
            return;
        }
        {
            let mut state = lock(&self.merge_state);
            let backing_off = state.failed_at.is_some_and(|t| t.elapsed() < MERGE_BACKOFF);
            if state.running || backing_off {
                return;
            }
            state.running = true;
        }
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("postern-msgid-merge".into())
            .spawn(move || {
                let result = this.compact();
                let mut state = lock(&this.merge_state);
                state.running = false;
                state.failed_at = match result {
                    Ok(()) => None,
                    Err(error) => {
                        tracing::error!(%error, "merging Message-ID runs failed; trying again later");
                        Some(Instant::now())
                    }
                };
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start merging Message-ID runs");
            lock(&self.merge_state).running = false;
        }
    }

    /// Merges every level that holds `FAN_IN` runs into one run of the next level.
    pub(super) fn compact(&self) -> Result<(), StoreError> {
        let _merging = lock(&self.merging);
        while let Some((level, inputs)) = self.full_level() {
            let refs: Vec<&Run> = inputs.iter().map(|r| r.as_ref()).collect();
            let merged = Arc::new(runs::merge(&self.dir, &refs, level + 1)?);
            {
                let mut list = lock(&self.runs);
                list.retain(|run| !inputs.iter().any(|input| Arc::ptr_eq(run, input)));
                list.push(merged);
                runs::sort_newest_first(&mut list);
            }
            for run in &inputs {
                run.delete()?;
            }
        }
        Ok(())
    }

    /// The lowest level with `FAN_IN` runs or more, and those runs (newest first).
    fn full_level(&self) -> Option<(u8, Vec<Arc<Run>>)> {
        let list = lock(&self.runs);
        let mut levels: Vec<u8> = list.iter().map(|r| r.level).collect();
        levels.sort_unstable();
        levels.dedup();
        levels.into_iter().find_map(|level| {
            let runs: Vec<Arc<Run>> = list.iter().filter(|r| r.level == level).cloned().collect();
            (runs.len() >= FAN_IN).then_some((level, runs))
        })
    }
}

fn hash(message_id: &str) -> Key {
    let digest = Sha256::digest(message_id.as_bytes());
    let mut key = [0; KEY];
    key.copy_from_slice(&digest[..KEY]);
    key
}

const HAS_TICKET: u8 = 1;
const OUTBOUND: u8 = 1 << 1;
const INBOUND: u8 = 2 << 1;
const DIRECTION: u8 = 3 << 1;
/// Where the queue id's length and octets start.
const QUEUE_AT: usize = KEY + 8 + 8 + 8 + 1;
const QUEUE_MAX: usize = ENTRY - QUEUE_AT - 1;

fn encode(message_id: &str, record: &MessageRecord) -> Result<Entry, StoreError> {
    let refuse = |what: String| StoreError::Corrupt(format!("Message-ID record: {what}"));
    let direction = match record.direction.as_str() {
        "outbound" => OUTBOUND,
        "inbound" => INBOUND,
        other => return Err(refuse(format!("unknown direction {other:?}"))),
    };
    let queue = record.queue_id.as_bytes();
    if queue.len() > QUEUE_MAX {
        return Err(refuse(format!(
            "queue id {:?} is too long",
            record.queue_id
        )));
    }
    let mut entry = [0u8; ENTRY];
    entry[..KEY].copy_from_slice(&hash(message_id));
    entry[KEY..KEY + 8].copy_from_slice(&record.account.to_be_bytes());
    entry[KEY + 8..KEY + 16].copy_from_slice(&record.ticket.unwrap_or(0).to_be_bytes());
    entry[KEY + 16..KEY + 24].copy_from_slice(&record.at.to_be_bytes());
    entry[QUEUE_AT - 1] = direction
        | if record.ticket.is_some() {
            HAS_TICKET
        } else {
            0
        };
    entry[QUEUE_AT] = queue.len() as u8;
    entry[QUEUE_AT + 1..QUEUE_AT + 1 + queue.len()].copy_from_slice(queue);
    Ok(entry)
}

fn decode(entry: &Entry) -> Result<MessageRecord, StoreError> {
    let u64_at = |at: usize| u64::from_be_bytes(entry[at..at + 8].try_into().expect("8 octets"));
    let flags = entry[QUEUE_AT - 1];
    let direction = match flags & DIRECTION {
        OUTBOUND => "outbound",
        INBOUND => "inbound",
        _ => {
            return Err(StoreError::Corrupt(
                "Message-ID record: no direction".into(),
            ))
        }
    };
    let len = (entry[QUEUE_AT] as usize).min(QUEUE_MAX);
    let queue = &entry[QUEUE_AT + 1..QUEUE_AT + 1 + len];
    Ok(MessageRecord {
        account: u64_at(KEY),
        queue_id: String::from_utf8_lossy(queue).into_owned(),
        direction: direction.into(),
        ticket: (flags & HAS_TICKET != 0).then(|| u64_at(KEY + 8)),
        at: u64_at(KEY + 16),
    })
}

#[cfg(test)]
mod tests;
