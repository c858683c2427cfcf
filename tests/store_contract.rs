//! The store's contract, run against both backends through the public `Store` API: each
//! case below is one test on sled and one on PostgreSQL (a throwaway cluster,
//! `common/postgres.rs`, a fresh database per test). A case gets two handles, "two
//! nodes": under PostgreSQL two stores opened on one database (each with its own
//! directory, connections and runtime), under sled two clones of one store (one process
//! owns an embedded store).

#[path = "common/postgres.rs"]
mod postgres_cluster;

use postern::config::{StoreBackend, StoreConfig};
use postern::store::{
    Account, AccountStatus, ArchivedMessage, AuditEntry, AuditFilter, BlockEntry, BlockKind,
    Change, DefaultSendMode, Delivery, DeliveryStatus, Direction, Done, Extent, MessageRecord,
    NewUser, Origin, Scope, Store, StoreError, Ticket, TicketStatus, Webhook,
};
use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// The backend a case runs on.
#[derive(Clone, Copy)]
enum Backend {
    Sled,
    Postgres { notify: bool },
}

/// Two handles on one store, and the directories they keep.
struct Nodes {
    a: Store,
    b: Store,
    _dirs: Vec<tempfile::TempDir>,
}

fn nodes(backend: Backend) -> Nodes {
    let dirs = vec![tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    match backend {
        Backend::Sled => {
            let a = Store::open_config(&StoreConfig::default(), dirs[0].path()).unwrap();
            Nodes {
                b: a.clone(),
                a,
                _dirs: dirs,
            }
        }
        Backend::Postgres { notify } => {
            let url = postgres_cluster::database();
            let open = |node: &str, dir: &tempfile::TempDir| {
                let config = StoreConfig {
                    backend: StoreBackend::Postgres,
                    url: url.clone(),
                    node: node.into(),
                    notify,
                };
                Store::open_config(&config, dir.path()).unwrap()
            };
            Nodes {
                a: open("a", &dirs[0]),
                b: open("b", &dirs[1]),
                _dirs: dirs,
            }
        }
    }
}

/// One test per backend for each case.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sled {
            $( #[test] fn $case() { super::$case(super::Backend::Sled) } )*
        }
        mod postgres {
            $( #[test] fn $case() { super::$case(super::Backend::Postgres { notify: true }) } )*
        }
    };
}

contract!(
    a_login_is_taken_once_across_nodes,
    blocklist_entries_conflict_and_go,
    accounts_are_created_read_updated_and_removed,
    ids_are_unique_across_nodes_and_threads,
    control_writes_move_the_change_counter_and_ticket_writes_do_not,
    a_waiter_sees_another_nodes_write_within_a_second,
    leases_are_exclusive_renewed_taken_over_when_expired_and_released,
    one_idempotence_mark_from_two_nodes_at_once_makes_one_ticket,
    the_audit_log_lists_in_id_order_and_pages,
    webhook_deliveries_fall_due_in_order,
    the_archive_catalog_finds_each_users_messages,
    a_message_id_recorded_on_one_node_is_found_on_the_other,
    a_user_and_its_audit_entry_are_written_together,
);

/// A user and its audit entry are one transaction: both, or (login taken on the other
/// node) neither.
fn a_user_and_its_audit_entry_are_written_together(backend: Backend) {
    let nodes = nodes(backend);
    let entry = |user: &postern::store::User| AuditEntry {
        id: 0,
        at: 1,
        actor_id: None,
        actor: "root".into(),
        action: "user.create".into(),
        target: format!("user/{}", user.id),
        before: None,
        after: None,
    };
    let (user, recorded) = nodes
        .a
        .create_user_audited(new_user("ann"), 1, entry)
        .unwrap();
    assert_eq!(recorded.target, format!("user/{}", user.id));
    let taken = nodes.b.create_user_audited(new_user("ANN"), 1, entry);
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let all = AuditFilter {
        limit: 10,
        ..AuditFilter::default()
    };
    let entries = nodes.b.audit().list(&all).unwrap();
    assert_eq!(
        entries.len(),
        1,
        "only the created user's entry: {entries:?}"
    );
    assert_eq!(entries[0].id, recorded.id);
}

