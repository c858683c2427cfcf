//! The appender task: files the waiting sent copies, one IMAP session per account and
//! round, and deletes each job once its message is in the folder (or was already there).
//!
//! A job that cannot be filed stays on disk and is tried again after 10 s, doubling up to
//! an hour (the schedule is in memory: after a restart every job is tried at once, and the
//! Message-ID search keeps that from filing anything twice). While an account's copies
//! fail, it carries the `sent_copy` warning (`relay::warnings`), cleared by its next
//! success. A job whose account is gone or no longer wants copies is dropped. The task
//! wakes when a job is added, when the next retry is due, and stops with the delivery.

use super::imap::{self, Filed, Login};
use super::jobs::JobHead;
use super::{SentCopies, SentCopyError};
use crate::config::OAuthConfig;
use crate::relay::oauth::TokenSource;
use crate::relay::warnings::{Subject, Warnings};
use crate::relay::Relays;
use crate::store::{SentCopy, SentCopyAuth};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The warning kind shown on the account.
pub const KIND: &str = "sent_copy";
/// The first retry after a failure; each next one waits twice as long.
const FIRST_RETRY: Duration = Duration::from_secs(10);
/// The longest wait between two tries.
const LAST_RETRY: Duration = Duration::from_secs(3600);

/// Files the jobs of one node's queue.
pub struct Appender {
    copies: Arc<SentCopies>,
    relays: Arc<Relays>,
    warnings: Arc<Warnings>,
    /// Token sources by upstream name, with the settings they were made from.
    tokens: HashMap<String, (OAuthConfig, Arc<TokenSource>)>,
    /// Per job that failed: how often, and when it is tried next.
    backoff: HashMap<String, (u32, Instant)>,
}

impl Appender {
    /// An appender for `copies`; XOAUTH2 uses the OAuth settings of the account's upstream
    /// in `relays`.
    pub fn new(copies: Arc<SentCopies>, relays: Arc<Relays>) -> Appender {
        Appender {
            warnings: copies.warnings.clone(),
            copies,
            relays,
            tokens: HashMap::new(),
            backoff: HashMap::new(),
        }
    }

