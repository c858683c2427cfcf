//! The users tree: principals (SPEC §1) by id, with a login index.
//!
//! Secrets are stored only as an argon2id PHC string (human passwords) or a SHA-256 digest
//! (high-entropy secrets of `system` principals); verifying them is `policy`'s job.

use super::{StoreError, Syncer};
use serde::{Deserialize, Serialize};

/// What kind of principal a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserKind {
    Staff,
    Requester,
    System,
}

/// Whether a user may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Deactivated,
    Blocked,
}

/// A stored principal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub login: String,
    pub email: String,
    pub display_name: String,
    pub kind: UserKind,
    pub status: UserStatus,
    /// argon2id PHC string, for human passwords.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Hex SHA-256 of a high-entropy secret (system principals).
    #[serde(default)]
    pub secret_sha256: Option<String>,
    pub created_at: u64,
}

/// What it takes to create a user; credentials already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub login: String,
    pub email: String,
    pub display_name: String,
    pub kind: UserKind,
    pub password_hash: Option<String>,
    pub secret_sha256: Option<String>,
}

/// Access to the users tree.
#[derive(Clone)]
pub struct Users {
    db: sled::Db,
    sync: Syncer,
    by_id: sled::Tree,
    by_login: sled::Tree,
}

/// Logins compare case-insensitively.
pub fn login_key(login: &str) -> String {
    login.to_lowercase()
}

impl Users {
    pub(super) fn open(db: &sled::Db, sync: Syncer) -> Result<Users, StoreError> {
        Ok(Users {
            db: db.clone(),
            sync,
            by_id: db.open_tree("users")?,
            by_login: db.open_tree("users_by_login")?,
        })
    }

    /// Creates a user, refusing a login that is already taken; durable on return.
    pub fn create(&self, new: NewUser, now: u64) -> Result<User, StoreError> {
        let key = login_key(&new.login);
        let id = self.db.generate_id()? + 1;
        let user = User {
            id,
            login: new.login,
            email: new.email,
            display_name: new.display_name,
            kind: new.kind,
            status: UserStatus::Active,
            password_hash: new.password_hash,
            secret_sha256: new.secret_sha256,
            created_at: now,
        };
        let raw = serde_json::to_vec(&user).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let claimed = self.by_login.compare_and_swap(
            key.as_bytes(),
            None as Option<&[u8]>,
            Some(&id.to_be_bytes()),
        )?;
        if claimed.is_err() {
            return Err(StoreError::Conflict(format!("login {:?}", user.login)));
        }
        self.by_id.insert(id.to_be_bytes(), raw)?;
        self.sync.flush()?;
        Ok(user)
    }

    /// Finds a user by login (case-insensitive).
    pub fn by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        let Some(id) = self.by_login.get(login_key(login).as_bytes())? else {
            return Ok(None);
        };
        let Some(raw) = self.by_id.get(&id)? else {
            return Ok(None);
        };
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("user: {e}")))
    }
}
