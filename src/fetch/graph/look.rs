//! One look at the mailbox's folder: the delta query from where the last one ended (its
//! `@odata.deltaLink`, kept in the fetch state), page by page (`@odata.nextLink`); each
//! message named that is new or changed is fetched as MIME and taken; the ones done with
//! are written to the state as unacknowledged (synced), acknowledged at Graph, then
//! cleared; at the last page the new delta link is kept. Then the set-aside messages:
//! those the API asked for, and those due for another try.
//!
//! A message the session itself marked read comes back in the next delta as changed; it
//! is passed over without being fetched again. After a restart it is fetched once more
//! and recognised by its mark (`f/<account>/graph/<id>`), and not marked read again, so
//! the change does not come back. A delta link Graph no longer knows (`410 Gone`, or
//! `400 syncStateNotFound`) reads the folder from the start; the marks recognise what was
//! recorded.

use super::super::intake::Taken;
use super::super::state::{due, forget, set_aside};
use super::super::status::Phase;
use super::super::supervise::{health, Job};
use super::super::{now, FetchError};
use super::api;
use super::mailbox::{Mailbox, Mime};
use crate::store::{After, FetchState, Health, OnBlocked, SetAsideRequest};
use std::collections::HashSet;

/// A session's looks at the mailbox.
pub struct Look<'a> {
    job: &'a Job,
    mailbox: Mailbox,
    /// Messages this session marked read (their change is passed over once).
    read_by_us: HashSet<String>,
    /// Whether Graph answered a delta query in this session yet.
    answered: bool,
}

