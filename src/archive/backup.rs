//! Backup jobs (SPEC §8): one at a time in the background, `pending → running →
//! completed | failed`. A job selects the user's kept messages accepted in its window
//! (`record_level`: only those linked to a ticket), writes them to
//! `data_dir/backups/{id}.mbox.part`, syncs it and renames it to `{id}.mbox`, then records
//! the message list and `completed` in one durable save. A job found `running` at start
//! was cut by a crash: it runs again from the beginning (the partial file is rewritten),
//! so a job is never `completed` with a message missing — any message it cannot read
//! fails it instead.

use super::{links, mbox, ArchiveError, Catalog};
use crate::store::{
    AccountType, ArchivedMessage, AuditEntry, Backup, BackupItem, BackupStatus, Store,
};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// How long a node holds a job it runs without renewing its lease; it renews every third
/// of that, so a node that dies leaves its job to another within this.
const LEASE: Duration = Duration::from_secs(90);
/// How often a node of several looks for jobs it was not woken for.
const LOOK_AGAIN: Duration = Duration::from_secs(30);

/// Longest a job waits for the user's mail still queued or being catalogued.
const SETTLE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

/// The backup worker.
pub struct Runner {
    pub catalog: Catalog,
    /// Where the mbox files go (`data_dir/backups`).
    pub dir: PathBuf,
    /// Woken when a job is asked for.
    pub wake: Arc<Notify>,
}

fn lease_name(id: u64) -> String {
    format!("backup/{id}")
}

