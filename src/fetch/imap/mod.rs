//! Fetching over IMAP (async-imap): log in (password or XOAUTH2 with the OAuth settings of
//! the account's upstream), select the folder, and then, round after round: acknowledge
//! what was recorded but not yet acknowledged, carry out the API's requests on set-aside
//! messages and retry the due ones, read every message above the highest UID recorded (in
//! batches, `BODY.PEEK[]` so nothing is marked read before it is recorded), take each,
//! save the state (synced), acknowledge the batch; then wait in IDLE (re-issued every
//! `IDLE_FOR`, well before the 30 minutes after which RFC 2177 lets a server drop an idle
//! client; sooner when the lease must be renewed) or, without IDLE, `poll_secs`.
//!
//! `read` reads and takes the new messages, `ack` acknowledges them and handles the
//! set-aside ones.
//!
//! A changed UIDVALIDITY starts the folder afresh: every message in it is read again and
//! the marks (Message-ID, else the digest) keep each from being recorded twice.

mod ack;
mod read;

use super::state::next_due;
use super::status::Phase;
use super::supervise::{health, Job};
use super::FetchError;
use crate::net::imap::{self, refused, step, Login, Server};
use crate::net::wire::Wire;
use crate::store::{FetchAuth, FetchState, Health};
use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use async_imap::Session;
use std::collections::HashSet;
use std::time::Duration;

/// Messages read per `UID FETCH`.
const BATCH: usize = 50;
/// How long one IDLE lasts before it is re-issued.
const IDLE_FOR: Duration = Duration::from_secs(25 * 60);

/// One IMAP session, until it fails, the task stops or another node took the lease.
pub async fn session(job: &mut Job) -> Result<(), FetchError> {
    let mut conn = Conn::open(job).await?;
    health(job, Health::Healthy, None).await;
    let mut state = job.state().await?;
    conn.select(job, &mut state).await?;
    loop {
        if job.stopping() || !job.hold().await {
            conn.close().await;
            return Ok(());
        }
        job.phase(Phase::Fetching);
        conn.news();
        conn.acknowledge(job, &mut state).await?;
        conn.requests(job, &mut state).await?;
        conn.retry_set_aside(job, &mut state).await?;
        conn.read_new(job, &mut state).await?;
        if conn.news() {
            // Mail arrived while this round ran: IDLE would not hear of it again.
            continue;
        }
        let wait = next_due(&state, super::now())
            .map_or(IDLE_FOR, |secs| Duration::from_secs(secs.max(1)))
            .min(IDLE_FOR);
        conn.wait(job, job.renew_within(wait)).await?;
    }
}

/// The session with its folder selected.
struct Conn {
    session: Option<Session<Wire>>,
    name: String,
    idle: bool,
    moves: bool,
    uidplus: bool,
    /// Folders known to exist (created this session when missing).
    folders: HashSet<String>,
}

impl Conn {
    async fn open(job: &mut Job) -> Result<Conn, FetchError> {
        let tokens = match job.fetch.auth {
            FetchAuth::Xoauth2 => Some(tokens(job)?),
            FetchAuth::Password => None,
        };
        let fetch = &job.fetch;
        let server = Server {
            host: &fetch.host,
            port: fetch.port(),
            tls: fetch.tls,
            ca_file: fetch.ca_file.as_deref(),
        };
        let (mut session, name) = match tokens {
            None => {
                let login = Login::Password {
                    username: &fetch.username,
                    password: fetch.password.as_deref().unwrap_or_default(),
                };
                imap::connect(server, login).await?
            }
            Some(tokens) => {
                let token = tokens
                    .token()
                    .await
                    .map_err(|e| FetchError::Token(e.to_string()))?;
                let login = Login::Xoauth2 {
                    username: &fetch.username,
                    token: &token,
                };
                let connected = imap::connect(server, login).await;
                if let Err(crate::net::imap::ImapError::Login(_)) = &connected {
                    tokens.reject(&token).await;
                }
                connected?
            }
        };
        let capabilities = step(&name, "CAPABILITY", session.capabilities())
            .await?
            .map_err(|e| refused(&name, "CAPABILITY", e))?;
        Ok(Conn {
            idle: capabilities.has_str("IDLE"),
            moves: capabilities.has_str("MOVE"),
            uidplus: capabilities.has_str("UIDPLUS"),
            session: Some(session),
            name,
            folders: HashSet::new(),
        })
    }

    /// Whether the server announced new or changed messages since the last call (its
    /// untagged `EXISTS`/`RECENT`, kept aside by async-imap during other commands).
    fn news(&mut self) -> bool {
        let mut news = false;
        while let Ok(response) = self.session().unsolicited_responses.try_recv() {
            news |= matches!(
                response,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            );
        }
        news
    }

