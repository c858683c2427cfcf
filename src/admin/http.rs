//! One HTTP/1.1 request to the control API over plain TCP (the API listens on loopback or a
//! private network; put a TLS proxy in front for anything else): `Connection: close`, the
//! body read by `Content-Length`, chunked encoding or end of stream (`net::http::parse`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("POSTERN_API must look like http://HOST:PORT, not {0:?}")]
    BadUrl(String),
    #[error("cannot reach the API at {0}: {1}")]
    Connect(String, io::Error),
    #[error("the API's answer could not be read: {0}")]
    Read(String),
}

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The body's octets as received (downloads).
    pub bytes: Vec<u8>,
}

/// `http://host:port` (an optional trailing slash) → `host:port`.
pub fn authority(base: &str) -> Result<String, HttpError> {
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| HttpError::BadUrl(base.into()))?
        .trim_end_matches('/');
    match rest.is_empty() || rest.contains('/') {
        true => Err(HttpError::BadUrl(base.into())),
        false => Ok(rest.to_string()),
    }
}

/// Sends `method path` with an optional JSON body and the bearer `token`.
pub fn request(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Response, HttpError> {
    let host = authority(base)?;
    let mut stream = TcpStream::connect(&host).map_err(|e| HttpError::Connect(host.clone(), e))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| HttpError::Connect(host.clone(), e))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| HttpError::Read(e.to_string()))?;
    parse(&raw)
}

/// Splits a whole response into status and body.
pub fn parse(raw: &[u8]) -> Result<Response, HttpError> {
    crate::net::http::parse(raw)
        .map(|r| Response {
            status: r.status,
            body: r.body,
            bytes: r.bytes,
        })
        .map_err(|e| HttpError::Read(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_url_is_http_host_port() {
        assert_eq!(
            authority("http://127.0.0.1:8025/").unwrap(),
            "127.0.0.1:8025"
        );
        assert!(authority("https://x:1").is_err());
        assert!(authority("http://x:1/api").is_err());
    }
}
