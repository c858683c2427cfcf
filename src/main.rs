//! The `postern` command: `serve` runs the gateway, `check-config` validates a
//! configuration file, `admin` drives the control API, `store copy` moves the control
//! state into PostgreSQL. Sets up logging, loads the config, runs the app until SIGTERM or
//! ctrl-c.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// mimalloc instead of glibc's malloc: the hot path allocates a few small buffers per
/// message from many threads, and glibc's free lists (`_int_malloc`, `_int_free`,
/// `malloc_consolidate`) were ~7 % of the process's CPU under load. A choice of the
/// binary, not state: the library and its tests use whatever allocator their host has.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "postern",
    version,
    about = "Mail gateway: send-as policy, durable spool, pooled relay"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (built-in defaults when no config file is given).
    Serve {
        /// Configuration file (see config/postern.toml).
        #[arg(long, short, env = "POSTERN_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Drive the control API (POSTERN_API, POSTERN_TOKEN): users, roles, accounts, queue...
    Admin(postern::admin::AdminArgs),
    /// Validate a configuration file and print the effective listeners and upstreams.
    CheckConfig {
        #[arg(long, short, env = "POSTERN_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Work on the control-state store directly (with the gateway stopped).
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy the embedded store (data_dir/store) into an empty PostgreSQL database,
    /// verified by counts; then set `[store] backend = "postgres"`.
    Copy {
        #[arg(long, short, env = "POSTERN_CONFIG")]
        config: Option<PathBuf>,
        /// The target database, e.g. postgres://postern@127.0.0.1:5432/postern
        #[arg(long)]
        to: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Admin(args) => {
            init_logging(std::io::stderr);
            admin(&args)
        }
        Command::CheckConfig { config } => {
            init_logging(std::io::stderr);
            check_config(config)
        }
        Command::Store(StoreCommand::Copy { config, to }) => {
            init_logging(std::io::stderr);
            store_copy(config, to)
        }
        Command::Serve { config } => {
            // A line or two per message: written by a thread of their own (`logging`).
            let (output, flusher) = postern::logging::stderr()?;
            init_logging(output);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let result = runtime.block_on(serve(config));
            drop(runtime);
            drop(flusher);
            result
        }
    }
}

/// Logs to `writer`, filtered by `RUST_LOG` (default `info`).
fn init_logging<W>(writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // On a terminal, the default format with colours; else the same lines, written faster.
    match std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        true => builder.with_ansi(true).init(),
        false => builder
            .with_ansi(false)
            .event_format(postern::logging::Plain)
            .init(),
    }
}

/// Runs one `postern admin` command: its output on stdout, an error on stderr and exit
/// status 1.
fn admin(args: &postern::admin::AdminArgs) -> anyhow::Result<()> {
    match postern::admin::run(args) {
        Ok(out) => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&out)?;
            stdout.flush()?;
            Ok(())
        }
        Err(error) => {
            eprintln!("postern admin: {error}");
            std::process::exit(1);
        }
    }
}

fn check_config(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = postern::config::load(path.as_deref()).context("configuration is invalid")?;
    for listener in &config.listeners {
        println!(
            "listener {:<22} {:<22} {:?} tls={:?}",
            listener.name, listener.bind, listener.purpose, listener.tls
        );
    }
    for name in config.upstreams.keys() {
        let marker = if *name == config.default_upstream {
            " (default)"
        } else {
            ""
        };
        println!("upstream {name}{marker}");
    }
    println!("api      {}", config.api.bind);
    println!("configuration OK");
    Ok(())
}

/// `postern store copy`: the sled store of the configuration into the database `to`.
fn store_copy(path: Option<PathBuf>, to: String) -> anyhow::Result<()> {
    use postern::config::{StoreBackend, StoreConfig};
    use postern::store::Store;
    let config = postern::config::load(path.as_deref()).context("configuration is invalid")?;
    let dir = config.data_dir.join("store");
    anyhow::ensure!(dir.exists(), "no store at {}", dir.display());
    let from = Store::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let target = StoreConfig {
        backend: StoreBackend::Postgres,
        url: to,
        ..config.store.clone()
    };
    let into = Store::open_config(&target, &dir).context("opening the target database")?;
    for copied in postern::store::copy(&from, &into)? {
        println!("{:<16} {:>10}", copied.tree, copied.records);
    }
    println!("copied and verified; now set [store] backend = \"postgres\" and url");
    Ok(())
}

async fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = postern::config::load(path.as_deref()).context("configuration is invalid")?;
    let token = std::env::var("POSTERN_ADMIN_TOKEN").ok();
    let first_admin = postern::api::FirstAdmin {
        email: std::env::var("POSTERN_ADMIN_EMAIL").ok(),
        password: std::env::var("POSTERN_ADMIN_PASSWORD").ok(),
    };
    let running = postern::app::start_with(config, token, Some(first_admin)).await?;
    if let Some(token) = &running.new_admin_token {
        println!("postern: generated admin API token (shown once, stored hashed): {token}");
    }
    if let Some(link) = &running.admin_password_link {
        println!(
            "postern: created the administrator \"admin\"; set its password at (once, within {} hours): {link}",
            postern::inbound::LINK_LIFETIME_SECS / 3600
        );
    }
    wait_for_signal().await;
    tracing::info!("stopping");
    running.shutdown().await;
    Ok(())
}

/// Waits for SIGTERM or ctrl-c. SIGHUP (sent by certificate-renewal hooks expecting a
/// reload) is logged and otherwise ignored, so it can never kill the gateway ungracefully.
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hup.recv() => tracing::warn!(
                "SIGHUP received: reloading is not supported yet; restart to apply configuration or certificate changes"
            ),
        }
    }
}
