//! Acknowledging at the IMAP server what was recorded (`\Seen`, `UID MOVE` or copy and
//! expunge, delete), folders created when missing, and the set-aside messages: the API's
//! requests carried out, the due ones read again.

use super::Conn;
use crate::fetch::state::{due, forget};
use crate::fetch::supervise::Job;
use crate::fetch::FetchError;
use crate::net::imap::{refused, step};
use crate::store::{After, FetchState, OnBlocked, SetAsideRequest};
use futures_util::TryStreamExt;

impl Conn {
    /// Acknowledges what is recorded and not yet acknowledged, then forgets it (one more
    /// sync per batch; lost in a crash, the acknowledgement is repeated, which does no harm).
    pub(super) async fn acknowledge(
        &mut self,
        job: &Job,
        state: &mut FetchState,
    ) -> Result<(), FetchError> {
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

    pub(super) async fn flag(&mut self, keys: &[String], change: &str) -> Result<(), FetchError> {
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
    pub(super) async fn move_to(
        &mut self,
        keys: &[String],
        folder: &str,
    ) -> Result<(), FetchError> {
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
    pub(super) async fn delete(&mut self, keys: &[String]) -> Result<(), FetchError> {
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
    pub(super) async fn ensure_folder(&mut self, folder: &str) -> Result<(), FetchError> {
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
    pub(super) async fn requests(
        &mut self,
        job: &Job,
        state: &mut FetchState,
    ) -> Result<(), FetchError> {
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
    pub(super) async fn retry_set_aside(
        &mut self,
        job: &Job,
        state: &mut FetchState,
    ) -> Result<(), FetchError> {
        let due: Vec<u32> = due(state, crate::fetch::now())
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
}
