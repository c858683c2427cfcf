//! The users tree: principals (SPEC §1) by id, with a login index.
//!
//! Secrets are stored only as an argon2id PHC string (human passwords) or a SHA-256 digest
//! (high-entropy secrets of `system` principals); verifying them is `policy`'s job.

use super::kv::{holds, Batch, Kv, Tree};
use super::{ids::Ids, StoreError};
use serde::{Deserialize, Serialize};

/// What kind of principal a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserKind {
    Staff,
    Requester,
    System,
}

/// Whether a user may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Deactivated,
    Blocked,
}

/// How a user came to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CreatedVia {
    #[default]
    Api,
    Email,
}

/// A stored principal.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: u64,
    pub login: String,
    pub email: String,
    pub display_name: String,
    pub kind: UserKind,
    pub status: UserStatus,
    /// Application security roles (names of stored roles).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Skill groups (names of stored skill groups).
    #[serde(default)]
    pub skill_groups: Vec<String>,
    /// The requesters' group a user belongs to, if any.
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub is_default_admin: bool,
    #[serde(default)]
    pub created_via: CreatedVia,
    /// argon2id PHC string, for human passwords.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Hex SHA-256 of a high-entropy secret (system principals).
    #[serde(default)]
    pub secret_sha256: Option<String>,
    pub created_at: u64,
    /// When the user was last made active again after a deactivation (Unix milliseconds).
    #[serde(default)]
    pub reactivated_at_ms: Option<u64>,
}

/// What it takes to create a user; credentials already hashed.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub login: String,
    pub email: String,
    pub display_name: String,
    pub kind: Option<UserKind>,
    pub password_hash: Option<String>,
    pub secret_sha256: Option<String>,
    pub roles: Vec<String>,
    pub skill_groups: Vec<String>,
    pub group: Option<String>,
    pub created_via: CreatedVia,
    /// The administrator created at first start (SPEC §4).
    pub is_default_admin: bool,
}

/// Access to the users tree.
#[derive(Clone)]
pub struct Users {
    ids: Ids,
    kv: Kv,
    by_id: Tree,
    by_login: Tree,
}

/// Logins compare case-insensitively.
pub fn login_key(login: &str) -> String {
    login.to_lowercase()
}

impl Users {
    pub(super) fn open(kv: &Kv, ids: Ids) -> Result<Users, StoreError> {
        Ok(Users {
            ids,
            kv: kv.clone(),
            by_id: kv.open_tree("users")?,
            by_login: kv.open_tree("users_by_login")?,
        })
    }

    /// Creates a user, refusing a login that is already taken; durable on return.
    pub fn create(&self, new: NewUser, now: u64) -> Result<User, StoreError> {
        let key = login_key(&new.login);
        let id = self.ids.next()?;
        let user = User {
            id,
            login: new.login,
            email: new.email,
            display_name: new.display_name,
            kind: new.kind.unwrap_or(UserKind::Staff),
            status: UserStatus::Active,
            roles: new.roles,
            skill_groups: new.skill_groups,
            group: new.group,
            is_default_admin: new.is_default_admin,
            created_via: new.created_via,
            password_hash: new.password_hash,
            secret_sha256: new.secret_sha256,
            created_at: now,
            reactivated_at_ms: None,
        };
        let raw = serde_json::to_vec(&user).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // The login's claim and the record in one commit: no node ever finds a login
        // claimed without its user (nor a crash leaves one so).
        let mut batch = Batch::default();
        batch.insert(&self.by_login, key.as_bytes(), id.to_be_bytes());
        batch.insert(&self.by_id, id.to_be_bytes(), raw);
        let unclaimed = holds(&self.by_login, key.as_bytes(), None);
        if !self.kv.commit(batch, &[unclaimed])? {
            return Err(StoreError::Conflict(format!("login {:?}", user.login)));
        }
        self.kv.flush()?;
        Ok(user)
    }

    /// Finds a user by id.
    pub fn by_id(&self, id: u64) -> Result<Option<User>, StoreError> {
        self.by_id
            .get(id.to_be_bytes())?
            .map(|raw| decode(&raw))
            .transpose()
    }

    /// Every user, by id.
    pub fn all(&self) -> Result<Vec<User>, StoreError> {
        self.by_id.values()?.iter().map(|raw| decode(raw)).collect()
    }

    /// Replaces a user's record (its login may not change); durable on return.
    pub fn update(&self, user: &User) -> Result<(), StoreError> {
        let raw = serde_json::to_vec(user).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.by_id.insert(user.id.to_be_bytes(), raw)?;
        self.kv.flush()
    }

    /// Finds a user by login (case-insensitive).
    pub fn by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        let Some(id) = self.by_login.get(login_key(login).as_bytes())? else {
            return Ok(None);
        };
        let Some(raw) = self.by_id.get(&id)? else {
            return Ok(None);
        };
        decode(&raw).map(Some)
    }
}

fn decode(raw: &[u8]) -> Result<User, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt(format!("user: {e}")))
}
