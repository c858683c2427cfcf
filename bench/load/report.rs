//! The figures of one generator run and their two outputs: a human table on stdout and,
//! with `--json`, one JSON line (stable field names, for `bench/RESULTS.md` and scripts).
//! Percentiles are nearest-rank over every sample, sorted; nothing is sampled away.

use crate::idle::IdleReport;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// `postern`, `external` or `direct`.
    pub target: &'static str,
    /// `conn` (one connection per message) or `reuse`.
    pub mode: &'static str,
    pub pipelining: bool,
    pub sessions: usize,
    pub messages: u64,
    pub size: usize,
    pub rate_cap: Option<f64>,
    pub accepted: u64,
    pub failed: u64,
    pub connections: u64,
    /// Messages the sink counted, and how many of them it had counted before.
    pub delivered: u64,
    pub duplicates: u64,
    pub accept_secs: f64,
    pub accept_rate: f64,
    pub e2e_secs: f64,
    pub e2e_rate: f64,
    /// From the final dot to the 250, in milliseconds.
    pub latency_ms: Option<Percentiles>,
    /// From the final dot to the sink's receipt of the final dot, in milliseconds.
    pub e2e_latency_ms: Option<Percentiles>,
    pub cpu_ms_per_msg: Option<f64>,
    pub cpu_secs: Option<f64>,
    /// The generator's own CPU (client and sink), to show it is not the bottleneck.
    pub generator_cpu_ms_per_msg: Option<f64>,
    pub rss_mib: Option<f64>,
    pub rss_peak_mib: Option<f64>,
    pub spool_depth_before: Option<u64>,
    pub spool_depth_after: Option<u64>,
    pub prefill: Option<PrefillReport>,
    pub policy: Option<PolicyReport>,
    pub idle: Option<IdleReport>,
    /// Failure reasons and counts.
    pub errors: BTreeMap<String, u64>,
}

/// p50, p90, p99 and max, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Over `samples`, which it sorts; `None` when there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Percentiles> {
        samples.sort_unstable();
        let rank = |p: f64| {
            let index = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            millis(samples[index.clamp(1, samples.len()) - 1])
        };
        let max = millis(*samples.last()?);
        Some(Percentiles {
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max,
        })
    }
}

/// Milliseconds, to the microsecond.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// `value` to `decimals` places (keeps the JSON line short).
pub fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// What `--prefill` did before the run.
#[derive(Debug, Clone, Serialize)]
pub struct PrefillReport {
    pub messages: u64,
    pub accept_secs: f64,
    pub accept_rate: f64,
    /// Until Postern had tried each held message once.
    pub settled_secs: f64,
}

/// What `--accounts` and `--users` created before the run.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    pub accounts: usize,
    pub accounts_secs: f64,
    pub users: usize,
    pub user_kind: &'static str,
    pub users_secs: f64,
}

impl Report {
    /// The table for people.
    pub fn print_table(&self) {
        let pipelining = if self.pipelining { ", pipelining" } else { "" };
        let rate = self
            .rate_cap
            .map_or(String::new(), |r| format!(", capped at {r} msg/s"));
        println!(
            "\n{} x {} octets, {} sessions, {}{pipelining}{rate} -> {}\n",
            self.messages, self.size, self.sessions, self.mode, self.target
        );
        println!("| measure | value |\n|---|---|");
        for (name, value) in self.rows() {
            println!("| {name} | {value} |");
        }
        for (reason, count) in &self.errors {
            println!("| failure | {count} x {reason} |");
        }
    }

    /// Prints the JSON line.
    pub fn print_json(&self) {
        match serde_json::to_string(self) {
            Ok(line) => println!("{line}"),
            Err(error) => eprintln!("load: cannot encode the report: {error}"),
        }
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            (
                "accepted / sent",
                format!("{} / {}", self.accepted, self.messages),
            ),
            ("delivered to the sink", self.delivered_text()),
            (
                "accept rate",
                format!("{:.0} msg/s ({:.2} s)", self.accept_rate, self.accept_secs),
            ),
            (
                "end-to-end rate",
                format!("{:.0} msg/s ({:.2} s)", self.e2e_rate, self.e2e_secs),
            ),
            ("latency dot -> 250", percentiles(self.latency_ms)),
            ("latency dot -> sink", percentiles(self.e2e_latency_ms)),
            ("connections opened", self.connections.to_string()),
        ];
        rows.extend(self.server_rows());
        rows.extend(self.setup_rows());
        rows
    }

    fn delivered_text(&self) -> String {
        match self.duplicates {
            0 => self.delivered.to_string(),
            dup => format!("{} ({dup} duplicates)", self.delivered),
        }
    }

    fn server_rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = Vec::new();
        if let (Some(ms), Some(secs)) = (self.cpu_ms_per_msg, self.cpu_secs) {
            rows.push(("server CPU", format!("{ms:.3} ms/msg ({secs:.2} s)")));
        }
        if let Some(ms) = self.generator_cpu_ms_per_msg {
            rows.push(("generator CPU (client + sink)", format!("{ms:.3} ms/msg")));
        }
        if let (Some(rss), Some(peak)) = (self.rss_mib, self.rss_peak_mib) {
            rows.push((
                "server RSS at end",
                format!("{rss:.1} MiB (peak {peak:.1} MiB)"),
            ));
        }
        if let (Some(before), Some(after)) = (self.spool_depth_before, self.spool_depth_after) {
            rows.push(("spool depth before / after", format!("{before} / {after}")));
        }
        if let Some(idle) = &self.idle {
            rows.push((
                "idle sessions",
                format!(
                    "{} held ({} failed), RSS {:.1} -> {:.1} MiB: {:.0} KiB per 1,000",
                    idle.sessions,
                    idle.failed,
                    idle.rss_before_kib as f64 / 1024.0,
                    idle.rss_after_kib as f64 / 1024.0,
                    idle.kib_per_1000
                ),
            ));
        }
        rows
    }

    fn setup_rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = Vec::new();
        if let Some(p) = &self.prefill {
            rows.push((
                "prefill",
                format!(
                    "{} held messages: accepted at {:.0} msg/s, all tried once after {:.1} s",
                    p.messages, p.accept_rate, p.settled_secs
                ),
            ));
        }
        if let Some(p) = &self.policy {
            rows.push((
                "policy size",
                format!(
                    "+{} accounts ({:.1} s), +{} {} users ({:.1} s)",
                    p.accounts, p.accounts_secs, p.users, p.user_kind, p.users_secs
                ),
            ));
        }
        rows
    }
}

fn percentiles(p: Option<Percentiles>) -> String {
    p.map_or("-".into(), |p| {
        format!(
            "p50 {:.2} / p90 {:.2} / p99 {:.2} / max {:.2} ms",
            p.p50, p.p90, p.p99, p.max
        )
    })
}