/// What a node records of a message it sent is found by the other node (shared registry
/// under PostgreSQL, written by the periodic sync; one registry under sled).
fn a_message_id_recorded_on_one_node_is_found_on_the_other(backend: Backend) {
    let nodes = nodes(backend);
    let record = MessageRecord {
        account: 7,
        queue_id: "00000000000000aa".into(),
        direction: "outbound".into(),
        ticket: Some(3),
        at: 1_700_000_000_000,
    };
    nodes
        .a
        .message_ids()
        .record("<reply-to-me@x.example>", &record)
        .unwrap();
    nodes.a.sync_if_dirty().unwrap();
    assert_eq!(
        nodes
            .b
            .message_ids()
            .get("<reply-to-me@x.example>")
            .unwrap(),
        Some(record)
    );
    assert_eq!(
        nodes.b.message_ids().get("<unknown@x.example>").unwrap(),
        None
    );
}

/// `postern store copy`: an embedded store moves into an empty database with every
/// record, and the database's ids continue above the embedded store's.
#[test]
fn postgres_an_embedded_store_is_copied_into_an_empty_database() {
    let from_dir = tempfile::tempdir().unwrap();
    let from = Store::open(from_dir.path()).unwrap();
    let user = from.users().create(new_user("ann"), 1).unwrap();
    from.blocklist().add(&block("spam.example")).unwrap();
    let to_dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        backend: StoreBackend::Postgres,
        url: postgres_cluster::database(),
        node: "a".into(),
        notify: true,
    };
    let to = Store::open_config(&config, to_dir.path()).unwrap();
    let copied = postern::store::copy(&from, &to).unwrap();
    assert!(
        copied.iter().any(|c| c.tree == "users" && c.records == 1),
        "{copied:?}"
    );
    assert_eq!(to.users().by_login("ann").unwrap().unwrap().id, user.id);
    assert_eq!(to.blocklist().all().unwrap().len(), 1);
    assert!(to.next_id().unwrap() > user.id);
    assert!(matches!(
        postern::store::copy(&from, &to),
        Err(StoreError::Conflict(_))
    ));
}

/// Without notifications (behind a pooler that drops them) the poll alone wakes a waiter.
#[test]
fn postgres_polling_a_waiter_sees_another_nodes_write_within_a_second() {
    a_waiter_sees_another_nodes_write_within_a_second(Backend::Postgres { notify: false });
}

/// Two nodes starting at once on an empty database: the migrations run once, both open.
#[test]
fn postgres_two_nodes_starting_at_once_both_open() {
    let url = postgres_cluster::database();
    let start = Arc::new(Barrier::new(2));
    let openers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|node| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                let dir = tempfile::tempdir().unwrap();
                let config = StoreConfig {
                    backend: StoreBackend::Postgres,
                    url,
                    node: node.into(),
                    notify: true,
                };
                start.wait();
                let store = Store::open_config(&config, dir.path()).unwrap();
                store
                    .blocklist()
                    .add(&block(&format!("{node}.example")))
                    .unwrap();
            })
        })
        .collect();
    for opener in openers {
        opener.join().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        backend: StoreBackend::Postgres,
        url,
        ..StoreConfig::default()
    };
    let store = Store::open_config(&config, dir.path()).unwrap();
    assert_eq!(store.blocklist().all().unwrap().len(), 2);
}

/// The LISTEN connection comes back after the server ends it (a restart, a failover),
/// and waiters are woken again.
#[test]
fn postgres_the_listener_comes_back_after_its_connection_is_killed() {
    let url = postgres_cluster::database();
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let open = |node: &str| {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            backend: StoreBackend::Postgres,
            url: url.clone(),
            node: node.into(),
            notify: true,
        };
        (Store::open_config(&config, dir.path()).unwrap(), dir)
    };
    let ((a, _a_dir), (b, _b_dir)) = (open("a"), open("b"));
    let listeners = |what: &str| {
        postgres_cluster::superuser_sql(&format!(
            "SELECT {what} FROM pg_stat_activity \
             WHERE datname = '{database}' AND application_name = 'postern a listen'"
        ))
    };
    let started = Instant::now();
    while listeners("count(*)") != "1" {
        assert!(started.elapsed() < Duration::from_secs(5), "no listener");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(listeners("count(pg_terminate_backend(pid))"), "1");
    let killed = Instant::now();
    while listeners("count(*)") != "1" {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the listener did not come back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = a.changes().unwrap();
    let write = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        b.blocklist().add(&block("spam.example")).unwrap();
    });
    let waiting = Instant::now();
    assert_ne!(a.wait_change(seen, Duration::from_secs(5)).unwrap(), seen);
    assert!(waiting.elapsed() < Duration::from_secs(1));
    write.join().unwrap();
}

