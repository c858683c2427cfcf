//! Fuzz targets for Postern, driven by AFL++ through cargo-afl (see README.md).
//!
//! - [`smtp`]: arbitrary byte streams into a real `Session` over `tokio::io::duplex`; every
//!   reply must be a well-formed SMTP reply and a session's memory must stay within a bound
//!   derived from the configured limits.
//! - [`headers`]: arbitrary header blocks into `rewrite::inspect` and `apply`; whatever
//!   `inspect` accepts must come out of `apply` with exactly one `From`, the one written,
//!   as mail-parser reads it.
//!
//! Each check panics on a violation, which AFL++ records as a crash. The binaries in
//! `src/bin/` run one target under AFL++, or replay the files named on the command line.

pub mod alloc;
pub mod headers;
pub mod replies;
pub mod smtp;

/// The counting allocator every fuzz binary runs on (see [`alloc`]).
#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// Runs `target` on each file in `paths` (a file or a directory of files), printing what
/// it runs; a panic ends the process like a crash under AFL++.
pub fn replay(paths: &[String], mut target: impl FnMut(&[u8])) {
    for path in paths {
        let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut files = Vec::new();
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).expect("readable directory") {
                files.push(entry.expect("directory entry").path());
            }
            files.sort();
        } else {
            files.push(path.into());
        }
        for file in files {
            if !file.is_file() {
                continue;
            }
            eprintln!("replay {}", file.display());
            target(&std::fs::read(&file).expect("readable file"));
        }
    }
}