/// Renews a job's lease on a thread of its own until dropped, then gives it back.
struct Renewal {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Renewal {
    fn start(store: Store, lease: String) -> Renewal {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("postern-backup-lease".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(LEASE / 3)
                {
                    if let Err(error) = store.lease(&lease, store.node(), LEASE) {
                        tracing::warn!(%error, %lease, "backup lease not renewed");
                    }
                }
                let _ = store.release(&lease, store.node());
            })
            .ok();
        Renewal {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The mbox file of backup `id` in `dir`.
pub fn mbox_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id}.mbox"))
}

impl Runner {
    /// Runs the jobs waiting (oldest first, a cut one first of all), then waits for more.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let runner = Arc::new(self);
        loop {
            let work = runner.clone();
            let ran = tokio::task::spawn_blocking(move || work.next()).await;
            match ran {
                Ok(Ok(true)) => continue,
                Ok(Ok(false)) => {}
                Ok(Err(error)) => tracing::error!(%error, "backup job store failed"),
                Err(error) => tracing::error!(%error, "backup task failed"),
            }
            tokio::select! {
                _ = runner.wake.notified() => {}
                // Jobs asked for through other nodes, or left by a node that died.
                _ = tokio::time::sleep(LOOK_AGAIN), if runner.catalog.store.is_shared() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Runs the next waiting job, if any. Blocking.
    fn next(&self) -> Result<bool, ArchiveError> {
        let store = &self.catalog.store;
        let jobs = store.backups().all()?;
        // One node runs a job at a time: the one holding its lease.
        let mine = |b: &&Backup| {
            store
                .lease(&lease_name(b.id), store.node(), LEASE)
                .unwrap_or(false)
        };
        let next = jobs
            .iter()
            .filter(|b| b.status == BackupStatus::Running)
            .find(mine)
            .or_else(|| {
                jobs.iter()
                    .filter(|b| b.status == BackupStatus::Pending)
                    .find(mine)
            });
        let Some(job) = next.cloned() else {
            return Ok(false);
        };
        // Read again under the lease: another node may have finished it meanwhile.
        let Some(job) = store
            .backups()
            .get(job.id)?
            .filter(|j| matches!(j.status, BackupStatus::Running | BackupStatus::Pending))
        else {
            store.release(&lease_name(job.id), store.node())?;
            return Ok(true);
        };
        let _renewing = Renewal::start(store.clone(), lease_name(job.id));
        if job.status == BackupStatus::Running {
            tracing::warn!(
                backup = job.id,
                "backup job was cut off (restart); running it again"
            );
        }
        self.execute(job)?;
        Ok(true)
    }

    fn execute(&self, mut job: Backup) -> Result<(), ArchiveError> {
        let store = &self.catalog.store;
        job.node = store.node().to_string();
        job.status = BackupStatus::Running;
        job.started_at = Some(crate::spool::now_ms() / 1000);
        job.runs += 1;
        job.counts = Default::default();
        job.error = None;
        store.backups().save(&job)?;
        let outcome = self.write(&mut job);
        job.finished_at = Some(crate::spool::now_ms() / 1000);
        match outcome {
            Ok(items) => {
                store.backups().set_items(job.id, &items)?;
                job.status = BackupStatus::Completed;
                tracing::info!(backup = job.id, user = %job.login, messages = job.counts.written, "backup completed");
            }
            Err(error) => {
                job.status = BackupStatus::Failed;
                job.error = Some(error.to_string());
                tracing::error!(backup = job.id, user = %job.login, %error, "backup failed");
            }
        }
        store.backups().save(&job)?;
        audit(store, &job);
        Ok(())
    }

    /// Waits until the user's mail accepted before the job's end has left the queue and is
    /// catalogued; fails the job if that takes longer than `SETTLE` (a message still
    /// deferred would be missing).
    fn settle(&self, job: &Backup) -> Result<(), ArchiveError> {
        let spool = &self.catalog.spool;
        let deadline = Instant::now() + SETTLE;
        let user = job.user;
        let queued = |m: &crate::spool::Meta| {
            m.received_at <= job.until && m.keep.as_ref().is_some_and(|k| k.owners.contains(&user))
        };
        loop {
            let waiting = spool.queued(usize::MAX, queued).len();
            if waiting == 0 {
                break;
            }
            if Instant::now() >= deadline {
                return Err(ArchiveError::Failed(format!(
                    "{waiting} message(s) of the user are still queued; ask again once they have left the queue"
                )));
            }
            std::thread::sleep(POLL);
        }
        let mark = spool.kept_mark();
        while !spool.archived_up_to(mark) {
            if Instant::now() >= deadline {
                return Err(ArchiveError::Failed(
                    "the archive has not catalogued the user's latest mail yet".into(),
                ));
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// Selects the messages and writes the mbox; the list of what it holds.
    fn write(&self, job: &mut Backup) -> Result<Vec<BackupItem>, ArchiveError> {
        self.settle(job)?;
        // The purge never runs while a job reads (it would punch out what it selected).
        let _no_purge = self.catalog.reading();
        let selected = select(&self.catalog, job)?;
        job.counts.selected = selected.len() as u64;
        self.catalog.store.backups().save(job)?;
        std::fs::create_dir_all(&self.dir)?;
        let path = mbox_path(&self.dir, job.id);
        let part = path.with_extension("mbox.part");
        let written = self.write_mbox(job, selected, &part);
        if written.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        let items = written?;
        std::fs::rename(&part, &path)?;
        File::open(&self.dir)?.sync_all()?;
        if job.counts.written != job.counts.selected {
            return Err(ArchiveError::Failed(
                "not every selected message was written".into(),
            ));
        }
        Ok(items)
    }

    /// Writes the selected messages to `part` and syncs it.
    fn write_mbox(
        &self,
        job: &mut Backup,
        selected: Vec<ArchivedMessage>,
        part: &Path,
    ) -> Result<Vec<BackupItem>, ArchiveError> {
        let mut out = BufWriter::new(File::create(part)?);
        let mut items = Vec::with_capacity(selected.len());
        for message in selected {
            // A job runs on one node and reads that node's journal: the job fails and
            // says which node holds the message (run the job there, or bring it up).
            if !message.is_on(self.catalog.store.node()) {
                return Err(ArchiveError::OnNode {
                    id: message.id,
                    node: message.node,
                });
            }
            let e = message.extent;
            let bytes = self
                .catalog
                .spool
                .read_kept(e.seg, e.offset, e.len)
                .map_err(|error| {
                    ArchiveError::Failed(format!(
                        "message {} cannot be read: {error}",
                        crate::spool::show_id(message.id)
                    ))
                })?;
            mbox::append(
                &mut out,
                &message.mail_from,
                message.received_at / 1000,
                &bytes,
            )?;
            job.counts.written += 1;
            job.counts.bytes += bytes.len() as u64;
            items.push(item(message));
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(items)
    }
}

/// Records how a job ended in the audit log (`backup.completed`, `backup.failed`), by
/// `postern` itself.
fn audit(store: &Store, job: &Backup) {
    let action = match job.status {
        BackupStatus::Completed => "backup.completed",
        _ => "backup.failed",
    };
    let entry = AuditEntry {
        id: 0,
        at: crate::spool::now_ms() / 1000,
        actor_id: None,
        actor: "postern".into(),
        action: action.into(),
        target: format!("user/{}", job.user),
        before: None,
        after: serde_json::to_value(job).ok(),
    };
    if let Err(error) = store.audit().record(entry) {
        tracing::error!(backup = job.id, %error, "audit entry not written");
    }
}

/// The user's kept messages in the job's window; for `record_level` only those linked to
/// a ticket (links found again now: a ticket may have been made or deleted since).
pub fn select(catalog: &Catalog, job: &Backup) -> Result<Vec<ArchivedMessage>, ArchiveError> {
    let mut out = Vec::new();
    for mut message in catalog.store.archive().of_user(job.user)? {
        let after = job.since.is_none_or(|since| message.received_at > since);
        if !after || message.received_at > job.until {
            continue;
        }
        message.tickets = links::tickets(&catalog.store, &message)?;
        if job.account_type == AccountType::RecordLevel && message.tickets.is_empty() {
            continue;
        }
        out.push(message);
    }
    Ok(out)
}

fn item(message: ArchivedMessage) -> BackupItem {
    BackupItem {
        id: message.id,
        direction: message.direction,
        mail_from: message.mail_from,
        rcpts: message.rcpts,
        from: message.from,
        subject: message.subject,
        date: message.date,
        message_id: message.message_id,
        tickets: message.tickets,
        received_at: message.received_at,
        size: message.size,
    }
}
