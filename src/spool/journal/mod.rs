//! The spool's journal: an append-only log of segment files in `data_dir/spool`, one
//! writer thread, and an in-memory index of every live message.
//!
//! A caller encodes its record, then, under the one lock, reserves the record's place in
//! the log, applies it to the index and queues it for the writer. The writer thread takes
//! everything queued, writes it with one `pwrite` per segment, `fdatasync`s, and wakes the
//! waiters of that batch: many messages, one sync (group commit). Records whose loss in a
//! crash is harmless (a delivered message's removal: one more delivery, which
//! at-least-once allows) do not wait and do not wake the writer; they go out with the next
//! batch, or after `LAZY_WINDOW`.
//!
//! Segments rotate at `SEGMENT_BYTES` and are made from zero-filled spares (`spare`), so a
//! commit overwrites allocated blocks instead of growing a file. A segment is deleted once
//! nothing in it is live (see `index`), and a closed segment pinned by a few long-deferred
//! messages is compacted by moving them forward. At start every segment is replayed
//! (`recover`).
//!
//! The archive reuses what the journal wrote instead of copying it: a finished message the
//! archive keeps gets a `keep` record instead of a `remove`, and its segment, once dead
//! and catalogued, is retired into `archive/` beside the segments with everything but the
//! kept records punched out (`retire`).

mod index;
mod record;
mod recover;
mod retire;
mod spare;
mod writer;

#[cfg(test)]
mod tests;

pub use index::Loc;

pub use retire::ARCHIVE_DIR;

use super::meta::{Meta, QueueId};
use index::{Index, Pos};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

/// A segment is closed once it holds this much (unless one record is bigger).
pub const SEGMENT_BYTES: u64 = 32 * 1024 * 1024;
/// Longest a record that nobody waits for stays only in memory.
const LAZY_WINDOW: Duration = Duration::from_millis(200);
const SEGMENT_EXT: &str = ".log";

type Waiter = oneshot::Sender<Result<(), String>>;

/// One record waiting for the writer.
struct Pending {
    at: Pos,
    bytes: Vec<u8>,
    waiter: Option<Waiter>,
}

struct State {
    index: Index,
    /// A segment is closed once it holds this much.
    segment_bytes: u64,
    /// Where the next record goes.
    tail: Pos,
    /// Everything before this is on disk.
    durable: Pos,
    pending: Vec<Pending>,
    waiting: usize,
    files: BTreeMap<u32, Arc<File>>,
    stopping: bool,
    /// The writer sleeps on the condition variable: a waiter must wake it. (Otherwise it
    /// is writing and takes the queue when done, so a wake-up syscall would be wasted.)
    writer_idle: bool,
    /// Kept messages found at replay, for the archive to catalogue (again).
    recovered: Vec<Kept>,
    /// Kept messages handed out (`remove_kept`, and those found at replay).
    kept_handed: u64,
}

/// A finished message whose enqueue record the archive keeps.
#[derive(Debug, Clone)]
pub struct Kept {
    pub meta: Meta,
    /// Where its bytes lie.
    pub body: Loc,
    /// Where its whole enqueue record starts in the segment.
    pub record_start: u64,
}

struct Shared {
    dir: PathBuf,
    spares: Arc<spare::Spares>,
    state: Mutex<State>,
    wake: Condvar,
    /// Held while dead segments are deleted or retired (`writer::delete_dead`).
    deleting: Mutex<()>,
}

impl State {
    /// Claims the wake-up of a sleeping writer: true if the caller must call
    /// `Shared::wake_writer` once it has released the lock (notifying under the lock would
    /// wake the writer only to make it wait for that lock).
    fn claim_wake(&mut self) -> bool {
        std::mem::take(&mut self.writer_idle)
    }
}

