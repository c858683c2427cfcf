//! The `maildir` upstream: writes each message into a local maildir (`tmp/` → `new/`),
//! fsynced before it is reported delivered. The default on a fresh install, so the gateway
//! works with no provider configured.
//!
//! Each file starts with `Return-Path` and one `Delivered-To` per recipient, then the
//! message bytes exactly as spooled.

use super::{BoxFuture, Deliver, ErrorKind, Outgoing, RcptOutcome, RelayError, Retry, Side};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A maildir folder.
pub struct Maildir {
    root: PathBuf,
    host: String,
    counter: AtomicU64,
}

impl Maildir {
    /// Opens `root`, creating `tmp/`, `new/` and `cur/` if needed.
    pub fn open(root: PathBuf) -> Result<Maildir, RelayError> {
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(root.join(sub)).map_err(|e| io_error(&root, e))?;
        }
        let host = fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().replace(['/', ':'], "_"))
            .unwrap_or_else(|_| "localhost".into());
        Ok(Maildir {
            root,
            host,
            counter: AtomicU64::new(0),
        })
    }

    fn unique_name(&self, id: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{}.{}_{}.{}", crate::spool::now_ms(), id, n, self.host)
    }

    fn write(root: &Path, name: &str, content: &[u8]) -> Result<(), RelayError> {
        let tmp = root.join("tmp").join(name);
        let new = root.join("new").join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_error(&tmp, e))?;
        let result = file
            .write_all(content)
            .and_then(|_| file.sync_all())
            .and_then(|_| fs::rename(&tmp, &new))
            .and_then(|_| File::open(root.join("new"))?.sync_all());
        if let Err(error) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(&new, error));
        }
        Ok(())
    }
}

/// The file content: envelope trace fields, then the message as spooled.
fn file_content(msg: &Outgoing<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.data.len() + 64 * (msg.rcpts.len() + 1));
    out.extend_from_slice(b"Return-Path: <");
    out.extend_from_slice(msg.mail_from.as_bytes());
    out.extend_from_slice(b">\r\n");
    for rcpt in msg.rcpts {
        out.extend_from_slice(b"Delivered-To: ");
        out.extend_from_slice(rcpt.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(msg.data);
    out
}

fn io_error(path: &Path, error: std::io::Error) -> RelayError {
    RelayError::new(
        ErrorKind::Io,
        Side::Local,
        Retry::Later,
        format!("maildir {}: {error}", path.display()),
    )
}

impl Deliver for Maildir {
    fn deliver<'a>(
        &'a self,
        msg: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Vec<RcptOutcome>, RelayError>> {
        Box::pin(async move {
            let root = self.root.clone();
            let name = self.unique_name(msg.id);
            let content = file_content(msg);
            tokio::task::spawn_blocking(move || Maildir::write(&root, &name, &content))
                .await
                .map_err(|e| {
                    RelayError::new(ErrorKind::Io, Side::Local, Retry::Later, e.to_string())
                })??;
            let reply = format!("250 2.0.0 delivered to maildir as {}", msg.id);
            Ok(msg
                .rcpts
                .iter()
                .map(|_| RcptOutcome::Delivered(reply.clone()))
                .collect())
        })
    }
}
