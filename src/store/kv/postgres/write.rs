//! Writes: each runs in one transaction (a write to a tree of no control state may be one
//! statement by itself), tried again after a serialization failure, a deadlock the server
//! broke, or the server ending the connection (`retry`). A transaction writing a control
//! tree (`kv::is_control`) bumps the change counter and notifies `postern_changes` before
//! it commits, so the counter and the notification come with the write or not at all.
//!
//! A commit's conditions are read with `SELECT ... FOR UPDATE`: a key that holds a value
//! stays as read until the commit. A key required absent has no row to lock; it is
//! written with a plain `INSERT`, so when another node inserted it meanwhile the insert
//! fails on the primary key and the commit reports the condition failed.

use super::error::is_unique_violation;
use super::retry::{retry, Failed};
use crate::store::kv::{is_control, Condition, Write};
use crate::store::StoreError;
use deadpool_postgres::{Pool, Transaction};
use std::collections::HashSet;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// The SQL of one write of a key.
pub(super) const UPSERT: &str = "INSERT INTO postern_kv (tree, key, value) VALUES ($1, $2, $3) \
     ON CONFLICT (tree, key) DO UPDATE SET value = excluded.value RETURNING NULL::bytea";
const INSERT: &str = "INSERT INTO postern_kv (tree, key, value) VALUES ($1, $2, $3)";
const DELETE: &str = "DELETE FROM postern_kv WHERE tree = $1 AND key = $2";
const LOCK: &str = "SELECT value FROM postern_kv WHERE tree = $1 AND key = $2 FOR UPDATE";
const BUMP: &str =
    "WITH c AS (UPDATE postern_changes SET counter = counter + 1 RETURNING counter) \
     SELECT pg_notify('postern_changes', counter::text) FROM c";

/// One write statement: its SQL, and whether running it twice does what running it
/// once does (then a connection lost at its commit does not make it fail).
pub(super) struct Statement<'a> {
    pub sql: &'a str,
    pub idempotent: bool,
}

/// Runs one statement (its rows: what it changed, by `RETURNING`); on a control tree in
/// a transaction that bumps the counter when a row came back.
pub(super) async fn single(
    pool: &Pool,
    control: bool,
    statement: Statement<'_>,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let Statement { sql, idempotent } = statement;
    let at_commit = move |error| match idempotent {
        true => Failed::Before(error),
        false => Failed::AtCommit(error),
    };
    retry(pool, |mut client| async move {
        if !control {
            let statement = client.prepare_cached(sql).await?;
            return client.query(&statement, params).await.map_err(at_commit);
        }
        let tx = client.transaction().await?;
        let statement = tx.prepare_cached(sql).await?;
        let rows = tx.query(&statement, params).await?;
        if !rows.is_empty() {
            bump(&tx).await?;
        }
        tx.commit().await.map_err(at_commit)?;
        Ok(rows)
    })
    .await
}

/// `Backend::commit`: `writes` in one transaction if every condition holds.
pub(super) async fn commit(
    pool: &Pool,
    writes: &[Write],
    conditions: &[Condition],
) -> Result<bool, StoreError> {
    let control = writes.iter().any(|w| is_control(&w.tree));
    retry(pool, |mut client| async move {
        let tx = client.transaction().await?;
        match apply(&tx, writes, conditions, control).await {
            Ok(true) => tx.commit().await.map(|()| true).map_err(Failed::AtCommit),
            Ok(false) => Ok(false),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(Failed::Before(error)),
        }
    })
    .await
}

/// Checks the conditions (locking the rows they read) and applies the writes; false at
/// the first condition that does not hold.
async fn apply(
    tx: &Transaction<'_>,
    writes: &[Write],
    conditions: &[Condition],
    control: bool,
) -> Result<bool, tokio_postgres::Error> {
    // One order for every transaction: fewer deadlocks between two commits.
    let mut sorted: Vec<&Condition> = conditions.iter().collect();
    sorted.sort_by(|a, b| (&*a.tree, &a.key).cmp(&(&*b.tree, &b.key)));
    let lock = tx.prepare_cached(LOCK).await?;
    for c in sorted {
        let row = tx.query_opt(&lock, &[&&*c.tree, &c.key]).await?;
        let value: Option<Vec<u8>> = row.map(|r| r.get(0));
        if value != c.value {
            return Ok(false);
        }
    }
    let absent: HashSet<(&str, &[u8])> = conditions
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| (&*c.tree, c.key.as_slice()))
        .collect();
    let mut inserted = HashSet::new();
    for w in writes {
        let at = (&*w.tree, w.key.as_slice());
        match &w.value {
            Some(value) if absent.contains(&at) && inserted.insert(at) => {
                let insert = tx.prepare_cached(INSERT).await?;
                tx.execute(&insert, &[&&*w.tree, &w.key, value]).await?;
            }
            Some(value) => {
                let upsert = tx.prepare_cached(UPSERT).await?;
                tx.execute(&upsert, &[&&*w.tree, &w.key, value]).await?;
            }
            None => {
                let delete = tx.prepare_cached(DELETE).await?;
                tx.execute(&delete, &[&&*w.tree, &w.key]).await?;
            }
        }
    }
    if control {
        bump(tx).await?;
    }
    Ok(true)
}

/// Bumps the change counter and notifies its new value (delivered at commit).
async fn bump(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    let statement = tx.prepare_cached(BUMP).await?;
    tx.execute(&statement, &[]).await.map(drop)
}
