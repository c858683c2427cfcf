//! What browser tests need from outside: Debian's chromium and chromedriver (installed
//! with apt-get when missing and running as root) and axe-core (installed with npm into
//! the target directory), each installed once under a lock file shared by parallel tests.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Makes sure each `(path, package)` exists (see `apt`).
pub(super) fn ensure_installed(needs: &[(&str, &str)]) {
    super::super::apt::ensure_installed("browser tests", needs);
}

/// Where npm installs axe-core: `target/tmp/npm` (nothing from npm is committed).
pub fn npm_prefix() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("npm")
}

/// axe-core's `axe.min.js`, installed with npm on first use (under a lock file).
pub(super) fn axe_source() -> String {
    let prefix = npm_prefix();
    let script = prefix.join("node_modules/axe-core/axe.min.js");
    if !script.exists() {
        let npm = Command::new("npm").arg("--version").output();
        if !npm.is_ok_and(|o| o.status.success()) {
            ensure_installed(&[("/usr/bin/npm", "npm")]);
        }
        std::fs::create_dir_all(&prefix).expect("npm prefix");
        let _lock = super::super::apt::FileLock::acquire(&prefix.join("install.lock"));
        if !script.exists() {
            let output = Command::new("npm")
                .args([
                    "install",
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                ])
                .arg("--prefix")
                .arg(&prefix)
                .arg("axe-core@4")
                .stdin(Stdio::null())
                .output()
                .expect("npm runs");
            assert!(
                output.status.success() && script.exists(),
                "npm install axe-core@4 failed:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    std::fs::read_to_string(&script).unwrap_or_else(|e| panic!("{}: {e}", script.display()))
}
