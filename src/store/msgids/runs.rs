//! The registry's run files: sorted arrays of fixed-size entries, written once (to a
//! temporary name, synced, renamed, the directory synced) and never changed.
//!
//! A run is named `LL-MIN-MAX.run`: its level and the range of flush sequence numbers its
//! entries come from. Each flush writes a level-0 run; `FAN_IN` runs of one level are
//! merged into one run of the next, the newest entry winning where keys repeat, so a
//! registry of N entries has about `FAN_IN` × log(N) runs. A run covered by a higher
//! level's range is what a merge interrupted by a crash left behind, and is deleted.
//!
//! Every `FENCE_EVERY`-th key stays in memory, so a lookup reads one block per run.

use std::cmp::Reverse;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Octets of an entry's key (its first octets).
pub(super) const KEY: usize = 16;
/// Octets of an entry.
pub(super) const ENTRY: usize = 64;
pub(super) type Key = [u8; KEY];
pub(super) type Entry = [u8; ENTRY];
/// A level holding this many runs is merged into one run of the next level.
pub(super) const FAN_IN: usize = 8;

const MAGIC: &[u8; 8] = b"PMIDRUN1";
/// Magic, then the number of entries (u64, big-endian).
const HEADER: u64 = 16;
/// One key in memory per this many entries; a lookup reads one such block.
const FENCE_EVERY: u64 = 128;

/// One run file, open, with its fence keys.
pub(super) struct Run {
    pub(super) level: u8,
    pub(super) min: u64,
    pub(super) max: u64,
    path: PathBuf,
    file: File,
    count: u64,
    fences: Vec<Key>,
}

/// The key of an entry.
pub(super) fn key(entry: &Entry) -> Key {
    let mut key = [0; KEY];
    key.copy_from_slice(&entry[..KEY]);
    key
}

impl Run {
    /// The entry stored under `key`, if any.
    pub(super) fn get(&self, key: &Key) -> io::Result<Option<Entry>> {
        let block = match self.fences.partition_point(|fence| fence <= key) {
            0 => return Ok(None),
            n => (n - 1) as u64,
        };
        let first = block * FENCE_EVERY;
        let len = (self.count - first).min(FENCE_EVERY) as usize;
        let mut buf = vec![0u8; len * ENTRY];
        self.file
            .read_exact_at(&mut buf, HEADER + first * ENTRY as u64)?;
        let entries: Vec<&[u8]> = buf.chunks_exact(ENTRY).collect();
        Ok(entries
            .binary_search_by(|entry| entry[..KEY].cmp(&key[..]))
            .ok()
            .map(|i| {
                let mut out = [0; ENTRY];
                out.copy_from_slice(entries[i]);
                out
            }))
    }

    /// Opens the run at `path` (named as `file_name` makes it), reading its fences.
    fn open(path: &Path) -> io::Result<Run> {
        let (level, min, max) =
            parse_name(path).ok_or_else(|| corrupt(path, "is not named LL-MIN-MAX.run".into()))?;
        let file = File::open(path)?;
        let mut header = [0u8; HEADER as usize];
        file.read_exact_at(&mut header, 0)?;
        if &header[..8] != MAGIC {
            return Err(corrupt(path, "has no run header".into()));
        }
        let count = u64::from_be_bytes(header[8..].try_into().expect("8 octets"));
        let size = file.metadata()?.len();
        let expected = count
            .checked_mul(ENTRY as u64)
            .and_then(|n| n.checked_add(HEADER));
        if expected != Some(size) {
            return Err(corrupt(
                path,
                format!("holds {size} octets for {count} entries"),
            ));
        }
        let mut fences = Vec::with_capacity(count.div_ceil(FENCE_EVERY) as usize);
        let mut i = 0;
        while i < count {
            let mut fence = [0; KEY];
            file.read_exact_at(&mut fence, HEADER + i * ENTRY as u64)?;
            fences.push(fence);
            i += FENCE_EVERY;
        }
        Ok(Run {
            level,
            min,
            max,
            path: path.to_path_buf(),
            file,
            count,
            fences,
        })
    }

    /// Deletes the file (readers holding the run keep reading the open file).
    pub(super) fn delete(&self) -> io::Result<()> {
        fs::remove_file(&self.path)
    }
}

/// Writes one run from entries in ascending key order, without repeated keys.
pub(super) struct RunWriter {
    dir: PathBuf,
    tmp: PathBuf,
    /// `None` once finished.
    out: Option<BufWriter<File>>,
    count: u64,
    fences: Vec<Key>,
    last: Option<Key>,
    level: u8,
    min: u64,
    max: u64,
    /// Set once the file has its final name; until then dropping removes the temporary.
    done: bool,
}

