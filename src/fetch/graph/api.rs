//! Requests to Microsoft Graph for one mailbox: the app-only token of the account's
//! `graph` upstream on each, and Graph's answers turned into what the session does.
//!
//! - `401`: the token is forgotten (`TokenSource::reject`) and the request made once more
//!   with a fresh one; a second `401` is `FetchError::Login` (the account turns failing).
//! - `403`: the application lacks the permission (`Mail.ReadWrite`, or an application
//!   access policy leaves the mailbox out): `FetchError::Login`.
//! - `429`, `503`, `504`: waited out as `Retry-After` says (10 s without one, at most
//!   5 minutes), up to five times, then `FetchError::Connect`.
//! - Everything else is handed to the caller, who knows what a `404` or `410` means there.

use super::super::FetchError;
use crate::net::http::{Client, Response};
use crate::relay::oauth::TokenSource;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The largest answer read, but for a message's MIME.
const ANSWER_LIMIT: usize = 1024 * 1024;
/// The largest message fetched (Exchange Online's largest is 150 MB; a bigger one here is
/// set aside).
pub const MIME_LIMIT: usize = 64 * 1024 * 1024;
/// How often a throttled request is tried before the session gives up.
const THROTTLED_TRIES: u32 = 5;
/// The wait when a throttled answer names none, and the longest wait.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);
const LONGEST_WAIT: Duration = Duration::from_secs(300);

/// One mailbox at Graph.
pub struct Api {
    http: Client,
    /// `graph_url` without a trailing `/`.
    pub base: String,
    /// `{base}/users/{mailbox}`.
    pub user: String,
    timeout: Duration,
    tokens: Arc<TokenSource>,
    stop: watch::Receiver<bool>,
}

impl Api {
    pub fn new(
        http: Client,
        base: &str,
        mailbox: &str,
        timeout: Duration,
        tokens: Arc<TokenSource>,
        stop: watch::Receiver<bool>,
    ) -> Api {
        let base = base.trim_end_matches('/').to_string();
        Api {
            user: format!("{base}/users/{}", segment(mailbox)),
            http,
            base,
            timeout,
            tokens,
            stop,
        }
    }

    /// `method url` with a JSON `body` (if any); the answer unless it is one of those
    /// handled here (see the module doc).
    pub async fn send(
        &mut self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, FetchError> {
        self.request(method, url, body, ANSWER_LIMIT).await
    }

    /// `GET url`, reading an answer of up to `MIME_LIMIT` octets (a message's MIME).
    pub async fn download(&mut self, url: &str) -> Result<Response, FetchError> {
        self.request("GET", url, None, MIME_LIMIT).await
    }

    async fn request(
        &mut self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
        limit: usize,
    ) -> Result<Response, FetchError> {
        let mut refused_token = false;
        let mut throttled = 0;
        loop {
            let token = self
                .tokens
                .token()
                .await
                .map_err(|e| match e.is_permanent() {
                    true => FetchError::Token(e.to_string()),
                    false => FetchError::Connect(e.to_string()),
                })?;
            let mut headers = vec![
                ("Authorization", format!("Bearer {token}")),
                ("Accept", "application/json".to_string()),
            ];
            let bytes = match body {
                Some(body) => {
                    headers.push(("Content-Type", "application/json".to_string()));
                    body.to_string().into_bytes()
                }
                None => Vec::new(),
            };
            let response = self
                .http
                .send_limited(method, url, &headers, bytes, self.timeout, limit)
                .await
                .map_err(|e| FetchError::Connect(format!("Microsoft Graph: {e}")))?;
            match response.status {
                401 => {
                    self.tokens.reject(&token).await;
                    if refused_token {
                        return Err(FetchError::Login(format!(
                            "Microsoft Graph refused the token: {}",
                            problem(&response)
                        )));
                    }
                    refused_token = true;
                }
                403 => {
                    return Err(FetchError::Login(format!(
                        "Microsoft Graph refused access to the mailbox (does the application have Mail.ReadWrite?): {}",
                        problem(&response)
                    )))
                }
                429 | 503 | 504 => {
                    throttled += 1;
                    if throttled >= THROTTLED_TRIES {
                        return Err(FetchError::Connect(format!(
                            "Microsoft Graph is still throttling: {}",
                            problem(&response)
                        )));
                    }
                    let wait = retry_after(&response);
                    tracing::info!(url, status = response.status, ?wait,
                        "Microsoft Graph asks to wait before the mailbox is read again");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.stop.changed() => {
                            return Err(FetchError::Connect("stopped while throttled".into()))
                        }
                    }
                }
                _ => return Ok(response),
            }
        }
    }

