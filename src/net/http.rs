//! The HTTP client of everything Postern calls out to — webhooks, OAuth2 token endpoints,
//! Microsoft Graph — over reqwest (hyper, rustls with the webpki roots): connections kept
//! and reused per host, a time limit per request, redirects never followed (a webhook or a
//! token endpoint that redirects is answered as it answered), and answers cut at a size
//! limit. `Client` is cheap to clone; clones share one pool.

use std::path::Path;
use std::time::Duration;

/// Longest answer read (the rest is cut off).
const MAX_RESPONSE: usize = 1024 * 1024;
/// Idle connections kept per host.
const IDLE_PER_HOST: usize = 8;
/// How long an idle connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

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

/// A response: status, header fields and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header fields (names in lower case), in order.
    pub headers: Vec<(String, String)>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
    /// The body's octets as received (at most the size limit).
    pub bytes: Vec<u8>,
}

impl Response {
    /// The first value of header field `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
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

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        match self.host.contains(':') {
            true => write!(f, "{scheme}://[{}]:{}{}", self.host, self.port, self.path),
            false => write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path),
        }
    }
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

/// The client: one pool of connections, TLS settings built once.
#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
    timeout: Duration,
}

impl Client {
    /// A client trusting the webpki roots, giving up on a request after `timeout`.
    pub fn new(timeout: Duration) -> Result<Client, HttpError> {
        Client::build(timeout, None)
    }

    /// A client that also trusts the CA certificates (PEM) in `ca_file`.
    pub fn with_ca_file(timeout: Duration, ca_file: &Path) -> Result<Client, HttpError> {
        Client::build(timeout, Some(ca_file))
    }

    fn build(timeout: Duration, ca_file: Option<&Path>) -> Result<Client, HttpError> {
        let tls = |e: String| HttpError::Tls("-".into(), e);
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .pool_idle_timeout(IDLE_TIMEOUT)
            .connect_timeout(timeout)
            .user_agent(concat!("postern/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|e| tls(format!("{}: {e}", path.display())))?;
            for cert in
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| tls(e.to_string()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let inner = builder.build().map_err(|e| tls(e.to_string()))?;
        Ok(Client { inner, timeout })
    }

    /// The time limit of each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// POSTs `body` with `headers` (name, value) to `url`.
    pub async fn post(
        &self,
        url: &Url,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        self.send("POST", &url.to_string(), headers, body.to_vec())
            .await
    }

    /// Sends `method url` with `headers` and `body` (empty: none), within the time limit.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Response, HttpError> {
        self.send_within(method, url, headers, body, self.timeout)
            .await
    }

    /// As `send`, within `timeout` instead of the client's limit: callers that share the
    /// one client keep their own limits (a webhook's `timeout_secs`, 15 s for a token).
    pub async fn send_within(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        self.send_limited(method, url, headers, body, timeout, MAX_RESPONSE)
            .await
    }

    /// As `send_within`, reading at most `limit` octets of the answer instead of 1 MiB
    /// (a message's MIME fetched from Microsoft Graph).
    pub async fn send_limited(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
        limit: usize,
    ) -> Result<Response, HttpError> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| HttpError::Url(format!("{method} {url}")))?;
        let mut request = self.inner.request(method, url).timeout(timeout);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| error(url, e, timeout))?;
        read(response, timeout, limit).await
    }
}

/// What failed, from reqwest's error for a request to `url` limited to `timeout`.
fn error(url: &str, error: reqwest::Error, timeout: Duration) -> HttpError {
    let peer = parse_url(url)
        .map(|u| format!("{}:{}", u.host, u.port))
        .unwrap_or_else(|_| url.to_string());
    let detail = chain(&error);
    if error.is_timeout() {
        HttpError::Timeout(timeout.as_secs())
    } else if error.is_builder() {
        HttpError::Url(url.to_string())
    } else if detail.contains("certificate") || detail.contains("TLS") || detail.contains("tls") {
        HttpError::Tls(peer, detail)
    } else if error.is_connect() {
        HttpError::Connect(peer, detail)
    } else {
        HttpError::Read(detail)
    }
}

/// An error with its sources, joined.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Percent-encoding (RFC 3986) of every octet of `text` but ASCII letters, digits and
/// `keep`: the path segments and query values of Graph requests.
pub fn percent_encode(text: &str, keep: &[u8]) -> String {
    text.bytes()
        .map(|b| match b.is_ascii_alphanumeric() || keep.contains(&b) {
            true => (b as char).to_string(),
            false => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads the answer's header and at most `limit` octets of its body.
async fn read(
    mut response: reqwest::Response,
    timeout: Duration,
    limit: usize,
) -> Result<Response, HttpError> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_string(), value)
        })
        .collect();
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if bytes.len() == limit {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(HttpError::Timeout(timeout.as_secs())),
            // An answer cut short still says what it said so far.
            Err(e) if !bytes.is_empty() => {
                tracing::debug!(error = %chain(&e), "answer cut short");
                break;
            }
            Err(e) => return Err(HttpError::Read(chain(&e))),
        }
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_scheme_host_port_and_path() {
        let u = parse_url("https://hooks.example.com/in?x=1").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path.as_str()),
            (true, "hooks.example.com", 443, "/in?x=1")
        );
        assert_eq!(u.to_string(), "https://hooks.example.com:443/in?x=1");
        let u = parse_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 8080, "/")
        );
        assert_eq!(
            parse_url("http://[::1]:81/x").unwrap().to_string(),
            "http://[::1]:81/x"
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
