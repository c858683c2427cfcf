//! The store: sole owner of the `sled::Db`. It hands out typed trees (users, accounts,
//! settings, the audit log, the blocklist, the tickets, the webhooks, the password links, the console sessions, the mail configurations, the archive catalog, the backup jobs, the DKIM keys) and performs the one
//! sync that makes writes durable. It also holds the Message-ID registry, kept in run files
//! of its own beside sled's (`msgids`).
//!
//! sled's own `flush` only pushes its buffers to the kernel with `sync_file_range`, which
//! neither syncs the file size nor flushes the disk cache, and the files sled writes for
//! large values ("blobs") are never synced at all. So `flush` follows it with `syncfs` on
//! the store's file system: one call makes every file of the store durable, which is what
//! a group commit needs.
//!
//! It knows nothing of SMTP or policy; callers decide what a record means.

mod accounts;
mod archive;
mod audit;
mod backups;
mod ballast;
mod blocklist;
mod directory;
mod dkim;
mod ids;
mod mail_config;
mod msgids;
mod password_links;
mod records;
mod sessions;
mod settings;
mod tickets;
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
pub use directory::{Directory, Group, Named, Role, SkillGroup, StoredUpstream};
pub use dkim::{DkimAlgorithm, DkimKey, DkimKeys, DkimStatus};
pub use mail_config::{AccountType, MailConfig, MailConfigs};
pub use msgids::{MessageIds, MessageRecord};
pub use password_links::{PasswordLink, PasswordLinks};
pub use sessions::{Session, Sessions};
pub use settings::{DisplayNameAddresses, Settings};
pub use tickets::{
    ref_key, Article, ArticleKind, AttachmentInfo, Change, Done, KnowledgeItem, Origin, Ticket,
    TicketStatus, Tickets, Verdicts,
};
pub use users::{login_key, CreatedVia, NewUser, User, UserKind, UserStatus, Users};
pub use webhooks::{Delivery, DeliveryStatus, Webhook, Webhooks, DEFAULT_MAX_ATTEMPTS};

use ids::Ids;
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::Arc;

/// Store schema version, written at first open and checked afterwards.
const SCHEMA_VERSION: u32 = 1;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store record is corrupt: {0}")]
    Corrupt(String),
    #[error("store schema {found} is newer than this binary's {SCHEMA_VERSION}")]
    Schema { found: u32 },
    #[error("{0} already exists")]
    Conflict(String),
    #[error("store task failed: {0}")]
    Task(String),
    #[error("store sync failed: {0}")]
    Sync(#[from] std::io::Error),
}

impl StoreError {
    /// Whether the disk failed the store (a full disk, an I/O error): the write may not
    /// be durable, and trying again later may succeed.
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            StoreError::Sync(_) | StoreError::Sled(sled::Error::Io(_))
        )
    }

    /// Whether the disk is full.
    fn is_disk_full(&self) -> bool {
        let io = match self {
            StoreError::Sync(e) | StoreError::Sled(sled::Error::Io(e)) => e,
            _ => return false,
        };
        io.raw_os_error() == Some(libc::ENOSPC) || io.kind() == std::io::ErrorKind::StorageFull
    }
}

/// The opened store. Cheap to clone: every clone shares one database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    sync: Syncer,
    settings: sled::Tree,
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
    ids: Ids,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = match open_db(dir) {
            Err(error) if error.is_disk_full() && ballast::release(dir) => open_db(dir)?,
            other => other?,
        };
        ballast::ensure(dir);
        let settings = db.open_tree("settings")?;
        check_schema(&settings)?;
        let sync = Syncer {
            db: db.clone(),
            dir: Arc::new(File::open(dir)?),
        };
        let ids = Ids::open(&db, &settings, sync.clone())?;
        let webhooks = Webhooks::open(&db, sync.clone(), ids.clone())?;
        Ok(Store {
            users: Users::open(&db, sync.clone(), ids.clone())?,
            accounts: Accounts::open(&db, sync.clone(), ids.clone())?,
            roles: Directory::open(&db, "roles", sync.clone())?,
            skill_groups: Directory::open(&db, "skill_groups", sync.clone())?,
            groups: Directory::open(&db, "groups", sync.clone())?,
            upstreams: Directory::open(&db, "upstreams", sync.clone())?,
            message_ids: MessageIds::open(&db, &dir.join("message-ids"))?,
            audit: Audit::open(&db, sync.clone(), ids.clone())?,
            blocklist: Blocklist::open(&db, sync.clone())?,
            tickets: Tickets::open(&db, webhooks.tree.clone(), sync.clone(), ids.clone())?,
            webhooks,
            password_links: PasswordLinks::open(&db, sync.clone())?,
            mail_configs: MailConfigs::open(&db, sync.clone())?,
            archive: ArchiveCatalog::open(&db, sync.clone(), ids.clone())?,
            backups: Backups::open(&db, sync.clone(), ids.clone())?,
            dkim_keys: DkimKeys::open(&db, sync.clone())?,
            sessions: Sessions::open(&db, sync.clone(), ids.clone())?,
            ids,
            db,
            sync,
            settings,
        })
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

    /// Opens (or creates) a named tree.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// A named tree, only if it exists (the spool of earlier versions kept its records in
    /// one).
    pub fn existing_tree(&self, name: &str) -> Result<Option<sled::Tree>, StoreError> {
        let exists = self
            .db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == name.as_bytes());
        match exists {
            true => Ok(Some(self.db.open_tree(name)?)),
            false => Ok(None),
        }
    }

    /// Drops a named tree and makes that durable.
    pub fn drop_tree(&self, name: &str) -> Result<(), StoreError> {
        self.db.drop_tree(name)?;
        self.flush()
    }

    /// Reads a setting.
    pub fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.settings.get(key)?.map(|v| v.to_vec()))
    }

    /// Writes a setting and makes it durable.
    pub fn set_setting(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.settings.insert(key, value)?;
        self.flush()
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
        Ok(self.sync.dir.try_clone()?)
    }

    /// Makes every write so far durable: the registry's waiting records (their own run
    /// file), sled's buffers to the kernel, then one `syncfs`. Blocking: call it from a
    /// blocking thread.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.message_ids.write_pending()?;
        self.sync.flush()
    }
}

/// How long `open` waits for the lock of a store the same process just closed (sled's
/// I/O threads may still hold it for a moment: a restart in place, a test reopening).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the sled database, waiting `LOCK_WAIT` at most for its lock.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(256 * 1024 * 1024)
            .flush_every_ms(None)
            .open();
        match opened {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

/// Makes the store durable: sled's buffers, then `syncfs(2)` on the store directory's file
/// system (data, metadata and the disk cache).
#[derive(Clone)]
pub(crate) struct Syncer {
    db: sled::Db,
    dir: Arc<File>,
}

impl Syncer {
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        // SAFETY: `dir` is an open file descriptor for the whole call; syncfs only reads it.
        let ret = unsafe { libc::syncfs(self.dir.as_raw_fd()) };
        match ret {
            0 => Ok(()),
            _ => Err(StoreError::Sync(std::io::Error::last_os_error())),
        }
    }
}

fn check_schema(settings: &sled::Tree) -> Result<(), StoreError> {
    match settings.get("schema_version")? {
        None => {
            settings.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            Ok(())
        }
        Some(raw) => {
            let bytes: [u8; 4] = raw
                .as_ref()
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
        Ok(self.db.generate_id()? + 1)
    }
}