impl Drop for RunWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl RunWriter {
    pub(super) fn create(dir: &Path, level: u8, min: u64, max: u64) -> io::Result<RunWriter> {
        let tmp = dir.join(format!("{}.tmp", file_name(level, min, max)));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let mut out = BufWriter::with_capacity(256 * 1024, file);
        out.write_all(MAGIC)?;
        out.write_all(&0u64.to_be_bytes())?;
        Ok(RunWriter {
            dir: dir.to_path_buf(),
            tmp,
            out: Some(out),
            count: 0,
            fences: Vec::new(),
            last: None,
            level,
            min,
            max,
            done: false,
        })
    }

    pub(super) fn push(&mut self, entry: &Entry) -> io::Result<()> {
        let key = key(entry);
        if self.last.is_some_and(|last| last >= key) {
            return Err(io::Error::other("run entries out of order"));
        }
        if self.count.is_multiple_of(FENCE_EVERY) {
            self.fences.push(key);
        }
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("run finished"))?;
        out.write_all(entry)?;
        self.last = Some(key);
        self.count += 1;
        Ok(())
    }

    /// Syncs the file and gives it its name; the run is durable when this returns.
    pub(super) fn finish(mut self) -> io::Result<Run> {
        let out = self
            .out
            .take()
            .ok_or_else(|| io::Error::other("run finished"))?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.write_all_at(&self.count.to_be_bytes(), 8)?;
        file.sync_data()?;
        let path = self
            .dir
            .join(format!("{}.run", file_name(self.level, self.min, self.max)));
        fs::rename(&self.tmp, &path)?;
        // Named now: if the directory sync fails, the next open finds a complete run.
        self.done = true;
        File::open(&self.dir)?.sync_all()?;
        Ok(Run {
            level: self.level,
            min: self.min,
            max: self.max,
            file,
            path,
            count: self.count,
            fences: std::mem::take(&mut self.fences),
        })
    }
}

fn file_name(level: u8, min: u64, max: u64) -> String {
    format!("{level:02}-{min:016x}-{max:016x}")
}

fn parse_name(path: &Path) -> Option<(u8, u64, u64)> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".run")?;
    let mut parts = stem.split('-');
    let level = parts.next()?.parse().ok()?;
    let min = u64::from_str_radix(parts.next()?, 16).ok()?;
    let max = u64::from_str_radix(parts.next()?, 16).ok()?;
    (parts.next().is_none() && min <= max && max < u64::MAX).then_some((level, min, max))
}

fn corrupt(path: &Path, what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} {what}", path.display()),
    )
}

/// Renames a run that cannot be read to `*.bad`, so the registry opens without it (its
/// records are lost to lookups; everything else keeps working) and an operator can look.
fn set_aside(path: &Path, error: &io::Error) -> io::Result<()> {
    tracing::error!(path = %path.display(), %error, "Message-ID run unreadable; set aside as .bad");
    fs::rename(path, path.with_extension("bad"))
}

/// Opens every run in `dir`, newest first, after deleting what an interrupted write or
/// merge left (temporary files, runs a higher level's run covers).
pub(super) fn open_all(dir: &Path) -> io::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for item in fs::read_dir(dir)? {
        let path = item?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("tmp") => fs::remove_file(&path)?,
            Some("run") => match Run::open(&path) {
                Ok(run) => runs.push(run),
                Err(error) => set_aside(&path, &error)?,
            },
            _ => {}
        }
    }
    // A run inside a higher level's range is a merge's input the crash left behind.
    let covered: Vec<bool> = runs
        .iter()
        .map(|run| {
            runs.iter()
                .any(|o| o.level > run.level && o.min <= run.min && run.max <= o.max)
        })
        .collect();
    let mut live = Vec::with_capacity(runs.len());
    for (run, stale) in runs.into_iter().zip(covered) {
        match stale {
            true => run.delete()?,
            false => live.push(run),
        }
    }
    sort_newest_first(&mut live);
    Ok(live)
}

/// Newest first: by the last flush a run holds.
pub(super) fn sort_newest_first<R: std::borrow::Borrow<Run>>(runs: &mut [R]) {
    runs.sort_by_key(|run| (Reverse(run.borrow().max), run.borrow().level));
}

