//! The accept loop of one SMTP listener: a global cap and a per-IP cap on concurrent
//! sessions (over either, the client gets `421 4.7.0` saying which, and the connection
//! closes), one task per session, and a graceful stop that lets sessions in flight finish
//! up to a deadline. How long a session may hold its slot is `smtp::deadline`'s business.

use crate::metrics::Reject;
use crate::smtp::{self, reply, Shared};
use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Counts sessions per client address; the count drops with the guard.
struct IpGuard {
    ip: IpAddr,
    counts: Arc<DashMap<IpAddr, usize>>,
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        self.counts.remove_if_mut(&self.ip, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

fn claim(counts: &Arc<DashMap<IpAddr, usize>>, ip: IpAddr, max: usize) -> Option<IpGuard> {
    let mut entry = counts.entry(ip).or_insert(0);
    if *entry >= max {
        return None;
    }
    *entry += 1;
    drop(entry);
    Some(IpGuard {
        ip,
        counts: counts.clone(),
    })
}

/// Accepts connections on `listener` until `shutdown` turns true, then waits up to `grace`
/// for sessions in flight.
pub async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(shared.limits.max_connections));
    let per_ip = Arc::new(DashMap::new());
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                if shared.spool.is_paused() {
                    shared.metrics.reject(Reject::Draining);
                    tokio::spawn(refuse(stream, reply::DRAINING));
                    continue;
                }
                let permit = slots.clone().try_acquire_owned().ok();
                let full = permit.is_none();
                let guard = claim(&per_ip, peer.ip(), shared.limits.connections_per_ip);
                let (Some(guard), Some(permit)) = (guard, permit) else {
                    let (limit, text) = match full {
                        true => ("max_connections", reply::TOO_MANY_CONNECTIONS),
                        false => ("connections_per_ip", reply::TOO_MANY_CONNECTIONS_FROM_IP),
                    };
                    shared.metrics.reject(Reject::ConnectionLimit);
                    tracing::warn!(%peer, listener = %shared.listener.name, limit, "connection limit reached");
                    tokio::spawn(refuse(stream, text));
                    continue;
                };
                let shared = shared.clone();
                sessions.spawn(async move {
                    shared.metrics.sessions.increment(1);
                    shared.metrics.sessions_active.increment(1.0);
                    if let Err(error) = smtp::serve(stream, peer, shared.clone()).await {
                        tracing::debug!(%peer, %error, "session ended with an error");
                    }
                    shared.metrics.sessions_active.decrement(1.0);
                    drop((guard, permit));
                });
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drain = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!(listener = %shared.listener.name, "sessions still open at shutdown; closing them");
        sessions.shutdown().await;
    }
}

async fn refuse(mut stream: TcpStream, text: &'static str) {
    let line = format!("{text}\r\n");
    let _ = stream.write_all(line.as_bytes()).await;
    let _ = stream.shutdown().await;
}
