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
//! An entry is `ENTRY` octets: the first 16 of SHA-256 over the Message-ID as written
//! (angle brackets and case kept), the account, the ticket, the time, a flags octet
//! (bit 0: a ticket; bits 1–2: the direction) and the queue id (at most 22 octets).

mod runs;

use self::runs::{Entry, Key, Run, ENTRY, FAN_IN, KEY};
use super::StoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

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
    legacy: sled::Tree,
    dir: PathBuf,
    pending: Arc<Mutex<HashMap<Key, Entry>>>,
    /// The runs on disk, newest first.
    runs: Arc<Mutex<Vec<Arc<Run>>>>,
    /// Held while a flush writes a run (flushes take their sequence numbers in order).
    flushing: Arc<Mutex<u64>>,
    /// Held while runs are merged.
    merging: Arc<Mutex<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl MessageIds {
    /// Opens the registry: the legacy tree of `db` and the runs in `dir` (created).
    pub(super) fn open(db: &sled::Db, dir: &Path) -> Result<MessageIds, StoreError> {
        std::fs::create_dir_all(dir)?;
        let runs = runs::open_all(dir)?;
        let next = runs.iter().map(|r| r.max + 1).max().unwrap_or(1);
        Ok(MessageIds {
            legacy: db.open_tree("message_ids")?,
            dir: dir.to_path_buf(),
            pending: Arc::default(),
            runs: Arc::new(Mutex::new(runs.into_iter().map(Arc::new).collect())),
            flushing: Arc::new(Mutex::new(next)),
            merging: Arc::default(),
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
        self.legacy
            .get(message_id.as_bytes())?
            .map(|raw| serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
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
mod tests {
    use super::*;
    use crate::store::Store;

    fn record(account: u64, ticket: Option<u64>) -> MessageRecord {
        MessageRecord {
            account,
            queue_id: "00000000000000AB".into(),
            direction: "outbound".into(),
            ticket,
            at: 1_764_460_800,
        }
    }

    fn run_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("message-ids"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn records_are_seen_at_once_and_kept_after_the_periodic_sync() {
        let dir = tempfile::tempdir().unwrap();
        let kept = record(3, None);
        {
            let store = Store::open(dir.path()).unwrap();
            store.message_ids().record("<a@b>", &kept).unwrap();
            assert_eq!(
                store.message_ids().get("<a@b>").unwrap(),
                Some(kept.clone())
            );
            assert!(run_files(dir.path()).is_empty(), "nothing written yet");
            store.sync_if_dirty().unwrap();
            assert_eq!(run_files(dir.path()).len(), 1);
            assert!(lock(&store.message_ids().pending).is_empty());
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.message_ids().get("<a@b>").unwrap(), Some(kept));
        assert_eq!(
            store.message_ids().get("<A@b>").unwrap(),
            None,
            "case is kept"
        );
        assert_eq!(store.message_ids().get("<other@b>").unwrap(), None);
    }

    #[test]
    fn the_newest_record_wins_through_merges_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let ids = store.message_ids();
            ids.record("<t@b>", &record(1, None)).unwrap();
            store.sync_if_dirty().unwrap();
            ids.record("<t@b>", &record(1, Some(0))).unwrap();
            store.sync_if_dirty().unwrap();
            // Enough flushes for level 0 to fill and merge, each with other ids.
            for batch in 0..FAN_IN {
                for n in 0..300 {
                    ids.record(&format!("<{batch}.{n}@b>"), &record(2, Some(n)))
                        .unwrap();
                }
                store.sync_if_dirty().unwrap();
            }
            ids.record("<t@b>", &record(1, Some(42))).unwrap();
            store.sync_if_dirty().unwrap();
            assert_eq!(ids.get("<t@b>").unwrap(), Some(record(1, Some(42))));
        }
        let files = run_files(dir.path());
        assert!(files.iter().any(|f| f.starts_with("01-")), "{files:?}");
        assert!(files.len() < FAN_IN, "{files:?}");
        let store = Store::open(dir.path()).unwrap();
        let ids = store.message_ids();
        assert_eq!(ids.get("<t@b>").unwrap(), Some(record(1, Some(42))));
        for batch in 0..FAN_IN {
            for n in (0..300).step_by(37) {
                let id = format!("<{batch}.{n}@b>");
                assert_eq!(ids.get(&id).unwrap(), Some(record(2, Some(n))), "{id}");
            }
        }
    }

    #[test]
    fn what_a_crash_left_is_cleaned_up_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let runs_dir = dir.path().join("message-ids");
        {
            let store = Store::open(dir.path()).unwrap();
            for n in 0..FAN_IN as u64 {
                store
                    .message_ids()
                    .record(&format!("<{n}@b>"), &record(n, None))
                    .unwrap();
                store.message_ids().write_pending().unwrap();
            }
            let level0: Vec<String> = run_files(dir.path());
            let first = runs_dir.join(&level0[0]);
            let saved = std::fs::read(&first).unwrap();
            store.sync_if_dirty().unwrap_or(());
            store.message_ids().compact().unwrap();
            // A merge that renamed its output but died before deleting its inputs.
            std::fs::write(&first, saved).unwrap();
            std::fs::write(runs_dir.join("00-9-9.tmp"), b"torn").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let files = run_files(dir.path());
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].starts_with("01-"));
        for n in 0..FAN_IN as u64 {
            assert_eq!(
                store.message_ids().get(&format!("<{n}@b>")).unwrap(),
                Some(record(n, None))
            );
        }
    }

    #[test]
    fn records_of_the_sled_tree_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let old = serde_json::to_vec(&record(7, Some(3))).unwrap();
            db.open_tree("message_ids")
                .unwrap()
                .insert("<old@b>", old)
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.message_ids().get("<old@b>").unwrap(),
            Some(record(7, Some(3)))
        );
    }

    #[test]
    fn entries_keep_every_field_and_refuse_what_does_not_fit() {
        let inbound = MessageRecord {
            direction: "inbound".into(),
            queue_id: "Q".repeat(QUEUE_MAX),
            ..record(u64::MAX, Some(u64::MAX))
        };
        let entry = encode("<x@y>", &inbound).unwrap();
        assert_eq!(decode(&entry).unwrap(), inbound);
        assert_eq!(runs::key(&entry), hash("<x@y>"));
        let long = MessageRecord {
            queue_id: "Q".repeat(QUEUE_MAX + 1),
            ..record(1, None)
        };
        assert!(encode("<x@y>", &long).is_err());
        let sideways = MessageRecord {
            direction: "sideways".into(),
            ..record(1, None)
        };
        assert!(encode("<x@y>", &sideways).is_err());
    }
}
