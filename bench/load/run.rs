//! The phases of one generator run, in order: the sink (and the blackhole for
//! `--prefill`), the server, the principal, the idle sessions (on a server that has carried
//! no load yet), the rest of the set-up (prefill, policy padding), the measured run and its
//! wait for delivery, and the output.
//!
//! Each phase lives in its own module; this one only orders them and turns their results
//! into the [`Report`].

use crate::drive::{self, Plan, Results};
use crate::message::{self, HOLD_SENDER, SENDER};
use crate::options::{Options, Target};
use crate::report::{round, Percentiles, PolicyReport, PrefillReport, Report};
use crate::server::{self, Server, Upstreams};
use crate::setup::{self, Api};
use crate::sink::{self, Counters, Mode, Sink, Style};
use crate::{idle, procfs};
use anyhow::bail;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the load goes and what can be measured there.
struct Env {
    target: Target,
    smtp: SocketAddr,
    api: Option<Api>,
    pid: Option<u32>,
    /// Distinguishes this run's names and Message-IDs from earlier runs'.
    tag: String,
    body: Arc<Vec<u8>>,
    date: String,
}

/// Runs every phase and prints the report.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    opts.validate()?;
    let target = opts.target()?;
    let base = Instant::now();
    let style = Style {
        chunking: opts.sink_chunking,
        round_trip: Duration::from_millis(opts.sink_rtt_ms),
    };
    let sink = sink::start(opts.sink_port, Mode::Accept, style, base, opts.messages).await?;
    let blackhole = match opts.prefill {
        0 => None,
        _ => Some(sink::start(opts.blackhole_port, Mode::Refuse, style, base, 0).await?),
    };
    eprintln!(
        "load: sink on 127.0.0.1:{}{}",
        sink.port,
        blackhole.as_ref().map_or(String::new(), |b| format!(
            ", blackhole on 127.0.0.1:{}",
            b.port
        ))
    );
    let mut server = match target {
        Target::Started => {
            let upstreams = Upstreams {
                sink: sink.port,
                blackhole: blackhole.as_ref().map(|b| b.port),
            };
            Some(server::start(&opts, upstreams).await?)
        }
        Target::External(_) | Target::Direct => None,
    };
    let env = env(&opts, target, &sink, server.as_ref())?;
    let mut report = match phases(&opts, &env, &sink, blackhole.as_ref()).await {
        Ok(report) => report,
        Err(error) => {
            if let Some(server) = &server {
                eprintln!("load: Postern's log ends with:\n{}", server.log_tail(20));
            }
            return Err(error);
        }
    };
    if let Some(status) = server.as_mut().and_then(Server::exited) {
        let reason = format!("Postern exited during the run ({status})");
        report.errors.insert(reason, 1);
    }
    drop(server);
    report.print_table();
    if opts.json {
        report.print_json();
    }
    complete(&report)
}

/// An error (so a non-zero exit) when a message failed or did not arrive.
fn complete(report: &Report) -> anyhow::Result<()> {
    let undelivered = report.accepted.saturating_sub(report.delivered);
    if report.failed > 0 || undelivered > 0 || !report.errors.is_empty() {
        bail!(
            "incomplete run: {} not accepted, {undelivered} accepted but not delivered",
            report.failed
        );
    }
    Ok(())
}

fn env(
    opts: &Options,
    target: Target,
    sink: &Sink,
    server: Option<&Server>,
) -> anyhow::Result<Env> {
    let (smtp, api, pid) = match (target, server) {
        (Target::Started, Some(server)) => {
            let api = Api {
                addr: server.api,
                token: server.token.clone(),
            };
            (server.smtp, Some(api), Some(server.pid()))
        }
        (Target::External(addr), _) => {
            let api = match (&opts.api, &opts.token) {
                (Some(api), Some(token)) => Some(Api {
                    addr: crate::options::resolve(api)?,
                    token: token.clone(),
                }),
                (Some(_), None) => bail!("--api needs --token (or POSTERN_ADMIN_TOKEN)"),
                _ => None,
            };
            (addr, api, opts.pid)
        }
        _ => (SocketAddr::from(([127, 0, 0, 1], sink.port)), None, None),
    };
    let unix = SystemTime::now().duration_since(UNIX_EPOCH)?;
    Ok(Env {
        target,
        smtp,
        api,
        pid,
        tag: format!("{:x}", unix.as_millis()),
        body: Arc::new(message::body(opts.size)),
        date: message::now_rfc5322(),
    })
}

