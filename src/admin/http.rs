//! One HTTP/1.1 request to the control API over plain TCP (the API listens on loopback or a
//! private network; put a TLS proxy in front for anything else): `Connection: close`, the
//! body read by `Content-Length`, chunked encoding or end of stream.

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
    fn the_api_url_is_http_host_port() {
        assert_eq!(
            authority("http://127.0.0.1:8025/").unwrap(),
            "127.0.0.1:8025"
        );
        assert!(authority("https://x:1").is_err());
        assert!(authority("http://x:1/api").is_err());
    }
}
