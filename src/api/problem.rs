//! RFC 9457 problem documents: the one error shape of the API.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One field that failed validation.
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

/// An API error as `application/problem+json`.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
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
