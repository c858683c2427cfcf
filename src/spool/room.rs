//! Free disk space, as an operator expects it to be kept (Postfix's `queue_minfree`).
//!
//! Below the reserve (`[queue] min_free_mb`), new mail is refused before anything is
//! written (`452 4.3.1` at MAIL FROM, counting the declared SIZE, and again at the end of
//! the data, counting the message): what is left stays for the deliveries already
//! accepted, their durable marks, the control store and the Message-ID registry. The
//! journal's spare segments are made only from space above the reserve.
//!
//! The free space is read with `fstatvfs` on directories held open (the spool's and the
//! store's, once per file system): a syscall, no path walk, no cache to go stale.

use crate::disk::free_bytes;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;

/// Not enough room for new mail: how much is free, and how much was needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom {
    pub free: u64,
    pub needed: u64,
}

/// The directories whose file systems must keep the reserve, and the reserve.
pub struct Room {
    dirs: Vec<File>,
    reserve: u64,
}

impl Room {
    /// Watches the file systems of `dirs` (open directories; each file system once),
    /// keeping `reserve` octets free.
    pub fn new(dirs: Vec<File>, reserve: u64) -> io::Result<Room> {
        let mut seen = Vec::new();
        let mut kept = Vec::new();
        for dir in dirs {
            let device = dir.metadata()?.dev();
            if !seen.contains(&device) {
                seen.push(device);
                kept.push(dir);
            }
        }
        Ok(Room {
            dirs: kept,
            reserve,
        })
    }

    /// Whether `size` more octets fit above the reserve on every watched file system. A
    /// file system that cannot be asked counts as full: refusing is safe, accepting is not.
    pub fn check(&self, size: u64) -> Result<(), NoRoom> {
        let needed = self.reserve.saturating_add(size);
        for dir in &self.dirs {
            let free = free_bytes(dir).unwrap_or(0);
            if free < needed {
                return Err(NoRoom { free, needed });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_larger_than_any_disk_refuses_and_none_admits() {
        let dir = tempfile::tempdir().unwrap();
        let open = || File::open(dir.path()).unwrap();
        let room = Room::new(vec![open(), open()], u64::MAX / 2).unwrap();
        assert_eq!(room.dirs.len(), 1, "one file system watched once");
        let refused = room.check(1).unwrap_err();
        assert!(refused.free < refused.needed);
        let room = Room::new(vec![open()], 0).unwrap();
        assert_eq!(room.check(0), Ok(()));
    }
}
