//! Fetching a helpdesk mailbox over POP3 (`net::pop3`), one look every `poll_secs`, each
//! its own connection (a POP3 server shows only what arrived before the login, and deletes
//! only at `QUIT`): log in, list the messages with their UIDLs, take each one whose UIDL
//! is new (or whose set-aside time has come), save the state (synced), then `DELE` what is
//! to go and `QUIT`, which commits the deletions.
//!
//! The state keeps the UIDLs recorded and still on the server (pruned to the listing at
//! each look) and, in `unacked`, those recorded but not yet deleted: a crash before the
//! `QUIT` leaves them there, and the next look deletes them without taking them again.
//! With `after = "seen"` the messages stay on the server and their UIDLs are remembered;
//! `move` cannot be done in POP3 (no folders) and is taken as `seen`; a blocked sender's
//! message is deleted unless `on_blocked = "move"`, which leaves it. A message that cannot
//! be fetched (refused, over the size limit) or read is set aside and retried with
//! backoff; an API request to move one is answered with a warning in the log.

use super::intake::Taken;
use super::state::{forget, next_due, set_aside};
use super::status::Phase;
use super::supervise::{health, Job, RENEW};
use super::{now, FetchError};
use crate::net::imap::Server;
use crate::net::pop3::{self, Pop3Error};
use crate::store::{After, FetchAuth, FetchState, Health, OnBlocked, SetAsideRequest};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// One session: looks until the lease is lost or the task is stopped (`Ok`), or something
/// fails (`Err`; the supervisor starts another).
pub async fn session(job: &mut Job) -> Result<(), FetchError> {
    if job.fetch.auth == FetchAuth::Xoauth2 {
        return Err(FetchError::Settings(format!(
            "{}: XOAUTH2 is for IMAP only; POP3 logs in with a password",
            job.fetch.host
        )));
    }
    let mut stop = job.stop.clone();
    let mut healthy = false;
    loop {
        if job.stopping() || !job.hold().await {
            return Ok(());
        }
        let pop = login(job).await?;
        if !healthy {
            health(job, Health::Healthy, None).await;
            healthy = true;
        }
        job.phase(Phase::Fetching);
        let state = look(job, pop).await?;
        job.phase(Phase::Polling);
        let mut pause = job.renew_within(Duration::from_secs(job.fetch.poll_secs.max(1)));
        if let Some(due) = next_due(&state, now()) {
            pause = pause.min(Duration::from_secs(due.max(1)));
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = job.wake.notified() => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

async fn login(job: &Job) -> Result<pop3::Session, FetchError> {
    let fetch = &job.fetch;
    let password = fetch.password.as_deref().ok_or_else(|| {
        FetchError::Settings(format!("{}: no password for the POP3 login", fetch.host))
    })?;
    let server = Server {
        host: &fetch.host,
        port: fetch.port(),
        tls: fetch.tls,
        ca_file: fetch.ca_file.as_deref(),
    };
    Ok(pop3::connect(server, &fetch.username, password).await?)
}

/// One look, from the listing to the `QUIT`; the state as saved.
async fn look(job: &Job, mut pop: pop3::Session) -> Result<FetchState, FetchError> {
    let mut state = job.state().await?;
    let before = state.clone();
    let asked = requests(job, &mut state).await?;
    let listing = pop.uidl().await?;
    tidy(&mut state, &listing);
    let taken = take_new(job, &mut pop, &mut state, &listing).await;
    if state != before {
        job.save(&state).await?;
    }
    // A failure of the inbound path: what was recorded is saved; nothing is acknowledged.
    taken?;
    done(job, asked).await?;
    acknowledge(job, pop, &mut state, &listing).await?;
    Ok(state)
}

/// Forgets the UIDLs no longer on the server.
fn tidy(state: &mut FetchState, listing: &[(u32, String)]) {
    let on_server: HashSet<&str> = listing.iter().map(|(_, uidl)| uidl.as_str()).collect();
    state.uidls.retain(|uidl| on_server.contains(uidl.as_str()));
    state
        .unacked
        .retain(|(uidl, _)| on_server.contains(uidl.as_str()));
    state
        .set_aside
        .retain(|entry| on_server.contains(entry.key.as_str()));
}

/// Takes the messages not taken before (and the set-aside ones whose time has come),
/// until done, stopped or the lease is lost.
async fn take_new(
    job: &Job,
    pop: &mut pop3::Session,
    state: &mut FetchState,
    listing: &[(u32, String)],
) -> Result<(), FetchError> {
    let known: HashSet<String> = state.uidls.iter().cloned().collect();
    let mut renewed = Instant::now();
    for (number, uidl) in listing {
        let waiting = state
            .set_aside
            .iter()
            .any(|entry| &entry.key == uidl && entry.next_try > now());
        if known.contains(uidl) || waiting {
            continue;
        }
        if job.stopping() {
            break;
        }
        if renewed.elapsed() >= RENEW {
            if !job.hold().await {
                break;
            }
            renewed = Instant::now();
        }
        let data = match pop.retr(*number).await {
            Ok(data) => data,
            Err(error @ (Pop3Error::Refused(_) | Pop3Error::TooLarge(_))) => {
                put_aside(job, state, uidl, &error.to_string());
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let name = format!("pop3/{uidl}");
        let taken = job
            .intake
            .take(&job.account, &job.fetch, &name, data)
            .await?;
        job.status.message(job.account.id, &job.account.name);
        record(job, state, uidl, taken);
    }
    Ok(())
}

/// Notes what became of message `uidl`.
fn record(job: &Job, state: &mut FetchState, uidl: &str, taken: Taken) {
    let delete = match &taken {
        Taken::Unreadable(why) => return put_aside(job, state, uidl, why),
        Taken::Blocked(_) => job.fetch.on_blocked() == OnBlocked::Delete,
        _ => job.fetch.after == After::Delete,
    };
    forget(state, uidl);
    state.uidls.push(uidl.to_string());
    if delete {
        let blocked = matches!(taken, Taken::Blocked(_));
        state.unacked.push((uidl.to_string(), blocked));
    }
}

fn put_aside(job: &Job, state: &mut FetchState, uidl: &str, reason: &str) {
    tracing::warn!(mailbox = %job.account.name, %uidl, %reason,
        "fetched message set aside");
    set_aside(state, uidl, reason, now());
}

/// Deletes the messages recorded and to go (`unacked`), then `QUIT` commits it.
async fn acknowledge(
    job: &Job,
    mut pop: pop3::Session,
    state: &mut FetchState,
    listing: &[(u32, String)],
) -> Result<(), FetchError> {
    let numbers: HashMap<&str, u32> = listing
        .iter()
        .map(|(number, uidl)| (uidl.as_str(), *number))
        .collect();
    let mut deleted = HashSet::new();
    for (uidl, _) in &state.unacked {
        let Some(number) = numbers.get(uidl.as_str()) else {
            continue;
        };
        match pop.dele(*number).await {
            Ok(()) => {
                deleted.insert(uidl.clone());
            }
            Err(Pop3Error::Refused(error)) => {
                tracing::warn!(mailbox = %job.account.name, %uidl, %error,
                    "fetched message not deleted at the server; tried again at the next look");
            }
            Err(error) => return Err(error.into()),
        }
    }
    pop.quit().await?;
    if !deleted.is_empty() {
        state.unacked.retain(|(uidl, _)| !deleted.contains(uidl));
        state.uidls.retain(|uidl| !deleted.contains(uidl));
        job.save(state).await?;
    }
    Ok(())
}

/// Carries out the API's requests on set-aside messages (a retry is due now; a POP3
/// mailbox has no folder to move to); the keys handled.
async fn requests(job: &Job, state: &mut FetchState) -> Result<Vec<String>, FetchError> {
    let store = job.store.clone();
    let id = job.account.id;
    let asked = tokio::task::spawn_blocking(move || store.fetch_states().requests(id))
        .await
        .map_err(|e| FetchError::Store(e.to_string()))??;
    let mut handled = Vec::with_capacity(asked.len());
    for (key, request) in asked {
        match request {
            SetAsideRequest::Retry => {
                if let Some(entry) = state.set_aside.iter_mut().find(|s| s.key == key) {
                    entry.next_try = now();
                }
            }
            SetAsideRequest::Move { folder } => {
                tracing::warn!(mailbox = %job.account.name, uidl = %key, %folder,
                    "a POP3 mailbox has no folders: the set-aside message is not moved");
            }
        }
        handled.push(key);
    }
    Ok(handled)
}

/// Removes the requests handled (once the state they changed is saved).
async fn done(job: &Job, keys: Vec<String>) -> Result<(), FetchError> {
    if keys.is_empty() {
        return Ok(());
    }
    let store = job.store.clone();
    let id = job.account.id;
    tokio::task::spawn_blocking(move || {
        keys.iter()
            .try_for_each(|key| store.fetch_states().done(id, key))
    })
    .await
    .map_err(|e| FetchError::Store(e.to_string()))??;
    Ok(())
}

impl From<Pop3Error> for FetchError {
    fn from(error: Pop3Error) -> FetchError {
        let text = error.to_string();
        match error {
            Pop3Error::Connect(_) | Pop3Error::Tls(_) => FetchError::Connect(text),
            Pop3Error::Login(_) => FetchError::Login(text),
            Pop3Error::Refused(_) | Pop3Error::TooLarge(_) => FetchError::Refused(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_left_the_server_is_forgotten() {
        let mut state = FetchState {
            uidls: vec!["a".into(), "gone".into()],
            unacked: vec![("a".into(), false), ("gone2".into(), true)],
            ..FetchState::default()
        };
        set_aside(&mut state, "b", "no From", 1000);
        set_aside(&mut state, "gone3", "no From", 1000);
        tidy(
            &mut state,
            &[(1, "a".into()), (2, "b".into()), (3, "c".into())],
        );
        assert_eq!(state.uidls, ["a"]);
        assert_eq!(state.unacked, [("a".to_string(), false)]);
        let keys: Vec<&str> = state.set_aside.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["b"]);
    }
}
