//! Console sessions: one record per login, keyed by the hex SHA-256 digest of the session
//! token (the cookie's value is never stored), with the user, the session's CSRF token,
//! when it was made and when it expires, and where it came from. A user's sessions are
//! listed and revoked through its numeric id.

use super::ids::Ids;
use super::kv::{Kv, Tree};
use super::StoreError;
use serde::{Deserialize, Serialize};

/// One console session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Numeric id, for listing and revoking (never the credential).
    pub id: u64,
    pub user: u64,
    /// The token every unsafe request of this session must carry (hidden form field).
    pub csrf: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds after which the session no longer works.
    pub expires_at: u64,
    /// The client's address at login.
    pub ip: String,
    /// The browser's `User-Agent` at login (cut to 200 characters).
    pub user_agent: String,
}

/// The sessions tree.
#[derive(Clone)]
pub struct Sessions {
    tree: Tree,
    kv: Kv,
    ids: Ids,
}

impl Sessions {
    pub(super) fn open(kv: &Kv, ids: Ids) -> Result<Sessions, StoreError> {
        Ok(Sessions {
            tree: kv.open_tree("console_sessions")?,
            kv: kv.clone(),
            ids,
        })
    }

    /// Stores `session` under `digest` with a fresh id; durable on return.
    pub fn create(&self, digest: &str, mut session: Session) -> Result<Session, StoreError> {
        session.id = self.ids.next()?;
        self.tree.insert(digest.as_bytes(), encode(&session)?)?;
        self.kv.flush()?;
        Ok(session)
    }

    /// The session stored under `digest` if it has not expired at `now`.
    pub fn get(&self, digest: &str, now: u64) -> Result<Option<Session>, StoreError> {
        let Some(raw) = self.tree.get(digest.as_bytes())? else {
            return Ok(None);
        };
        let session = decode(&raw)?;
        Ok((session.expires_at > now).then_some(session))
    }

    /// Ends the session stored under `digest` (logout); durable on return.
    pub fn remove(&self, digest: &str) -> Result<(), StoreError> {
        self.tree.remove(digest.as_bytes())?;
        self.kv.flush()
    }

    /// `user`'s sessions still valid at `now`, oldest first.
    pub fn of_user(&self, user: u64, now: u64) -> Result<Vec<Session>, StoreError> {
        let mut found = Vec::new();
        for (_, raw) in self.tree.iter()? {
            let session = decode(&raw)?;
            if session.user == user && session.expires_at > now {
                found.push(session);
            }
        }
        found.sort_by_key(|s| s.id);
        Ok(found)
    }

    /// Ends `user`'s session `id` (every one of them when `id` is `None`), and drops
    /// expired sessions of anyone on the way. Returns how many of `user`'s were ended;
    /// durable on return.
    pub fn revoke(&self, user: u64, id: Option<u64>, now: u64) -> Result<usize, StoreError> {
        let mut ended = 0;
        for (key, raw) in self.tree.iter()? {
            let session = decode(&raw)?;
            let chosen = session.user == user && id.is_none_or(|id| id == session.id);
            if chosen || session.expires_at <= now {
                self.tree.remove(key)?;
                ended += usize::from(chosen && session.expires_at > now);
            }
        }
        self.kv.flush()?;
        Ok(ended)
    }
}

fn encode(session: &Session) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(session).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode(raw: &[u8]) -> Result<Session, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt(format!("console session: {e}")))
}
