//! Debian packages the tests need from outside (chromium, chromedriver, npm, PostgreSQL):
//! as root, installed with apt-get when missing, once, under a lock file shared by every
//! test process; otherwise the test stops and says what to install.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

/// Makes sure each `(path, package)` exists: as root, installs the missing packages with
/// apt-get (once, under a lock shared by every test process); otherwise panics.
pub fn ensure_installed(purpose: &str, needs: &[(&str, &str)]) {
    let missing = || -> Vec<&str> {
        needs
            .iter()
            .filter(|(path, _)| !Path::new(path).exists())
            .map(|(_, package)| *package)
            .collect()
    };
    if missing().is_empty() {
        return;
    }
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        panic!(
            "{purpose} need {:?}: run `sudo apt-get install -y {}` (or .ci/run as root)",
            needs.iter().map(|n| n.0).collect::<Vec<_>>(),
            missing().join(" ")
        );
    }
    let _lock = FileLock::acquire(&std::env::temp_dir().join("postern-apt-install.lock"));
    let packages = missing();
    if packages.is_empty() {
        return; // another test installed them while we waited
    }
    if apt(&["install", "-y", "-q"], &packages).is_err() {
        let _ = apt(&["update", "-q"], &[]);
        if let Err(output) = apt(&["install", "-y", "-q"], &packages) {
            panic!("apt-get install {packages:?} failed:\n{output}");
        }
    }
    let still = missing();
    assert!(
        still.is_empty(),
        "{still:?} still missing after apt-get install"
    );
}

/// Runs apt-get quietly; on failure returns its output.
fn apt(args: &[&str], packages: &[&str]) -> Result<(), String> {
    let output = Command::new("apt-get")
        .args(args)
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("apt-get: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// An exclusive `flock(2)` on a file, released when dropped (the file is closed).
pub struct FileLock(std::fs::File);

impl FileLock {
    pub fn acquire(path: &Path) -> FileLock {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("lock file {}: {e}", path.display()));
        // SAFETY: flock(2) on a descriptor we own for the lifetime of the call.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(locked, 0, "flock {}", path.display());
        FileLock(file)
    }
}
