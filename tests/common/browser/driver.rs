//! Talking to chromedriver without fantoccini: its readiness, ending a session from `Drop`
//! (which cannot await), and finding the processes a session left.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// chromedriver's answer to `GET /status`, if it answers. (chromedriver refuses requests
/// whose `Host` is not local, so not the tests' usual HTTP client.)
pub(super) async fn driver_status(port: u16) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request =
        format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    // It keeps the connection open: read until the body is complete.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !complete(&answer) {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&answer).into_owned())
}

/// Whether `answer` holds an HTTP response's head and all the body its `Content-Length`
/// announces.
fn complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim().eq_ignore_ascii_case("content-length");
        name.then(|| value.trim().parse::<usize>().ok()).flatten()
    });
    length.is_none_or(|length| body.len() >= length)
}

/// `DELETE /session/{id}` to chromedriver over a plain socket (Drop cannot await): the
/// driver then quits chromium and reaps it. Errors are ignored.
pub(super) fn delete_session(port: u16, session: &str) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !complete(&answer) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Running processes whose command line contains `path` (zombies have none).
pub fn processes_naming(path: &Path) -> Vec<libc::pid_t> {
    let needle = path.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}
