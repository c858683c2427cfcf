//! Email accounts (SPEC §2): wrappers around a real upstream mailbox, with a security
//! scope, grants and send modes. Stored by id; names are unique (case-insensitive).

use super::kv::{Kv, Tree};
use super::{ids::Ids, SentCopy, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard};

/// How a principal sends through an account.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// `From` = the account, `Sender` = the principal.
    SendOnBehalf,
    /// `From` = the account, no `Sender`.
    SendAs,
}

/// The send mode of principals without an explicit grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DefaultSendMode {
    #[default]
    SendAs,
    SendOnBehalf,
    /// Only explicit grants may send.
    None,
}

/// Who may use an account at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    User(u64),
    Role(String),
}

/// Shared-mailbox rights given to a user or a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Healthy,
    Degraded,
    Failing,
}

/// An account's status with the last upstream error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct AccountStatus {
    pub health: Health,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub since: u64,
}

/// An email account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Set: a helpdesk mailbox that receives mail on the inbound listeners (SPEC §7).
    #[serde(default)]
    pub inbound: Option<Inbound>,
    /// Set: each message sent through the account is filed in its mailbox's Sent folder.
    #[serde(default)]
    pub sent_copy: Option<SentCopy>,
}

/// What an inbound mailbox turns its mail into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InboundPurpose {
    /// A new ticket, or a message on the ticket it threads to.
    #[default]
    Ticket,
    /// A comment on the ticket it threads to (a new ticket when none matches).
    Comment,
    /// A knowledge item (needs the sender to hold `create_knowledge`).
    Knowledge,
}

/// The helpdesk settings of an inbound mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inbound {
    #[serde(default)]
    pub purpose: InboundPurpose,
    /// Unknown senders become requesters (`created_via = email`).
    #[serde(default)]
    pub auto_create_requesters: bool,
    /// The requester group new requesters join.
    #[serde(default)]
    pub default_group: Option<String>,
    /// Refuse mail whose DMARC check failed under a `p=reject` policy (`550 5.7.1`).
    #[serde(default)]
    pub refuse_dmarc_reject: bool,
    /// Ids of the webhooks every event of this mailbox is posted to.
    #[serde(default)]
    pub webhooks: Vec<u64>,
    /// Set: the mailbox's mail is also fetched from the provider (IMAP, POP3, Graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch: Option<super::Fetch>,
}

/// The accounts tree.
#[derive(Clone)]
pub struct Accounts {
    ids: Ids,
    tree: Tree,
    kv: Kv,
    /// Every account's identifying fields, read from the tree once and then kept in step
    /// by every write here (the only writer of the tree), so validating one change does
    /// not decode every account again.
    keys: Arc<Mutex<Option<Arc<Vec<AccountKeys>>>>>,
}

impl Accounts {
    pub(super) fn open(kv: &Kv, ids: Ids) -> Result<Accounts, StoreError> {
        Ok(Accounts {
            ids,
            tree: kv.open_tree("accounts")?,
            kv: kv.clone(),
            keys: Arc::default(),
        })
    }

    fn cached(&self) -> MutexGuard<'_, Option<Arc<Vec<AccountKeys>>>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one write to the cached keys (`None`: account `id` removed).
    fn note(&self, id: u64, now: Option<&Account>) {
        if let Some(keys) = self.cached().as_mut() {
            let keys = Arc::make_mut(keys);
            keys.retain(|k| k.id != id);
            keys.extend(now.map(AccountKeys::of));
        }
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
        account.id = self.ids.next()?;
        self.write(&account)?;
        Ok(account)
    }

    /// Replaces an account; durable on return.
    pub fn update(&self, account: &Account) -> Result<(), StoreError> {
        self.write(account)
    }

    /// Sets the status of account `id` while it still delivers through `upstream` and its
    /// status says otherwise (health or last error), by compare-and-swap, so that a change
    /// made meanwhile (an API edit, a move to another upstream) is never overwritten with
    /// an older copy. True if written; durable on return.
    pub fn set_status(
        &self,
        id: u64,
        upstream: &str,
        status: &AccountStatus,
    ) -> Result<bool, StoreError> {
        loop {
            let Some(raw) = self.tree.get(id.to_be_bytes())? else {
                return Ok(false);
            };
            let mut account = decode(&raw)?;
            if account.upstream != upstream
                || (account.status.health == status.health
                    && account.status.last_error == status.last_error)
            {
                return Ok(false);
            }
            account.status = status.clone();
            let new =
                serde_json::to_vec(&account).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if self
                .tree
                .compare_and_swap(id.to_be_bytes(), Some(&raw), Some(&new))?
            {
                self.note(id, Some(&account));
                self.kv.flush()?;
                return Ok(true);
            }
        }
    }

    fn write(&self, account: &Account) -> Result<(), StoreError> {
        let raw = serde_json::to_vec(account).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tree.insert(account.id.to_be_bytes(), raw)?;
        self.note(account.id, Some(account));
        self.kv.flush()
    }

