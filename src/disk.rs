//! Free disk space of a file system, read with `fstatvfs` on a directory held open (a
//! syscall, no path walk): what the spool's reserve and the store's ballast go by.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;

/// Octets free to an unprivileged writer on the file system of `dir`.
pub fn free_bytes(dir: &File) -> io::Result<u64> {
    // SAFETY: statvfs is plain old data; zeroed is a valid value for every field.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is an open descriptor for the whole call; `stat` is a valid pointer.
    let ret = unsafe { libc::fstatvfs(dir.as_raw_fd(), &mut stat) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}