/// Connections the server ended (a restart, a failover, an idle timeout) are not handed
/// out again: the next operations open new ones and succeed.
#[test]
fn postgres_connections_the_server_ended_are_replaced() {
    let url = postgres_cluster::database();
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        backend: StoreBackend::Postgres,
        url: url.clone(),
        node: "a".into(),
        notify: true,
    };
    let store = Store::open_config(&config, dir.path()).unwrap();
    for round in 0..3 {
        // Several pooled connections, then every one of them ended by the server.
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || store.blocklist().all().unwrap())
            })
            .collect();
        readers.into_iter().for_each(|r| drop(r.join().unwrap()));
        let ended = postgres_cluster::superuser_sql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{database}'"
        ));
        assert_ne!(ended, "0");
        // The first operation after: a control write, another write, a read.
        match round {
            0 => store.blocklist().add(&block("spam.example")).unwrap(),
            1 => drop(store.audit().record(entry("user.update")).unwrap()),
            _ => assert_eq!(store.blocklist().all().unwrap().len(), 1),
        }
    }
    let all = AuditFilter {
        limit: 10,
        ..AuditFilter::default()
    };
    assert_eq!(store.audit().list(&all).unwrap().len(), 1);
}

/// `sslmode=require` talks TLS, the server's certificate checked against the roots of
/// `sslrootcert`; without them (the web PKI's roots) the private CA is refused.
#[test]
fn postgres_tls_checks_the_server_against_the_configured_roots() {
    let url = postgres_cluster::database();
    let ca = postgres_cluster::ca_file();
    let open = |url: String| {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            backend: StoreBackend::Postgres,
            url,
            node: "a".into(),
            notify: true,
        };
        Store::open_config(&config, dir.path()).map(|store| (store, dir))
    };
    let require = url.replace("sslmode=disable", "sslmode=require");
    let trusted = format!("{require}&sslrootcert={}", ca.display());
    let (store, _dir) = open(trusted).unwrap();
    store.blocklist().add(&block("spam.example")).unwrap();
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let over_tls = postgres_cluster::superuser_sql(&format!(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE datname = '{database}' AND ssl"
    ));
    assert_ne!(over_tls, "0", "the store's connections use TLS");
    match open(require) {
        Err(StoreError::Unavailable(reason)) => {
            assert!(reason.contains("UnknownIssuer"), "{reason}")
        }
        other => panic!("a certificate of an unknown CA: {:?}", other.err()),
    }
}

/// The store may be opened, used and dropped on a thread of the application's runtime,
/// even a single-threaded one: its work runs on a runtime of its own.
#[tokio::test(flavor = "current_thread")]
async fn postgres_a_store_works_and_drops_inside_an_async_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        backend: StoreBackend::Postgres,
        url: postgres_cluster::database(),
        node: "a".into(),
        notify: true,
    };
    let store = Store::open_config(&config, dir.path()).unwrap();
    store.blocklist().add(&block("spam.example")).unwrap();
    let seen = store.changes().unwrap();
    assert_eq!(
        store.wait_change(seen, Duration::from_millis(10)).unwrap(),
        seen
    );
    assert_eq!(store.blocklist().all().unwrap().len(), 1);
    drop(store);
}

/// A database that cannot be reached is `Unavailable` (a transient failure), not a
/// broken store.
#[test]
fn postgres_an_unreachable_database_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        backend: StoreBackend::Postgres,
        url: format!("postgres://postern@127.0.0.1:{port}/postern?sslmode=disable"),
        ..StoreConfig::default()
    };
    let opened = Store::open_config(&config, dir.path());
    assert!(
        matches!(opened, Err(StoreError::Unavailable(_))),
        "{:?}",
        opened.err()
    );
}

fn new_user(login: &str) -> NewUser {
    NewUser {
        login: login.into(),
        email: format!("{}@example.com", login.to_lowercase()),
        display_name: login.into(),
        ..NewUser::default()
    }
}

fn a_login_is_taken_once_across_nodes(backend: Backend) {
    let n = nodes(backend);
    let alice = n.a.users().create(new_user("alice"), 1).unwrap();
    let again = n.b.users().create(new_user("ALICE"), 2);
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let seen = n.b.users().by_login("Alice").unwrap().unwrap();
    assert_eq!((seen.id, seen.login), (alice.id, alice.login));
    let bob = n.b.users().create(new_user("bob"), 3).unwrap();
    let all: Vec<String> =
        n.a.users()
            .all()
            .unwrap()
            .into_iter()
            .map(|u| u.login)
            .collect();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&"alice".to_string()) && all.contains(&bob.login));
}

