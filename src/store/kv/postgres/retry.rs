//! Running an operation again: after a serialization failure or a deadlock the server
//! broke (the transaction was rolled back), and after the connection was lost (the
//! server restarted or ended the session) unless the loss came at a commit, where
//! whether the write took effect is unknown: that is reported (`Unavailable`), never
//! guessed. A lost connection also empties the pool of its idle connections, which the
//! same restart most likely ended too.

use super::error::{db_error, is_unreachable, pool_error};
use crate::store::StoreError;
use deadpool_postgres::{Client, Pool};
use std::future::Future;
use tokio_postgres::error::SqlState;

/// How often an operation is run again.
const RETRIES: usize = 5;

/// How an attempt failed.
pub(super) enum Failed {
    /// Before anything it did could have been committed.
    Before(tokio_postgres::Error),
    /// At its commit (or a statement that commits by itself).
    AtCommit(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Failed {
    fn from(error: tokio_postgres::Error) -> Failed {
        Failed::Before(error)
    }
}

/// Runs `attempt` on a pooled connection, again on another while it fails in a way
/// that is safe to run again, `RETRIES` times at most.
pub(super) async fn retry<T, F, Fut>(pool: &Pool, mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut(Client) -> Fut,
    Fut: Future<Output = Result<T, Failed>>,
{
    let mut tries = 0;
    loop {
        let client = pool.get().await.map_err(pool_error)?;
        let (error, at_commit) = match attempt(client).await {
            Ok(done) => return Ok(done),
            Err(Failed::Before(error)) => (error, false),
            Err(Failed::AtCommit(error)) => (error, true),
        };
        let lost = is_lost(&error);
        if lost {
            pool.retain(|_, _| false);
        }
        let again = is_rolled_back(&error) || (lost && !at_commit);
        if !again || tries >= RETRIES {
            return Err(db_error(error));
        }
        tries += 1;
    }
}

/// A serialization failure or a deadlock the server broke: the transaction was rolled
/// back.
fn is_rolled_back(error: &tokio_postgres::Error) -> bool {
    let rolled_back = [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
    ];
    error.code().is_some_and(|code| rolled_back.contains(code))
}

/// The connection is gone: closed, broken, or ended by the server.
fn is_lost(error: &tokio_postgres::Error) -> bool {
    let ended = [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN];
    error.code().is_some_and(|code| ended.contains(code)) || is_unreachable(error)
}
