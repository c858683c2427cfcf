//! The policy snapshot: an immutable picture of users, roles, accounts, settings and the
//! blocklist with O(1) lookups, rebuilt after the store changes and swapped atomically
//! (`ArcSwap`): after a change through this node, lazily by the first reader; after a
//! change by another node sharing the store, by the watcher (`watch`), off the SMTP path.
//! Decisions read one snapshot and never await.

use super::address::{domain_key, Address};
use super::PolicyError;
use crate::store::{
    login_key, Account, AccountType, BlockEntry, BlockKind, DefaultSendMode, MailConfig, Role,
    Scope, Settings, Store, User, UserStatus,
};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The key an address is compared by: its canonical form (`address::key`; SPEC §12), so
/// `"Ann"@Example.COM` and `ann@example.com` are one address.
pub fn normalize(address: &str) -> String {
    super::address::key(address)
}

/// Everything a decision needs, frozen.
#[derive(Debug, Default)]
pub struct Snapshot {
    users: HashMap<u64, User>,
    by_login: HashMap<String, u64>,
    /// Users by normalised e-mail address; the lowest id wins a shared address.
    by_email: HashMap<String, u64>,
    roles: HashMap<String, Role>,
    accounts: HashMap<u64, Account>,
    by_address: HashMap<String, u64>,
    by_name: HashMap<String, u64>,
    personal: HashMap<u64, Vec<u64>>,
    default_account: Option<u64>,
    pub settings: Settings,
    blocked_addresses: HashMap<String, BlockEntry>,
    blocked_domains: HashMap<String, BlockEntry>,
    /// Users with status `blocked`, by normalised address (e-mail and login).
    blocked_users: HashMap<String, u64>,
    /// Users whose mail the archive keeps (account type not `private`).
    archived: HashMap<u64, AccountType>,
    /// Those users by their configured mailbox address.
    archived_mailboxes: HashMap<String, Vec<u64>>,
}

/// Why an address is refused (SPEC §4).
#[derive(Debug, Clone, Copy)]
pub enum Blocked<'a> {
    /// It is on the blocklist, as an address or under a blocked domain.
    Listed(&'a BlockEntry),
    /// It belongs to a user whose status is `blocked`.
    User(&'a User),
}

impl std::fmt::Display for Blocked<'_> {
    /// The rule, for the warning logged with every refusal.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::Listed(entry) => write!(f, "blocklist {:?} {}", entry.kind, entry.entry),
            Blocked::User(user) => write!(f, "blocked user {} (id {})", user.login, user.id),
        }
    }
}

impl Snapshot {
    /// Builds the indexes.
    pub fn build(
        users: Vec<User>,
        roles: Vec<Role>,
        accounts: Vec<Account>,
        settings: Settings,
    ) -> Snapshot {
        let mut snap = Snapshot {
            by_login: users.iter().map(|u| (login_key(&u.login), u.id)).collect(),
            blocked_users: users
                .iter()
                .filter(|u| u.status == UserStatus::Blocked)
                .flat_map(|u| [(normalize(&u.email), u.id), (normalize(&u.login), u.id)])
                .collect(),
            users: users.into_iter().map(|u| (u.id, u)).collect(),
            roles: roles
                .into_iter()
                .map(|r| (r.name.to_lowercase(), r))
                .collect(),
            settings,
            ..Snapshot::default()
        };
        let mut ids: Vec<(u64, String)> = snap
            .users
            .values()
            .map(|u| (u.id, normalize(&u.email)))
            .collect();
        ids.sort();
        for (id, email) in ids {
            snap.by_email.entry(email).or_insert(id);
        }
        let mut ordered: Vec<&Account> = accounts.iter().collect();
        ordered.sort_by_key(|a| a.id);
        for account in ordered {
            snap.index(account);
        }
        snap.accounts = accounts.into_iter().map(|a| (a.id, a)).collect();
        snap
    }

