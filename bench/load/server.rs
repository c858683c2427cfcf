//! The Postern under test: a generated configuration in a temporary directory (on disk,
//! so fsync is real), the binary started there with its own admin token, `/readyz`
//! awaited, and on drop the process stopped (SIGTERM, then SIGKILL) and the directory
//! removed unless `--keep`. The child also gets `PR_SET_PDEATHSIG`, so it cannot outlive
//! a generator that is killed outright.
//!
//! It creates no principals or accounts (`setup` does, through the API).

use crate::http;
use crate::options::Options;
use anyhow::{bail, Context};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use tempfile::TempDir;

/// Where Postern relays to.
#[derive(Debug, Clone, Copy)]
pub struct Upstreams {
    pub sink: u16,
    /// The refusing upstream, when `--prefill` needs one.
    pub blackhole: Option<u16>,
}

/// A running Postern.
pub struct Server {
    child: Child,
    pub smtp: SocketAddr,
    pub api: SocketAddr,
    pub token: String,
    dir: Option<TempDir>,
    keep: bool,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How Postern ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines Postern logged, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let Some(dir) = &self.dir else {
            return String::new();
        };
        let log = std::fs::read_to_string(dir.path().join("postern.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, up to ten seconds to finish, then SIGKILL.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill only sends a signal to our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if let (true, Some(dir)) = (self.keep, self.dir.take()) {
            eprintln!("load: kept {}", dir.keep().display());
        }
    }
}

/// Starts Postern with a configuration for this run and waits until it is ready.
pub async fn start(opts: &Options, upstreams: Upstreams) -> anyhow::Result<Server> {
    let binary = binary(&opts.postern)?;
    let dir = work_dir()?;
    let (smtp, api) = (free_port()?, free_port()?);
    let connections = 1000.max(opts.idle + opts.sessions + 100);
    let mut config = config(dir.path(), smtp, api, upstreams, connections);
    tune(&mut config, opts);
    let config_path = dir.path().join("postern.toml");
    std::fs::write(&config_path, config)?;
    let token = opts
        .token
        .clone()
        .unwrap_or_else(|| format!("load-admin-token-{}", std::process::id()));
    let child = spawn(&binary, dir.path(), &config_path, &token, &opts.log)?;
    let server = Server {
        child,
        smtp: SocketAddr::from(([127, 0, 0, 1], smtp)),
        api: SocketAddr::from(([127, 0, 0, 1], api)),
        token,
        dir: Some(dir),
        keep: opts.keep,
    };
    wait_ready(server).await
}

/// The binary as an absolute path; a warning when it is older than the sources.
fn binary(path: &Path) -> anyhow::Result<PathBuf> {
    let binary = std::fs::canonicalize(path)
        .with_context(|| format!("{} (build it: cargo build --release)", path.display()))?;
    let built = std::fs::metadata(&binary)?.modified()?;
    if newest(Path::new("src")).is_some_and(|source| source > built) {
        eprintln!(
            "load: warning: {} is older than src/ (cargo build --release)",
            path.display()
        );
    }
    Ok(binary)
}

/// The newest modification time of a file under `dir`.
fn newest(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = match path.is_dir() {
            true => self::newest(&path),
            false => entry.metadata().and_then(|m| m.modified()).ok(),
        };
        newest = newest.max(time);
    }
    newest
}

/// A temporary directory on disk (`/var/tmp` when it exists: not tmpfs).
fn work_dir() -> anyhow::Result<TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("postern-load.");
    let dir = match Path::new("/var/tmp").is_dir() {
        true => builder.tempdir_in("/var/tmp")?,
        false => builder.tempdir()?,
    };
    if crate::procfs::is_tmpfs(dir.path()) {
        eprintln!(
            "load: warning: {} is on tmpfs: fsync costs nothing there",
            dir.path().display()
        );
    }
    Ok(dir)
}

/// A port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The configuration: see `bench/postern-bench.toml` for the reasons behind each value.
/// Retries wait a day, so `--prefill` messages stay queued and idle during the run.
fn config(dir: &Path, smtp: u16, api: u16, up: Upstreams, connections: usize) -> String {
    let data = dir.join("data");
    let data = data.display();
    let mut text = format!(
        r#"data_dir = "{data}"
hostname = "postern.bench"
default_upstream = "sink"
shutdown_grace_secs = 2

[api]
bind = "127.0.0.1:{api}"

[tls]
cert = "{data}/certs/postern.pem"
key = "{data}/certs/postern.key"

[[listener]]
name = "load"
bind = "127.0.0.1:{smtp}"
purpose = "submission"
tls = "none"
trusted_networks = ["127.0.0.0/8"]
trusted_principal = "{principal}"

[limits]
connections_per_ip = {connections}
max_connections = {connections}

[queue]
retry_intervals_secs = [86400]

[upstream.sink]
kind = "smtp"
host = "127.0.0.1"
port = {sink}
tls = "none"
"#,
        principal = crate::message::SENDER,
        sink = up.sink,
    );
    if let Some(port) = up.blackhole {
        text.push_str(&format!(
            "\n[upstream.blackhole]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n"
        ));
    }
    text
}

/// Applies `--queue-concurrency` and `--upstream-connections` to the configuration.
fn tune(config: &mut String, opts: &Options) {
    if let Some(n) = opts.queue_concurrency {
        *config = config.replace("[queue]\n", &format!("[queue]\nconcurrency = {n}\n"));
    }
    if let Some(n) = opts.upstream_connections {
        let sink = "[upstream.sink]\n";
        let tuned = format!("{sink}max_connections = {n}\npool_size = {n}\n");
        *config = config.replace(sink, &tuned);
    }
}

fn spawn(
    binary: &Path,
    dir: &Path,
    config: &Path,
    token: &str,
    log: &str,
) -> anyhow::Result<Child> {
    let stdout = std::fs::File::create(dir.join("stdout.log"))?;
    let stderr = std::fs::File::create(dir.join("postern.log"))?;
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .current_dir(dir)
        .env("POSTERN_ADMIN_TOKEN", token)
        .env("RUST_LOG", log)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl,
    // which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

/// Polls `/readyz` for up to 30 seconds; fails early if Postern exits.
async fn wait_ready(mut server: Server) -> anyhow::Result<Server> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            bail!("Postern exited ({status}):\n{}", server.log_tail(20));
        }
        if let Ok(response) = http::get(server.api, "/readyz").await {
            if response.status == 200 {
                return Ok(server);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("Postern not ready after 30 s:\n{}", server.log_tail(20))
}
