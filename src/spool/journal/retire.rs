//! Retiring a dead segment that holds records the archive keeps: the file is moved into
//! `archive/` under the journal's directory (where replay never reads it; the archive's
//! catalog points into it), then every record of a message the archive does not keep is
//! punched out (`fallocate(PUNCH_HOLE)`, or overwritten with zeros where the file system
//! cannot punch), runs of them at once, and the file is synced. Records of kept messages
//! stay whole, so a segment that holds only kept mail is not written again.
//!
//! A crash between the move and the punching leaves the other records in the retired
//! file (never read, since the catalog only points at kept ones) until it is deleted.
//!
//! When retention ends, a record is punched out of its retired segment the same way, and
//! a retired segment holding nothing any more is deleted.

use super::record;
use super::SEGMENT_EXT;
use crate::spool::meta::QueueId;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The directory (under the journal's) of retired segments.
pub const ARCHIVE_DIR: &str = "archive";

/// Where segment `seg` lives once retired.
pub fn archived_path(dir: &Path, seg: u32) -> PathBuf {
    dir.join(ARCHIVE_DIR)
        .join(format!("{seg:08x}{SEGMENT_EXT}"))
}

/// Moves `path` into the archive directory (both directories synced), then punches out
/// every record of a message not in `kept`, and the unused rest of the file.
pub fn retire(dir: &Path, path: &Path, seg: u32, kept: &[QueueId]) -> io::Result<()> {
    let archive = dir.join(ARCHIVE_DIR);
    std::fs::create_dir_all(&archive)?;
    let target = archived_path(dir, seg);
    std::fs::rename(path, &target)?;
    File::open(&archive)?.sync_all()?;
    File::open(dir)?.sync_all()?;
    let file = OpenOptions::new().read(true).write(true).open(&target)?;
    let size = file.metadata()?.len();
    let kept: HashSet<QueueId> = kept.iter().copied().collect();
    let mut input = BufReader::with_capacity(1 << 20, File::open(&target)?);
    let (mut pos, mut hole) = (0u64, None);
    // Records up to the clean end (zeros, or the end of the file); replay already cut any
    // torn tail, and whatever cannot be read goes with the rest.
    while let Ok(Some(rec)) = record::read(&mut input) {
        match kept.contains(&rec.id) {
            true => {
                if let Some(start) = hole.take() {
                    punch(&file, start, pos - start)?;
                }
            }
            false => {
                hole.get_or_insert(pos);
            }
        }
        pos += rec.len() as u64;
    }
    let start = hole.unwrap_or(pos);
    if size > start {
        punch(&file, start, size - start)?;
    }
    file.sync_all()?;
    tracing::debug!(
        segment = seg,
        kept = kept.len(),
        "journal segment retired into the archive"
    );
    Ok(())
}

/// Punches `start..end` out of retired segment `seg`; deletes the file instead when `last`
/// (nothing in it is kept any more).
pub fn forget(dir: &Path, seg: u32, start: u64, end: u64, last: bool) -> io::Result<()> {
    let path = archived_path(dir, seg);
    if last {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => File::open(dir.join(ARCHIVE_DIR))?.sync_all(),
        };
    }
    let file = OpenOptions::new().write(true).open(&path)?;
    punch(&file, start, end.saturating_sub(start))?;
    file.sync_data()
}

/// Frees `len` bytes at `offset` (they read back as zeros); where the file system cannot
/// punch holes, writes zeros over them.
fn punch(file: &File, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: `file` is an open descriptor for the whole call; fallocate only reads it.
    let ret = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset as i64, len as i64) };
    if ret == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => zero(file, offset, len),
        _ => Err(error),
    }
}

fn zero(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let zeros = vec![0u8; 64 * 1024];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(zeros.len() as u64);
        file.write_all_at(&zeros[..n as usize], offset + done)?;
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_records_of_kept_messages_survive_retirement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000007.log");
        // Messages 1..=6; 2 and 5 are kept (with an update record of 2 after 3's).
        let mut bytes = Vec::new();
        let mut spans = Vec::new();
        for id in 1..=6u64 {
            let body = format!(
                "Subject: {id}\r\n\r\n{}\r\n",
                "x".repeat(1500 * id as usize)
            );
            let start = bytes.len();
            bytes.extend(record::enqueue(id, b"{}", body.as_bytes()).0);
            if id == 3 {
                bytes.extend(record::update(2, b"{\"attempts\":1}"));
            }
            spans.push((id, start, bytes.len()));
        }
        bytes.extend(record::remove(1, false));
        bytes.extend(vec![0u8; 9000]);
        std::fs::write(&path, &bytes).unwrap();
        retire(dir.path(), &path, 7, &[2, 5]).unwrap();
        assert!(!path.exists());
        let retired = std::fs::read(archived_path(dir.path(), 7)).unwrap();
        assert_eq!(retired.len(), bytes.len());
        let text = String::from_utf8_lossy(&retired);
        for (id, start, end) in &spans {
            let kept = [2, 5].contains(id);
            let survived = retired[*start..*end] == bytes[*start..*end];
            assert!(
                kept == text.contains(&format!("Subject: {id}\r\n")),
                "message {id}"
            );
            if *id == 5 {
                assert!(survived, "a kept message is not touched");
            }
        }
        assert!(
            text.contains("attempts"),
            "the kept message's own update record stays"
        );
        let (_, start5, end5) = spans[4];
        forget(dir.path(), 7, start5 as u64, end5 as u64, false).unwrap();
        let retired = std::fs::read(archived_path(dir.path(), 7)).unwrap();
        assert!(retired[start5..end5].iter().all(|&b| b == 0));
        assert!(String::from_utf8_lossy(&retired).contains("Subject: 2\r\n"));
        forget(dir.path(), 7, 0, 0, true).unwrap();
        assert!(!archived_path(dir.path(), 7).exists());
    }
}
