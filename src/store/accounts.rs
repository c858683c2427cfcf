//! Email accounts (SPEC §2): wrappers around a real upstream mailbox, with a security
//! scope, grants and send modes. Stored by id; names are unique (case-insensitive).

use super::{StoreError, Syncer};
use serde::{Deserialize, Serialize};

/// How a principal sends through an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// `From` = the account, `Sender` = the principal.
    SendOnBehalf,
    /// `From` = the account, no `Sender`.
    SendAs,
}

/// The send mode of principals without an explicit grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DefaultSendMode {
    #[default]
    SendAs,
    SendOnBehalf,
    /// Only explicit grants may send.
    None,
}

/// Who may use an account at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    Everyone,
    System,
    AllStaff,
    Permitted {
        #[serde(default)]
        skill_groups: Vec<String>,
        #[serde(default)]
        roles: Vec<String>,
        #[serde(default)]
        users: Vec<u64>,
    },
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    User(u64),
    Role(String),
}

/// Shared-mailbox rights given to a user or a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    /// May read the mail stored for the account.
    #[serde(default)]
    pub access: bool,
    /// May send through the account, in this mode.
    #[serde(default)]
    pub send: Option<SendMode>,
    /// May change the account's settings.
    #[serde(default)]
    pub setup: bool,
}

/// Health of the account's upstream, as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Healthy,
    Degraded,
    Failing,
}

/// An account's status with the last upstream error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AccountStatus {
    pub health: Health,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub since: u64,
}

/// An email account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: u64,
    /// Friendly name, shown in lists; unique.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The real mailbox at the upstream.
    pub address: String,
    #[serde(default)]
    pub from_address: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub reply_to: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Name of the upstream that delivers its mail.
    pub upstream: String,
    /// Set: a personal account of this user. Unset: a global account.
    #[serde(default)]
    pub owner: Option<u64>,
    /// The global account that sends a principal's mail as the principal itself.
    #[serde(default)]
    pub is_default: bool,
    pub scope: Scope,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub default_send_mode: DefaultSendMode,
    #[serde(default)]
    pub status: AccountStatus,
}

/// The accounts tree.
#[derive(Clone)]
pub struct Accounts {
    db: sled::Db,
    tree: sled::Tree,
    sync: Syncer,
}

impl Accounts {
    pub(super) fn open(db: &sled::Db, sync: Syncer) -> Result<Accounts, StoreError> {
        Ok(Accounts {
            db: db.clone(),
            tree: db.open_tree("accounts")?,
            sync,
        })
    }

    /// Stores a new account under a fresh id (its `id` field is ignored); durable on return.
    pub fn create(&self, mut account: Account) -> Result<Account, StoreError> {
        if self
            .keys()?
            .iter()
            .any(|a| a.name.eq_ignore_ascii_case(&account.name))
        {
            return Err(StoreError::Conflict(format!("account {:?}", account.name)));
        }
        account.id = self.db.generate_id()? + 1;
        self.write(&account)?;
        Ok(account)
    }

    /// Replaces an account; durable on return.
    pub fn update(&self, account: &Account) -> Result<(), StoreError> {
        self.write(account)
    }

    fn write(&self, account: &Account) -> Result<(), StoreError> {
        let raw = serde_json::to_vec(account).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tree.insert(account.id.to_be_bytes(), raw)?;
        self.sync.flush()
    }

    pub fn get(&self, id: u64) -> Result<Option<Account>, StoreError> {
        self.tree
            .get(id.to_be_bytes())?
            .map(|raw| decode(&raw))
            .transpose()
    }

    pub fn all(&self) -> Result<Vec<Account>, StoreError> {
        self.tree.iter().values().map(|raw| decode(&raw?)).collect()
    }

    /// What makes each account unique (name, addresses, the default flag), read without
    /// decoding scopes and grants: validation of one change scans these, so a bulk import
    /// of thousands of accounts stays fast.
    pub fn keys(&self) -> Result<Vec<AccountKeys>, StoreError> {
        self.tree
            .iter()
            .values()
            .map(|raw| {
                serde_json::from_slice(&raw?)
                    .map_err(|e| StoreError::Corrupt(format!("account: {e}")))
            })
            .collect()
    }

    /// Removes an account; true if it existed. Durable on return.
    pub fn remove(&self, id: u64) -> Result<bool, StoreError> {
        let existed = self.tree.remove(id.to_be_bytes())?.is_some();
        self.sync.flush()?;
        Ok(existed)
    }
}

/// The identifying fields of a stored account (see `Accounts::keys`).
#[derive(Debug, Clone, Deserialize)]
pub struct AccountKeys {
    pub id: u64,
    pub name: String,
    pub address: String,
    #[serde(default)]
    pub from_address: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub upstream: String,
    #[serde(default)]
    pub is_default: bool,
}

impl AccountKeys {
    /// The address, `from_address` and aliases, the empty ones left out.
    pub fn addresses(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.address)
            .chain(self.from_address.iter())
            .chain(self.aliases.iter())
            .filter(|a| !a.is_empty())
    }
}

fn decode(raw: &[u8]) -> Result<Account, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt(format!("account: {e}")))
}
