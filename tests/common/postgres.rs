//! A throwaway PostgreSQL cluster for the tests of one test binary: started once, at the
//! first `database()`, from Debian's binaries (`/usr/lib/postgresql/*/bin`), on a free
//! loopback port with its socket in its data directory, trusting local connections, with
//! durability off (the data is thrown away), TLS on (a certificate from a CA of its own,
//! `ca_file`). Each test gets a database of its own.
//!
//! As root the cluster runs as the `postgres` system user (`initdb` refuses root),
//! otherwise as the current user. A shell wrapper runs the server and reads a pipe the
//! test process holds: when the process ends, however it ends, the pipe closes, and the
//! wrapper stops the server (immediate shutdown) and removes the data directory. So no
//! server outlives `cargo test`.

#[path = "apt.rs"]
pub mod apt;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The running cluster.
struct Cluster {
    bin: PathBuf,
    port: u16,
    /// Who the server runs as (None: this process's user).
    owner: Option<(u32, u32)>,
    /// Closed when this process exits: the wrapper then stops the server.
    _lifeline: Mutex<ChildStdin>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// Where the CA that signed the server's certificate (for `localhost` and 127.0.0.1)
/// is: a URL of `database()` with `sslmode=require&sslrootcert=` this file uses TLS.
static CA_FILE: OnceLock<PathBuf> = OnceLock::new();

/// The CA file of the cluster's server certificate (the cluster started on first use).
pub fn ca_file() -> PathBuf {
    CLUSTER.get_or_init(start);
    CA_FILE.get().expect("set at start").clone()
}

/// A fresh, empty database of the cluster (started on first use): its URL.
pub fn database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let cluster = CLUSTER.get_or_init(start);
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    cluster.sql(&format!("CREATE DATABASE {name}"));
    format!(
        "postgres://postgres@127.0.0.1:{}/{name}?sslmode=disable",
        cluster.port
    )
}

/// Runs `sql` as the superuser in the cluster's `postgres` database (started on first
/// use); what it printed, unaligned (`psql -tA`).
pub fn superuser_sql(sql: &str) -> String {
    CLUSTER.get_or_init(start).sql(sql)
}

impl Cluster {
    /// Runs `sql` in the `postgres` database with psql; what it printed. Panics if it
    /// fails.
    fn sql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let output = self
            .command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-tA", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql -c {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// A command for PostgreSQL binary `name`, as the cluster's owner.
    fn command(&self, name: &str) -> Command {
        command(&self.bin, name, self.owner)
    }
}

fn command(bin: &Path, name: &str, owner: Option<(u32, u32)>) -> Command {
    let mut command = Command::new(bin.join(name));
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command.current_dir("/");
    command
}

/// Creates the cluster and starts its server; waits until it takes connections.
fn start() -> Cluster {
    let bin = binaries();
    // SAFETY: geteuid has no preconditions.
    let owner = (unsafe { libc::geteuid() } == 0).then(postgres_user);
    let dir = tempfile::Builder::new()
        .prefix("postern-pg-")
        .tempdir()
        .expect("temp dir")
        .keep();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the cluster's dir");
    }
    let data = dir.join("data");
    let output = command(&bin, "initdb", owner)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .output()
        .expect("run initdb");
    assert!(
        output.status.success(),
        "initdb failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    certificates(&dir, owner);
    let port = free_port();
    let script = r#""$1" -D "$2/data" -p "$3" -k "$2" -c listen_addresses=127.0.0.1 \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=400 -c ssl=on -c ssl_cert_file="$2/server.crt" \
        -c ssl_key_file="$2/server.key" </dev/null >"$2/log" 2>&1 &
        pid=$!; cat >/dev/null; kill -QUIT "$pid"; wait "$pid"; rm -rf "$2""#;
    let mut wrapper = Command::new("/bin/sh");
    wrapper
        .args(["-c", script, "sh"])
        .arg(bin.join("postgres"))
        .arg(&dir)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/");
    if let Some((uid, gid)) = owner {
        wrapper.uid(uid).gid(gid);
    }
    let mut child = wrapper.spawn().expect("start the PostgreSQL server");
    let lifeline = child.stdin.take().expect("the wrapper's stdin");
    // The wrapper is never waited for: it outlives this process by the moment it takes
    // to stop the server.
    std::mem::forget(child);
    let cluster = Cluster {
        bin,
        port,
        owner,
        _lifeline: Mutex::new(lifeline),
    };
    wait_ready(&cluster, &dir);
    cluster
}

/// Writes a CA (`ca.pem`) and the server's certificate and key it signs into `dir`, the
/// key readable by the server's user only.
fn certificates(dir: &Path, owner: Option<(u32, u32)>) {
    use std::os::unix::fs::PermissionsExt;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "postern test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let server = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), server.pem()).unwrap();
    let key_file = dir.join("server.key");
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    for file in ["ca.pem", "server.crt", "server.key"] {
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.join(file), Some(uid), Some(gid)).unwrap();
        }
    }
    let _ = CA_FILE.set(dir.join("ca.pem"));
}

/// Waits until the server answers a query (30 s at most).
fn wait_ready(cluster: &Cluster, dir: &Path) {
    let started = Instant::now();
    loop {
        let ready = TcpStream::connect(("127.0.0.1", cluster.port)).is_ok()
            && cluster
                .command("psql")
                .args(["-h", "127.0.0.1", "-p", &cluster.port.to_string()])
                .args(["-U", "postgres", "-d", "postgres", "-c", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if ready {
            return;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let mut log = String::new();
            let _ =
                std::fs::File::open(dir.join("log")).and_then(|mut f| f.read_to_string(&mut log));
            panic!("the PostgreSQL server did not start: {log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The newest `/usr/lib/postgresql/VERSION/bin` that has `initdb` and `postgres`
/// (Debian's `postgresql`, installed first when missing and running as root).
fn binaries() -> PathBuf {
    apt::ensure_installed(
        "the store's PostgreSQL tests",
        &[("/usr/lib/postgresql", "postgresql")],
    );
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").exists() && bin.join("postgres").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             the store's PostgreSQL tests need it; run `apt-get install postgresql`"
        ),
    }
}

/// The uid and gid of the `postgres` system user.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres") && fields.len() > 3)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .expect("running as root, the cluster runs as the `postgres` user, which is missing")
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}