    pub fn get(&self, id: u64) -> Result<Option<Account>, StoreError> {
        self.tree
            .get(id.to_be_bytes())?
            .map(|raw| decode(&raw))
            .transpose()
    }

    pub fn all(&self) -> Result<Vec<Account>, StoreError> {
        self.tree.values()?.iter().map(|raw| decode(raw)).collect()
    }

    /// What makes each account unique (name, addresses, the default flag, the upstream),
    /// from memory after the first call: validation of one change scans these, so a bulk
    /// import of thousands of accounts stays linear.
    /// (Not cached when other nodes share the store: they write accounts too.)
    pub fn keys(&self) -> Result<Arc<Vec<AccountKeys>>, StoreError> {
        let mut cached = self.cached();
        if let Some(keys) = cached.as_ref() {
            return Ok(keys.clone());
        }
        let keys: Vec<AccountKeys> = self
            .tree
            .values()?
            .iter()
            .map(|raw| decode(raw).map(|a| AccountKeys::of(&a)))
            .collect::<Result<_, _>>()?;
        let keys = Arc::new(keys);
        if !self.kv.is_shared() {
            *cached = Some(keys.clone());
        }
        Ok(keys)
    }

    /// Removes an account; true if it existed. Durable on return.
    pub fn remove(&self, id: u64) -> Result<bool, StoreError> {
        let existed = self.tree.remove(id.to_be_bytes())?.is_some();
        self.note(id, None);
        self.kv.flush()?;
        Ok(existed)
    }
}

/// The identifying fields of a stored account (see `Accounts::keys`).
#[derive(Debug, Clone)]
pub struct AccountKeys {
    pub id: u64,
    pub name: String,
    pub address: String,
    pub from_address: Option<String>,
    pub aliases: Vec<String>,
    pub upstream: String,
    pub is_default: bool,
}

impl AccountKeys {
    fn of(account: &Account) -> AccountKeys {
        AccountKeys {
            id: account.id,
            name: account.name.clone(),
            address: account.address.clone(),
            from_address: account.from_address.clone(),
            aliases: account.aliases.clone(),
            upstream: account.upstream.clone(),
            is_default: account.is_default,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn account(name: &str) -> Account {
        Account {
            id: 0,
            name: name.into(),
            description: String::new(),
            address: format!("{name}@example.com"),
            from_address: None,
            display_name: None,
            reply_to: None,
            aliases: Vec::new(),
            upstream: "local".into(),
            owner: None,
            is_default: false,
            scope: Scope::AllStaff,
            grants: Vec::new(),
            default_send_mode: DefaultSendMode::None,
            inbound: None,
            status: AccountStatus::default(),
            sent_copy: None,
        }
    }

    fn names(accounts: &Accounts) -> Vec<String> {
        let mut names: Vec<String> = accounts
            .keys()
            .unwrap()
            .iter()
            .map(|k| k.name.clone())
            .collect();
        names.sort();
        names
    }

    /// The cached keys follow every create, rename and removal, and match the tree after
    /// a reopen.
    #[test]
    fn cached_keys_follow_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let accounts = store.accounts();
        let first = accounts.create(account("first")).unwrap();
        assert_eq!(names(accounts), ["first"]);
        let second = accounts.create(account("second")).unwrap();
        assert!(matches!(
            accounts.create(account("FIRST")),
            Err(StoreError::Conflict(_))
        ));
        let mut renamed = first.clone();
        renamed.name = "renamed".into();
        renamed.aliases = vec!["alias@example.com".into()];
        accounts.update(&renamed).unwrap();
        assert_eq!(names(accounts), ["renamed", "second"]);
        let keys = accounts.keys().unwrap();
        let kept = keys.iter().find(|k| k.id == first.id).unwrap();
        assert_eq!(
            kept.addresses().collect::<Vec<_>>(),
            ["first@example.com", "alias@example.com"]
        );
        accounts.create(account("first")).unwrap();
        assert!(accounts.remove(second.id).unwrap());
        assert_eq!(names(accounts), ["first", "renamed"]);
        drop(store);
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(names(reopened.accounts()), ["first", "renamed"]);
    }

    /// A status is set only on an account still on that upstream, and only once.
    #[test]
    fn status_is_set_on_the_account_as_it_is_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let accounts = store.accounts();
        let mut moved = accounts.create(account("moved")).unwrap();
        moved.upstream = "other".into();
        moved.description = "edited meanwhile".into();
        accounts.update(&moved).unwrap();
        let failing = AccountStatus {
            health: Health::Failing,
            last_error: Some("535 5.7.8 no".into()),
            since: 1,
        };
        assert!(!accounts.set_status(moved.id, "local", &failing).unwrap());
        assert!(accounts.set_status(moved.id, "other", &failing).unwrap());
        assert!(!accounts.set_status(moved.id, "other", &failing).unwrap());
        let now = accounts.get(moved.id).unwrap().unwrap();
        assert_eq!(now.status, failing);
        assert_eq!(now.description, "edited meanwhile");
        assert!(!accounts.set_status(999, "other", &failing).unwrap());
    }
}
