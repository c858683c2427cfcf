//! RFC 9457 problem documents: the one error shape (and the one error type) of the API.
//! Store and policy failures convert into problems here, so handlers can use `?`.

use crate::policy::PolicyError;
use crate::store::StoreError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One field that failed validation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

/// An API error as `application/problem+json`.
#[derive(Debug, Clone, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("{status} {title}: {detail}")]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// The error answers of the API's operations, for the OpenAPI document: each one a problem
/// document. Every operation lists them all (`responses(..., Problems)`).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Problems {
    /// Malformed request: a body that is not the expected JSON, or a bad query string.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No bearer token, or an unknown or expired one.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The caller lacks the permission the problem names.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such resource (or one the caller may not see).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The change conflicts with what exists (a name taken, a resource in use).
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// A field is invalid; `errors` names it.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// The resource is locked (a mail configuration an administrator locked).
    #[response(status = 423, content_type = "application/problem+json")]
    Locked(Problem),
    /// The request body is larger than the API takes.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The request body is not sent as JSON (`Content-Type: application/json`).
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// A 422 naming the field and why it was refused.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Problem {
        let reason = reason.into();
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: {reason}"),
        );
        problem.errors.push(FieldError {
            field: field.into(),
            reason,
        });
        problem
    }

    /// 403 naming the permission the caller lacks.
    pub fn forbidden(permission: &str) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            format!("permission {permission} is required"),
        )
    }

    /// 403 naming the permission the caller lacks and what it was needed for.
    pub fn forbidden_for(permission: &str, why: &str) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            format!("permission {permission} is required {why}"),
        )
    }

    /// 404 for a named resource.
    pub fn not_found(what: impl std::fmt::Display) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, format!("{what} does not exist"))
    }

    /// 409: the change clashes with the current state.
    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, detail)
    }

    /// 400: the request body or query could not be read.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 415: a body that is not sent as JSON.
    pub fn unsupported_media_type() -> Problem {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be JSON, sent with Content-Type: application/json",
        )
    }

    pub fn unauthorized() -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
    }

    pub fn internal(detail: impl std::fmt::Display) -> Problem {
        tracing::error!(%detail, "API internal error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the server log",
        )
    }

    /// 503: the store could not make the change durable (a full disk, an I/O error);
    /// the caller may try again once the cause is gone.
    pub fn not_durable(detail: impl std::fmt::Display) -> Problem {
        tracing::error!(%detail, "API change not made durable");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the change could not be made durable ({detail}); try again later"),
        )
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Problem {
        match error {
            StoreError::Conflict(what) => Problem::conflict(format!("{what} already exists")),
            other if other.is_io() => Problem::not_durable(other),
            other => Problem::internal(other),
        }
    }
}

impl From<PolicyError> for Problem {
    fn from(error: PolicyError) -> Problem {
        match error {
            PolicyError::Store(store) => Problem::from(store),
            other => Problem::internal(other),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Unknown paths.
pub async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no such resource")
}

/// A known path with a method it does not serve.
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this resource does not support that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_write_that_did_not_reach_the_disk_is_503_not_500() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(Problem::from(StoreError::Sync(full)).status, 503);
        let corrupt = StoreError::Corrupt("x".into());
        assert_eq!(Problem::from(corrupt).status, 500);
        let taken = StoreError::Conflict("login".into());
        assert_eq!(Problem::from(taken).status, 409);
    }
}
