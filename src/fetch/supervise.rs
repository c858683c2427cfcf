//! The fetch tasks of this node: one per helpdesk mailbox with `inbound.fetch`, started
//! when the settings appear, restarted when they change, stopped when they go (the policy
//! snapshot is looked at every `LOOK`). Each task holds the mailbox's lease in the store
//! (`fetch/<account id>`), so with several nodes one fetches and the others stand by; it
//! runs one session of its kind after another, waiting between failed ones 1 s, doubling
//! up to 5 minutes (back to 1 s once a session got as far as reading the mailbox). A
//! session refused its credentials turns the account `failing`, as an upstream's would;
//! the next good session turns it healthy again.

use super::intake::Intake;
use super::status::{Phase, StatusBook};
use super::{graph, imap, pop3, FetchError};
use crate::policy::Policy;
use crate::relay::Relays;
use crate::store::{Account, AccountStatus, Fetch, FetchKind, Health, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How often the settings are looked at.
const LOOK: Duration = Duration::from_secs(2);
/// How long a lease lasts unless renewed.
const LEASE: Duration = Duration::from_secs(60);
/// How often a session renews its lease (and re-issues IDLE when the store is shared).
pub const RENEW: Duration = Duration::from_secs(20);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(300);

/// What one mailbox's sessions work with.
pub struct Job {
    /// The account as it was when the task started (settings changes restart the task).
    pub account: Account,
    pub fetch: Fetch,
    pub intake: Arc<Intake>,
    pub store: Store,
    pub relays: Arc<Relays>,
    pub status: Arc<StatusBook>,
    /// Woken when the API changed the mailbox's set-aside messages.
    pub wake: Arc<Notify>,
    pub stop: watch::Receiver<bool>,
    /// The OAuth token source of the account's upstream, made at the first XOAUTH2 login.
    pub tokens: Option<Arc<crate::relay::oauth::TokenSource>>,
}

impl Job {
    /// Moves the status to `phase`.
    pub fn phase(&self, phase: Phase) {
        self.status
            .set(self.account.id, &self.account.name, phase, None);
    }

    /// Renews the mailbox's lease; whether this node still holds it (a store error counts
    /// as not holding it).
    pub async fn hold(&self) -> bool {
        let store = self.store.clone();
        let name = format!("fetch/{}", self.account.id);
        tokio::task::spawn_blocking(move || store.lease(&name, store.node(), LEASE))
            .await
            .is_ok_and(|held| held.unwrap_or(false))
    }

    /// Whether the task is asked to stop.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// How long an IDLE or a pause between looks may last before the lease is renewed.
    pub fn renew_within(&self, wanted: Duration) -> Duration {
        match self.store.is_shared() {
            true => wanted.min(RENEW),
            false => wanted,
        }
    }
}

/// Starts and stops the fetch tasks; their status.
pub struct Fetchers {
    status: Arc<StatusBook>,
    wakes: Mutex<HashMap<u64, Arc<Notify>>>,
}

impl Fetchers {
    /// Starts supervising the mailboxes of `policy` until `stop` turns true.
    pub fn start(
        intake: Arc<Intake>,
        store: Store,
        policy: Arc<Policy>,
        relays: Arc<Relays>,
        status: Arc<StatusBook>,
        stop: watch::Receiver<bool>,
    ) -> Arc<Fetchers> {
        let fetchers = Arc::new(Fetchers {
            status,
            wakes: Mutex::default(),
        });
        let shared = Parts {
            intake,
            store,
            relays,
        };
        tokio::spawn(supervise(fetchers.clone(), shared, policy, stop));
        fetchers
    }

    pub fn status(&self) -> &Arc<StatusBook> {
        &self.status
    }

    /// Asks account `id`'s fetcher to look at its set-aside messages now.
    pub fn wake(&self, id: u64) {
        if let Some(wake) = self.lock().get(&id) {
            wake.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Notify>>> {
        self.wakes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What every task shares.
#[derive(Clone)]
struct Parts {
    intake: Arc<Intake>,
    store: Store,
    relays: Arc<Relays>,
}

/// A running task: the settings it runs with, and its stop switch.
struct Running {
    account: Account,
    stop: watch::Sender<bool>,
}

async fn supervise(
    fetchers: Arc<Fetchers>,
    parts: Parts,
    policy: Arc<Policy>,
    mut stop: watch::Receiver<bool>,
) {
    let mut running: HashMap<u64, Running> = HashMap::new();
    loop {
        let wanted: HashMap<u64, Account> = policy
            .snapshot()
            .accounts()
            .into_iter()
            .filter(|a| a.inbound.as_ref().is_some_and(|i| i.fetch.is_some()))
            .map(|a| (a.id, a.clone()))
            .collect();
        running.retain(|id, task| {
            let keep = wanted
                .get(id)
                .is_some_and(|a| same_settings(a, &task.account));
            if !keep {
                let _ = task.stop.send(true);
                fetchers.status.remove(*id);
                fetchers.lock().remove(id);
            }
            keep
        });
        for (id, account) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let (task_stop, task_stop_rx) = watch::channel(false);
            let wake = Arc::new(Notify::new());
            fetchers.lock().insert(id, wake.clone());
            let Some(fetch) = account.inbound.as_ref().and_then(|i| i.fetch.clone()) else {
                continue;
            };
            let job = Job {
                account: account.clone(),
                fetch,
                intake: parts.intake.clone(),
                store: parts.store.clone(),
                relays: parts.relays.clone(),
                status: fetchers.status.clone(),
                wake,
                stop: task_stop_rx,
                tokens: None,
            };
            tokio::spawn(run(job));
            running.insert(
                id,
                Running {
                    account,
                    stop: task_stop,
                },
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(LOOK) => {}
            _ = stop.changed() => break,
        }
    }
    for task in running.into_values() {
        let _ = task.stop.send(true);
    }
}

/// Whether a running task's account still has the settings it runs with (its status, which
/// the task itself changes, aside).
fn same_settings(now: &Account, then: &Account) -> bool {
    now.address == then.address
        && now.upstream == then.upstream
        && now.inbound.as_ref().and_then(|i| i.fetch.as_ref())
            == then.inbound.as_ref().and_then(|i| i.fetch.as_ref())
}

/// One mailbox's sessions, until its stop switch turns.
async fn run(mut job: Job) {
    let mut retry = FIRST_RETRY;
    let mut stop = job.stop.clone();
    loop {
        if job.stopping() {
            return;
        }
        if !job.hold().await {
            job.phase(Phase::Standby);
            tokio::select! {
                _ = tokio::time::sleep(RENEW) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        job.phase(Phase::Connecting);
        let result = match job.fetch.kind {
            FetchKind::Imap => imap::session(&mut job).await,
            FetchKind::Pop3 => pop3::session(&mut job).await,
            FetchKind::Graph => graph::session(&mut job).await,
        };
        if job.stopping() {
            return;
        }
        let reached = job
            .status
            .get(job.account.id)
            .is_some_and(|s| s.state != Phase::Connecting);
        match result {
            Ok(()) => retry = FIRST_RETRY,
            Err(error) => {
                if reached {
                    retry = FIRST_RETRY;
                }
                tracing::warn!(mailbox = %job.account.name, %error, retry_in = ?retry,
                    "fetch session ended");
                let text = error.to_string();
                job.status.set(
                    job.account.id,
                    &job.account.name,
                    Phase::Failing,
                    Some(text),
                );
                if let FetchError::Login(_) | FetchError::Token(_) = error {
                    health(&job, Health::Failing, Some(error.to_string())).await;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = stop.changed() => {}
        }
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// Writes the account's health when it differs (a failing login, or the first good
/// session after one).
pub async fn health(job: &Job, health: Health, error: Option<String>) {
    let store = job.store.clone();
    let id = job.account.id;
    let upstream = job.account.upstream.clone();
    let written = tokio::task::spawn_blocking(move || {
        let Some(mut account) = store.accounts().get(id)? else {
            return Ok(());
        };
        let fetch_failing = account
            .status
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with(FETCH_ERROR));
        let changes = match health {
            Health::Failing => account.status.health != Health::Failing || !fetch_failing,
            // Only a failure the fetcher wrote is cleared by it.
            _ => account.status.health == Health::Failing && fetch_failing,
        };
        if !changes {
            return Ok(());
        }
        account.status = AccountStatus {
            health,
            last_error: error.map(|e| format!("{FETCH_ERROR}{e}")),
            since: super::now(),
        };
        store
            .accounts()
            .set_status(id, &upstream, &account.status)
            .map(drop)
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "account health not written"),
        Err(error) => tracing::error!(%error, "account health not written"),
    }
}

/// How a fetch failure starts in the account's `last_error`.
const FETCH_ERROR: &str = "fetch: ";
