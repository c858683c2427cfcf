//! The SMTP session target: a real `Shared` (store and spool in a temporary directory on
//! tmpfs when there is one, a system user `gw` whose secret is `secret`, a staff user
//! `ann`, a default account and a shared helpdesk account `support@example.com`) and one
//! `Session` per input over `tokio::io::duplex`, exactly as `smtp::serve` runs one over TCP.
//!
//! The first input octet picks the case: bit 0 the listener (submission or inbound), bit 1
//! whether the peer is in `trusted_networks`, bits 2–4 the size of the writes the client
//! makes (1 octet to all at once), so reads split everywhere. The rest is the client's
//! byte stream; the client then closes its side and reads every reply to the end.
//!
//! Checked, panicking on a violation: the session never panics; every octet it sends is
//! part of a well-formed reply (`replies::check`); the heap it uses at its peak stays under
//! [`memory_bound`] of the configured limits. `POSTERN_FUZZ_SHOW=1` prints the replies
//! and the peak (for replays).

use crate::{alloc, replies};
use postern::config::{Limits, ListenerConfig, Purpose, QueueConfig, TlsMode};
use postern::metrics::Metrics;
use postern::policy::{Credentials, Policy};
use postern::smtp::{reply, Session, Shared};
use postern::spool::{Fresh, Spool};
use postern::store::{Account, NewUser, Store, UserKind};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedReceiver;

/// The limits the target runs under: the defaults, with a message size small enough that
/// inputs can cross it.
pub fn limits() -> Limits {
    Limits {
        message_size: 64 * 1024,
        header_block: 16 * 1024,
        recipients: 10,
        ..Limits::default()
    }
}

/// Most heap one session may hold at once above what was live when it started: a few
/// copies of the largest message (the buffer, its headroom, the spool's write), the largest
/// header block, plus a fixed allowance for the session, the runtime and the store.
pub fn memory_bound(limits: &Limits) -> usize {
    const SLACK: usize = 4 << 20;
    4 * (limits.message_size + 8192) + 2 * limits.header_block + SLACK
}

/// One gateway's worth of SMTP state, reused by every input of one process.
pub struct Harness {
    rt: Runtime,
    submission: Arc<Shared>,
    inbound: Arc<Shared>,
    fresh: UnboundedReceiver<Fresh>,
    // Dropped last: removes the store and the spool.
    _dir: tempfile::TempDir,
}

/// A fresh directory `postern-fuzz-<pid>-*` on tmpfs (else the system's temporary
/// directory). A process that crashes or is killed by AFL++ leaves its directory behind,
/// so the ones of processes no longer running are removed first.
fn temp_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let parent = match shm.is_dir() {
        true => shm.to_path_buf(),
        false => std::env::temp_dir(),
    };
    sweep(&parent);
    tempfile::Builder::new()
        .prefix(&format!("postern-fuzz-{}-", std::process::id()))
        .tempdir_in(&parent)
        .expect("temporary directory")
}

