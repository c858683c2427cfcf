//! An HTTP server in the test that receives webhook calls: it records each request (head,
//! body, when) and answers with a status the test may change; with `stall_first`, it
//! never answers its first call (the connection is held open, as a hung receiver).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One request the receiver got: header block and body.
#[derive(Clone, Debug)]
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
    pub at: Instant,
}

/// The receiver; clones share it.
#[derive(Clone)]
pub struct Receiver {
    /// `http://ADDR/hooks`.
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    /// The status of the answers from now on.
    pub status: Arc<AtomicU16>,
    /// Notified at each request.
    pub arrived: Arc<Notify>,
}

impl Receiver {
    /// Serves on `listener`, answering `status`.
    pub async fn serve(listener: TcpListener, status: u16, stall_first: bool) -> Receiver {
        let receiver = Receiver {
            url: format!("http://{}/hooks", listener.local_addr().unwrap()),
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(status)),
            arrived: Arc::default(),
        };
        let this = receiver.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let this = this.clone();
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    let first = {
                        let mut got = this.got.lock().unwrap();
                        got.push(request);
                        got.len() == 1
                    };
                    this.arrived.notify_waiters();
                    if first && stall_first {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    let status = this.status.load(Ordering::SeqCst);
                    let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 8\r\nConnection: close\r\n\r\nanswered");
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        receiver
    }

    /// On a fresh loopback port, answering `200`.
    pub async fn start(stall_first: bool) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve(listener, 200, stall_first).await
    }

    pub fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        if raw.len() >= end + 4 + length {
            let body = raw[end + 4..end + 4 + length].to_vec();
            let at = Instant::now();
            return Some(Received { head, body, at });
        }
    }
}
