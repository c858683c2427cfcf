//! Fetching over IMAP (async-imap): log in (password or XOAUTH2 with the OAuth settings of
//! the account's upstream), select the folder, and then, round after round: acknowledge
//! what was recorded but not yet acknowledged, carry out the API's requests on set-aside
//! messages and retry the due ones, read every message above the highest UID recorded (in
//! batches, `BODY.PEEK[]` so nothing is marked read before it is recorded), take each,
//! save the state (synced), acknowledge the batch; then wait in IDLE (re-issued every
//! `IDLE_FOR`, well before the 30 minutes after which RFC 2177 lets a server drop an idle
//! client; sooner when the lease must be renewed) or, without IDLE, `poll_secs`.
//!
//! A changed UIDVALIDITY starts the folder afresh: every message in it is read again and
//! the marks (Message-ID, else the digest) keep each from being recorded twice.

use super::intake::Taken;
use super::state::{self, due, forget, next_due};
use super::status::Phase;
use super::supervise::{health, Job};
use super::FetchError;
use crate::net::imap::{self, refused, step, Login, Server};
use crate::net::wire::Wire;
use crate::store::{After, FetchAuth, FetchState, Health, OnBlocked, SetAsideRequest};
use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use async_imap::Session;
use futures_util::TryStreamExt;
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

    /// Reads and takes every message above the highest UID seen, a batch at a time, but the
    /// history (read before the folder was first read).
    async fn read_new(&mut self, job: &Job, state: &mut FetchState) -> Result<(), FetchError> {
        let name = self.name.clone();
        let query = format!("UID {}:*", state.last_uid.saturating_add(1));
        let found = step(&name, "UID SEARCH", self.session().uid_search(&query))
            .await?
            .map_err(|e| refused(&name, "UID SEARCH", e))?;
        let history = match state.last_uid < state.history_uid {
            true => {
                let query = format!("UID {}:{} SEEN", state.last_uid + 1, state.history_uid);
                step(&name, "UID SEARCH", self.session().uid_search(&query))
                    .await?
                    .map_err(|e| refused(&name, "UID SEARCH", e))?
            }
            false => HashSet::new(),
        };
        // `n:*` names the last message even when its UID is below n.
        let mut uids: Vec<u32> = found
            .into_iter()
            .filter(|u| *u > state.last_uid && !history.contains(u))
            .filter(|u| !state.set_aside.iter().any(|s| s.key == u.to_string()))
            .collect();
        uids.sort_unstable();
        for batch in uids.chunks(BATCH) {
            self.take_batch(job, state, batch).await?;
            state.last_uid = state.last_uid.max(batch[batch.len() - 1]);
            job.save(state).await?;
            self.acknowledge(job, state).await?;
        }
        if state.last_uid < state.history_uid {
            state.last_uid = state.history_uid;
            job.save(state).await?;
        }
        Ok(())
    }

    /// Reads `uids` and takes each; the done ones join `unacked`, the unreadable ones are
    /// set aside. Not saved here.
    async fn take_batch(
        &mut self,
        job: &Job,
        state: &mut FetchState,
        uids: &[u32],
    ) -> Result<(), FetchError> {
        let mut bodies = self.bodies_or_each(job, state, uids).await?;
        for uid in uids {
            let key = uid.to_string();
            let data = bodies
                .iter()
                .position(|(u, _)| u == uid)
                .map(|i| bodies.swap_remove(i).1);
            // Not returned: set aside already, with the reason.
            let Some(data) = data else { continue };
            let name = format!("imap/{}/{uid}", state.uidvalidity);
            let taken = job.intake.take(&job.account, &job.fetch, &name, data).await;
            let taken = match taken {
                Ok(taken) => taken,
                Err(error) => {
                    // Nothing after this one is acknowledged; what was recorded is found
                    // by its mark when read again.
                    return Err(error);
                }
            };
            job.status.message(job.account.id, &job.account.name);
            match taken {
                Taken::Unreadable(why) => {
                    tracing::warn!(mailbox = %job.account.name, uid, reason = %why,
                        "fetched message set aside");
                    state::set_aside(state, &key, &why, super::now());
                }
                done => {
                    forget(state, &key);
                    state.unacked.push((key, matches!(done, Taken::Blocked(_))));
                }
            }
        }
        Ok(())
    }

    /// The octets of each of `uids`, read in one command; when the server refuses it, leaves
    /// some out or breaks the session over it, each one alone, set aside (durably) before it
    /// is asked for and forgotten again once taken — so a message that breaks the server's
    /// session every time (Dovecot drops the connection over a mail file it cannot open)
    /// ends up set aside and stalls nothing.
    async fn bodies_or_each(
        &mut self,
        job: &Job,
        state: &mut FetchState,
        uids: &[u32],
    ) -> Result<Vec<(u32, Vec<u8>)>, FetchError> {
        if !state.careful {
            match self.bodies(uids).await {
                Ok(bodies) if bodies.len() == uids.len() => return Ok(bodies),
                Ok(_) | Err(FetchError::Refused(_)) => {}
                Err(error) => {
                    state.careful = true;
                    job.save(state).await?;
                    return Err(error);
                }
            }
        }
        let mut bodies = Vec::new();
        for uid in uids {
            let key = uid.to_string();
            let broke = "reading it broke the session with the server";
            state::set_aside(state, &key, broke, super::now());
            job.save(state).await?;
            let why = match self.bodies(&[*uid]).await {
                Ok(mut one) if !one.is_empty() => {
                    bodies.append(&mut one);
                    continue;
                }
                Ok(_) => "the server did not return the message".to_string(),
                Err(FetchError::Refused(why)) => why,
                Err(error) => return Err(error),
            };
            tracing::warn!(mailbox = %job.account.name, uid, reason = %why,
                "message not fetched: set aside");
            if let Some(entry) = state.set_aside.iter_mut().find(|s| s.key == key) {
                entry.reason = why;
            }
        }
        state.careful = false;
        Ok(bodies)
    }

    /// The octets of each of `uids` the server returned.
    async fn bodies(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, FetchError> {
        let name = self.name.clone();
        let set = uid_set(uids.iter().copied());
        let session = self.session();
        let fetching = async {
            let stream = session.uid_fetch(&set, "BODY.PEEK[]").await?;
            stream
                .try_filter_map(|fetch| async move {
                    Ok(fetch.uid.zip(fetch.body().map(<[u8]>::to_vec)))
                })
                .try_collect::<Vec<_>>()
                .await
        };
        Ok(step(&name, "UID FETCH", fetching)
            .await?
            .map_err(|e| refused(&name, "UID FETCH", e))?)
    }

    /// Acknowledges what is recorded and not yet acknowledged, then forgets it (one more
    /// sync per batch; lost in a crash, the acknowledgement is repeated, which does no harm).
    async fn acknowledge(&mut self, job: &Job, state: &mut FetchState) -> Result<(), FetchError> {
        if state.unacked.is_empty() {
            return Ok(());
        }
        let fetch = job.fetch.clone();
        let (blocked, plain): (Vec<_>, Vec<_>) = state.unacked.iter().partition(|(_, b)| *b);
        let keys = |list: Vec<&(String, bool)>| {
            list.into_iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
        };
        let (blocked, plain) = (keys(blocked), keys(plain));
        if !plain.is_empty() {
            match fetch.after {
                After::Seen => self.flag(&plain, "+FLAGS.SILENT (\\Seen)").await?,
                After::Move => {
                    let to = fetch.move_to.clone().unwrap_or_else(|| "Processed".into());
                    self.move_to(&plain, &to).await?;
                }
                After::Delete => self.delete(&plain).await?,
            }
        }
        if !blocked.is_empty() {
            match fetch.on_blocked() {
                OnBlocked::Move => self.move_to(&blocked, &fetch.blocked_folder).await?,
                OnBlocked::Delete => self.delete(&blocked).await?,
            }
        }
        state.unacked.clear();
        job.save(state).await
    }

    async fn flag(&mut self, keys: &[String], change: &str) -> Result<(), FetchError> {
        let name = self.name.clone();
        let set = keys.join(",");
        let session = self.session();
        let storing = async {
            let stream = session.uid_store(&set, change).await?;
            stream.try_collect::<Vec<_>>().await
        };
        step(&name, "UID STORE", storing)
            .await?
            .map_err(|e| refused(&name, "UID STORE", e))?;
        Ok(())
    }

    /// Moves `keys` to `folder` (created when missing): `UID MOVE`, else copy, flag
    /// `\Deleted` and expunge.
    async fn move_to(&mut self, keys: &[String], folder: &str) -> Result<(), FetchError> {
        self.ensure_folder(folder).await?;
        let name = self.name.clone();
        let set = keys.join(",");
        if self.moves {
            return step(&name, "UID MOVE", self.session().uid_mv(&set, folder))
                .await?
                .map_err(|e| refused(&name, "UID MOVE", e).into());
        }
        step(&name, "UID COPY", self.session().uid_copy(&set, folder))
            .await?
            .map_err(|e| refused(&name, "UID COPY", e))?;
        self.delete(keys).await
    }

    /// Flags `keys` `\Deleted` and expunges them (only them with UIDPLUS).
    async fn delete(&mut self, keys: &[String]) -> Result<(), FetchError> {
        self.flag(keys, "+FLAGS.SILENT (\\Deleted)").await?;
        let name = self.name.clone();
        let set = keys.join(",");
        let uidplus = self.uidplus;
        let session = self.session();
        let expunging = async {
            match uidplus {
                true => {
                    session
                        .uid_expunge(&set)
                        .await?
                        .try_collect::<Vec<_>>()
                        .await
                }
                false => session.expunge().await?.try_collect::<Vec<_>>().await,
            }
        };
        step(&name, "EXPUNGE", expunging)
            .await?
            .map_err(|e| refused(&name, "EXPUNGE", e))?;
        Ok(())
    }

    /// Creates `folder` unless it exists (a `NO` to CREATE means it does, or cannot be:
    /// the move that follows says which).
    async fn ensure_folder(&mut self, folder: &str) -> Result<(), FetchError> {
        if self.folders.contains(folder) {
            return Ok(());
        }
        let name = self.name.clone();
        match step(&name, "CREATE", self.session().create(folder)).await? {
            Ok(()) | Err(async_imap::error::Error::No(_)) => {}
            Err(e) => return Err(refused(&name, "CREATE", e).into()),
        }
        self.folders.insert(folder.to_string());
        Ok(())
    }

    /// Carries out the API's requests on set-aside messages.
    async fn requests(&mut self, job: &Job, state: &mut FetchState) -> Result<(), FetchError> {
        let store = job.store.clone();
        let id = job.account.id;
        let requests = tokio::task::spawn_blocking(move || store.fetch_states().requests(id))
            .await
            .map_err(|e| FetchError::Store(e.to_string()))??;
        if requests.is_empty() {
            return Ok(());
        }
        for (key, request) in &requests {
            let known = state.set_aside.iter().any(|s| &s.key == key);
            match request {
                SetAsideRequest::Retry if known => {
                    if let Some(entry) = state.set_aside.iter_mut().find(|s| &s.key == key) {
                        entry.next_try = 0;
                    }
                }
                SetAsideRequest::Move { folder } if known => {
                    self.move_to(std::slice::from_ref(key), folder).await?;
                    tracing::info!(mailbox = %job.account.name, uid = %key, %folder,
                        "set-aside message moved");
                    forget(state, key);
                }
                _ => {}
            }
        }
        job.save(state).await?;
        let store = job.store.clone();
        tokio::task::spawn_blocking(move || {
            for (key, _) in requests {
                store.fetch_states().done(id, &key)?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .await
        .map_err(|e| FetchError::Store(e.to_string()))??;
        Ok(())
    }

    /// Reads the due set-aside messages again.
    async fn retry_set_aside(
        &mut self,
        job: &Job,
        state: &mut FetchState,
    ) -> Result<(), FetchError> {
        let due: Vec<u32> = due(state, super::now())
            .iter()
            .filter_map(|s| s.key.parse().ok())
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        self.take_batch(job, state, &due).await?;
        job.save(state).await?;
        self.acknowledge(job, state).await
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

/// `1:3,7,9:10` for sorted `uids`.
fn uid_set(uids: impl Iterator<Item = u32>) -> String {
    let mut out = String::new();
    let mut run: Option<(u32, u32)> = None;
    let flush = |out: &mut String, (a, b): (u32, u32)| {
        if !out.is_empty() {
            out.push(',');
        }
        match a == b {
            true => out.push_str(&a.to_string()),
            false => out.push_str(&format!("{a}:{b}")),
        }
    };
    for uid in uids {
        run = match run {
            Some((a, b)) if uid == b + 1 => Some((a, uid)),
            Some(done) => {
                flush(&mut out, done);
                Some((uid, uid))
            }
            None => Some((uid, uid)),
        };
    }
    if let Some(done) = run {
        flush(&mut out, done);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_sets_are_written_as_ranges() {
        assert_eq!(
            super::uid_set([1, 2, 3, 7, 9, 10].into_iter()),
            "1:3,7,9:10"
        );
        assert_eq!(super::uid_set([5].into_iter()), "5");
        assert_eq!(super::uid_set(std::iter::empty()), "");
    }
}