fn sweep(parent: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("postern-fuzz-")
            .and_then(|r| r.split('-').next())
        else {
            continue;
        };
        let gone = pid
            .parse::<u32>()
            .is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn seed(store: &Store) {
    let gw = store
        .users()
        .create(
            NewUser {
                login: "gw".into(),
                email: "gw@example.com".into(),
                display_name: "Gateway".into(),
                kind: Some(UserKind::System),
                secret_sha256: Some(hex(&Sha256::digest(b"secret"))),
                ..NewUser::default()
            },
            0,
        )
        .expect("user gw");
    store
        .users()
        .create(
            NewUser {
                login: "ann".into(),
                email: "ann@example.com".into(),
                display_name: "Ann".into(),
                ..NewUser::default()
            },
            0,
        )
        .expect("user ann");
    let accounts = [
        serde_json::json!({"id": 0, "name": "default", "address": "relay@example.com",
            "upstream": "up", "is_default": true, "scope": {"kind": "everyone"}}),
        serde_json::json!({"id": 0, "name": "support", "address": "support@example.com",
            "display_name": "Support", "aliases": ["help@example.com"], "upstream": "up",
            "scope": {"kind": "everyone"},
            "grants": [{"grantee": {"user": gw.id}, "send": "send_on_behalf"}],
            "inbound": {"purpose": "ticket", "auto_create_requesters": true}}),
    ];
    for account in accounts {
        let account: Account = serde_json::from_value(account).expect("account JSON");
        store.accounts().create(account).expect("account");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn shared(
    store: &Store,
    spool: &Arc<Spool>,
    metrics: &Arc<Metrics>,
    policy: &Arc<Policy>,
    purpose: Purpose,
) -> Arc<Shared> {
    Arc::new(Shared {
        listener: ListenerConfig {
            name: format!("{purpose:?}").to_lowercase(),
            bind: "127.0.0.1:2587".parse().expect("literal address"),
            purpose,
            tls: TlsMode::Starttls,
            allow_plaintext_auth: true,
            trusted_networks: vec!["127.0.0.1/32".parse().expect("literal network")],
            trusted_principal: "gw".into(),
        },
        limits: limits(),
        hostname: "gw.example.com".into(),
        tls: None,
        credentials: Credentials::new(policy.clone(), 1),
        spool: spool.clone(),
        metrics: metrics.clone(),
        policy: policy.clone(),
        message_ids: store.message_ids().clone(),
        tickets: store.tickets().clone(),
        upstream: "up".into(),
        verifier: None,
        archive: false,
        relays: None,
    })
}

impl Harness {
    /// Opens a store and a spool in a fresh temporary directory and seeds the policy.
    pub fn new() -> Harness {
        let dir = temp_dir();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let store = Store::open(&dir.path().join("store")).expect("store");
        seed(&store);
        let policy = Policy::load(store.clone(), "up").expect("policy");
        let metrics = Metrics::new();
        let (spool, fresh) = rt
            .block_on(Spool::open(
                store.clone(),
                &dir.path().join("spool"),
                metrics.clone(),
                QueueConfig::default(),
            ))
            .expect("spool");
        Harness {
            submission: shared(&store, &spool, &metrics, &policy, Purpose::Submission),
            inbound: shared(&store, &spool, &metrics, &policy, Purpose::Inbound),
            rt,
            fresh,
            _dir: dir,
        }
    }

    /// Runs one input (see the module doc) and checks the invariants.
    pub fn run(&mut self, data: &[u8]) {
        let Some((&mode, input)) = data.split_first() else {
            return;
        };
        let shared = match mode & 1 {
            0 => self.submission.clone(),
            _ => self.inbound.clone(),
        };
        let peer: SocketAddr = match mode & 2 {
            0 => "127.0.0.2:40000",
            _ => "127.0.0.1:40000",
        }
        .parse()
        .expect("literal address");
        let chunk = [1, 2, 7, 64, 512, 4096, 65536, usize::MAX][usize::from(mode >> 2) & 7];
        let start = alloc::reset_peak();
        let out = self
            .rt
            .block_on(session(shared.clone(), peer, input, chunk));
        let used = alloc::peak().saturating_sub(start);
        while self.fresh.try_recv().is_ok() {}
        if std::env::var_os("POSTERN_FUZZ_SHOW").is_some() {
            eprintln!("{}(peak heap {used} octets)", String::from_utf8_lossy(&out));
        }
        if let Err(problem) = replies::check(&out) {
            panic!(
                "{problem}\n--- replies ---\n{}",
                String::from_utf8_lossy(&out)
            );
        }
        let bound = memory_bound(&shared.limits);
        assert!(
            used <= bound,
            "session used {used} heap octets at its peak, bound {bound}"
        );
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

/// One session fed `input` in writes of `chunk` octets; returns every octet it sent.
async fn session(shared: Arc<Shared>, peer: SocketAddr, input: &[u8], chunk: usize) -> Vec<u8> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let deadline = Instant::now() + Duration::from_secs(shared.limits.session_timeout_secs);
    let state = shared.fresh_state(false, &peer, deadline);
    let mut session = Session::new(server, shared.clone(), peer, state);
    session.conn.reply(&reply::greeting(&shared.hostname));
    let (mut rd, mut wr) = tokio::io::split(client);
    let server = async move {
        // An i/o error (the client gone while replies were written) ends a session too.
        let _ = session.run().await;
    };
    let writer = async move {
        for piece in input.chunks(chunk) {
            if wr.write_all(piece).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
        wr
    };
    let reader = async move {
        let mut out = Vec::new();
        let _ = rd.read_to_end(&mut out).await;
        out
    };
    let (_, _wr, out) = tokio::join!(server, writer, reader);
    out
}
