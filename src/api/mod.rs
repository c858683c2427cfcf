//! The control API (axum): health and readiness, Prometheus metrics, and the resources
//! under `/api/v1` behind bearer tokens. Every error is an RFC 9457 problem document.
//!
//! Handlers validate, then call the store or policy; they hold no state of their own.

mod auth;
mod health;
mod problem;
mod users;

pub use auth::AdminToken;
pub use problem::Problem;

use crate::metrics::Metrics;
use crate::store::Store;
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub admin: Arc<AdminToken>,
    /// Set once every listener is bound and the spool is open.
    pub ready: Arc<AtomicBool>,
}

/// The whole API.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/users", post(users::create))
        .fallback(problem::not_found)
        .with_state(state)
}
