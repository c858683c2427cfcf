//! Reading an IMAP folder's new messages: everything above the highest UID recorded but
//! the folder's history, in batches of `BATCH` (`BODY.PEEK[]`, so nothing is marked read
//! before it is recorded), each taken; a batch the server refuses or breaks its session over
//! read a message at a time.

use super::{Conn, BATCH};
use crate::fetch::intake::Taken;
use crate::fetch::state::{self, forget};
use crate::fetch::supervise::Job;
use crate::fetch::FetchError;
use crate::net::imap::{refused, step};
use crate::store::FetchState;
use futures_util::TryStreamExt;
use std::collections::HashSet;

impl Conn {
    /// Reads and takes every message above the highest UID seen, a batch at a time, but the
    /// history (read before the folder was first read).
    pub(super) async fn read_new(
        &mut self,
        job: &Job,
        state: &mut FetchState,
    ) -> Result<(), FetchError> {
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
    pub(super) async fn take_batch(
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
                    state::set_aside(state, &key, &why, crate::fetch::now());
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
    pub(super) async fn bodies_or_each(
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
            state::set_aside(state, &key, broke, crate::fetch::now());
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
    pub(super) async fn bodies(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, FetchError> {
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
