//! A minimal HTTP/1.1 client for Postern's control API: keep-alive connections, requests
//! that may be pipelined (send several, then read their responses in order), bodies by
//! `Content-Length`, chunked encoding or end of stream. JSON in and out as text.
//!
//! It knows nothing about the API's resources; `setup` and `server` do.

use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response: its status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive connection to the API.
pub struct Http {
    stream: TcpStream,
    buf: Vec<u8>,
    addr: SocketAddr,
    token: String,
}

impl Http {
    pub async fn connect(addr: SocketAddr, token: &str) -> io::Result<Http> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Http {
            stream,
            buf: Vec::with_capacity(8192),
            addr,
            token: token.to_string(),
        })
    }

    /// Writes one request without waiting for its response.
    pub async fn send(&mut self, method: &str, path: &str, json: Option<&str>) -> io::Result<()> {
        let body = json.unwrap_or("");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            self.token,
            body.len()
        );
        self.stream.write_all(request.as_bytes()).await
    }

    /// Reads the response to the oldest request not yet answered.
    pub async fn receive(&mut self) -> io::Result<Response> {
        let head_len = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_len]).into_owned();
        self.buf.drain(..head_len);
        let status = status(&head)?;
        let body = match (
            header(&head, "content-length"),
            header(&head, "transfer-encoding"),
        ) {
            (Some(len), _) => self.exact(len.parse().map_err(invalid)?).await?,
            (None, Some(te)) if te.eq_ignore_ascii_case("chunked") => self.chunked().await?,
            _ => self.until_closed().await?,
        };
        Ok(Response { status, body })
    }

    /// One request and its response.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        json: Option<&str>,
    ) -> io::Result<Response> {
        self.send(method, path, json).await?;
        self.receive().await
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    async fn exact(&mut self, len: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < len {
            self.fill().await?;
        }
        Ok(self.buf.drain(..len).collect())
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(at) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..at]).into_owned();
                self.buf.drain(..at + 2);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    async fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let size_line = self.line().await?;
            let size = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16).map_err(invalid)?;
            if size == 0 {
                while !self.line().await?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.exact(size).await?);
            self.line().await?;
        }
    }

    async fn until_closed(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match self.fill().await {
                Ok(()) => continue,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(std::mem::take(&mut self.buf))
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// One GET on a fresh connection, without a token (health and metrics).
pub async fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    Http::connect(addr, "").await?.call("GET", path, None).await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn status(head: &str) -> io::Result<u16> {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("not an HTTP response: {head:?}")))
}

/// The value of header `name` (lower case) in the response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn invalid(error: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}