    /// `GET url`, answered 200 with JSON: the parsed answer.
    pub async fn get_json(&mut self, url: &str) -> Result<serde_json::Value, FetchError> {
        let response = self.send("GET", url, None).await?;
        if response.status != 200 {
            return Err(failed(&response));
        }
        json(&response)
    }
}

/// The answer's JSON body.
pub fn json(response: &Response) -> Result<serde_json::Value, FetchError> {
    serde_json::from_slice(&response.bytes)
        .map_err(|e| FetchError::Connect(format!("Microsoft Graph answered without JSON: {e}")))
}

/// The error of an unexpected answer: a server error breaks the session (tried again),
/// anything else is a refusal.
pub fn failed(response: &Response) -> FetchError {
    match response.status {
        500..=599 => FetchError::Connect(format!("Microsoft Graph: {}", problem(response))),
        _ => FetchError::Refused(format!("Microsoft Graph: {}", problem(response))),
    }
}

/// `status code: message` of Graph's error body.
pub fn problem(response: &Response) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&response.bytes).ok();
    let error = parsed.as_ref().map(|v| &v["error"]);
    let code = error.and_then(|e| e["code"].as_str()).unwrap_or("");
    let message = error.and_then(|e| e["message"].as_str()).unwrap_or("");
    match (code.is_empty(), message.is_empty()) {
        (true, true) => response.status.to_string(),
        _ => format!("{} {code}: {message}", response.status),
    }
}

/// The wait a throttled answer asks for.
fn retry_after(response: &Response) -> Duration {
    response
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_WAIT, Duration::from_secs)
        .min(LONGEST_WAIT)
}

/// `text` as one path segment (`@` kept, as Graph's examples write a mailbox).
pub fn segment(text: &str) -> String {
    crate::net::http::percent_encode(text, b"@.-_~=")
}

/// `text` as a query value.
pub fn query_value(text: &str) -> String {
    crate::net::http::percent_encode(text, b".-_~")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_string(),
            bytes: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn graphs_errors_are_named_by_code_and_message() {
        let r = response(
            404,
            &[],
            r#"{"error":{"code":"ErrorItemNotFound","message":"The specified object was not found in the store."}}"#,
        );
        assert_eq!(
            problem(&r),
            "404 ErrorItemNotFound: The specified object was not found in the store."
        );
        assert!(matches!(failed(&r), FetchError::Refused(_)));
        assert!(matches!(
            failed(&response(502, &[], "")),
            FetchError::Connect(_)
        ));
        assert_eq!(problem(&response(502, &[], "<html>")), "502");
    }

    #[test]
    fn throttling_waits_as_asked_within_reason() {
        let wait = |v: &str| retry_after(&response(429, &[("retry-after", v)], ""));
        assert_eq!(wait("3"), Duration::from_secs(3));
        assert_eq!(wait("86400"), LONGEST_WAIT);
        assert_eq!(wait("Wed, 21 Oct 2026 07:28:00 GMT"), DEFAULT_WAIT);
    }

    #[test]
    fn names_are_encoded_for_paths_and_queries() {
        assert_eq!(segment("a b/c@x.example"), "a%20b%2Fc@x.example");
        assert_eq!(segment("AAMkAD+x/y=="), "AAMkAD%2Bx%2Fy==");
        assert_eq!(
            query_value("displayName eq 'Tom''s'"),
            "displayName%20eq%20%27Tom%27%27s%27"
        );
    }
}