    fn index(&mut self, account: &Account) {
        let addresses = std::iter::once(&account.address)
            .chain(account.from_address.iter())
            .chain(account.aliases.iter())
            .filter(|a| !a.is_empty());
        for address in addresses {
            self.by_address
                .entry(normalize(address))
                .or_insert(account.id);
        }
        self.by_name.insert(account.name.to_lowercase(), account.id);
        if let Some(owner) = account.owner {
            self.personal.entry(owner).or_default().push(account.id);
        }
        if account.is_default && self.default_account.is_none() {
            self.default_account = Some(account.id);
        }
    }

    /// The snapshot with the staff users' mail configurations (whose mail is archived).
    pub fn with_mail_configs(mut self, configs: Vec<(u64, MailConfig)>) -> Snapshot {
        for (user, config) in configs {
            if config.account_type == AccountType::Private {
                continue;
            }
            self.archived.insert(user, config.account_type);
            if !config.mailbox.is_empty() {
                let owners = self.archived_mailboxes.entry(normalize(&config.mailbox));
                owners.or_default().push(user);
            }
        }
        self
    }

    /// The account type of `user` if the archive keeps its mail.
    pub fn archived(&self, user: u64) -> Option<AccountType> {
        self.archived.get(&user).copied()
    }

    /// The users (archive kept) whose configured mailbox is `address`.
    pub fn mailbox_owners(&self, address: &str) -> &[u64] {
        self.archived_mailboxes
            .get(&normalize(address))
            .map_or(&[], Vec::as_slice)
    }

    /// The snapshot with `entries` as its blocklist, keyed by their canonical form (entries
    /// stored under older rules, say `"ann"@x` or a U-label domain, still match).
    pub fn with_blocklist(mut self, entries: Vec<BlockEntry>) -> Snapshot {
        for entry in entries {
            match entry.kind {
                BlockKind::Address => self
                    .blocked_addresses
                    .insert(normalize(&entry.entry), entry),
                BlockKind::Domain => self.blocked_domains.insert(domain_key(&entry.entry), entry),
            };
        }
        self
    }

    /// Why mail from `address` (any spelling) is refused: a blocked user's address, or a
    /// blocklist entry for the address itself, its domain or a parent domain.
    pub fn blocked(&self, address: &str) -> Option<Blocked<'_>> {
        let parsed = Address::parse(address);
        let key = parsed
            .as_ref()
            .map_or_else(|| normalize(address), Address::key);
        if let Some(user) = self.blocked_users.get(&key).and_then(|id| self.user(*id)) {
            return Some(Blocked::User(user));
        }
        if let Some(entry) = self.blocked_addresses.get(&key) {
            return Some(Blocked::Listed(entry));
        }
        self.blocked_domain(parsed?.domain()).map(Blocked::Listed)
    }

    /// The entry blocking `domain` (canonical) or a parent domain of it.
    fn blocked_domain(&self, mut domain: &str) -> Option<&BlockEntry> {
        if domain.starts_with('[') {
            return self.blocked_domains.get(domain);
        }
        loop {
            if let Some(entry) = self.blocked_domains.get(domain) {
                return Some(entry);
            }
            domain = domain.split_once('.')?.1;
        }
    }

    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.get(&id)
    }

    /// The user whose login is `login` (case-insensitive, as the store compares logins).
    pub fn user_by_login(&self, login: &str) -> Option<&User> {
        self.by_login
            .get(&login_key(login))
            .and_then(|id| self.user(*id))
    }

    /// The user whose e-mail address is `address`, else whose login is.
    pub fn user_by_address(&self, address: &str) -> Option<&User> {
        self.by_email
            .get(&normalize(address))
            .and_then(|id| self.user(*id))
            .or_else(|| self.user_by_login(address))
    }

    /// True if the installation holds its `max_users` (no user may be created).
    pub fn user_limit_reached(&self) -> bool {
        self.settings
            .max_users
            .is_some_and(|max| self.users.len() as u64 >= max)
    }

    /// An active user.
    pub fn active_user(&self, id: u64) -> Option<&User> {
        self.user(id).filter(|u| u.status == UserStatus::Active)
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(&name.to_lowercase())
    }

    pub fn account(&self, id: u64) -> Option<&Account> {
        self.accounts.get(&id)
    }

    /// Every account, in id order.
    pub fn accounts(&self) -> Vec<&Account> {
        let mut all: Vec<&Account> = self.accounts.values().collect();
        all.sort_by_key(|a| a.id);
        all
    }

    /// The inbound (helpdesk) mailbox that receives mail for `address` (not a personal
    /// account of a user who is not active: deactivation stops those).
    pub fn inbound_mailbox(&self, address: &str) -> Option<&Account> {
        self.account_by_address(address)
            .filter(|a| a.inbound.is_some())
            .filter(|a| {
                a.owner
                    .is_none_or(|owner| self.active_user(owner).is_some())
            })
    }

    /// The account whose address, `from_address` or alias is `address`.
    pub fn account_by_address(&self, address: &str) -> Option<&Account> {
        self.by_address
            .get(&normalize(address))
            .and_then(|id| self.account(*id))
    }

    /// The account named `name`, or with id `name`.
    pub fn account_by_name_or_id(&self, name: &str) -> Option<&Account> {
        let name = name.trim();
        if let Some(id) = self.by_name.get(&name.to_lowercase()) {
            return self.account(*id);
        }
        name.parse::<u64>().ok().and_then(|id| self.account(id))
    }

    /// The first personal account of `user`.
    pub fn personal_account(&self, user: u64) -> Option<&Account> {
        self.personal
            .get(&user)
            .and_then(|ids| ids.first())
            .and_then(|id| self.account(*id))
    }

    /// The global account marked default.
    pub fn default_account(&self) -> Option<&Account> {
        self.default_account.and_then(|id| self.account(id))
    }
}

