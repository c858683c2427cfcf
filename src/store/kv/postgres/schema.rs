//! The tables, created and upgraded by versioned migrations at open. Migrations run in
//! one transaction under an advisory lock, so two nodes starting at once apply each one
//! once: the second waits for the first, then finds the version already there.

use super::error::{db_error, pool_error};
use crate::store::StoreError;
use deadpool_postgres::Pool;

/// The advisory lock key of migrations (any constant the application owns).
const LOCK_KEY: i64 = 0x0070_6f73_7465_726e;

/// The migrations, in order: migration `n` (1-based) brings the schema to version `n`.
const MIGRATIONS: &[&str] = &[
    // 1: the key-value trees, the change counter, the id sequence, leases, and the shared
    // Message-ID registry.
    "CREATE TABLE postern_kv (
         tree text NOT NULL,
         key bytea NOT NULL,
         value bytea NOT NULL,
         PRIMARY KEY (tree, key)
     );
     CREATE TABLE postern_changes (
         one boolean PRIMARY KEY DEFAULT true CHECK (one),
         counter bigint NOT NULL
     );
     INSERT INTO postern_changes (one, counter) VALUES (true, 0);
     CREATE SEQUENCE postern_ids AS bigint INCREMENT BY 256 START WITH 1;
     CREATE TABLE postern_leases (
         name text PRIMARY KEY,
         holder text NOT NULL,
         expires_at timestamptz NOT NULL
     );
     CREATE TABLE postern_message_ids (
         key bytea PRIMARY KEY,
         entry bytea NOT NULL
     );",
];

/// Applies the migrations the database lacks; refuses a schema newer than this binary's.
pub(super) async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(db_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS postern_schema (version integer NOT NULL)")
        .await
        .map_err(db_error)?;
    let row = tx
        .query_one("SELECT coalesce(max(version), 0) FROM postern_schema", &[])
        .await
        .map_err(db_error)?;
    let found: i32 = row.get(0);
    let known = MIGRATIONS.len() as i32;
    if found > known {
        return Err(StoreError::Schema {
            found: found as u32,
        });
    }
    for (n, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql).await.map_err(db_error)?;
        tx.execute(
            "INSERT INTO postern_schema (version) VALUES ($1)",
            &[&(n as i32 + 1)],
        )
        .await
        .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)
}