impl Shared {
    /// Wakes the writer if `claimed` (what `State::claim_wake` said); called without the lock.
    fn wake_writer(&self, claimed: bool) {
        if claimed {
            self.wake.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the index as consistent as the journal on
        // disk (records are queued only after the index is updated), so go on with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Handle to the journal. Dropping it stops the writer once it wrote what was queued, and
/// the spares thread, and waits for both: a journal opened again in the same directory
/// right after never races a writer still deleting dead segments, or a spare still being
/// made under a name the new journal's thread will use.
pub struct Journal {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shared.spares.stop();
        {
            let mut st = self.shared.lock();
            st.stopping = true;
            st.writer_idle = false;
        }
        self.shared.wake.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The path of segment `seg`.
fn segment_path(dir: &Path, seg: u32) -> PathBuf {
    dir.join(format!("{seg:08x}{SEGMENT_EXT}"))
}

impl Journal {
    /// Opens the journal in `dir` (created if missing), replays it, and starts the writer.
    #[cfg(test)]
    pub fn open(dir: &Path) -> io::Result<Journal> {
        Journal::open_with(dir, SEGMENT_BYTES, 0)
    }

    /// `open` with segments of `segment_bytes` (`SEGMENT_BYTES`; small ones in tests);
    /// spares are made only from space above `reserve` octets free.
    pub fn open_with(dir: &Path, segment_bytes: u64, reserve: u64) -> io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let mut index = Index::default();
        let mut files = BTreeMap::new();
        let mut recovered = Vec::new();
        let present = recover::segments(dir)?;
        for &seg in &present {
            recover::replay(dir, seg, &mut index, &mut recovered)?;
            files.insert(seg, Arc::new(File::open(segment_path(dir, seg))?));
        }
        // Numbers of retired segments are never used again: the catalog points into them.
        let retired = match recover::segments(&dir.join(ARCHIVE_DIR)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            found => found?,
        };
        let last = present.last().max(retired.last());
        let tail = (last.map_or(0, |s| s + 1), 0);
        index.add_segment(tail.0);
        let state = State {
            index,
            segment_bytes,
            tail,
            durable: tail,
            pending: Vec::new(),
            waiting: 0,
            files,
            stopping: false,
            writer_idle: false,
            kept_handed: recovered.len() as u64,
            recovered,
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            spares: spare::Spares::start(dir, segment_bytes, reserve)?,
            state: Mutex::new(state),
            wake: Condvar::new(),
            deleting: Mutex::new(()),
        });
        // Built first, so that a failure below drops it and stops the spares thread.
        let mut journal = Journal {
            shared,
            writer: None,
        };
        writer::delete_dead(&journal.shared)?;
        journal.writer = Some(writer::start(journal.shared.clone())?);
        Ok(journal)
    }

    /// The largest queue id the journal holds (live or kept for the archive); 0 if none.
    pub fn max_id(&self) -> QueueId {
        let st = self.shared.lock();
        let live = st.index.metas().map(|m| m.id);
        live.chain(st.recovered.iter().map(|k| k.meta.id))
            .max()
            .unwrap_or(0)
    }

    /// Number of live messages.
    pub fn len(&self) -> usize {
        self.shared.lock().index.len()
    }

    /// Writes a new message; on return it is on disk. It is not due until `schedule`.
    pub async fn enqueue(&self, meta: &Meta, meta_json: &[u8], body: &[u8]) -> Result<(), String> {
        let (rec, body_at) = record::enqueue(meta.id, meta_json, body);
        let (meta, len) = (meta.clone(), rec.len() as u64);
        let (done, wait) = oneshot::channel();
        let claimed = {
            let mut st = self.shared.lock();
            let at = append(&mut st, rec, Some(done));
            let loc = Loc {
                seg: at.0,
                offset: at.1 + body_at as u64,
                len: body.len() as u64,
            };
            st.index.put(meta, loc, len, (at.0, at.1 + len));
            st.claim_wake()
        };
        self.shared.wake_writer(claimed);
        wait_for(wait).await
    }

    /// Makes a durably written message visible to `due`.
    pub fn schedule(&self, id: QueueId) {
        self.shared.lock().index.schedule(id);
    }

    /// Writes new metadata for a live message; on return it is on disk.
    pub async fn update(&self, meta: &Meta, meta_json: &[u8]) -> Result<(), String> {
        let rec = record::update(meta.id, meta_json);
        let (meta, len) = (meta.clone(), rec.len() as u64);
        let (done, wait) = oneshot::channel();
        let claimed = {
            let mut st = self.shared.lock();
            if st.index.get(meta.id).is_none() {
                return Ok(());
            }
            let at = append(&mut st, rec, Some(done));
            st.index.set_meta(meta, len, (at.0, at.1 + len));
            st.claim_wake()
        };
        self.shared.wake_writer(claimed);
        wait_for(wait).await
    }

    /// Forgets a message at once; the removal reaches the disk with the next batch.
    pub fn remove(&self, id: QueueId) -> bool {
        let mut st = self.shared.lock();
        if st.index.get(id).is_none() {
            return false;
        }
        let rec = record::remove(id, false);
        let len = rec.len() as u64;
        let at = append(&mut st, rec, None);
        st.index.take(id, (at.0, at.1 + len)).is_some()
    }

    /// Like `remove`, for a message the archive keeps: its enqueue record stays until the
    /// archive has catalogued it (`catalogued`), then is retired with its segment.
    pub fn remove_kept(&self, id: QueueId) -> Option<Kept> {
        let mut st = self.shared.lock();
        st.index.get(id)?;
        let rec = record::remove(id, true);
        let len = rec.len() as u64;
        let at = append(&mut st, rec, None);
        let entry = st.index.take_kept(id, (at.0, at.1 + len))?;
        st.kept_handed += 1;
        Some(Kept {
            record_start: entry.body_start(),
            meta: entry.meta,
            body: entry.body,
        })
    }

    /// The kept messages found at replay (once).
    pub fn take_recovered(&self) -> Vec<Kept> {
        std::mem::take(&mut self.shared.lock().recovered)
    }

    /// The archive has durably catalogued kept records in these segments (one entry per
    /// record); segments nothing else holds are retired now.
    pub fn catalogued(&self, segs: &[u32]) -> io::Result<()> {
        {
            let mut st = self.shared.lock();
            segs.iter().for_each(|&seg| st.index.catalogued(seg));
        }
        writer::delete_dead(&self.shared)
    }

    /// `len` bytes at `offset` of segment `seg`, wherever it is (live, or retired into the
    /// archive directory).
    pub fn read_at(&self, seg: u32, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; len as usize];
        let live = self.shared.lock().files.get(&seg).cloned();
        let file = match live {
            Some(file) => file,
            None => Arc::new(File::open(retire::archived_path(&self.shared.dir, seg))?),
        };
        file.read_exact_at(&mut out, offset)?;
        Ok(out)
    }

    /// How many kept messages `remove_kept` has handed out since the start (with those
    /// found at replay).
    pub fn kept_handed(&self) -> u64 {
        self.shared.lock().kept_handed
    }

    /// Whether segment `seg` was retired into the archive directory.
    pub fn is_retired(&self, seg: u32) -> bool {
        retire::archived_path(&self.shared.dir, seg).exists()
    }

    /// Punches a kept record out of a retired segment, and deletes segments the archive
    /// no longer needs at all (retention ended).
    pub fn forget_retired(&self, seg: u32, start: u64, end: u64, last: bool) -> io::Result<()> {
        retire::forget(&self.shared.dir, seg, start, end, last)
    }

    /// Returns once everything queued so far is on disk.
    pub async fn sync(&self) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        let claimed = {
            let mut st = self.shared.lock();
            let at = st.tail;
            st.pending.push(Pending {
                at,
                bytes: Vec::new(),
                waiter: Some(done),
            });
            st.waiting += 1;
            st.claim_wake()
        };
        self.shared.wake_writer(claimed);
        wait_for(wait).await
    }