fn block(entry: &str) -> BlockEntry {
    BlockEntry {
        entry: entry.into(),
        kind: BlockKind::Domain,
        reason: "spam".into(),
        created_at: 1,
        created_by: "root".into(),
    }
}

fn blocklist_entries_conflict_and_go(backend: Backend) {
    let n = nodes(backend);
    n.a.blocklist().add(&block("spam.example")).unwrap();
    let again = n.b.blocklist().add(&block("spam.example"));
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    n.b.blocklist().add(&block("junk.example")).unwrap();
    let entries: Vec<String> =
        n.a.blocklist()
            .all()
            .unwrap()
            .into_iter()
            .map(|e| e.entry)
            .collect();
    assert_eq!(entries, ["junk.example", "spam.example"], "in key order");
    assert_eq!(
        n.b.blocklist().remove("spam.example").unwrap(),
        Some(block("spam.example"))
    );
    assert_eq!(n.a.blocklist().remove("spam.example").unwrap(), None);
    assert_eq!(n.a.blocklist().all().unwrap(), [block("junk.example")]);
}

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
        sent_copy: None,
        status: AccountStatus::default(),
    }
}

fn accounts_are_created_read_updated_and_removed(backend: Backend) {
    let n = nodes(backend);
    let sales = n.a.accounts().create(account("sales")).unwrap();
    let taken = n.b.accounts().create(account("SALES"));
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let mut edited = n.b.accounts().get(sales.id).unwrap().unwrap();
    assert_eq!(edited, sales);
    edited.description = "edited on b".into();
    n.b.accounts().update(&edited).unwrap();
    assert_eq!(n.a.accounts().get(sales.id).unwrap().unwrap(), edited);
    let support = n.b.accounts().create(account("support")).unwrap();
    let names: HashSet<String> =
        n.a.accounts()
            .all()
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
    assert_eq!(
        names,
        HashSet::from(["sales".to_string(), "support".to_string()])
    );
    assert!(n.a.accounts().remove(sales.id).unwrap());
    assert!(!n.b.accounts().remove(sales.id).unwrap());
    assert_eq!(n.b.accounts().get(sales.id).unwrap(), None);
    assert_eq!(n.a.accounts().all().unwrap(), [support]);
}

fn ids_are_unique_across_nodes_and_threads(backend: Backend) {
    let n = nodes(backend);
    let start = Arc::new(Barrier::new(4));
    let takers: Vec<_> = [&n.a, &n.a, &n.b, &n.b]
        .into_iter()
        .map(|store| {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..700)
                    .map(|_| store.next_id().unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all = Vec::new();
    for taker in takers {
        let ids = taker.join().unwrap();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "one thread's ids go up"
        );
        all.extend(ids);
    }
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "an id was handed out twice");
    assert!(!unique.contains(&0));
}

fn ticket(id: u64) -> Ticket {
    Ticket {
        id,
        mailbox: 1,
        subject: "help".into(),
        requester: 2,
        participants: Vec::new(),
        origin: Origin::Email,
        status: TicketStatus::Open,
        message_ids: vec!["<m@example.com>".into()],
        created_at: 1,
        updated_at: 1,
    }
}

fn control_writes_move_the_change_counter_and_ticket_writes_do_not(backend: Backend) {
    let n = nodes(backend);
    let before = n.b.changes().unwrap();
    n.a.blocklist().add(&block("spam.example")).unwrap();
    let after_block = n.b.changes().unwrap();
    assert_ne!(after_block, before, "a blocklist write moves the counter");
    n.a.set_setting("something", b"on").unwrap();
    let after_setting = n.b.changes().unwrap();
    assert_ne!(after_setting, after_block, "a setting moves the counter");
    n.a.tickets()
        .change(|tickets| {
            let id = tickets.next_id()?;
            Ok::<_, StoreError>(Change {
                ticket: Some(ticket(id)),
                marks: vec![("queue-1 mailbox-1".into(), Done::default())],
                ..Change::default()
            })
        })
        .unwrap();
    assert_eq!(
        n.b.changes().unwrap(),
        after_setting,
        "a ticket write does not"
    );
}

