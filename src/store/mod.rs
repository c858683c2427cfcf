//! The store: the only owner of Postern's control state (users, accounts, roles, settings,
//! the audit log, the blocklist, the tickets, the webhooks, the password links, the
//! console sessions, API tokens, the mail configurations, the archive catalog, the backup
//! jobs, the DKIM keys, the last use of each OAuth refresh token). Typed modules, one per
//! kind of record, keep their records in named trees of one key-value seam (`kv`) over a
//! backend chosen at start: sled embedded under `data_dir` (the default), or PostgreSQL
//! shared by several nodes. No backend type is visible outside this module. It also
//! holds the Message-ID registry, kept in run files of its own beside the database
//! (`msgids`).
//!
//! It knows nothing of SMTP or policy; callers decide what a record means.

mod accounts;
mod archive;
mod audit;
mod backups;
mod ballast;
mod blocklist;
mod copy;
mod directory;
mod dkim;
mod fetch;
mod ids;
mod kv;
mod mail_config;
mod msgids;
mod nodes;
mod password_links;
mod records;
mod refreshes;
mod sent_copy;
mod sessions;
mod settings;
mod tickets;
mod tokens;
mod users;
mod webhooks;

pub use accounts::{
    Account, AccountKeys, AccountStatus, Accounts, DefaultSendMode, Grant, Grantee, Health,
    Inbound, InboundPurpose, Scope, SendMode,
};
pub use archive::{ArchiveCatalog, ArchivedMessage, Direction, Extent};
pub use audit::{Audit, AuditEntry, AuditFilter};
pub use backups::{Backup, BackupCounts, BackupItem, BackupKind, BackupStatus, Backups};
pub use blocklist::{BlockEntry, BlockKind, Blocklist};
pub use copy::{copy, Copied};
pub use directory::{Directory, Group, Named, Role, SkillGroup, StoredUpstream};
pub use dkim::{DkimAlgorithm, DkimKey, DkimKeys, DkimStatus};
pub use fetch::{
    After, Fetch, FetchAuth, FetchKind, FetchStates, OnBlocked, SetAside, SetAsideRequest,
    State as FetchState,
};
pub use mail_config::{AccountType, MailConfig, MailConfigs};
pub use msgids::{MessageIds, MessageRecord};
pub use nodes::{Handoff, NodeRecord, Nodes, QueuedEntry};
pub use password_links::{PasswordLink, PasswordLinks};
pub use refreshes::{Refresh, Refreshes};
pub use sent_copy::{SentCopy, SentCopyAuth, SentCopyTls};
pub use sessions::{Session, Sessions};
pub use settings::{DisplayNameAddresses, Settings};
pub use tickets::{
    ref_key, Article, ArticleKind, AttachmentInfo, Change, Done, KnowledgeItem, Origin, Ticket,
    TicketStatus, Tickets, Verdicts,
};
pub use tokens::{StoredToken, Tokens};
pub use users::{login_key, CreatedVia, NewUser, User, UserKind, UserStatus, Users};
pub use webhooks::{Delivery, DeliveryStatus, Webhook, Webhooks, DEFAULT_MAX_ATTEMPTS};

use ids::Ids;
pub(crate) use kv::Tree;
use kv::{Kv, PgKv, SledKv};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{StoreBackend, StoreConfig};

