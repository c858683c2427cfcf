//! Sending limits under a burst: `cargo bench --bench burst -- [--messages N]
//! [--per-minute N] [--connections N]` (defaults 500, 30, 3: a full run takes about 16
//! minutes, mostly idle; `--per-minute 300` takes about one).
//!
//! A helpdesk mailbox submits a burst of messages at once; Postern (in this process, on
//! loopback, its data in a temporary directory) relays them to a fake provider
//! (`limits/provider.rs`) that enforces, per mailbox, `per-minute` messages in any sliding
//! minute and `connections` concurrent sessions, and refuses beyond them (`432 4.3.2`,
//! `421 4.7.0`) as Exchange Online does. Postern is configured with the same figures as
//! `[upstreams.m365.limits.per_account]` (the `microsoft365` preset's, scaled with
//! `--per-minute`). It reports the messages delivered, the provider's refusals (the point:
//! zero), the elapsed time against the least the limit allows (the first `per-minute` at
//! once, then one window per further `per-minute`) and the process's CPU time.

#[allow(dead_code)]
#[path = "load/http.rs"]
mod http;
#[path = "limits/provider.rs"]
mod provider;

use postern::config::{
    ApiConfig, Config, ListenerConfig, SmtpUpstream, TlsConfig, TlsMode, UpstreamConfig,
    UpstreamLimits, UpstreamTls,
};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const SENDER: &str = "support@contoso.com";
const PASSWORD: &str = "support-password-0123456789";
const TOKEN: &str = "limits-bench-token-0123456789abcdef0123456789";

struct Options {
    messages: usize,
    per_minute: usize,
    connections: usize,
}

