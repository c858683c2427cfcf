//! A small pool of dedicated threads for argon2 work. Each verification holds ~19 MiB; on
//! the runtime's blocking pool those allocations land in many threads' malloc arenas and
//! stay there, so a flood of failing logins grows the process by hundreds of MiB. A fixed
//! set of threads bounds both the concurrency and the memory the allocator keeps.

use super::PolicyError;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Runs CPU-heavy closures on `threads` dedicated threads, in arrival order.
#[derive(Clone)]
pub struct Hasher {
    tx: mpsc::Sender<Job>,
}

impl Hasher {
    /// Starts `threads` (at least one) worker threads; they end when every handle is dropped.
    pub fn new(threads: usize) -> Hasher {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("postern-hash-{n}"))
                .spawn(move || work(&rx));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password-hashing thread");
            }
        }
        Hasher { tx }
    }

    /// Runs `job` on a hashing thread and returns its result.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PolicyError> {
        let (done, wait) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
        });
        self.tx
            .send(job)
            .map_err(|_| PolicyError::Hash("hashing threads stopped".into()))?;
        wait.await
            .map_err(|_| PolicyError::Hash("hashing thread failed".into()))
    }
}

fn work(rx: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_jobs_with_bounded_concurrency() {
        let hasher = Hasher::new(2);
        let active = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let (hasher, active, peak) = (hasher.clone(), active.clone(), peak.clone());
                tokio::spawn(async move {
                    hasher
                        .run(move || {
                            let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(10));
                            active.fetch_sub(1, Ordering::SeqCst);
                            n * 2
                        })
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap().unwrap());
        }
        assert_eq!(results, (0..16).map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(
            peak.load(Ordering::SeqCst),
            2,
            "two threads, never more at once"
        );
    }
}