    /// A live message's metadata and bytes.
    pub fn load(&self, id: QueueId) -> io::Result<Option<(Meta, Vec<u8>)>> {
        let (meta, loc, file) = {
            let st = self.shared.lock();
            let Some(entry) = st.index.get(id) else {
                return Ok(None);
            };
            let file = st.files.get(&entry.body.seg).cloned();
            (entry.meta.clone(), entry.body, file)
        };
        let file = file.ok_or_else(|| io::Error::other("the message's segment is not open"))?;
        let mut body = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut body, loc.offset)?;
        Ok(Some((meta, body)))
    }

    /// Live messages that `keep` admits, in id order, at most `limit` after id `after`.
    pub fn list(&self, after: QueueId, limit: usize, keep: impl Fn(&Meta) -> bool) -> Vec<Meta> {
        let st = self.shared.lock();
        let mut found: Vec<&Meta> = st
            .index
            .metas()
            .filter(|m| m.id > after && keep(m))
            .collect();
        found.sort_unstable_by_key(|m| m.id);
        found.into_iter().take(limit).cloned().collect()
    }

    /// A live message's metadata.
    pub fn meta(&self, id: QueueId) -> Option<Meta> {
        self.shared.lock().index.get(id).map(|e| e.meta.clone())
    }

    /// `f` of a live message's metadata, under the index's lock (keep it short).
    pub fn peek<R>(&self, id: QueueId, f: impl FnOnce(&Meta) -> R) -> Option<R> {
        self.shared.lock().index.get(id).map(|e| f(&e.meta))
    }

    /// Scheduled messages due at or before `now`, oldest first, at most `limit`.
    pub fn due(&self, now: u64, limit: usize) -> Vec<QueueId> {
        self.shared.lock().index.due(now, limit)
    }

    /// When the earliest scheduled message is due.
    pub fn next_due_at(&self) -> Option<u64> {
        self.shared.lock().index.next_due_at()
    }

    /// Moves the few live messages out of the oldest closed segment, if that is all that
    /// keeps it, so it can be deleted. Returns how many were moved.
    pub fn compact(&self) -> io::Result<usize> {
        let candidate = {
            let st = self.shared.lock();
            st.index.compactable(st.durable, st.segment_bytes / 2)
        };
        let Some((seg, ids)) = candidate else {
            return Ok(0);
        };
        let mut moved = 0;
        for id in ids {
            moved += usize::from(self.relocate(id, seg)?);
        }
        if moved > 0 {
            let claimed = self.shared.lock().claim_wake();
            self.shared.wake_writer(claimed);
        }
        Ok(moved)
    }

    fn relocate(&self, id: QueueId, seg: u32) -> io::Result<bool> {
        let mut st = self.shared.lock();
        let Some(entry) = st.index.get(id) else {
            return Ok(false);
        };
        let (meta, loc) = (entry.meta.clone(), entry.body);
        let file = st.files.get(&loc.seg).cloned();
        let file = file.ok_or_else(|| io::Error::other("segment not open"))?;
        let mut body = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut body, loc.offset)?;
        let json = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        let (rec, body_at) = record::enqueue(id, &json, &body);
        let len = rec.len() as u64;
        let at = append(&mut st, rec, None);
        let new = Loc {
            seg: at.0,
            offset: at.1 + body_at as u64,
            len: loc.len,
        };
        st.index.put(meta, new, len, (at.0, at.1 + len));
        tracing::debug!(queue_id = %crate::spool::show_id(id), from = seg, to = at.0, "moved a message forward in the journal");
        Ok(true)
    }

    /// Number of segment files.
    pub fn segments(&self) -> usize {
        self.shared.lock().files.len()
    }
}

/// Reserves the record's place (rotating to a new segment when the current one is full)
/// and queues it for the writer, waking it if someone waits. Returns where it starts.
/// Places `bytes` at the tail and queues them for the writer. A record with a waiter counts
/// as waited for; waking a sleeping writer is the caller's (`State::claim_wake`).
fn append(st: &mut State, bytes: Vec<u8>, waiter: Option<Waiter>) -> Pos {
    let len = bytes.len() as u64;
    if st.tail.1 > 0 && st.tail.1 + len > st.segment_bytes {
        st.tail = (st.tail.0 + 1, 0);
        st.index.add_segment(st.tail.0);
    }
    let at = st.tail;
    st.tail.1 += len;
    st.waiting += usize::from(waiter.is_some());
    st.pending.push(Pending { at, bytes, waiter });
    at
}

async fn wait_for(wait: oneshot::Receiver<Result<(), String>>) -> Result<(), String> {
    wait.await
        .map_err(|_| "the journal writer stopped".to_string())?
}
