//! The generator's command line. Parsing and the few checks between options only: nothing
//! here starts, connects or measures.

use clap::{Parser, ValueEnum};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// What `cargo bench --bench load -- --help` shows.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "load",
    about = "Load Postern over SMTP and measure rates, latency, CPU and memory",
    after_help = "Starts target/release/postern (build it first) unless --external or --direct."
)]
pub struct Options {
    /// The Postern binary to start.
    #[arg(long, default_value = "target/release/postern")]
    pub postern: PathBuf,
    /// Load an already-running server at HOST:PORT instead of starting Postern. Set it up
    /// as the started one is: a listener trusting 127.0.0.0/8 as the system user
    /// load@postern.bench, whose system-scope send_as account relays to the sink
    /// (--sink-port); for --prefill also hold@postern.bench relaying to --blackhole-port.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "direct")]
    pub external: Option<String>,
    /// Load the sink itself: the ceiling of this generator on this machine.
    #[arg(long)]
    pub direct: bool,
    /// Port of the counting sink (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub sink_port: u16,
    /// The sink offers CHUNKING (as Microsoft 365 and Gmail do): Postern sends BDAT.
    #[arg(long)]
    pub sink_chunking: bool,
    /// Milliseconds the sink waits before each batch of replies: a provider's round trip.
    #[arg(long, default_value_t = 0)]
    pub sink_rtt_ms: u64,
    /// The upstream's `max_connections` and `pool_size` (default: Postern's, 32): a
    /// provider's limit on concurrent connections.
    #[arg(long)]
    pub upstream_connections: Option<usize>,
    /// `[queue] concurrency`, deliveries in flight (default: Postern's, 64).
    #[arg(long)]
    pub queue_concurrency: Option<usize>,
    /// Port of the refusing upstream used by --prefill (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub blackhole_port: u16,
    /// With --external: the process whose CPU and memory are measured.
    #[arg(long)]
    pub pid: Option<u32>,
    /// With --external: the control API, for --accounts, --users and the spool depth.
    #[arg(long, value_name = "HOST:PORT")]
    pub api: Option<String>,
    /// Admin token of the control API (generated for a Postern started here).
    #[arg(long, env = "POSTERN_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Concurrent SMTP sessions.
    #[arg(long, default_value_t = 20)]
    pub sessions: usize,
    /// Messages to send in the measured run.
    #[arg(long, default_value_t = 20_000)]
    pub messages: u64,
    /// Body octets per message (76-character lines).
    #[arg(long, default_value_t = 4096)]
    pub size: usize,
    /// Many messages per connection (default: one connection per message).
    #[arg(long)]
    pub reuse: bool,
    /// Send MAIL, RCPT and DATA in one write (RFC 2920).
    #[arg(long)]
    pub pipelining: bool,
    /// Cap on messages per second over all sessions.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Before the run, hold this many idle sessions and report memory per 1,000.
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
    /// Before the run, leave this many messages queued in Postern's spool.
    #[arg(long, default_value_t = 0)]
    pub prefill: u64,
    /// Before the run, create this many extra email accounts.
    #[arg(long, default_value_t = 0)]
    pub accounts: usize,
    /// Before the run, create this many extra users.
    #[arg(long, default_value_t = 0)]
    pub users: usize,
    /// Kind of the extra users (staff and requesters cost an argon2 hash each).
    #[arg(long, value_enum, default_value_t = UserKind::System)]
    pub user_kind: UserKind,
    /// Also print the results as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Keep the temporary directory (config, store, Postern's log).
    #[arg(long)]
    pub keep: bool,
    /// RUST_LOG for the Postern started here.
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Seconds without progress before a phase is declared stuck.
    #[arg(long, default_value_t = 60)]
    pub stall: u64,
    /// Worker threads of the generator's runtime (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

/// Kinds of extra users, as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UserKind {
    System,
    Staff,
    Requester,
}

impl UserKind {
    /// The API's name for the kind.
    pub fn api_name(self) -> &'static str {
        match self {
            UserKind::System => "system",
            UserKind::Staff => "staff",
            UserKind::Requester => "requester",
        }
    }
}

/// Which server the load goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A Postern started and configured here.
    Started,
    /// A server the user runs.
    External(SocketAddr),
    /// The sink itself.
    Direct,
}

impl Options {
    /// The load target, with `--external` resolved.
    pub fn target(&self) -> anyhow::Result<Target> {
        if self.direct {
            return Ok(Target::Direct);
        }
        match &self.external {
            None => Ok(Target::Started),
            Some(text) => Ok(Target::External(resolve(text)?)),
        }
    }

    /// Checks that the options make sense together.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.sessions > 0, "--sessions must be at least 1");
        anyhow::ensure!(self.rate.is_none_or(|r| r > 0.0), "--rate must be positive");
        let padding = self.accounts > 0 || self.users > 0;
        anyhow::ensure!(
            !(self.direct && (padding || self.prefill > 0)),
            "--prefill, --accounts and --users need Postern, not --direct"
        );
        anyhow::ensure!(
            !(self.external.is_some() && padding && self.api.is_none()),
            "with --external, --accounts and --users need --api and --token"
        );
        Ok(())
    }
}

/// The first address `text` (HOST:PORT) resolves to.
pub fn resolve(text: &str) -> anyhow::Result<SocketAddr> {
    text.to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{text} resolves to no address"))
}