/// Store schema version, written at first open and checked afterwards.
const SCHEMA_VERSION: u32 = 1;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Backend(String),
    #[error("store record is corrupt: {0}")]
    Corrupt(String),
    #[error("store schema {found} is newer than this binary's {SCHEMA_VERSION}")]
    Schema { found: u32 },
    #[error("{0} already exists")]
    Conflict(String),
    #[error("store task failed: {0}")]
    Task(String),
    #[error("store I/O failed: {0}")]
    Sync(#[from] std::io::Error),
    #[error("the store's database is unreachable: {0}")]
    Unavailable(String),
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> StoreError {
        match error {
            sled::Error::Io(io) => StoreError::Sync(io),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

impl StoreError {
    /// Whether the disk failed the store (a full disk, an I/O error) or its database
    /// could not be reached: the write may not be durable, and trying again later may
    /// succeed.
    pub fn is_io(&self) -> bool {
        matches!(self, StoreError::Sync(_) | StoreError::Unavailable(_))
    }

    /// Whether the disk is full.
    fn is_disk_full(&self) -> bool {
        let StoreError::Sync(io) = self else {
            return false;
        };
        io.raw_os_error() == Some(libc::ENOSPC) || io.kind() == std::io::ErrorKind::StorageFull
    }
}

/// The opened store. Cheap to clone: every clone shares one database.
#[derive(Clone)]
pub struct Store {
    kv: Kv,
    /// This node's name (`[store] node`).
    node: Arc<str>,
    /// The embedded store's directory (the Message-ID registry's runs, the ballast).
    dir: Arc<File>,
    settings: Tree,
    users: Users,
    accounts: Accounts,
    roles: Directory<Role>,
    skill_groups: Directory<SkillGroup>,
    groups: Directory<Group>,
    upstreams: Directory<StoredUpstream>,
    message_ids: MessageIds,
    audit: Audit,
    blocklist: Blocklist,
    tickets: Tickets,
    webhooks: Webhooks,
    password_links: PasswordLinks,
    mail_configs: MailConfigs,
    archive: ArchiveCatalog,
    backups: Backups,
    dkim_keys: DkimKeys,
    sessions: Sessions,
    tokens: Tokens,
    nodes: Nodes,
    refreshes: Refreshes,
    fetch_states: FetchStates,
    ids: Ids,
}

impl Store {
    /// Opens (or creates) the embedded store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let sled = match SledKv::open(dir) {
            Err(error) if error.is_disk_full() && ballast::release(dir) => SledKv::open(dir)?,
            other => other?,
        };
        ballast::ensure(dir);
        Store::over(Kv::new(Arc::new(sled)), dir)
    }

    /// Opens the store `config` names: sled in `dir`, or the PostgreSQL database (then
    /// `dir` keeps only what stays on this node: the Message-ID registry's runs).
    pub fn open_config(config: &StoreConfig, dir: &Path) -> Result<Store, StoreError> {
        let store = match config.backend {
            StoreBackend::Sled => Store::open(dir),
            StoreBackend::Postgres => {
                let postgres = PgKv::open(&config.url, &config.node, config.notify)?;
                Store::over(Kv::new(Arc::new(postgres)), dir)
            }
        }?;
        Ok(match config.node.is_empty() {
            true => store,
            false => Store {
                node: config.node.as_str().into(),
                ..store
            },
        })
    }

    /// This node's name (`[store] node`; `local` when none is configured).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The change counter: moves on every write of control state by any node.
    pub fn changes(&self) -> Result<u64, StoreError> {
        self.kv.changes()
    }

    /// Waits until the change counter differs from `seen`, at most `timeout`; the counter
    /// then. Blocking.
    pub fn wait_change(&self, seen: u64, timeout: Duration) -> Result<u64, StoreError> {
        self.kv.wait_change(seen, timeout)
    }

    /// Whether other nodes share this store.
    pub fn is_shared(&self) -> bool {
        self.kv.is_shared()
    }

    /// Takes (or renews) lease `name` for `holder` for `ttl` (free, expired on the
    /// database's clock, or already `holder`'s); whether `holder` has it now. Jobs that
    /// one node at a time may run (a webhook delivery, a backup, the archive purge) are
    /// claimed with one.
    pub fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.kv.lease(name, holder, ttl)
    }

    /// Gives lease `name` back if `holder` has it.
    pub fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.kv.release(name, holder)
    }

    /// The typed trees over `kv`; `dir` holds what stays on this node's disk.
    fn over(kv: Kv, dir: &Path) -> Result<Store, StoreError> {
        let settings = kv.open_tree("settings")?;
        check_schema(&settings)?;
        let ids = Ids::new(kv.clone());
        let webhooks = Webhooks::open(&kv, ids.clone())?;
        Ok(Store {
            users: Users::open(&kv, ids.clone())?,
            accounts: Accounts::open(&kv, ids.clone())?,
            roles: Directory::open(&kv, "roles")?,
            skill_groups: Directory::open(&kv, "skill_groups")?,
            groups: Directory::open(&kv, "groups")?,
            upstreams: Directory::open(&kv, "upstreams")?,
            message_ids: MessageIds::open(&kv, &dir.join("message-ids"))?,
            audit: Audit::open(&kv, ids.clone())?,
            blocklist: Blocklist::open(&kv)?,
            tickets: Tickets::open(&kv, webhooks.tree.clone(), ids.clone())?,
            webhooks,
            password_links: PasswordLinks::open(&kv)?,
            mail_configs: MailConfigs::open(&kv)?,
            archive: ArchiveCatalog::open(&kv, ids.clone())?,
            backups: Backups::open(&kv, ids.clone())?,
            dkim_keys: DkimKeys::open(&kv)?,
            sessions: Sessions::open(&kv, ids.clone())?,
            tokens: Tokens::open(&kv)?,
            nodes: Nodes::open(&kv)?,
            refreshes: Refreshes::open(&kv)?,
            fetch_states: FetchStates::open(&kv)?,
            ids,
            dir: Arc::new(File::open(dir)?),
            node: "local".into(),
            kv,
            settings,
        })
    }

    /// The nodes sharing this store, and messages handed between them.
    pub fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    /// When each upstream's refresh token was last used with success.
    pub fn refreshes(&self) -> &Refreshes {
        &self.refreshes
    }

    pub fn fetch_states(&self) -> &FetchStates {
        &self.fetch_states
    }

    /// Creates a user and records the audit entry `entry` makes of it in the same
    /// transaction: the user exists if and only if its entry does. Durable on return.
    pub fn create_user_audited(
        &self,
        new: NewUser,
        now: u64,
        entry: impl FnOnce(&User) -> AuditEntry,
    ) -> Result<(User, AuditEntry), StoreError> {
        let user = self.users.new_user(new, now)?;
        let (_, recorded) = self
            .audit
            .with_entry(entry(&user), |batch| self.users.insert_new(&user, batch))?;
        Ok((user, recorded))
    }

    /// API tokens (their digests).
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Console sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The DKIM keys the relay signs with.
    pub fn dkim_keys(&self) -> &DkimKeys {
        &self.dkim_keys
    }

    /// The audit log of API changes.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Blocked addresses and domains.
    pub fn blocklist(&self) -> &Blocklist {
        &self.blocklist
    }

    /// The built-in ticket store.
    pub fn tickets(&self) -> &Tickets {
        &self.tickets
    }

    /// Staff users' mail configurations.
    pub fn mail_configs(&self) -> &MailConfigs {
        &self.mail_configs
    }

    /// The archive's catalog of kept messages.
    pub fn archive(&self) -> &ArchiveCatalog {
        &self.archive
    }

    /// Backup jobs.
    pub fn backups(&self) -> &Backups {
        &self.backups
    }

    /// "Set your password" links.
    pub fn password_links(&self) -> &PasswordLinks {
        &self.password_links
    }

    /// Webhooks and their deliveries.
    pub fn webhooks(&self) -> &Webhooks {
        &self.webhooks
    }

    /// The users and their credentials.
    pub fn users(&self) -> &Users {
        &self.users
    }

    /// The email accounts.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Roles and their permissions.
    pub fn roles(&self) -> &Directory<Role> {
        &self.roles
    }

    /// Skill groups.
    pub fn skill_groups(&self) -> &Directory<SkillGroup> {
        &self.skill_groups
    }

    /// Requester groups.
    pub fn groups(&self) -> &Directory<Group> {
        &self.groups
    }

    /// Upstreams defined through the API.
    pub fn upstreams(&self) -> &Directory<StoredUpstream> {
        &self.upstreams
    }

    /// The Message-ID registry.
    pub fn message_ids(&self) -> &MessageIds {
        &self.message_ids
    }

    /// The organisation settings (defaults until first saved).
    pub fn settings(&self) -> Result<Settings, StoreError> {
        match self.setting("org_settings")? {
            Some(raw) => {
                serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))
            }
            None => Ok(Settings::default()),
        }
    }

    /// Saves the organisation settings; durable on return.
    pub fn save_settings(&self, settings: &Settings) -> Result<(), StoreError> {
        let raw = serde_json::to_vec(settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.set_setting("org_settings", &raw)
    }

    /// A named tree, only if it holds records (the spool of earlier versions kept its
    /// records in one).
    pub(crate) fn existing_tree(&self, name: &str) -> Result<Option<Tree>, StoreError> {
        self.kv.existing_tree(name)
    }

    /// Opens (or creates) a named tree: for tests that write records the way earlier
    /// versions did.
    #[cfg(test)]
    pub(crate) fn tree(&self, name: &str) -> Result<Tree, StoreError> {
        self.kv.open_tree(name)
    }

    /// Drops a named tree and makes that durable.
    pub(crate) fn drop_tree(&self, name: &str) -> Result<(), StoreError> {
        self.kv.drop_tree(name)
    }

    /// Reads a setting.
    pub fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.settings.get(key)?.map(|v| v.to_vec()))
    }

    /// Writes a setting and makes it durable.
    pub fn set_setting(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.settings.insert(key, value)?;
        self.kv.flush()
    }

    /// Writes the Message-ID records waiting in memory (a run file, synced), and starts
    /// merging the registry's runs where a level is full. Blocking: call it from a
    /// blocking thread.
    pub fn sync_if_dirty(&self) -> Result<(), StoreError> {
        self.message_ids.write_pending()?;
        self.message_ids.compact_in_background();
        Ok(())
    }

    /// The store's directory, opened again (to watch its file system's free space).
    pub fn dir_handle(&self) -> Result<File, StoreError> {
        Ok(self.dir.try_clone()?)
    }

    /// Makes every write so far durable: the registry's waiting records (their own run
    /// file), sled's buffers to the kernel, then one `syncfs`. Blocking: call it from a
    /// blocking thread.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.message_ids.write_pending()?;
        self.kv.flush()
    }
}

fn check_schema(settings: &Tree) -> Result<(), StoreError> {
    match settings.get("schema_version")? {
        None => {
            settings.insert("schema_version", SCHEMA_VERSION.to_be_bytes())?;
            Ok(())
        }
        Some(raw) => {
            let bytes: [u8; 4] = raw
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("schema_version".into()))?;
            let found = u32::from_be_bytes(bytes);
            if found > SCHEMA_VERSION {
                return Err(StoreError::Schema { found });
            }
            Ok(())
        }
    }
}

impl Store {
    /// A new id from the store's sequence (`ids`): increasing, never handed out twice,
    /// whatever crashes when.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        self.ids.next()
    }

    /// A floor for ids handed out by earlier versions from sled's counter (the spool's
    /// queue ids, before the spool kept its own): above every one of them sled persisted.
    pub fn legacy_id_floor(&self) -> Result<u64, StoreError> {
        self.kv.legacy_id_floor()
    }
}