/// Merges `inputs` (newest first) into one run of `level` in `dir`; where a key repeats,
/// the newest input's entry is kept.
pub(super) fn merge(dir: &Path, inputs: &[&Run], level: u8) -> io::Result<Run> {
    let min = inputs.iter().map(|r| r.min).min().unwrap_or(0);
    let max = inputs.iter().map(|r| r.max).max().unwrap_or(0);
    let mut readers = Vec::with_capacity(inputs.len());
    for run in inputs {
        // The run's own open file (a deleted path cannot swap it); reads from the
        // shared offset, which lookups (positioned reads) never use.
        let mut file = run.file.try_clone()?;
        file.seek(SeekFrom::Start(HEADER))?;
        let reader = BufReader::with_capacity(64 * 1024, file);
        readers.push((reader, run.count));
    }
    let mut heads: Vec<Option<Entry>> = Vec::with_capacity(readers.len());
    for (reader, left) in &mut readers {
        heads.push(next_entry(reader, left)?);
    }
    let mut out = RunWriter::create(dir, level, min, max)?;
    // The smallest key among the heads; on a tie, the newest input (lowest index) wins.
    while let Some(pick) = (0..heads.len())
        .filter(|&i| heads[i].is_some())
        .min_by_key(|&i| (heads[i].map(|e| key(&e)), i))
    {
        let entry = heads[pick].expect("picked a head");
        out.push(&entry)?;
        let picked = key(&entry);
        for i in 0..heads.len() {
            if heads[i].is_some_and(|e| key(&e) == picked) {
                let (reader, left) = &mut readers[i];
                heads[i] = next_entry(reader, left)?;
            }
        }
    }
    out.finish()
}

fn next_entry(reader: &mut BufReader<File>, left: &mut u64) -> io::Result<Option<Entry>> {
    if *left == 0 {
        return Ok(None);
    }
    let mut entry = [0u8; ENTRY];
    reader.read_exact(&mut entry)?;
    *left -= 1;
    Ok(Some(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key_byte: u8, n: u16, value: u8) -> Entry {
        let mut e = [value; ENTRY];
        e[..KEY].fill(0);
        e[0] = key_byte;
        e[1..3].copy_from_slice(&n.to_be_bytes());
        e
    }

    fn write(dir: &Path, level: u8, seq: u64, entries: &[Entry]) -> Run {
        let mut w = RunWriter::create(dir, level, seq, seq).unwrap();
        for e in entries {
            w.push(e).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn lookups_find_every_key_across_blocks_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<Entry> = (0..1000u16).map(|n| entry(1, n * 2, 7)).collect();
        let run = write(dir.path(), 0, 1, &entries);
        let reopened = Run::open(&run.path).unwrap();
        for r in [&run, &reopened] {
            assert_eq!(r.fences.len(), 8);
            for e in &entries {
                assert_eq!(r.get(&key(e)).unwrap(), Some(*e));
            }
            for n in [1u16, 255, 1999, 2001] {
                assert_eq!(r.get(&key(&entry(1, n, 7))).unwrap(), None, "{n}");
            }
            assert_eq!(
                r.get(&key(&entry(0, 0, 7))).unwrap(),
                None,
                "before the first"
            );
            assert_eq!(
                r.get(&key(&entry(2, 0, 7))).unwrap(),
                None,
                "after the last"
            );
        }
    }

    #[test]
    fn a_merge_keeps_the_newest_entry_of_a_repeated_key() {
        let dir = tempfile::tempdir().unwrap();
        let old = write(
            dir.path(),
            0,
            1,
            &[entry(1, 1, 1), entry(1, 2, 1), entry(1, 5, 1)],
        );
        let new = write(dir.path(), 0, 2, &[entry(1, 2, 2), entry(1, 3, 2)]);
        let merged = merge(dir.path(), &[&new, &old], 1).unwrap();
        assert_eq!(
            (merged.level, merged.min, merged.max, merged.count),
            (1, 1, 2, 4)
        );
        assert_eq!(
            merged.get(&key(&entry(1, 2, 0))).unwrap(),
            Some(entry(1, 2, 2))
        );
        assert_eq!(
            merged.get(&key(&entry(1, 1, 0))).unwrap(),
            Some(entry(1, 1, 1))
        );
        assert_eq!(
            merged.get(&key(&entry(1, 5, 0))).unwrap(),
            Some(entry(1, 5, 1))
        );
        assert!(merged
            .path
            .ends_with("01-0000000000000001-0000000000000002.run"));
    }

    #[test]
    fn out_of_order_entries_and_damaged_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RunWriter::create(dir.path(), 0, 1, 1).unwrap();
        w.push(&entry(1, 2, 0)).unwrap();
        assert!(w.push(&entry(1, 2, 0)).is_err(), "a repeated key");
        assert!(w.push(&entry(1, 1, 0)).is_err(), "a smaller key");
        let run = write(dir.path(), 0, 3, &[entry(1, 1, 0)]);
        let bytes = std::fs::read(&run.path).unwrap();
        std::fs::write(&run.path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(Run::open(&run.path).is_err(), "a cut file");
        std::fs::write(dir.path().join("junk.run"), b"x").unwrap();
        assert!(
            Run::open(&dir.path().join("junk.run")).is_err(),
            "a bad name"
        );
    }
}
