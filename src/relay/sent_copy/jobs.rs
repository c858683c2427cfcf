//! The durable queue of sent copies still to be filed: one file per copy in
//! `data_dir/sent-copies/`, written under `tmp/` and renamed into place, the file and the
//! directory fsynced (as a maildir does), so a copy once recorded survives a crash.
//!
//! A job's name is a digest of (account id, Message-ID): the same message delivered again
//! (a retry for other recipients, a delivery repeated after a crash before the spool
//! recorded it, a message split into several transactions) finds its job already there
//! and adds none. A message without a Message-ID is keyed by its queue id.
//!
//! A job file is one JSON line (`JobHead`) followed by the message's bytes as sent.
//! The directory is this node's own: each node files the copies of what it delivered.

use super::SentCopyError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Suffix of a job ready to be filed.
const SUFFIX: &str = ".job";

/// What a job is about (its first line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHead {
    /// The account whose Sent folder receives the copy.
    pub account: u64,
    /// The message's `Message-ID` (with its angle brackets), if it has one.
    pub message_id: Option<String>,
    /// The queue id of the delivery that recorded it (for logs).
    pub queue_id: String,
}

/// The queue directory.
pub struct Jobs {
    dir: PathBuf,
    counter: AtomicU64,
}

impl Jobs {
    /// Opens (creating) `dir` and its `tmp/`; half-written files of an earlier run are
    /// removed (their delivery was not reported before the crash, so it is repeated).
    pub fn open(dir: &Path) -> Result<Jobs, SentCopyError> {
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        for entry in fs::read_dir(&tmp).map_err(|e| io(&tmp, e))? {
            let _ = fs::remove_file(entry.map_err(|e| io(&tmp, e))?.path());
        }
        Ok(Jobs {
            dir: dir.to_path_buf(),
            counter: AtomicU64::new(0),
        })
    }

    /// The name of the job of `head`'s message.
    pub fn key(head: &JobHead) -> String {
        let mut digest = Sha256::new();
        digest.update(head.account.to_be_bytes());
        match &head.message_id {
            Some(id) => digest.update(id.as_bytes()),
            None => {
                digest.update(b"\0queue:");
                digest.update(head.queue_id.as_bytes());
            }
        }
        digest.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}{SUFFIX}"))
    }

    /// Records a copy of `data` to file; durable on return. False when the message's job
    /// already exists (nothing written). Blocking.
    pub fn add(&self, head: &JobHead, data: &[u8]) -> Result<bool, SentCopyError> {
        let key = Jobs::key(head);
        let path = self.path(&key);
        if path.exists() {
            return Ok(false);
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("{key}.{}.{n}", std::process::id()));
        let mut line = serde_json::to_vec(head).map_err(|e| io(&tmp, e.into()))?;
        line.push(b'\n');
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut file| {
                file.write_all(&line)?;
                file.write_all(data)?;
                file.sync_all()
            })
            .and_then(|_| fs::rename(&tmp, &path))
            .and_then(|_| File::open(&self.dir)?.sync_all());
        if let Err(error) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io(&path, error));
        }
        Ok(true)
    }

    /// Every job waiting, oldest first, with its head (the message is not read). Blocking.
    pub fn pending(&self) -> Result<Vec<(String, JobHead)>, SentCopyError> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))? {
            let entry = entry.map_err(|e| io(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(key) = name.strip_suffix(SUFFIX) else {
                continue;
            };
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            match self.head(key) {
                Ok(head) => found.push((modified, key.to_string(), head)),
                Err(error) => tracing::error!(%error, "unreadable sent-copy job left in place"),
            }
        }
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(found.into_iter().map(|(_, k, h)| (k, h)).collect())
    }

    fn head(&self, key: &str) -> Result<JobHead, SentCopyError> {
        let path = self.path(key);
        let mut line = String::new();
        BufReader::new(File::open(&path).map_err(|e| io(&path, e))?)
            .read_line(&mut line)
            .map_err(|e| io(&path, e))?;
        serde_json::from_str(&line).map_err(|e| SentCopyError::Corrupt(format!("{key}: {e}")))
    }

    /// The message bytes of job `key`. Blocking.
    pub fn message(&self, key: &str) -> Result<Vec<u8>, SentCopyError> {
        let path = self.path(key);
        let mut reader = BufReader::new(File::open(&path).map_err(|e| io(&path, e))?);
        let mut line = Vec::new();
        reader
            .read_until(b'\n', &mut line)
            .map_err(|e| io(&path, e))?;
        let mut data = Vec::new();
        reader.read_to_end(&mut data).map_err(|e| io(&path, e))?;
        Ok(data)
    }

    /// Removes job `key` (filed, or no longer wanted); durable on return. Blocking.
    pub fn remove(&self, key: &str) -> Result<(), SentCopyError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(&self.dir, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path, e)),
        }
    }
}

fn io(path: &Path, error: std::io::Error) -> SentCopyError {
    SentCopyError::Io(format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(account: u64, id: Option<&str>, queue: &str) -> JobHead {
        JobHead {
            account,
            message_id: id.map(String::from),
            queue_id: queue.into(),
        }
    }

    #[test]
    fn one_job_per_message_and_account_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = Jobs::open(dir.path()).unwrap();
        let first = head(7, Some("<a@x>"), "q1");
        assert!(jobs.add(&first, b"Subject: a\r\n\r\nbody\r\n").unwrap());
        assert!(
            !jobs.add(&head(7, Some("<a@x>"), "q2"), b"again").unwrap(),
            "the same message delivered again"
        );
        assert!(jobs.add(&head(8, Some("<a@x>"), "q1"), b"other").unwrap());
        assert!(jobs.add(&head(7, None, "q3"), b"no id").unwrap());
        assert!(!jobs.add(&head(7, None, "q3"), b"no id").unwrap());
        let reopened = Jobs::open(dir.path()).unwrap();
        let pending = reopened.pending().unwrap();
        assert_eq!(pending.len(), 3);
        let key = Jobs::key(&first);
        let (_, found) = pending.iter().find(|(k, _)| *k == key).unwrap();
        assert_eq!(*found, first);
        assert_eq!(
            reopened.message(&key).unwrap(),
            b"Subject: a\r\n\r\nbody\r\n"
        );
        reopened.remove(&key).unwrap();
        reopened.remove(&key).unwrap();
        assert_eq!(reopened.pending().unwrap().len(), 2);
        assert!(jobs.add(&first, b"later").unwrap(), "a new job once filed");
    }
}
