//! The journal's writer thread: takes every queued record, writes each segment's share
//! with one `pwrite`, `fdatasync`s the segments it touched, wakes the batch's waiters, then
//! deletes segments that nothing live needs any more.
//!
//! A failed write or sync fails the whole batch (the sessions answer `451`) and the writer
//! moves on to a fresh segment, since the old file's state after a failed sync is unknown;
//! records already placed behind the failure are refused with it. (A refused batch that did
//! reach the disk is delivered after a restart: a duplicate, never a loss.)

use super::{retire, segment_path, Pending, Shared, State, LAZY_WINDOW};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, MutexGuard};

/// Starts the writer thread.
pub fn start(shared: Arc<Shared>) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("postern-journal".into())
        .spawn(move || run(&shared))
}

fn run(shared: &Shared) {
    let mut scratch = Vec::new();
    // After a failure, records already placed in the failed segment are refused too: they
    // would sit behind a torn region that recovery cuts off.
    let mut poisoned: Option<u32> = None;
    while let Some(batch) = next_batch(shared) {
        let behind_failure = batch
            .iter()
            .any(|p| !p.bytes.is_empty() && poisoned.is_some_and(|seg| p.at.0 <= seg));
        let result = match behind_failure {
            true => Err(io::Error::other("placed in a segment whose write failed")),
            false => write(shared, &batch, &mut scratch),
        };
        if let Err(error) = &result {
            tracing::error!(%error, "journal write failed; the batch is refused");
        }
        let end = batch
            .last()
            .map(|p| (p.at.0, p.at.1 + p.bytes.len() as u64));
        {
            let mut st = shared.lock();
            match (&result, end) {
                (Ok(()), Some(end)) if end > st.durable => st.durable = end,
                (Ok(()), _) => {}
                (Err(_), _) if !behind_failure => {
                    poisoned = Some(st.tail.0);
                    st.tail = (st.tail.0 + 1, 0);
                    let tail = st.tail.0;
                    st.index.add_segment(tail);
                }
                (Err(_), _) => {}
            }
        }
        let result = result.map_err(|e| e.to_string());
        for waiter in batch.into_iter().filter_map(|p| p.waiter) {
            let _ = waiter.send(result.clone());
        }
        if let Err(error) = delete_dead(shared) {
            tracing::warn!(%error, "cannot delete a finished journal segment");
        }
    }
}

/// Waits for work: at once when someone waits for a sync, after `LAZY_WINDOW` when only
/// lazy records are queued. `None` when the journal is dropped and nothing is left.
fn next_batch(shared: &Shared) -> Option<Vec<Pending>> {
    let mut st = shared.lock();
    loop {
        if st.waiting > 0 {
            return Some(take(&mut st));
        }
        if st.stopping {
            return (!st.pending.is_empty()).then(|| take(&mut st));
        }
        st.writer_idle = true;
        if st.pending.is_empty() {
            st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            st.writer_idle = false;
        } else {
            let (guard, _) = shared
                .wake
                .wait_timeout(st, LAZY_WINDOW)
                .unwrap_or_else(|p| p.into_inner());
            st = guard;
            st.writer_idle = false;
            return Some(take(&mut st));
        }
    }
}

fn take(st: &mut MutexGuard<'_, State>) -> Vec<Pending> {
    st.waiting = 0;
    std::mem::take(&mut st.pending)
}

/// Writes the batch (records are in log order, so each segment's share is contiguous) and
/// syncs every segment it touched.
fn write(shared: &Shared, batch: &[Pending], scratch: &mut Vec<u8>) -> io::Result<()> {
    let mut touched: Vec<Arc<File>> = Vec::new();
    let mut i = 0;
    while i < batch.len() {
        let seg = batch[i].at.0;
        let start = batch[i].at.1;
        scratch.clear();
        while i < batch.len() && batch[i].at.0 == seg {
            scratch.extend_from_slice(&batch[i].bytes);
            i += 1;
        }
        if scratch.is_empty() {
            continue;
        }
        let file = open_segment(shared, seg)?;
        file.write_all_at(scratch, start)?;
        touched.push(file);
    }
    touched.iter().try_for_each(|f| f.sync_data())
}

/// The segment's file, made from a spare if one is ready (else created empty), its
/// directory entry synced, on first use.
fn open_segment(shared: &Shared, seg: u32) -> io::Result<Arc<File>> {
    if let Some(file) = shared.lock().files.get(&seg) {
        return Ok(file.clone());
    }
    let path = segment_path(&shared.dir, seg);
    let file = match shared.spares.take() {
        // A zero-filled spare: records overwrite blocks already on disk.
        Some(spare) => {
            std::fs::rename(&spare, &path)?;
            OpenOptions::new().read(true).write(true).open(&path)?
        }
        None => OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?,
    };
    File::open(&shared.dir)?.sync_all()?;
    let file = Arc::new(file);
    shared.lock().files.insert(seg, file.clone());
    Ok(file)
}

/// Deletes the segments the index gives up (or retires those holding records the archive
/// keeps), and syncs the directory.
///
/// One caller at a time (the writer thread, and the archive through `catalogued`), so that
/// segments always go oldest first. A segment whose deletion fails goes back into the
/// index with every newer one taken out with it, to be tried again.
pub fn delete_dead(shared: &Shared) -> io::Result<()> {
    let _one_at_a_time = shared
        .deleting
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dead = {
        let mut st = shared.lock();
        let (durable, tail) = (st.durable, st.tail.0);
        st.index.deletable(durable, tail)
    };
    if dead.is_empty() {
        return Ok(());
    }
    let mut dead = dead.into_iter();
    while let Some(d) = dead.next() {
        let path = segment_path(&shared.dir, d.seg);
        let done = match d.kept.is_empty() {
            true => std::fs::remove_file(&path),
            false => retire::retire(&shared.dir, &path, d.seg, &d.kept),
        };
        match done {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                let mut st = shared.lock();
                st.index.restore(d);
                dead.for_each(|later| st.index.restore(later));
                return Err(e);
            }
            // Readers of a retiring segment find it under the archive directory by now.
            _ => {
                shared.lock().files.remove(&d.seg);
            }
        }
    }
    File::open(&shared.dir)?.sync_all()
}