/// The current snapshot and the store it is built from.
///
/// A change only counts itself (`changes`); the next reader rebuilds the snapshot (one
/// rebuild at a time), so a thousand changes in a row (a bulk import) cost one rebuild
/// instead of a thousand. A reader never gets a snapshot older than the changes made
/// before it asked: while a rebuild runs, other readers wait for it rather than take the
/// old one, and a change made during a rebuild is left for the next one.
pub struct Policy {
    store: Store,
    current: ArcSwap<Snapshot>,
    /// Changes made to the store so far.
    changes: AtomicU64,
    /// The value of `changes` that `current` reflects.
    built: AtomicU64,
    rebuild: Mutex<()>,
}

impl Policy {
    /// Loads the snapshot, first creating the global `default` account on a fresh store.
    pub fn load(store: Store, default_upstream: &str) -> Result<Arc<Policy>, PolicyError> {
        ensure_default_account(&store, default_upstream)?;
        let snapshot = read(&store)?;
        Ok(Arc::new(Policy {
            store,
            current: ArcSwap::from_pointee(snapshot),
            changes: AtomicU64::new(0),
            built: AtomicU64::new(0),
            rebuild: Mutex::new(()),
        }))
    }

    /// The snapshot in force now, rebuilt first if the store changed since it was built.
    /// If the rebuild fails, the previous snapshot stays in force (and the error is
    /// logged); the next reader tries again.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        let wanted = self.changes.load(Ordering::Acquire);
        if self.built.load(Ordering::Acquire) < wanted {
            if let Err(error) = self.refresh(wanted) {
                tracing::error!(%error, "cannot rebuild the policy snapshot; the previous one stays");
            }
        }
        self.current.load_full()
    }

    /// Records a change of the store; call after every change.
    pub fn reload(&self) -> Result<(), PolicyError> {
        self.changes.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Rebuilds the snapshot from the store now (another node changed it). Blocking.
    pub fn rebuild(&self) -> Result<(), PolicyError> {
        let _one_at_a_time = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let covers = self.changes.load(Ordering::Acquire);
        let snapshot = read(&self.store)?;
        self.current.store(Arc::new(snapshot));
        self.built.fetch_max(covers, Ordering::AcqRel);
        Ok(())
    }

    /// Rebuilds unless a rebuild that finished while we waited already covers `wanted`.
    fn refresh(&self, wanted: u64) -> Result<(), PolicyError> {
        let _one_at_a_time = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        if self.built.load(Ordering::Acquire) >= wanted {
            return Ok(());
        }
        // Everything counted so far is in the store; later changes wait for a later rebuild.
        let covers = self.changes.load(Ordering::Acquire);
        let snapshot = read(&self.store)?;
        self.current.store(Arc::new(snapshot));
        self.built.store(covers, Ordering::Release);
        Ok(())
    }
}