    fn session(&mut self) -> &mut Session<Wire> {
        self.session
            .as_mut()
            .expect("the session is back after IDLE")
    }

    /// Selects the folder; a changed UIDVALIDITY starts the state afresh.
    async fn select(&mut self, job: &Job, state: &mut FetchState) -> Result<(), FetchError> {
        let folder = job.fetch.folder.clone();
        let name = self.name.clone();
        let mailbox = step(&name, "SELECT", self.session().select(&folder))
            .await?
            .map_err(|e| refused(&name, &format!("SELECT {folder:?}"), e))?;
        let validity = mailbox.uid_validity.unwrap_or(0);
        if state.uidvalidity != validity {
            if state.uidvalidity != 0 {
                tracing::warn!(mailbox = %job.account.name, old = state.uidvalidity, new = validity,
                    "UIDVALIDITY changed: every message in the folder is read again (none recorded twice)");
            }
            // What is in the folder now and already read is its history.
            let history_uid = match mailbox.uid_next {
                Some(next) => next.saturating_sub(1),
                None => self.highest_uid().await?,
            };
            *state = FetchState {
                source: state.source.clone(),
                uidvalidity: validity,
                history_uid,
                since: state.since,
                ..FetchState::default()
            };
            job.save(state).await?;
        }
        Ok(())
    }

    /// The highest UID in the folder (0 when empty), for servers that do not say UIDNEXT.
    async fn highest_uid(&mut self) -> Result<u32, FetchError> {
        let name = self.name.clone();
        let all = step(&name, "UID SEARCH", self.session().uid_search("ALL"))
            .await?
            .map_err(|e| refused(&name, "UID SEARCH", e))?;
        Ok(all.into_iter().max().unwrap_or(0))
    }

    /// Waits for the server to announce new mail (IDLE), for `longest`, a wake-up or stop.
    async fn wait(&mut self, job: &Job, longest: Duration) -> Result<(), FetchError> {
        let mut stop = job.stop.clone();
        if !self.idle {
            job.phase(Phase::Polling);
            let poll = Duration::from_secs(job.fetch.poll_secs.max(1)).min(longest);
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = job.wake.notified() => {}
                _ = stop.changed() => {}
            }
            let name = self.name.clone();
            return step(&name, "NOOP", self.session().noop())
                .await?
                .map_err(|e| refused(&name, "NOOP", e).into());
        }
        job.phase(Phase::Idle);
        let name = self.name.clone();
        let session = self.session.take().expect("a session to idle with");
        let mut handle = session.idle();
        step(&name, "IDLE", handle.init())
            .await?
            .map_err(|e| refused(&name, "IDLE", e))?;
        let outcome = {
            let (answer, interrupt) = handle.wait_with_timeout(longest);
            tokio::pin!(answer);
            let mut interrupt = Some(interrupt);
            loop {
                tokio::select! {
                    outcome = &mut answer => break outcome,
                    _ = job.wake.notified(), if interrupt.is_some() => drop(interrupt.take()),
                    _ = stop.changed(), if interrupt.is_some() => drop(interrupt.take()),
                }
            }
        };
        let outcome = outcome.map_err(|e| refused(&name, "IDLE", e))?;
        let session = step(&name, "DONE", handle.done())
            .await?
            .map_err(|e| refused(&name, "DONE", e))?;
        self.session = Some(session);
        if let IdleResponse::NewData(_) = outcome {
            tracing::debug!(mailbox = %job.account.name, "IDLE: the folder changed");
        }
        Ok(())
    }

    /// Logs out (best effort).
    async fn close(mut self) {
        if let Some(mut session) = self.session.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
        }
    }
}

/// The token source of the account's upstream's OAuth settings (made once per task).
fn tokens(job: &mut Job) -> Result<std::sync::Arc<crate::relay::oauth::TokenSource>, FetchError> {
    if let Some(tokens) = &job.tokens {
        return Ok(tokens.clone());
    }
    let upstream = &job.account.upstream;
    let smtp = job.relays.settings().get(upstream).and_then(|u| u.smtp());
    let (oauth, ca_file) = smtp
        .and_then(|smtp| Some((smtp.oauth?, smtp.ca_file)))
        .ok_or_else(|| {
            FetchError::Settings(format!(
                "xoauth2: upstream {upstream:?} has no OAuth settings"
            ))
        })?;
    // Under the upstream's name: its warnings and refresh-token record are the upstream's.
    let source = crate::relay::oauth::TokenSource::new(
        upstream,
        &oauth,
        &job.fetch.username,
        job.relays.shared(),
        ca_file.as_deref(),
    )
    .map_err(|e| FetchError::Token(e.to_string()))?;
    job.tokens = Some(source.clone());
    Ok(source)
}
