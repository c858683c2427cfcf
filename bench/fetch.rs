//! Fetching a helpdesk mailbox's backlog: `cargo bench --bench fetch -- [--messages N]
//! [--senders N] [--after seen|move|delete]` (defaults 10,000, 100, move).
//!
//! A real Dovecot (the test harness's, `tests/common/dovecot.rs`, on loopback, clear text)
//! holds N messages in the helpdesk mailbox's INBOX, from `senders` different customers
//! (each becomes a requester once). Postern (in this process, its data in a temporary
//! directory) is then given the mailbox's `inbound.fetch` settings and reads the backlog
//! over IMAP: each message taken, recorded as a ticket, the state synced, the batch
//! acknowledged. Reported: the time until every message is a ticket and the folder is
//! empty, the rate, this process's CPU time per message (Postern's; Dovecot's is its own),
//! and the check that each message is exactly one ticket (the fetch counters and the
//! ticket list).

#[allow(dead_code)]
#[path = "load/http.rs"]
mod http;

#[path = "../tests/common/apt.rs"]
mod apt;
#[path = "../tests/common/dovecot.rs"]
mod dovecot;

/// Free loopback ports, all bound at once (what `dovecot` asks its parent for).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

use dovecot::Dovecot;
use postern::config::{ApiConfig, Config, TlsConfig};
use std::time::{Duration, Instant};

const DESK: &str = "desk@help.example";
const PASSWORD: &str = "desk-bench-secret";
const TOKEN: &str = "fetch-bench-token-0123456789abcdef0123456789";

struct Options {
    messages: usize,
    senders: usize,
    after: String,
}

fn options() -> Options {
    let mut opts = Options {
        messages: 10_000,
        senders: 100,
        after: "move".into(),
    };
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next();
        let number = value.and_then(|v| v.parse().ok());
        match (flag.as_str(), number, value) {
            ("--messages", Some(n), _) => opts.messages = n,
            ("--senders", Some(n), _) => opts.senders = n.max(1),
            ("--after", _, Some(v)) if ["seen", "move", "delete"].contains(&v.as_str()) => {
                opts.after = v.clone()
            }
            _ => {
                eprintln!("usage: fetch [--messages N] [--senders N] [--after seen|move|delete]");
                std::process::exit(2);
            }
        }
    }
    opts
}

fn main() -> anyhow::Result<()> {
    let opts = options();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(opts))
}

async fn run(opts: Options) -> anyhow::Result<()> {
    let mut dovecot = Dovecot::new(&[(DESK, PASSWORD)], &["Processed"]);
    dovecot.start();
    let filled = Instant::now();
    for i in 0..opts.messages {
        let message = format!(
            "Return-Path: <c{s}@customer.example>\r\nFrom: Customer {s} <c{s}@customer.example>\r\n\
             To: {DESK}\r\nSubject: Question {i}\r\nMessage-ID: <q{i}@customer.example>\r\n\
             Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nHello, question number {i}.\r\n",
            s = i % opts.senders
        );
        dovecot.deliver(DESK, "INBOX", message.as_bytes());
    }
    eprintln!(
        "fetch: {} messages put in the mailbox in {:.1} s",
        opts.messages,
        filled.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let config = Config {
        data_dir: dir.path().join("data"),
        hostname: "gw.bench".into(),
        api: ApiConfig {
            bind: "127.0.0.1:0".parse()?,
        },
        tls: TlsConfig {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        },
        listeners: Vec::new(),
        ..Config::default()
    };
    let running = postern::app::start(config, Some(TOKEN.into())).await?;
    let api = running.api;
    let mut client = http::Http::connect(api, TOKEN).await?;
    let account = serde_json::json!({
        "name": "Desk", "address": DESK,
        "inbound": {"auto_create_requesters": true,
            "fetch": {"kind": "imap", "host": "127.0.0.1", "port": dovecot.imap_port,
                      "tls": "none", "username": DESK, "password": PASSWORD,
                      "after": opts.after, "move_to": "Processed", "poll_secs": 1}}
    });
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let created = client
        .call("POST", "/api/v1/accounts", Some(&account.to_string()))
        .await?;
    anyhow::ensure!(created.status == 201, "account: {}", created.text());
    let recorded = loop {
        let metrics = client.call("GET", "/metrics", None).await?.text();
        let recorded = counter(&metrics, "recorded");
        if recorded >= opts.messages as u64 {
            break recorded;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "only {recorded} recorded after an hour"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    // Acknowledged too: the folder empties (move, delete) at the end of the last batch.
    let emptied = Instant::now();
    while opts.after != "seen" && !dovecot.messages(DESK, "INBOX").is_empty() {
        anyhow::ensure!(
            emptied.elapsed() < Duration::from_secs(60),
            "INBOX not emptied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tickets = client.call("GET", "/api/v1/tickets", None).await?;
    let tickets: serde_json::Value = serde_json::from_str(&tickets.text())?;
    let count = tickets.as_array().map_or(0, Vec::len);
    let metrics = client.call("GET", "/metrics", None).await?.text();
    let again = counter(&metrics, "already_recorded");
    let aside = counter(&metrics, "set_aside");
    println!(
        "fetch: {} messages from {} senders over IMAP (after = {}): {:.1} s, {:.0} messages/s, \
         {:.3} ms CPU per message ({:.1} s CPU); {} recorded, {} tickets, {} recorded before, \
         {} set aside",
        opts.messages,
        opts.senders,
        opts.after,
        elapsed,
        opts.messages as f64 / elapsed,
        cpu * 1000.0 / opts.messages as f64,
        cpu,
        recorded,
        count,
        again,
        aside,
    );
    anyhow::ensure!(
        count == opts.messages && recorded == opts.messages as u64 && again == 0 && aside == 0,
        "not exactly once"
    );
    running.shutdown().await;
    dovecot.stop();
    Ok(())
}

/// `postern_fetch_messages_total{mailbox="Desk",outcome=…}` in `metrics`.
fn counter(metrics: &str, outcome: &str) -> u64 {
    let series = format!("postern_fetch_messages_total{{mailbox=\"Desk\",outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// User and system CPU time of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
