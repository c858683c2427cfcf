//! One load phase: `sessions` tasks on the multi-threaded runtime take sequence numbers
//! from one shared counter until `total` messages have been tried, each over its own
//! connection (kept with `reuse`, one per message otherwise), optionally paced to a
//! global rate. Each session keeps its own samples; they are merged once at the end.
//!
//! It does not wait for delivery (that is the sink's count) and does not print.

use crate::client::{Client, Outcome};
use crate::message::{self, Envelope, Shape};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one phase sends, and how.
#[derive(Debug, Clone)]
pub struct Plan {
    pub addr: SocketAddr,
    pub sessions: usize,
    pub total: u64,
    pub reuse: bool,
    pub pipelining: bool,
    /// Messages per second over all sessions.
    pub rate: Option<f64>,
    pub sender: &'static str,
    pub body: Arc<Vec<u8>>,
    pub run_tag: String,
    pub date: String,
    /// Longest wait for one reply or connection.
    pub timeout: Duration,
}

/// One accepted message.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub seq: u64,
    /// When its final dot was written.
    pub sent: Instant,
    /// From the dot to the 250.
    pub latency: Duration,
}

/// What a phase did.
#[derive(Debug, Default)]
pub struct Results {
    pub samples: Vec<Sample>,
    /// Messages not accepted: refused, or lost with their connection.
    pub failed: u64,
    pub connections: u64,
    /// Failure reasons (reply text or I/O error) and how often each happened.
    pub errors: BTreeMap<String, u64>,
}

impl Results {
    fn fail(&mut self, reason: String) {
        self.failed += 1;
        *self.errors.entry(reason).or_default() += 1;
    }

    fn merge(&mut self, other: Results) {
        self.samples.extend(other.samples);
        self.failed += other.failed;
        self.connections += other.connections;
        for (reason, count) in other.errors {
            *self.errors.entry(reason).or_default() += count;
        }
    }

    /// When the last 250 arrived.
    pub fn last_accept(&self) -> Option<Instant> {
        self.samples.iter().map(|s| s.sent + s.latency).max()
    }
}

/// Runs the phase; `started` is when it began.
pub async fn run(plan: Plan) -> (Instant, Results) {
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..plan.sessions)
        .map(|_| tokio::spawn(session(plan.clone(), next.clone(), started)))
        .collect();
    let mut results = Results::default();
    for task in tasks {
        match task.await {
            Ok(session) => results.merge(session),
            Err(error) => results.fail(format!("session task failed: {error}")),
        }
    }
    (started, results)
}

/// One session: claims sequence numbers until none are left.
async fn session(plan: Arc<Plan>, next: Arc<AtomicU64>, started: Instant) -> Results {
    let mut results = Results::default();
    let mut envelope = Envelope::new(plan.sender);
    let mut message = message::message(&Shape {
        sender: plan.sender,
        run_tag: &plan.run_tag,
        date: &plan.date,
        body: &plan.body,
    });
    let mut kept: Option<Client> = None;
    while let Some(seq) = claim(&next, plan.total) {
        pace(plan.rate, started, seq).await;
        envelope.set(seq);
        message.set(seq);
        let client = match kept.take() {
            Some(client) => client,
            None => match connect(&plan, &mut results).await {
                Some(client) => client,
                None => continue,
            },
        };
        let client = send(&plan, client, seq, &envelope, message.bytes(), &mut results).await;
        match (client, plan.reuse) {
            (Some(client), true) => kept = Some(client),
            (Some(client), false) => client.quit().await,
            (None, _) => {}
        }
    }
    if let Some(client) = kept {
        client.quit().await;
    }
    results
}

/// The next sequence number, while some are left.
fn claim(next: &AtomicU64, total: u64) -> Option<u64> {
    let seq = next.fetch_add(1, Ordering::Relaxed);
    (seq < total).then_some(seq)
}

/// Waits until message `seq` is due under the rate cap.
async fn pace(rate: Option<f64>, started: Instant, seq: u64) {
    if let Some(rate) = rate {
        let due = started + Duration::from_secs_f64(seq as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
    }
}

/// A new connection, or `None` with the failure recorded against the message.
async fn connect(plan: &Plan, results: &mut Results) -> Option<Client> {
    results.connections += 1;
    match tokio::time::timeout(plan.timeout, Client::open(plan.addr)).await {
        Ok(Ok(Ok(client))) => Some(client),
        Ok(Ok(Err(refusal))) => fail(results, format!("at connect: {refusal}")),
        Ok(Err(error)) => fail(results, format!("connect: {error}")),
        Err(_) => fail(results, "connect: timed out".into()),
    }
}

/// One transaction; returns the client while it is still usable.
async fn send(
    plan: &Plan,
    mut client: Client,
    seq: u64,
    envelope: &Envelope,
    message: &[u8],
    results: &mut Results,
) -> Option<Client> {
    let transaction = client.transaction(envelope, message, plan.pipelining);
    match tokio::time::timeout(plan.timeout, transaction).await {
        Ok(Ok(Outcome::Accepted { sent, latency })) => {
            results.samples.push(Sample { seq, sent, latency });
            Some(client)
        }
        Ok(Ok(Outcome::Refused(text))) => {
            results.fail(text);
            Some(client)
        }
        Ok(Err(error)) => fail(results, format!("transaction: {error}")),
        Err(_) => fail(results, "transaction: no reply in time".into()),
    }
}

fn fail(results: &mut Results, reason: String) -> Option<Client> {
    results.fail(reason);
    None
}
