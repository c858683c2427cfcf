//! Postern's own load generator: `cargo bench --bench load -- [options]` (`--help` lists
//! them). It starts a counting SMTP sink, starts the Postern binary in a temporary
//! directory with a generated configuration (or loads `--external` / `--direct` targets),
//! drives SMTP sessions at it and reports accept and end-to-end rates, client-side
//! latency, Postern's CPU per message and its memory, as a table and with `--json` as one
//! JSON line for `bench/RESULTS.md` and scripts.
//!
//! It owns every process and directory it creates and removes them on every path (normal
//! end, error, ctrl-c, SIGTERM; Postern also dies with the generator through
//! `PR_SET_PDEATHSIG`). It must not touch anything outside its temporary directory and
//! never reads Postern's code: only its binary, its SMTP listener and its control API.
//!
//! Modules: `options` (command line), `message` (the bytes sent), `client` (one SMTP client
//! connection), `drive` (the sessions of one load phase), `sink` (the counting sink and the
//! refusing "blackhole", optionally offering CHUNKING and answering a round trip late),
//! `server` (starting and stopping Postern), `http` (a minimal
//! HTTP/1.1 client for the control API), `setup` (principals, accounts, prefill), `idle`
//! (memory per idle session), `procfs` (CPU and RSS), `report` (figures and output), `run`
//! (the phases in order).

#[path = "load/client.rs"]
mod client;
#[path = "load/drive.rs"]
mod drive;
#[path = "load/http.rs"]
mod http;
#[path = "load/idle.rs"]
mod idle;
#[path = "load/message.rs"]
mod message;
#[path = "load/options.rs"]
mod options;
#[path = "load/procfs.rs"]
mod procfs;
#[path = "load/report.rs"]
mod report;
#[path = "load/run.rs"]
mod run;
#[path = "load/server.rs"]
mod server;
#[path = "load/setup.rs"]
mod setup;
#[path = "load/sink.rs"]
mod sink;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let opts = options::Options::parse();
    procfs::raise_fd_limit();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = opts.threads {
        builder.worker_threads(threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("load: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // `block_on` runs this future on the main thread, which lives as long as the program:
    // Postern is spawned from it, so its parent-death signal fires only when we exit.
    let outcome = runtime.block_on(interruptible(opts));
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("load: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The run, abandoned on ctrl-c or SIGTERM; dropping it stops Postern and removes the
/// temporary directory.
async fn interruptible(opts: options::Options) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        outcome = run::run(opts) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        _ = term.recv() => Err(anyhow::anyhow!("terminated")),
    }
}
