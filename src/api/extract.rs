//! Request extractors whose rejections are problem documents (axum's own answer in plain
//! text), and the helper that runs store writes off the async workers.
//!
//! It reads requests; it decides nothing about permissions or validity.

use super::Problem;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// A JSON body. An empty body reads as `{}`; a body sent as anything but JSON (no
/// `Content-Type`, or one other than `application/json` or `application/*+json`) is a 415,
/// one over the body limit a 413, and one that is not the expected JSON a 400.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Body<T>, Problem> {
        let json = is_json(req.headers());
        // Over the limit: 413; a body that broke off: 400.
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::new(e.status(), e.body_text()))?;
        let raw: &[u8] = match bytes.iter().all(u8::is_ascii_whitespace) {
            true => b"{}",
            false if !json => return Err(Problem::unsupported_media_type()),
            false => &bytes,
        };
        serde_json::from_slice(raw)
            .map(Body)
            .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// Whether the request says its body is JSON: `application/json` or `application/*+json`,
/// with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// A path parameter; one that does not parse names no resource (404).
pub struct Param<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Param<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Param<T>, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Param(value))
            .map_err(|_| Problem::new(StatusCode::NOT_FOUND, "no such resource"))
    }
}

/// A query string; one that does not parse is a 400.
pub struct QueryOf<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryOf<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<QueryOf<T>, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryOf(value))
            .map_err(|e| Problem::bad_request(e.body_text()))
    }
}

/// For `#[serde(default, deserialize_with = "nullable")]` on an `Option<Option<T>>` field:
/// absent → `None` (leave as is), `null` → `Some(None)` (clear), a value → `Some(Some(v))`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Runs `work` (store writes end in a `syncfs`) on a blocking thread.
pub async fn blocking<T, F>(work: F) -> Result<T, Problem>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Problem> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(Problem::internal)?
}

/// The page size a listing asked for: `default` when absent, 422 outside 1..=`max`.
pub fn page_limit(asked: Option<usize>, default: usize, max: usize) -> Result<usize, Problem> {
    match asked.unwrap_or(default) {
        limit @ 1.. if limit <= max => Ok(limit),
        _ => Err(Problem::invalid("limit", format!("between 1 and {max}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_with_or_without_parameters() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!with("text/plain"));
        assert!(!with("text/json+xml"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