fn a_waiter_sees_another_nodes_write_within_a_second(backend: Backend) {
    let n = nodes(backend);
    let seen = n.a.changes().unwrap();
    // An embedded store's waiter sleeps out its timeout (nothing else writes it).
    let timeout = match n.a.is_shared() {
        true => Duration::from_secs(5),
        false => Duration::from_millis(900),
    };
    let writer = n.b.clone();
    let write = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        writer.blocklist().add(&block("spam.example")).unwrap();
    });
    let started = Instant::now();
    let now = n.a.wait_change(seen, timeout).unwrap();
    let waited = started.elapsed();
    write.join().unwrap();
    assert_ne!(now, seen, "the waiter saw the change");
    assert!(waited < Duration::from_secs(1), "it took {waited:?}");
    let unchanged = Instant::now();
    assert_eq!(
        n.a.wait_change(now, Duration::from_millis(300)).unwrap(),
        now
    );
    assert!(
        unchanged.elapsed() >= Duration::from_millis(300),
        "it waits out the timeout"
    );
}

fn leases_are_exclusive_renewed_taken_over_when_expired_and_released(backend: Backend) {
    let n = nodes(backend);
    let long = Duration::from_secs(30);
    assert!(n.a.lease("purge", "node-a", long).unwrap());
    assert!(!n.b.lease("purge", "node-b", long).unwrap(), "exclusive");
    assert!(
        n.a.lease("purge", "node-a", long).unwrap(),
        "renewed by its holder"
    );
    n.b.release("purge", "node-b").unwrap();
    assert!(
        !n.b.lease("purge", "node-b", long).unwrap(),
        "only its holder releases it"
    );
    n.a.release("purge", "node-a").unwrap();
    assert!(
        n.b.lease("purge", "node-b", long).unwrap(),
        "free once released"
    );

    assert!(n
        .a
        .lease("backup", "node-a", Duration::from_millis(200))
        .unwrap());
    assert!(!n.b.lease("backup", "node-b", long).unwrap());
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        n.b.lease("backup", "node-b", long).unwrap(),
        "taken over once expired"
    );
    assert!(!n.a.lease("backup", "node-a", long).unwrap());
}

/// Why a change was not made.
#[derive(Debug)]
enum Refused {
    Duplicate,
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(error: StoreError) -> Refused {
        Refused::Store(error)
    }
}

fn one_idempotence_mark_from_two_nodes_at_once_makes_one_ticket(backend: Backend) {
    let n = nodes(backend);
    for round in 0..5 {
        let mark = format!("queue-{round} mailbox-1");
        let start = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [&n.a, &n.b]
            .into_iter()
            .map(|store| {
                let (store, start, mark) = (store.clone(), start.clone(), mark.clone());
                std::thread::spawn(move || {
                    start.wait();
                    store.tickets().change(|tickets| {
                        if tickets.done(&mark)?.is_some() {
                            return Err(Refused::Duplicate);
                        }
                        let id = tickets.next_id()?;
                        let done = Done {
                            ticket: Some(id),
                            ..Done::default()
                        };
                        Ok(Change {
                            ticket: Some(ticket(id)),
                            marks: vec![(mark.clone(), done)],
                            ..Change::default()
                        })
                    })
                })
            })
            .collect();
        let outcomes: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        for outcome in &outcomes {
            if let Err(Refused::Store(error)) = outcome {
                panic!("round {round}: the store failed: {error}");
            }
        }
        let made = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(made, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, Err(Refused::Duplicate))),
            "round {round}: {outcomes:?}"
        );
        let done = n.b.tickets().done(&mark).unwrap().unwrap();
        let tickets = n.a.tickets().all().unwrap();
        assert_eq!(tickets.len(), round + 1);
        assert!(tickets.iter().any(|t| Some(t.id) == done.ticket));
    }
}

fn entry(action: &str) -> AuditEntry {
    AuditEntry {
        id: 0,
        at: 1,
        actor_id: None,
        actor: "root".into(),
        action: action.into(),
        target: "user/1".into(),
        before: None,
        after: None,
    }
}

