//! Memory per idle session: open N connections (greeting read, EHLO answered), hold them,
//! and compare the server's resident memory before and after. The connections are
//! closed (QUIT) once measured.
//!
//! It sends no mail.

use crate::client::Client;
use crate::procfs;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Connections being opened at once.
const PARALLEL: usize = 100;

/// What holding idle sessions cost.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    pub sessions: usize,
    /// Sessions that did not get to an EHLO reply.
    pub failed: usize,
    pub open_secs: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub kib_per_1000: f64,
}

/// Opens `count` idle sessions to `addr` and measures process `pid` (when known).
pub async fn measure(addr: SocketAddr, count: usize, pid: Option<u32>) -> IdleReport {
    let rss = || {
        pid.and_then(|pid| procfs::memory_kib(pid).ok())
            .map_or(0, |m| m.0)
    };
    let before = rss();
    let started = Instant::now();
    let clients = open(addr, count).await;
    let open_secs = started.elapsed().as_secs_f64();
    // Let the server finish any work the last connections started.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss();
    let held = clients.len();
    for client in clients {
        client.quit().await;
    }
    let per = match held {
        0 => 0.0,
        n => (after as f64 - before as f64) * 1000.0 / n as f64,
    };
    IdleReport {
        sessions: held,
        failed: count - held,
        open_secs: crate::report::round(open_secs, 3),
        rss_before_kib: before,
        rss_after_kib: after,
        kib_per_1000: crate::report::round(per, 1),
    }
}

/// The clients that got through greeting and EHLO.
async fn open(addr: SocketAddr, count: usize) -> Vec<Client> {
    let gate = Arc::new(Semaphore::new(PARALLEL));
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let gate = gate.clone();
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.ok()?;
                let opened = tokio::time::timeout(Duration::from_secs(30), Client::open(addr));
                opened.await.ok()?.ok()?.ok()
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(count);
    for task in tasks {
        if let Ok(Some(client)) = task.await {
            clients.push(client);
        }
    }
    clients
}
