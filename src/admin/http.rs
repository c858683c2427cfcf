//! One request to the control API over plain HTTP (the API listens on loopback or a
//! private network; put a TLS proxy in front for anything else), with reqwest's blocking
//! client.

use std::io;
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

/// Sends `method path` with an optional JSON body and the bearer `token` (reqwest's
/// blocking client; redirects not followed, 60 s per request).
pub fn request(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Response, HttpError> {
    let host = authority(base)?;
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| HttpError::Read(e.to_string()))?;
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| HttpError::BadUrl(format!("{method} {path}")))?;
    let response = client
        .request(method, format!("http://{host}{path}"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body.unwrap_or("").to_string())
        .send()
        .map_err(|e| HttpError::Connect(host.clone(), io::Error::other(e)))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .map_err(|e| HttpError::Read(e.to_string()))?
        .to_vec();
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
    })
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