fn the_audit_log_lists_in_id_order_and_pages(backend: Backend) {
    let n = nodes(backend);
    let mut ids = Vec::new();
    for i in 0..6 {
        let node = if i % 2 == 0 { &n.a } else { &n.b };
        ids.push(
            node.audit()
                .record(entry(&format!("user.update{i}")))
                .unwrap()
                .id,
        );
    }
    ids.sort_unstable();
    let list = |store: &Store, filter: AuditFilter| -> Vec<u64> {
        store
            .audit()
            .list(&filter)
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect()
    };
    let all = AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    };
    assert_eq!(list(&n.a, all.clone()), ids);
    assert_eq!(list(&n.b, all), ids);
    let first = list(
        &n.b,
        AuditFilter {
            limit: 4,
            ..AuditFilter::default()
        },
    );
    assert_eq!(first, ids[..4]);
    let next = AuditFilter {
        after: first.last().copied(),
        limit: 4,
        ..AuditFilter::default()
    };
    assert_eq!(list(&n.a, next), ids[4..]);
    let newest = AuditFilter {
        before: Some(ids[5]),
        limit: 2,
        ..AuditFilter::default()
    };
    assert_eq!(
        list(&n.a, newest),
        [ids[4], ids[3]],
        "newest first before a point"
    );
}

fn pending(id: u64, webhook: u64, next_at: u64) -> Delivery {
    Delivery {
        id,
        webhook,
        event: "ticket.created".into(),
        payload: "{}".into(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_at,
        last_status: None,
        last_response: None,
        created_at: 0,
        updated_at: 0,
    }
}

fn webhook_deliveries_fall_due_in_order(backend: Backend) {
    let n = nodes(backend);
    let hook =
        n.a.webhooks()
            .create(Webhook {
                id: 0,
                name: "crm".into(),
                url: "https://crm.example/hook".into(),
                secret: "s".into(),
                max_attempts: 5,
                created_at: 0,
            })
            .unwrap();
    assert_eq!(n.b.webhooks().get(hook.id).unwrap(), Some(hook.clone()));
    assert_eq!(n.b.webhooks().next_due().unwrap(), None);
    let deliveries: Vec<Delivery> = [300, 100, 200]
        .into_iter()
        .map(|at| pending(n.a.webhooks().next_id().unwrap(), hook.id, at))
        .collect();
    n.a.tickets()
        .change(|_| {
            Ok::<_, StoreError>(Change {
                deliveries: deliveries.clone(),
                ..Change::default()
            })
        })
        .unwrap();
    assert_eq!(n.b.webhooks().next_due().unwrap(), Some(100));
    let due = n.b.webhooks().due(250, 10).unwrap();
    assert_eq!(due, [deliveries[1].clone(), deliveries[2].clone()]);
    let mut delivered = due[0].clone();
    delivered.status = DeliveryStatus::Delivered;
    delivered.attempts = 1;
    n.b.webhooks().update(&due[0], &delivered).unwrap();
    assert_eq!(n.a.webhooks().next_due().unwrap(), Some(200));
    assert_eq!(
        n.a.webhooks().due(1_000, 1).unwrap(),
        [deliveries[2].clone()]
    );
    assert_eq!(
        n.a.webhooks().delivery(delivered.id).unwrap(),
        Some(delivered)
    );
    assert_eq!(n.a.webhooks().deliveries(hook.id).unwrap().len(), 3);
}

fn archived(id: u64, owners: &[u64]) -> ArchivedMessage {
    ArchivedMessage {
        node: String::new(),
        id,
        direction: Direction::Outbound,
        owners: owners.to_vec(),
        account: None,
        mail_from: "a@example.com".into(),
        rcpts: vec!["b@example.com".into()],
        from: "a@example.com".into(),
        subject: format!("message {id}"),
        date: None,
        message_id: None,
        refs: Vec::new(),
        tickets: Vec::new(),
        received_at: id,
        expires_at: None,
        size: 10,
        extent: Extent {
            seg: 1,
            offset: id * 10,
            len: 10,
            record_start: id * 10,
        },
    }
}

fn the_archive_catalog_finds_each_users_messages(backend: Backend) {
    let n = nodes(backend);
    n.a.archive()
        .put(&[archived(1, &[7]), archived(2, &[7, 8])])
        .unwrap();
    n.b.archive().put(&[archived(3, &[8])]).unwrap();
    n.a.archive().flush().unwrap();
    let ids = |store: &Store, user| -> Vec<u64> {
        store
            .archive()
            .of_user(user)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect()
    };
    assert_eq!(ids(&n.b, 7), [1, 2]);
    assert_eq!(ids(&n.a, 8), [2, 3]);
    assert_eq!(ids(&n.a, 9), Vec::<u64>::new());
    assert_eq!(n.b.archive().all().unwrap().len(), 3);
}
