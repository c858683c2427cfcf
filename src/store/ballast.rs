//! A ballast file beside the store, so that a start on a disk filled by someone else
//! still opens the store and serves (refusing mail) instead of exiting.
//!
//! sled writes when it opens: it zero-fills the rest of its last log segment (up to half a
//! MiB) and may start a new one. On a full disk that fails, and without a store nothing
//! can run, not even the API that would tell an operator what is wrong. So the store keeps
//! `store.ballast`, `SIZE` octets allocated while there is room; a start that finds the
//! disk full deletes it and opens with the room it held, and a later start makes it again
//! once there is room (never eating into the reserve the spool keeps: it is made only when
//! at least twice its size is free).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Octets the ballast holds.
const SIZE: u64 = 8 << 20;
const NAME: &str = "store.ballast";

/// The ballast of the store in `dir` (kept beside it, not inside sled's directory).
pub(super) fn path(dir: &Path) -> PathBuf {
    let name = dir.file_name().map_or_else(
        || NAME.to_string(),
        |n| format!("{}.ballast", n.to_string_lossy()),
    );
    dir.with_file_name(name)
}

/// Deletes the ballast to make room; true if there was one.
pub(super) fn release(dir: &Path) -> bool {
    let released = std::fs::remove_file(path(dir)).is_ok();
    if released {
        tracing::warn!(dir = %dir.display(), "the disk is full: released the store's ballast ({SIZE} octets) to open the store");
    }
    released
}

/// Makes the ballast if it is missing and the disk has room for it twice over.
/// Best effort: a failure is logged, and the store runs without one.
pub(super) fn ensure(dir: &Path) {
    let ballast = path(dir);
    if ballast.exists() {
        return;
    }
    if let Err(error) = make(dir, &ballast) {
        let _ = std::fs::remove_file(&ballast);
        tracing::warn!(%error, file = %ballast.display(), "no ballast for the store: a start on a full disk may fail");
    }
}

fn make(dir: &Path, ballast: &Path) -> io::Result<()> {
    let free = crate::disk::free_bytes(&File::open(dir)?)?;
    if free < 2 * SIZE {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            "not enough room yet",
        ));
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(ballast)?;
    // SAFETY: `file` is open for writing for the whole call; fallocate only reads its args.
    let ret = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, SIZE as libc::off_t) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    file.sync_all()?;
    File::open(ballast.parent().unwrap_or(dir))?.sync_all()
}
