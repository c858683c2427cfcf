//! A small HTTP/1.1 client for what Postern calls out to: webhooks (and, later, OAuth2
//! token endpoints). One request per connection (`Connection: close`), `http://` or
//! `https://` (rustls with the webpki roots), bounded by a timeout; the answer read by
//! `Content-Length`, chunked encoding or end of stream.

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Longest answer read (the rest is cut off).
const MAX_RESPONSE: usize = 1024 * 1024;

/// Why a request got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    #[error("not an http:// or https:// URL: {0:?}")]
    Url(String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("TLS with {0}: {1}")]
    Tls(String, String),
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("the answer could not be read: {0}")]
    Read(String),
}

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
    /// The body's octets as received.
    pub bytes: Vec<u8>,
}

/// A parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Parses `http(s)://host[:port][/path]`.
pub fn parse_url(url: &str) -> Result<Url, HttpError> {
    let bad = || HttpError::Url(url.to_string());
    let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return Err(bad()),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let default_port = if https { 443 } else { 80 };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host, port.parse().map_err(|_| bad())?)
        }
        _ => (authority, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c))
        && !path.chars().any(|c| c.is_control() || c == ' ');
    match valid {
        true => Ok(Url {
            https,
            host: host.to_string(),
            port,
            path: path.to_string(),
        }),
        false => Err(bad()),
    }
}

/// The client: TLS settings built once.
#[derive(Clone)]
pub struct Client {
    tls: Arc<ClientConfig>,
    timeout: Duration,
}

impl Client {
    /// A client trusting the webpki roots, giving up after `timeout`.
    pub fn new(timeout: Duration) -> Result<Client, HttpError> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpError::Tls("-".into(), e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client {
            tls: Arc::new(config),
            timeout,
        })
    }

    /// POSTs `body` with `headers` (name, value) to `url`.
    pub async fn post(
        &self,
        url: &Url,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        let secs = self.timeout.as_secs();
        tokio::time::timeout(self.timeout, self.exchange(url, headers, body))
            .await
            .map_err(|_| HttpError::Timeout(secs))?
    }

    async fn exchange(
        &self,
        url: &Url,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        let peer = format!("{}:{}", url.host, url.port);
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| HttpError::Connect(peer.clone(), e.to_string()))?;
        let default_port = if url.https { 443 } else { 80 };
        let host = match url.port == default_port {
            true => url.host.clone(),
            false => format!("{}:{}", url.host, url.port),
        };
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
            url.path,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if !url.https {
            return send(tcp, &head, body).await;
        }
        let name = ServerName::try_from(url.host.clone())
            .map_err(|e| HttpError::Tls(peer.clone(), e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| HttpError::Tls(peer, e.to_string()))?;
        send(tls, &head, body).await
    }
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &str,
    body: &[u8],
) -> Result<Response, HttpError> {
    let write = |e: std::io::Error| HttpError::Read(format!("request not sent: {e}"));
    stream.write_all(head.as_bytes()).await.map_err(write)?;
    stream.write_all(body).await.map_err(write)?;
    stream.flush().await.map_err(write)?;
    let mut raw = Vec::new();
    let mut limited = (&mut stream).take(MAX_RESPONSE as u64);
    // A peer that closes without TLS close_notify still gave its whole answer.
    if let Err(error) = limited.read_to_end(&mut raw).await {
        if raw.is_empty() {
            return Err(HttpError::Read(error.to_string()));
        }
    }
    parse(&raw)
}

/// Splits a whole response into status and body.
pub fn parse(raw: &[u8]) -> Result<Response, HttpError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| HttpError::Read("no end of header".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HttpError::Read(format!("bad status line in {head:?}")))?;
    let rest = &raw[split + 4..];
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    let body = match (header("transfer-encoding"), header("content-length")) {
        (Some(te), _) if te.eq_ignore_ascii_case("chunked") => dechunk(rest)?,
        (_, Some(len)) => {
            let len: usize = len
                .parse()
                .map_err(|_| HttpError::Read(format!("bad Content-Length {len:?}")))?;
            rest.get(..len)
                .ok_or_else(|| HttpError::Read("body shorter than its Content-Length".into()))?
                .to_vec()
        }
        _ => rest.to_vec(),
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body,
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, HttpError> {
    let bad = || HttpError::Read("bad chunked body".into());
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).ok_or_else(bad)?);
        rest = rest.get(size + 2..).ok_or_else(bad)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_by_length_chunks_or_end_of_stream() {
        let r = parse(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}extra").unwrap();
        assert_eq!((r.status, r.body.as_str()), (201, "{}"));
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(r.body, "[1,2]");
        let r = parse(b"HTTP/1.1 404 Not Found\r\n\r\nnope").unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "nope"));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
    }

    #[test]
    fn urls_name_scheme_host_port_and_path() {
        let u = parse_url("https://hooks.example.com/in?x=1").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path.as_str()),
            (true, "hooks.example.com", 443, "/in?x=1")
        );
        let u = parse_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 8080, "/")
        );
        for bad in [
            "ftp://x/",
            "http://",
            "http://a b/",
            "http://x:99999/",
            "http://x/\r\nHost: y",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