fn options() -> Options {
    let mut opts = Options {
        messages: 500,
        per_minute: 30,
        connections: 3,
    };
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (flag.as_str(), value) {
            ("--messages", Some(n)) => opts.messages = n,
            ("--per-minute", Some(n)) => opts.per_minute = n,
            ("--connections", Some(n)) => opts.connections = n,
            _ => {
                eprintln!("usage: limits [--messages N] [--per-minute N] [--connections N]");
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
    let provider = provider::Provider::start(opts.connections, opts.per_minute).await?;
    let dir = tempfile::tempdir()?;
    let limits: UpstreamLimits = toml::from_str(&format!(
        "[per_account]\nconnections = {}\nmessages_per_minute = {}\n\
         recipients_per_day = 10000\nrecipients_per_message = 500\n",
        opts.connections, opts.per_minute
    ))?;
    let running = postern::app::start(
        config(dir.path(), provider.addr.port(), limits),
        Some(TOKEN.into()),
    )
    .await?;
    let mut api = http::Http::connect(running.api, TOKEN).await?;
    let user = format!(
        r#"{{"login":"{SENDER}","email":"{SENDER}","kind":"staff","password":"{PASSWORD}"}}"#
    );
    let created = api.call("POST", "/api/v1/users", Some(&user)).await?;
    anyhow::ensure!(created.status == 201, "user: {}", created.text());
    let smtp = running.listener("plain").expect("the plain listener");
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    submit(smtp, opts.messages).await?;
    let submitted = started.elapsed();
    let least = Duration::from_secs(60) * ((opts.messages.max(1) - 1) / opts.per_minute) as u32;
    let deadline = started + least * 2 + Duration::from_secs(120);
    let mut report = Instant::now();
    loop {
        let (accepted, threads, rate, most) = provider.counts();
        if accepted >= opts.messages || Instant::now() > deadline {
            break;
        }
        if report.elapsed() >= Duration::from_secs(30) {
            eprintln!(
                "limits: {:>5.0} s  {accepted} delivered, {} refused, {most} sessions at most",
                started.elapsed().as_secs_f64(),
                threads + rate
            );
            report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu0;
    let (accepted, threads, rate, most) = provider.counts();
    println!("messages               {}", opts.messages);
    println!(
        "limits                 {} /minute, {} connections",
        opts.per_minute, opts.connections
    );
    println!("submitted in           {:.1} s", submitted.as_secs_f64());
    println!("delivered              {accepted}");
    println!(
        "provider refusals      {} (4.3.2: {threads}, 4.7.0: {rate})",
        threads + rate
    );
    println!("sessions at once, most {most}");
    println!("elapsed                {:.1} s", elapsed.as_secs_f64());
    println!(
        "least the limit allows {:.1} s (ratio {:.3})",
        least.as_secs_f64(),
        elapsed.as_secs_f64() / least.as_secs_f64().max(1.0)
    );
    println!(
        "CPU (whole process)    {cpu:.2} s, {:.2} ms a message",
        cpu * 1000.0 / opts.messages as f64
    );
    println!(
        "{{\"messages\":{},\"per_minute\":{},\"connections\":{},\"delivered\":{accepted},\"refusals\":{},\"most_sessions\":{most},\"elapsed_s\":{:.1},\"least_s\":{:.1},\"cpu_s\":{cpu:.2}}}",
        opts.messages, opts.per_minute, opts.connections, threads + rate, elapsed.as_secs_f64(), least.as_secs_f64()
    );
    running.shutdown().await;
    anyhow::ensure!(accepted == opts.messages, "not every message was delivered");
    Ok(())
}

/// Postern on loopback: one plain submission listener, the API, upstream `m365` with
/// `limits` as the only (default) upstream.
fn config(dir: &std::path::Path, port: u16, limits: UpstreamLimits) -> Config {
    let mut config = Config {
        data_dir: dir.join("data"),
        hostname: "gw.bench".into(),
        api: ApiConfig {
            bind: "127.0.0.1:0".parse().expect("an address"),
        },
        tls: TlsConfig {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        },
        listeners: vec![ListenerConfig {
            name: "plain".into(),
            bind: "127.0.0.1:0".parse().expect("an address"),
            tls: TlsMode::None,
            allow_plaintext_auth: true,
            ..ListenerConfig::default()
        }],
        default_upstream: "m365".into(),
        ..Config::default()
    };
    config.inbound.authenticate = false;
    config.upstreams.clear();
    config.upstreams.insert(
        "m365".into(),
        UpstreamConfig::Smtp(SmtpUpstream {
            host: "127.0.0.1".into(),
            port,
            tls: UpstreamTls::None,
            auth: Default::default(),
            username: String::new(),
            password: String::new(),
            ca_file: None,
            pool_size: 4,
            pool_idle_secs: 30,
            max_connections: 8,
            timeout_secs: 30,
            chunking: false,
            oauth: None,
            limits: Some(limits),
        }),
    );
    config
}

/// Submits `count` messages from the mailbox in one session.
async fn submit(addr: std::net::SocketAddr, count: usize) -> anyhow::Result<()> {
    let tcp = TcpStream::connect(addr).await?;
    let mut smtp = BufReader::new(tcp);
    expect(&mut smtp, None, 220).await?;
    expect(&mut smtp, Some("EHLO bench.test"), 250).await?;
    let auth = base64(&format!("\0{SENDER}\0{PASSWORD}"));
    expect(&mut smtp, Some(&format!("AUTH PLAIN {auth}")), 235).await?;
    for n in 0..count {
        expect(&mut smtp, Some(&format!("MAIL FROM:<{SENDER}>")), 250).await?;
        expect(
            &mut smtp,
            Some(&format!("RCPT TO:<customer{n}@example.net>")),
            250,
        )
        .await?;
        expect(&mut smtp, Some("DATA"), 354).await?;
        let body = format!(
            "From: Support <{SENDER}>\r\nTo: <customer{n}@example.net>\r\nSubject: Ticket {n}\r\n\
             Message-ID: <ticket-{n}@contoso.com>\r\n\r\nYour ticket {n} was updated.\r\n."
        );
        expect(&mut smtp, Some(&body), 250).await?;
    }
    expect(&mut smtp, Some("QUIT"), 221).await?;
    Ok(())
}

async fn expect(
    smtp: &mut BufReader<TcpStream>,
    line: Option<&str>,
    code: u16,
) -> anyhow::Result<()> {
    if let Some(line) = line {
        smtp.get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
    }
    loop {
        let mut reply = String::new();
        anyhow::ensure!(smtp.read_line(&mut reply).await? > 0, "connection closed");
        if reply.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        anyhow::ensure!(reply.starts_with(&code.to_string()), "{line:?}: {reply}");
        return Ok(());
    }
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// User and system CPU time of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