    /// Files jobs until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let copies = self.copies.clone();
        loop {
            let wait = tokio::select! {
                wait = self.round() => wait,
                _ = stop.changed() => return,
            };
            tokio::select! {
                _ = copies.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Files every job that is due; returns how long until the next one is.
    async fn round(&mut self) -> Duration {
        let jobs = self.copies.jobs.clone();
        let pending = match tokio::task::spawn_blocking(move || jobs.pending()).await {
            Ok(Ok(pending)) => pending,
            Ok(Err(error)) => {
                tracing::error!(%error, "sent-copy queue unreadable");
                return FIRST_RETRY;
            }
            Err(error) => {
                tracing::error!(%error, "sent-copy queue task failed");
                return FIRST_RETRY;
            }
        };
        let waiting: HashSet<&String> = pending.iter().map(|(key, _)| key).collect();
        self.backoff.retain(|key, _| waiting.contains(key));
        let now = Instant::now();
        let mut next = LAST_RETRY;
        let mut due: BTreeMap<u64, Vec<(String, JobHead)>> = BTreeMap::new();
        for (key, head) in pending {
            match self.backoff.get(&key) {
                Some((_, at)) if *at > now => next = next.min(*at - now),
                _ => due.entry(head.account).or_default().push((key, head)),
            }
        }
        for (account, jobs) in due {
            if let Some(wait) = self.account(account, jobs).await {
                next = next.min(wait);
            }
        }
        next
    }

    /// Files the due jobs of `account`; how long until its failed ones are due, if any.
    async fn account(&mut self, account: u64, jobs: Vec<(String, JobHead)>) -> Option<Duration> {
        let subject = Subject::Account(account);
        let wanted = {
            let snapshot = self.copies.policy.snapshot();
            snapshot
                .account(account)
                .and_then(|a| a.sent_copy.clone().map(|s| (s, a.upstream.clone())))
        };
        let Some((settings, upstream)) = wanted else {
            tracing::info!(
                account,
                jobs = jobs.len(),
                "sent copies dropped: the account no longer files them"
            );
            for (key, _) in &jobs {
                self.remove(key).await;
            }
            self.warnings.clear(&subject, KIND);
            return None;
        };
        let Err((error, failed)) = self.file_all(&settings, &upstream, &jobs).await else {
            self.warnings.clear(&subject, KIND);
            return None;
        };
        let mut wait = LAST_RETRY;
        for key in failed {
            let tries = self.backoff.get(&key).map_or(0, |(n, _)| *n) + 1;
            let delay = FIRST_RETRY
                .saturating_mul(1 << (tries - 1).min(16))
                .min(LAST_RETRY);
            self.backoff.insert(key, (tries, Instant::now() + delay));
            wait = wait.min(delay);
        }
        let message = format!(
            "sent copies cannot be filed in {:?} at {}:{}: {error}; they wait and are retried (up to hourly)",
            settings.folder, settings.host, settings.port
        );
        self.warnings.raise(subject, KIND, message, None);
        Some(wait)
    }

    /// Files `jobs` in one session: the first error and the keys not filed, on failure.
    async fn file_all(
        &mut self,
        settings: &SentCopy,
        upstream: &str,
        jobs: &[(String, JobHead)],
    ) -> Result<(), (SentCopyError, Vec<String>)> {
        let all = || jobs.iter().map(|(key, _)| key.clone()).collect();
        let mut folder = self
            .open(settings, upstream)
            .await
            .map_err(|e| (e, all()))?;
        let mut failed = Vec::new();
        let mut first_error = None;
        for (index, (key, head)) in jobs.iter().enumerate() {
            match self.file_one(&mut folder, settings, key, head).await {
                Ok(()) => {}
                // The server refused this message: the others may still go.
                Err(error @ SentCopyError::Refused(_)) => {
                    tracing::warn!(account = head.account, queue_id = %head.queue_id, %error, "sent copy not filed");
                    failed.push(key.clone());
                    first_error.get_or_insert(error);
                }
                Err(error) => {
                    failed.extend(jobs[index..].iter().map(|(key, _)| key.clone()));
                    first_error.get_or_insert(error);
                    break;
                }
            }
        }
        folder.close().await;
        match first_error {
            None => Ok(()),
            Some(error) => Err((error, failed)),
        }
    }

    async fn file_one(
        &self,
        folder: &mut imap::Folder,
        settings: &SentCopy,
        key: &str,
        head: &JobHead,
    ) -> Result<(), SentCopyError> {
        let jobs = self.copies.jobs.clone();
        let owned = key.to_string();
        let data = tokio::task::spawn_blocking(move || jobs.message(&owned))
            .await
            .map_err(|e| SentCopyError::Io(e.to_string()))??;
        let filed = folder
            .file(&settings.folder, head.message_id.as_deref(), &data)
            .await?;
        tracing::info!(account = head.account, queue_id = %head.queue_id,
            message_id = head.message_id.as_deref().unwrap_or(""), already = (filed == Filed::AlreadyThere),
            "sent copy filed");
        self.remove(key).await;
        Ok(())
    }

    /// Connects and logs in as `settings` say.
    async fn open(
        &mut self,
        settings: &SentCopy,
        upstream: &str,
    ) -> Result<imap::Folder, SentCopyError> {
        match &settings.auth {
            SentCopyAuth::Password { username, password } => {
                let password = password.as_deref().unwrap_or_default();
                imap::open(settings, Login::Password { username, password }).await
            }
            SentCopyAuth::Xoauth2 { username } => {
                let source = self.token_source(upstream)?;
                let token = source
                    .token()
                    .await
                    .map_err(|e| SentCopyError::Token(e.to_string()))?;
                let login = Login::Xoauth2 {
                    username,
                    token: &token,
                };
                let opened = imap::open(settings, login).await;
                if let Err(SentCopyError::Login(_)) = &opened {
                    source.reject(&token).await;
                }
                opened
            }
        }
    }

    /// The token source of `upstream`'s OAuth settings (made once per settings).
    fn token_source(&mut self, upstream: &str) -> Result<Arc<TokenSource>, SentCopyError> {
        let smtp = self.relays.settings().get(upstream).and_then(|u| u.smtp());
        let (oauth, username, ca_file) = smtp
            .and_then(|smtp| Some((smtp.oauth?, smtp.username, smtp.ca_file)))
            .ok_or_else(|| {
                SentCopyError::Token(format!("upstream {upstream:?} has no OAuth settings"))
            })?;
        if let Some((config, source)) = self.tokens.get(upstream) {
            if *config == oauth {
                return Ok(source.clone());
            }
        }
        // Under the upstream's name: its warnings and its record of refresh-token use are
        // the upstream's own.
        let shared = self.relays.shared();
        let source = TokenSource::new(upstream, &oauth, &username, shared, ca_file.as_deref())
            .map_err(|e| SentCopyError::Token(e.to_string()))?;
        self.tokens
            .insert(upstream.to_string(), (oauth, source.clone()));
        Ok(source)
    }

    /// Deletes job `key` (logged if that fails: it is then filed again, found by its
    /// Message-ID and dropped).
    async fn remove(&self, key: &str) {
        let jobs = self.copies.jobs.clone();
        let owned = key.to_string();
        match tokio::task::spawn_blocking(move || jobs.remove(&owned)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "sent-copy job not removed"),
            Err(error) => tracing::error!(%error, "sent-copy job not removed"),
        }
    }
}
