//! `/healthz` (the process answers), `/readyz` (listeners bound, spool open) and
//! `/metrics` (Prometheus text format).

use super::{ApiState, Problem};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use std::sync::atomic::Ordering;

/// `GET /healthz` — no token: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses((status = 200, body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz` — no token: 200 once listeners are bound and the spool is open, else 503.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses((status = 200, body = String, content_type = "text/plain"), (status = 503, body = Problem, content_type = "application/problem+json"))
)]
pub async fn readyz(State(state): State<ApiState>) -> Result<&'static str, Problem> {
    match state.ready.load(Ordering::Acquire) {
        true => Ok("ready\n"),
        false => Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "starting")),
    }
}

/// `GET /metrics` — no token: the Prometheus text exposition.
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses((status = 200, body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