/// Set-up, the idle sessions, and the measured run.
async fn phases(
    opts: &Options,
    env: &Env,
    sink: &Sink,
    blackhole: Option<&Sink>,
) -> anyhow::Result<Report> {
    let mut report = blank_report(opts, env);
    if let (Target::Started, Some(api)) = (env.target, &env.api) {
        setup::principal(api).await?;
    }
    // Before any load: memory a run leaves behind (or gives back) would blur the figure.
    if opts.idle > 0 {
        eprintln!("load: opening {} idle sessions", opts.idle);
        report.idle = Some(idle::measure(env.smtp, opts.idle, env.pid).await);
    }
    if let Some(blackhole) = blackhole {
        report.prefill = Some(prefill(opts, env, &blackhole.counters).await?);
    }
    if let Some(api) = &env.api {
        report.policy = padding(opts, env, api).await?;
        report.spool_depth_before = setup::spool_depth(api).await.ok();
    }
    measured(opts, env, &sink.counters, &mut report).await?;
    if let (Some(api), Some(before)) = (&env.api, report.spool_depth_before) {
        report.spool_depth_after = setup::settled_depth(api, before).await.ok();
    }
    Ok(report)
}

fn blank_report(opts: &Options, env: &Env) -> Report {
    Report {
        target: match env.target {
            Target::Started => "postern",
            Target::External(_) => "external",
            Target::Direct => "direct",
        },
        mode: if opts.reuse { "reuse" } else { "conn" },
        pipelining: opts.pipelining,
        sessions: opts.sessions,
        messages: opts.messages,
        size: opts.size,
        rate_cap: opts.rate,
        ..Report::default()
    }
}

fn plan(opts: &Options, env: &Env, sender: &'static str, total: u64) -> Plan {
    Plan {
        addr: env.smtp,
        sessions: opts.sessions,
        total,
        reuse: opts.reuse,
        pipelining: opts.pipelining,
        rate: opts.rate,
        sender,
        body: env.body.clone(),
        run_tag: format!("{}.{}", env.tag, sender.split('@').next().unwrap_or("load")),
        date: env.date.clone(),
        timeout: Duration::from_secs(opts.stall),
    }
}

/// `--prefill`: held messages, sent as fast as possible (reuse and pipelining, no cap).
async fn prefill(opts: &Options, env: &Env, blackhole: &Counters) -> anyhow::Result<PrefillReport> {
    if let (Target::Started, Some(api)) = (env.target, &env.api) {
        setup::hold_account(api).await?;
    }
    eprintln!("load: prefilling the spool with {} messages", opts.prefill);
    let plan = Plan {
        reuse: true,
        pipelining: true,
        rate: None,
        ..plan(opts, env, HOLD_SENDER, opts.prefill)
    };
    let stall = Duration::from_secs(opts.stall);
    let done = setup::prefill(plan, blackhole, stall).await?;
    let secs = done.accept.as_secs_f64();
    Ok(PrefillReport {
        messages: done.accepted,
        accept_secs: round(secs, 3),
        accept_rate: rate(done.accepted, secs),
        settled_secs: round(done.settled.as_secs_f64(), 3),
    })
}

/// `--accounts` and `--users`.
async fn padding(opts: &Options, env: &Env, api: &Api) -> anyhow::Result<Option<PolicyReport>> {
    if opts.accounts == 0 && opts.users == 0 {
        return Ok(None);
    }
    eprintln!(
        "load: creating {} accounts and {} users",
        opts.accounts, opts.users
    );
    let accounts = setup::extra_accounts(api, opts.accounts, &env.tag).await?;
    let users = setup::extra_users(api, opts.users, opts.user_kind, &env.tag).await?;
    Ok(Some(PolicyReport {
        accounts: opts.accounts,
        accounts_secs: round(accounts.as_secs_f64(), 3),
        users: opts.users,
        user_kind: opts.user_kind.api_name(),
        users_secs: round(users.as_secs_f64(), 3),
    }))
}

