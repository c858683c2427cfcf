//! The one HTTP client (`net::http::Client`) against a real HTTP/1.1 server on 127.0.0.1
//! in the test: a redirect is answered as it came, not followed; an answer over the size
//! limit is cut; two requests to one host share one connection; a server that does not
//! answer in time gives `HttpError::Timeout`, with the client's limit or one given for
//! the request (`send_within`).

use postern::net::http::{parse_url, Client, HttpError};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server answers to a request for `path`.
fn answer(path: &str) -> Vec<u8> {
    let head = |status: &str, extra: &str, length: usize| {
        format!("HTTP/1.1 {status}\r\n{extra}Content-Length: {length}\r\n\r\n").into_bytes()
    };
    match path {
        "/redirect" => head("302 Found", "Location: http://127.0.0.1:1/elsewhere\r\n", 0),
        "/big" => {
            let mut out = head("200 OK", "", 3 * 1024 * 1024);
            out.resize(out.len() + 3 * 1024 * 1024, b'x');
            out
        }
        _ => [head("200 OK", "", 5), b"hello".to_vec()].concat(),
    }
}

/// Reads one request's head (these requests carry no body); its path, `None` at EOF.
async fn request(stream: &mut TcpStream) -> Option<String> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        raw.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&raw);
    text.split(' ').nth(1).map(str::to_string)
}

/// A keep-alive server; the number of connections it accepted.
async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                while let Some(path) = request(&mut stream).await {
                    if path == "/slow" {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    if stream.write_all(&answer(&path)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

fn client() -> Client {
    Client::new(Duration::from_secs(5)).unwrap()
}

#[tokio::test]
async fn a_redirect_is_answered_as_it_came() {
    let (addr, _) = server().await;
    let response = client()
        .send("GET", &format!("http://{addr}/redirect"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("location"),
        Some("http://127.0.0.1:1/elsewhere")
    );
}

#[tokio::test]
async fn an_answer_over_the_limit_is_cut_at_one_mebibyte() {
    let (addr, _) = server().await;
    let url = parse_url(&format!("http://{addr}/big")).unwrap();
    let response = client().post(&url, &[], b"x").await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.bytes.len(), 1024 * 1024);
}

#[tokio::test]
async fn requests_to_one_host_share_a_connection() {
    let (addr, accepted) = server().await;
    let client = client();
    for _ in 0..3 {
        let response = client
            .send("GET", &format!("http://{addr}/"), &[], Vec::new())
            .await
            .unwrap();
        assert_eq!((response.status, response.body.as_str()), (200, "hello"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection, reused");
    // A clone shares the pool.
    let clone = client.clone();
    clone
        .send("GET", &format!("http://{addr}/"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn no_answer_in_time_is_a_timeout() {
    let (addr, _) = server().await;
    let url = format!("http://{addr}/slow");
    let started = Instant::now();
    let quick = Client::new(Duration::from_millis(300)).unwrap();
    let error = quick.send("GET", &url, &[], Vec::new()).await.unwrap_err();
    assert!(matches!(error, HttpError::Timeout(_)), "{error:?}");
    // A limit for one request overrides the client's.
    let error = client()
        .send_within("GET", &url, &[], Vec::new(), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::Timeout(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}
