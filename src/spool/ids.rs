//! Queue ids: owned by the spool, increasing, and never handed out twice, whatever
//! crashes when.
//!
//! Ids come from blocks (hi/lo). The file `queue-ids` in the spool directory holds a
//! limit; ids of a block `[next, limit)` are handed out only after that limit is durable
//! (written to a temporary file, `fdatasync`, renamed over the old one, directory synced).
//! So every id ever handed out is below the limit on disk, and a start hands out its first
//! id at that limit, or above the largest id still in the journal, whichever is higher:
//! no sequence of crashes, at any moment, can give two messages one id. A crash skips at
//! most the rest of one block. Every rename replaces the whole file, so a crash leaves
//! either the old limit or the new one, never a torn one; a file that does not check out
//! (a damaged disk) is not trusted: the start then goes a whole `FALLBACK_MARGIN` above
//! everything it knows.
//!
//! Before this file existed, queue ids came from the store's sled counter, which after a
//! crash could repeat ids (two messages, one index entry, one of them lost); the first
//! start with this file begins above that counter.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::meta::QueueId;

const FILE: &str = "queue-ids";
const TMP: &str = "queue-ids.tmp";
/// Ids reserved at once: one durable write of the limit per this many messages.
const BLOCK: u64 = 1 << 20;
/// How far above everything known a start goes when the limit file cannot be trusted.
const FALLBACK_MARGIN: u64 = 1 << 40;

struct Range {
    next: u64,
    limit: u64,
}

/// The queue id sequence of one spool directory.
pub struct QueueIds {
    dir: PathBuf,
    range: Mutex<Range>,
}

impl QueueIds {
    /// Opens the sequence in `dir`: ids start at the durable limit, above `journal_max`
    /// (the largest id the journal holds) and above `legacy_floor` (ids handed out by
    /// earlier versions), and the first block is reserved (if the disk allows). Blocking.
    pub fn open(
        dir: &Path,
        journal_max: u64,
        legacy_floor: impl FnOnce() -> io::Result<u64>,
    ) -> io::Result<QueueIds> {
        let _ = std::fs::remove_file(dir.join(TMP));
        let known = journal_max.saturating_add(1);
        let start = match read_limit(&dir.join(FILE)) {
            Ok(Some(limit)) => limit.max(known),
            Ok(None) => legacy_floor()?.max(known),
            Err(error) => {
                tracing::error!(%error, dir = %dir.display(), "queue id limit unreadable: starting far above every id known");
                legacy_floor()?.max(known).saturating_add(FALLBACK_MARGIN)
            }
        };
        let ids = QueueIds {
            dir: dir.to_path_buf(),
            range: Mutex::new(Range {
                next: start,
                limit: start,
            }),
        };
        // Reserved now so the first message does not wait for it; on a full disk the
        // spool still opens (refusing mail), and the first `next` tries again.
        if let Err(error) = ids.reserve(&mut ids.lock()) {
            tracing::warn!(%error, dir = %dir.display(), "cannot reserve queue ids yet");
        }
        Ok(ids)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Range> {
        // Two integers: consistent after any panic.
        self.range.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh queue id. Once in `BLOCK` ids this writes and syncs the next limit first.
    pub fn next(&self) -> io::Result<QueueId> {
        let mut range = self.lock();
        if range.next >= range.limit {
            self.reserve(&mut range)?;
        }
        range.next += 1;
        Ok(range.next - 1)
    }

    /// Makes `next + BLOCK` the durable limit, then lets the block be used.
    fn reserve(&self, range: &mut Range) -> io::Result<()> {
        let limit = range
            .next
            .checked_add(BLOCK)
            .ok_or_else(|| io::Error::other("queue ids exhausted"))?;
        write_limit(&self.dir, limit)?;
        range.limit = limit;
        Ok(())
    }
}

/// The limit in `path`: `None` if there is no file; an error if it does not check out.
fn read_limit(path: &Path) -> io::Result<Option<u64>> {
    let raw = match std::fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "queue id limit damaged");
    let (value, check) = raw.split_at_checked(8).ok_or_else(bad)?;
    let check: [u8; 4] = check.try_into().map_err(|_| bad())?;
    if crc32fast::hash(value) != u32::from_le_bytes(check) {
        return Err(bad());
    }
    Ok(Some(u64::from_le_bytes(
        value.try_into().map_err(|_| bad())?,
    )))
}

/// Replaces the limit file durably: temporary file, data sync, rename, directory sync.
/// A failure leaves no temporary file behind.
fn write_limit(dir: &Path, limit: u64) -> io::Result<()> {
    let tmp = dir.join(TMP);
    let mut raw = limit.to_le_bytes().to_vec();
    raw.extend_from_slice(&crc32fast::hash(&raw).to_le_bytes());
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(&raw)?;
        file.sync_data()?;
        std::fs::rename(&tmp, dir.join(FILE))?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_open_starts_above_every_id_handed_out_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let ids = QueueIds::open(dir.path(), 0, || Ok(1)).unwrap();
            for _ in 0..10 {
                seen.push(ids.next().unwrap());
            }
            // No clean close: the next open knows only the file.
            std::mem::forget(ids);
        }
        let mut sorted = seen.clone();
        sorted.dedup();
        assert_eq!(sorted, seen);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert!(!dir.path().join(TMP).exists());
    }

    #[test]
    fn the_journal_and_legacy_ids_are_floors() {
        let dir = tempfile::tempdir().unwrap();
        let ids = QueueIds::open(dir.path(), 500, || Ok(900)).unwrap();
        assert_eq!(ids.next().unwrap(), 900);
        let ids = QueueIds::open(dir.path(), u64::from(u32::MAX), || Ok(1)).unwrap();
        assert_eq!(ids.next().unwrap(), u64::from(u32::MAX) + 1);
    }

    #[test]
    fn a_damaged_limit_file_starts_far_above() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"garbage!!!!!").unwrap();
        let ids = QueueIds::open(dir.path(), 7, || Ok(3)).unwrap();
        assert!(ids.next().unwrap() > FALLBACK_MARGIN);
    }
}