impl<'a> Look<'a> {
    pub fn new(job: &'a Job, mailbox: Mailbox) -> Look<'a> {
        Look {
            job,
            mailbox,
            read_by_us: HashSet::new(),
            answered: false,
        }
    }

    /// Acknowledges what an earlier session recorded and did not (a crash in between).
    pub async fn leftovers(&mut self, state: &mut FetchState) -> Result<(), FetchError> {
        match state.unacked.is_empty() {
            true => Ok(()),
            false => self.acknowledge(state, Vec::new(), &HashSet::new()).await,
        }
    }

    /// Reads the folder's changes since the last look.
    pub async fn delta(&mut self, state: &mut FetchState) -> Result<(), FetchError> {
        let base = self.mailbox.api.base.clone();
        let kept = state.delta_link.clone().filter(|l| l.starts_with(&base));
        let mut url = match kept {
            Some(link) => link,
            None => self.mailbox.first_delta(&self.job.fetch.folder).await?,
        };
        let mut started_again = false;
        loop {
            let response = self.mailbox.api.send("GET", &url, None).await?;
            if expired(&response) && !started_again {
                tracing::info!(mailbox = %self.job.account.name,
                    "the delta link expired: the folder is read from the start (what was recorded is recognised)");
                started_again = true;
                state.delta_link = None;
                self.job.save(state).await?;
                url = self.mailbox.first_delta(&self.job.fetch.folder).await?;
                continue;
            }
            if response.status != 200 {
                return Err(api::failed(&response));
            }
            self.job.phase(Phase::Fetching);
            if !self.answered {
                self.answered = true;
                health(self.job, Health::Healthy, None).await;
            }
            let page = api::json(&response)?;
            self.page(state, &page["value"]).await?;
            if self.job.stopping() {
                // The rest next time, from the delta link kept.
                return Ok(());
            }
            let link = |name: &str| page[name].as_str().map(str::to_string);
            match (link("@odata.nextLink"), link("@odata.deltaLink")) {
                (Some(next), _) => url = within(&base, next)?,
                (None, Some(delta)) => {
                    state.delta_link = Some(within(&base, delta)?);
                    return self.job.save(state).await;
                }
                (None, None) => {
                    return Err(FetchError::Refused(
                        "Microsoft Graph answered a delta query without a next or delta link"
                            .into(),
                    ))
                }
            }
        }
    }

    /// Takes the messages of one delta page and acknowledges those done with.
    async fn page(
        &mut self,
        state: &mut FetchState,
        items: &serde_json::Value,
    ) -> Result<(), FetchError> {
        let before = state.clone();
        let mut done = Vec::new();
        let mut read = HashSet::new();
        for item in items.as_array().into_iter().flatten() {
            if self.job.stopping() {
                break;
            }
            let Some(id) = item["id"].as_str() else {
                continue;
            };
            if item.get("@removed").is_some() {
                self.read_by_us.remove(id);
                continue;
            }
            let is_read = item["isRead"].as_bool() == Some(true);
            if is_read && self.read_by_us.remove(id) {
                continue;
            }
            if is_read && history(item, state.since) {
                // Read before this mailbox was first fetched: its history, not a ticket.
                continue;
            }
            if is_read {
                read.insert(id.to_string());
            }
            if let Some(blocked) = self.take(state, id).await? {
                done.push((id.to_string(), blocked));
            }
        }
        match done.is_empty() && *state == before {
            true => Ok(()),
            false => self.acknowledge(state, done, &read).await,
        }
    }

    /// Fetches and takes message `id`: `Some(blocked)` when done with (to acknowledge),
    /// `None` when gone or set aside.
    async fn take(&mut self, state: &mut FetchState, id: &str) -> Result<Option<bool>, FetchError> {
        let job = self.job;
        let data = match self.mailbox.mime(id).await? {
            Mime::Data(data) => data,
            Mime::Gone => {
                forget(state, id);
                return Ok(None);
            }
            Mime::Unfetchable(why) => {
                self.set_aside(state, id, &format!("not fetched: {why}"));
                return Ok(None);
            }
        };
        let name = format!("graph/{id}");
        match job
            .intake
            .take(&job.account, &job.fetch, &name, data)
            .await?
        {
            Taken::Unreadable(why) => {
                self.set_aside(state, id, &why);
                Ok(None)
            }
            taken => {
                forget(state, id);
                Ok(Some(matches!(taken, Taken::Blocked(_))))
            }
        }
    }

    fn set_aside(&self, state: &mut FetchState, id: &str, why: &str) {
        tracing::warn!(mailbox = %self.job.account.name, message = id, reason = why,
            "fetched message set aside; the ones after it go on");
        set_aside(state, id, why, now());
    }

    /// Writes `done` to the state as unacknowledged (synced), acknowledges everything
    /// unacknowledged at Graph, and clears it. `read`: messages Graph named read.
    async fn acknowledge(
        &mut self,
        state: &mut FetchState,
        done: Vec<(String, bool)>,
        read: &HashSet<String>,
    ) -> Result<(), FetchError> {
        state.unacked.extend(done);
        self.job.save(state).await?;
        while let Some((id, blocked)) = state.unacked.first().cloned() {
            self.acknowledge_one(&id, blocked, read.contains(&id))
                .await?;
            state.unacked.remove(0);
        }
        self.job.save(state).await
    }

    async fn acknowledge_one(
        &mut self,
        id: &str,
        blocked: bool,
        read: bool,
    ) -> Result<(), FetchError> {
        let fetch = &self.job.fetch;
        if blocked {
            return match fetch.on_blocked() {
                OnBlocked::Move => self.mailbox.move_to(id, &fetch.blocked_folder).await,
                OnBlocked::Delete => self.mailbox.delete(id).await,
            };
        }
        match fetch.after {
            After::Seen if read => Ok(()),
            After::Seen => {
                self.mailbox.mark_read(id).await?;
                self.read_by_us.insert(id.to_string());
                Ok(())
            }
            After::Move => {
                let folder = fetch.move_to.as_deref().unwrap_or_default();
                self.mailbox.move_to(id, folder).await
            }
            After::Delete => self.mailbox.delete(id).await,
        }
    }

    /// Carries out the API's requests on set-aside messages and tries again those due.
    pub async fn set_asides(&mut self, state: &mut FetchState) -> Result<(), FetchError> {
        let before = state.clone();
        let requests = self.requests().await?;
        let mut work: Vec<(String, Option<String>)> = Vec::new();
        for (key, request) in &requests {
            if state.set_aside.iter().any(|s| &s.key == key) {
                let folder = match request {
                    SetAsideRequest::Retry => None,
                    SetAsideRequest::Move { folder } => Some(folder.clone()),
                };
                work.push((key.clone(), folder));
            }
        }
        for entry in due(state, now()) {
            if !work.iter().any(|(key, _)| *key == entry.key) {
                work.push((entry.key, entry.move_to));
            }
        }
        let mut done = Vec::new();
        for (key, folder) in work {
            match folder {
                Some(folder) => self.move_set_aside(state, &key, &folder).await?,
                None => {
                    if let Some(blocked) = self.take(state, &key).await? {
                        done.push((key, blocked));
                    }
                }
            }
        }
        if !done.is_empty() || *state != before {
            self.acknowledge(state, done, &HashSet::new()).await?;
        }
        for (key, _) in requests {
            let store = self.job.store.clone();
            let id = self.job.account.id;
            tokio::task::spawn_blocking(move || store.fetch_states().done(id, &key))
                .await
                .map_err(|e| FetchError::Store(e.to_string()))??;
        }
        Ok(())
    }

    /// Moves set-aside message `key` to `folder` and forgets it; a refusal is logged and
    /// the message stays set aside.
    async fn move_set_aside(
        &mut self,
        state: &mut FetchState,
        key: &str,
        folder: &str,
    ) -> Result<(), FetchError> {
        match self.mailbox.move_to(key, folder).await {
            Ok(()) => {
                tracing::info!(mailbox = %self.job.account.name, message = key, folder,
                    "set-aside message moved");
                forget(state, key);
                Ok(())
            }
            Err(FetchError::Refused(why)) => {
                tracing::warn!(mailbox = %self.job.account.name, message = key, folder,
                    error = %why, "set-aside message not moved");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    async fn requests(&self) -> Result<Vec<(String, SetAsideRequest)>, FetchError> {
        let store = self.job.store.clone();
        let id = self.job.account.id;
        Ok(
            tokio::task::spawn_blocking(move || store.fetch_states().requests(id))
                .await
                .map_err(|e| FetchError::Store(e.to_string()))??,
        )
    }
}

/// Whether Graph no longer knows the delta link: `410 Gone`, or `400` with
/// `syncStateNotFound` (learn.microsoft.com/graph/delta-query-overview).
fn expired(response: &crate::net::http::Response) -> bool {
    response.status == 410
        || (response.status == 400
            && response
                .body
                .to_ascii_lowercase()
                .contains("syncstatenotfound"))
}

/// `link` if it stays at `base` (a token goes nowhere else).
fn within(base: &str, link: String) -> Result<String, FetchError> {
    match link.starts_with(&format!("{base}/")) {
        true => Ok(link),
        false => Err(FetchError::Refused(format!(
            "Microsoft Graph gave a link outside graph_url: {link}"
        ))),
    }
}

/// Whether `item` was received before `since` (unix seconds; its `receivedDateTime`,
/// `2026-12-07T10:00:00Z`, to the second).
fn history(item: &serde_json::Value, since: u64) -> bool {
    let Some(text) = item["receivedDateTime"].as_str() else {
        return false;
    };
    let (Some(date), Some(time)) = (text.get(..10), text.get(11..19)) else {
        return false;
    };
    let Some(day) = crate::config::credentials::parse_date(date) else {
        return false;
    };
    let mut parts = time.split(':').map(|p| p.parse::<u64>().ok());
    let (Some(Some(h)), Some(Some(m)), Some(Some(s))) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    day + h * 3600 + m * 60 + s < since
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_what_was_received_before_the_state_began() {
        let at = |t: &str| serde_json::json!({"receivedDateTime": t});
        let since = crate::config::credentials::parse_date("2026-12-07").unwrap() + 36_000;
        assert!(history(&at("2026-12-07T09:59:59Z"), since));
        assert!(!history(&at("2026-12-07T10:00:00Z"), since));
        assert!(!history(&at("yesterday"), since));
        assert!(!history(&serde_json::json!({}), since));
    }

    #[test]
    fn an_expired_delta_link_is_known_by_410_or_sync_state_not_found() {
        let answer = |status: u16, body: &str| crate::net::http::Response {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            bytes: body.as_bytes().to_vec(),
        };
        assert!(expired(&answer(410, "")));
        let gone = r#"{"error":{"code":"syncStateNotFound","message":"The sync state generation is not found."}}"#;
        assert!(expired(&answer(400, gone)));
        assert!(!expired(&answer(400, r#"{"error":{"code":"BadRequest"}}"#)));
        assert!(!expired(&answer(404, gone)));
    }

    #[test]
    fn links_must_stay_at_the_graph_url() {
        let base = "https://graph.microsoft.com/v1.0";
        let link = format!("{base}/users/x/mailFolders/inbox/messages/delta?$deltatoken=a");
        assert_eq!(within(base, link.clone()).unwrap(), link);
        assert!(within(base, "https://graph.microsoft.com/v1.0.evil/x".into()).is_err());
        assert!(within(base, "https://evil.example/v1.0/x".into()).is_err());
    }
}
