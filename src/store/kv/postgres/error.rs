//! What a database error means to the store: the database could not be reached
//! (`StoreError::Unavailable`: trying again later may succeed) or it refused the operation
//! (`StoreError::Backend`).

use crate::store::StoreError;
use deadpool_postgres::PoolError;
use std::error::Error as _;
use tokio_postgres::error::SqlState;

/// A tokio-postgres error as a store error.
pub(super) fn db_error(error: tokio_postgres::Error) -> StoreError {
    match is_unreachable(&error) {
        true => StoreError::Unavailable(describe(&error)),
        false => StoreError::Backend(describe(&error)),
    }
}

/// A pool error (no connection, or a connection's error) as a store error.
pub(super) fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => db_error(error),
        PoolError::Timeout(_) | PoolError::Closed => StoreError::Unavailable(error.to_string()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// Whether `error` is a unique violation (a key inserted meanwhile by another node).
pub(super) fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Whether the server could not be reached or the connection broke.
pub(super) fn is_unreachable(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() || error.source().is_some_and(|s| s.is::<std::io::Error>()) {
        return true;
    }
    match error.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        }
        None => {
            let text = error.to_string();
            [
                "error connecting",
                "timeout",
                "error performing TLS",
                "error communicating",
            ]
            .iter()
            .any(|start| text.starts_with(start))
        }
    }
}

/// The server's message where there is one.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("PostgreSQL: {} ({})", db.message(), db.code().code()),
        None => match error.source() {
            Some(cause) if !error.to_string().contains(&cause.to_string()) => {
                format!("{error}: {cause}")
            }
            _ => error.to_string(),
        },
    }
}