fn read(store: &Store) -> Result<Snapshot, PolicyError> {
    Ok(Snapshot::build(
        store.users().all()?,
        store.roles().all()?,
        store.accounts().all()?,
        store.settings()?,
    )
    .with_blocklist(store.blocklist().all()?)
    .with_mail_configs(store.mail_configs().all()?))
}

fn ensure_default_account(store: &Store, upstream: &str) -> Result<(), PolicyError> {
    if store.accounts().all()?.iter().any(|a| a.is_default) {
        return Ok(());
    }
    let account = Account {
        id: 0,
        name: "default".into(),
        description: "Sends each staff member's mail as that staff member".into(),
        address: String::new(),
        from_address: None,
        display_name: None,
        reply_to: None,
        aliases: Vec::new(),
        upstream: upstream.to_string(),
        owner: None,
        is_default: true,
        scope: Scope::AllStaff,
        grants: Vec::new(),
        default_send_mode: DefaultSendMode::SendAs,
        inbound: None,
        sent_copy: None,
        status: Default::default(),
    };
    store.accounts().create(account)?;
    tracing::info!(upstream, "created the global default account");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewUser;
    use std::sync::mpsc;
    use std::time::Duration;

    fn add(store: &Store, policy: &Policy, login: &str) {
        let new = NewUser {
            login: login.into(),
            email: format!("{login}@example.com"),
            ..NewUser::default()
        };
        store.users().create(new, 1).unwrap();
        policy.reload().unwrap();
    }

    #[test]
    fn blocked_covers_addresses_domains_and_subdomains() {
        let entry = |text: &str, kind| BlockEntry {
            entry: text.into(),
            kind,
            reason: String::new(),
            created_at: 0,
            created_by: "t".into(),
        };
        let snapshot = Snapshot::default().with_blocklist(vec![
            entry("spam.example", BlockKind::Domain),
            entry("bad@example.com", BlockKind::Address),
        ]);
        assert!(snapshot.blocked("a@spam.example").is_some());
        assert!(snapshot.blocked("<A@Mail.SPAM.example>").is_some());
        assert!(snapshot.blocked("a@notspam.example").is_none());
        assert!(snapshot.blocked("a@spam.example.org").is_none());
        assert!(snapshot.blocked("BAD@example.com").is_some());
        assert!(snapshot.blocked("good@example.com").is_none());
        assert!(snapshot.blocked("").is_none());
        // Every spelling (SPEC §12), and entries stored under the older rules.
        let snapshot = snapshot.with_blocklist(vec![
            entry("\"ann\"@customer.example", BlockKind::Address),
            entry("bücher.example", BlockKind::Domain),
        ]);
        assert!(snapshot.blocked("ann@CUSTOMER.example.").is_some());
        assert!(snapshot.blocked("\"B\\AD\"@example.com").is_some());
        assert!(snapshot
            .blocked("Pest <x@mail.XN--BCHER-KVA.example>")
            .is_some());
        assert!(snapshot.blocked("x@[192.0.2.1]").is_none());
    }

    /// While a rebuild is under way (here: its lock is held), a reader that comes after a
    /// change waits for a snapshot holding it instead of answering with the old one.
    #[test]
    fn a_reader_never_gets_a_snapshot_older_than_the_changes_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let policy = Policy::load(store.clone(), "local").unwrap();
        add(&store, &policy, "first");
        assert!(policy.snapshot().user_by_login("FIRST").is_some());
        let in_progress = policy.rebuild.lock().unwrap();
        add(&store, &policy, "second");
        let (tx, rx) = mpsc::channel();
        let reader = policy.clone();
        std::thread::spawn(move || {
            let found = reader.snapshot().user_by_login("second").is_some();
            tx.send(found).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "answered with the old snapshot during a rebuild"
        );
        drop(in_progress);
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
        // Many changes, one rebuild: the next reader sees them all.
        for i in 0..50 {
            add(&store, &policy, &format!("bulk{i}"));
        }
        let snapshot = policy.snapshot();
        assert!((0..50).all(|i| snapshot.user_by_login(&format!("bulk{i}")).is_some()));
    }
}
