//! Retiring a dead segment that holds records the archive keeps: every byte but those
//! records is punched out (`fallocate(PUNCH_HOLE)`, or overwritten with zeros where the file
//! system cannot punch), the file is synced and moved into `archive/` under the journal's
//! directory, where replay never reads it. The archive's catalog points into it.
//!
//! When retention ends, a record is punched out of its retired segment the same way, and
//! a retired segment holding nothing any more is deleted.

use super::SEGMENT_EXT;
use std::fs::{File, OpenOptions};
use std::io;
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

/// Punches everything out of `path` but the `kept` records (start, length), syncs it and
/// moves it into the archive directory (synced too; the caller syncs the journal's).
pub fn retire(dir: &Path, path: &Path, seg: u32, kept: &mut [(u64, u64)]) -> io::Result<()> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let size = file.metadata()?.len();
    kept.sort_unstable();
    let mut cursor = 0;
    for &(start, len) in kept.iter() {
        if start > cursor {
            punch(&file, cursor, start - cursor)?;
        }
        cursor = cursor.max(start + len);
    }
    if size > cursor {
        punch(&file, cursor, size - cursor)?;
    }
    file.sync_all()?;
    let archive = dir.join(ARCHIVE_DIR);
    std::fs::create_dir_all(&archive)?;
    std::fs::rename(path, archived_path(dir, seg))?;
    File::open(&archive)?.sync_all()?;
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
    fn only_the_kept_records_survive_retirement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000007.log");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8 + 1).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut kept = vec![(6000, 1000), (100, 200)];
        retire(dir.path(), &path, 7, &mut kept).unwrap();
        assert!(!path.exists());
        let retired = std::fs::read(archived_path(dir.path(), 7)).unwrap();
        assert_eq!(retired.len(), bytes.len());
        for (i, (&got, &was)) in retired.iter().zip(&bytes).enumerate() {
            let keep = (100..300).contains(&i) || (6000..7000).contains(&i);
            assert_eq!(got, if keep { was } else { 0 }, "byte {i}");
        }
        forget(dir.path(), 7, 100, 300, false).unwrap();
        let retired = std::fs::read(archived_path(dir.path(), 7)).unwrap();
        assert!(retired[..6000].iter().all(|&b| b == 0));
        assert_eq!(&retired[6000..7000], &bytes[6000..7000]);
        forget(dir.path(), 7, 6000, 7000, true).unwrap();
        assert!(!archived_path(dir.path(), 7).exists());
    }
}