/// The measured run: send, wait for the sink, read CPU and memory.
async fn measured(
    opts: &Options,
    env: &Env,
    sink: &Counters,
    report: &mut Report,
) -> anyhow::Result<()> {
    let delivered_before = sink.messages.load(Ordering::Relaxed);
    let ticks_before = env.pid.map(procfs::cpu_ticks).transpose()?;
    let own_before = procfs::cpu_ticks(std::process::id())?;
    eprintln!("load: sending {} messages", opts.messages);
    let (started, results) = drive::run(plan(opts, env, SENDER, opts.messages)).await;
    let accepted = results.samples.len() as u64;
    let stall = Duration::from_secs(opts.stall);
    wait_for_sink(sink, delivered_before + accepted, stall).await;
    let own = procfs::cpu_ticks(std::process::id())? - own_before;
    let own_ms = own as f64 * 1000.0 / procfs::ticks_per_second() as f64;
    report.generator_cpu_ms_per_msg = (accepted > 0).then(|| round(own_ms / accepted as f64, 4));
    if let (Some(pid), Some(before)) = (env.pid, ticks_before) {
        let secs = (procfs::cpu_ticks(pid)? - before) as f64 / procfs::ticks_per_second() as f64;
        report.cpu_secs = Some(round(secs, 3));
        report.cpu_ms_per_msg = (accepted > 0).then(|| round(secs * 1000.0 / accepted as f64, 4));
        let (rss, peak) = procfs::memory_kib(pid)?;
        report.rss_mib = Some(round(rss as f64 / 1024.0, 1));
        report.rss_peak_mib = Some(round(peak as f64 / 1024.0, 1));
    }
    report.delivered = sink.messages.load(Ordering::Relaxed) - delivered_before;
    report.duplicates = sink.duplicates.load(Ordering::Relaxed);
    figures(report, started, results, sink);
    Ok(())
}

/// Waits until the sink has counted `target` messages, or nothing arrived for `stall`.
async fn wait_for_sink(sink: &Counters, target: u64, stall: Duration) {
    let mut progress = (sink.messages.load(Ordering::Relaxed), Instant::now());
    while progress.0 < target {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = sink.messages.load(Ordering::Relaxed);
        if now != progress.0 {
            progress = (now, Instant::now());
        } else if progress.1.elapsed() > stall {
            eprintln!("load: nothing delivered for {stall:?}: {now} of {target} arrived");
            return;
        }
    }
}

/// Rates and latencies from the samples and the sink's arrival times.
fn figures(report: &mut Report, started: Instant, results: Results, sink: &Counters) {
    let accepted = results.samples.len() as u64;
    let last_accept = results.last_accept().unwrap_or(started);
    let mut latencies: Vec<Duration> = results.samples.iter().map(|s| s.latency).collect();
    let arrivals: Vec<(Instant, Duration)> = results
        .samples
        .iter()
        .filter_map(|s| {
            sink.arrival(s.seq)
                .map(|at| (at, at.saturating_duration_since(s.sent)))
        })
        .collect();
    let last_arrival = arrivals.iter().map(|a| a.0).max().unwrap_or(started);
    let mut e2e: Vec<Duration> = arrivals.iter().map(|a| a.1).collect();
    report.accepted = accepted;
    report.failed = results.failed;
    report.connections = results.connections;
    report.errors = results.errors;
    report.accept_secs = round((last_accept - started).as_secs_f64(), 3);
    report.accept_rate = rate(accepted, report.accept_secs);
    report.e2e_secs = round((last_arrival.max(last_accept) - started).as_secs_f64(), 3);
    report.e2e_rate = rate(arrivals.len() as u64, report.e2e_secs);
    report.latency_ms = Percentiles::of(&mut latencies);
    report.e2e_latency_ms = Percentiles::of(&mut e2e);
}

/// Messages per second, to a tenth.
fn rate(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        round(count as f64 / secs, 1)
    } else {
        0.0
    }
}
