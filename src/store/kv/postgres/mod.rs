//! The shared backend: one PostgreSQL database for every node. Every tree is the rows of
//! one table (`postern_kv`: tree, key, value) under the primary key (tree, key); the
//! change counter is a one-row table, bumped and notified by every transaction that
//! writes a control tree; ids come from a sequence that steps by one block; leases and
//! the shared Message-ID registry have tables of their own (`schema`).
//!
//! The backend owns a tokio runtime of its own (two workers): every operation runs there
//! and the caller waits on a channel, so a caller may be any thread, a worker of the
//! application's runtime included, and never runs `block_on`. Connections come from a
//! pool (`connect`); migrations run at open (`schema`); writes are transactions (`write`);
//! a connection of its own listens for changes (`listen`).

mod connect;
mod error;
mod listen;
mod retry;
mod schema;
mod tls;
mod tree;
mod write;

/// The integration tests' throwaway cluster, for the backend's own tests.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../../../tests/common/postgres.rs"]
mod cluster;
#[cfg(test)]
mod tests;

use super::{is_control, Backend, Condition, TreeBackend, Write};
use crate::store::StoreError;
use deadpool_postgres::Pool;
use listen::Latest;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, Runtime};
use tokio_postgres::types::ToSql;

/// Ids one `reserve_ids` may take: the step of the `postern_ids` sequence.
const ID_BLOCK: u64 = 256;

/// The pool and the runtime every operation runs on, shared with the trees.
pub(super) struct Shared {
    pool: Pool,
    handle: Handle,
}

impl Shared {
    /// Runs `work` on the backend's runtime; waits for its result on this thread.
    fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (done, result) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = done.send(work.await);
        });
        result
            .recv()
            .map_err(|_| StoreError::Task("the PostgreSQL backend has stopped".into()))?
    }

    /// Runs one statement on a pooled connection (by itself: a read, or a write outside
    /// the trees); its rows.
    fn query(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Send + Sync>>,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let pool = self.pool.clone();
        self.run(async move {
            let params: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
            let params = &params;
            retry::retry(&pool, |client| async move {
                let statement = client.prepare_cached(sql).await?;
                Ok(client.query(&statement, params).await?)
            })
            .await
        })
    }
}

/// The PostgreSQL backend.
pub(crate) struct PgKv {
    shared: Arc<Shared>,
    latest: Arc<Latest>,
    /// Taken on drop, to shut down without waiting.
    runtime: Option<Runtime>,
}

impl PgKv {
    /// Connects to the database at `url` as node `node` (empty: the host name), applies
    /// the migrations it lacks, and with `notify` listens for other nodes' changes.
    pub(crate) fn open(url: &str, node: &str, notify: bool) -> Result<PgKv, StoreError> {
        let node = match node.is_empty() {
            true => host_name(),
            false => node.to_string(),
        };
        let target = connect::Target::parse(url, &node)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postern-store")
            .enable_all()
            .build()?;
        let pool = {
            let _entered = runtime.enter();
            target.pool()?
        };
        let kv = PgKv {
            shared: Arc::new(Shared {
                pool: pool.clone(),
                handle: runtime.handle().clone(),
            }),
            latest: Arc::default(),
            runtime: Some(runtime),
        };
        kv.shared.run(async move { schema::migrate(&pool).await })?;
        if notify {
            let latest = kv.latest.clone();
            kv.shared.handle.spawn(listen::listen(target, latest));
        }
        Ok(kv)
    }

    fn tree(&self, name: &str) -> Arc<dyn TreeBackend> {
        Arc::new(tree::PgTree {
            shared: self.shared.clone(),
            name: name.into(),
            control: is_control(name),
        })
    }
}

impl Drop for PgKv {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Backend for PgKv {
    fn open_tree(&self, name: &str) -> Result<Arc<dyn TreeBackend>, StoreError> {
        Ok(self.tree(name))
    }

    fn existing_tree(&self, name: &str) -> Result<Option<Arc<dyn TreeBackend>>, StoreError> {
        let sql = "SELECT 1 FROM postern_kv WHERE tree = $1 LIMIT 1";
        let rows = self.shared.query(sql, vec![Box::new(name.to_string())])?;
        Ok((!rows.is_empty()).then(|| self.tree(name)))
    }

    fn tree_names(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.shared.query(
            "SELECT DISTINCT tree FROM postern_kv ORDER BY tree",
            Vec::new(),
        )?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    fn ids_above(&self, floor: u64) -> Result<(), StoreError> {
        // The next block starts one step above the sequence's value.
        let sql = "SELECT setval('postern_ids', GREATEST(last_value, $1)) FROM postern_ids";
        let floor = i64::try_from(floor)
            .map_err(|_| StoreError::Corrupt(format!("id {floor} is out of range")))?;
        self.shared.query(sql, vec![Box::new(floor)]).map(drop)
    }

    fn drop_tree(&self, name: &str) -> Result<(), StoreError> {
        let pool = self.shared.pool.clone();
        let (name, control) = (name.to_string(), is_control(name));
        self.shared.run(async move {
            let sql = "WITH d AS (DELETE FROM postern_kv WHERE tree = $1 RETURNING 1) \
                       SELECT 1 FROM d LIMIT 1";
            let statement = write::Statement {
                sql,
                idempotent: true,
            };
            write::single(&pool, control, statement, &[&name])
                .await
                .map(drop)
        })
    }

    fn commit(&self, writes: &[Write], conditions: &[Condition]) -> Result<bool, StoreError> {
        let pool = self.shared.pool.clone();
        let (writes, conditions) = (writes.to_vec(), conditions.to_vec());
        self.shared
            .run(async move { write::commit(&pool, &writes, &conditions).await })
    }

    fn reserve_ids(&self, count: u64) -> Result<u64, StoreError> {
        if count > ID_BLOCK {
            return Err(StoreError::Backend(format!(
                "ids are reserved {ID_BLOCK} at most at once, not {count}"
            )));
        }
        let rows = self
            .shared
            .query("SELECT nextval('postern_ids')", Vec::new())?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn changes(&self) -> Result<u64, StoreError> {
        let rows = self
            .shared
            .query("SELECT counter FROM postern_changes", Vec::new())?;
        let counter = rows
            .first()
            .map(|r| r.get::<_, i64>(0) as u64)
            .ok_or_else(|| StoreError::Corrupt("the change counter is missing".into()))?;
        self.latest.publish(counter);
        Ok(counter)
    }

    fn wait_change(&self, seen: u64, timeout: Duration) -> Result<u64, StoreError> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.changes()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if now != seen || left.is_zero() {
                return Ok(now);
            }
            self.latest.wait_above(seen, left.min(listen::POLL));
        }
    }

    fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let sql = "INSERT INTO postern_leases (name, holder, expires_at) \
                   VALUES ($1, $2, now() + make_interval(secs => $3)) \
                   ON CONFLICT (name) DO UPDATE \
                   SET holder = excluded.holder, expires_at = excluded.expires_at \
                   WHERE postern_leases.expires_at < now() \
                   OR postern_leases.holder = excluded.holder \
                   RETURNING 1";
        let params: Vec<Box<dyn ToSql + Send + Sync>> = vec![
            Box::new(name.to_string()),
            Box::new(holder.to_string()),
            Box::new(ttl.as_secs_f64()),
        ];
        Ok(!self.shared.query(sql, params)?.is_empty())
    }

    fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let sql = "DELETE FROM postern_leases WHERE name = $1 AND holder = $2 RETURNING 1";
        let params: Vec<Box<dyn ToSql + Send + Sync>> =
            vec![Box::new(name.to_string()), Box::new(holder.to_string())];
        self.shared.query(sql, params).map(drop)
    }

    fn record_message_ids(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        // One row per key (the last entry wins): an upsert may not touch a row twice.
        let unique: std::collections::BTreeMap<&[u8], &[u8]> = entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        if unique.is_empty() {
            return Ok(());
        }
        let keys: Vec<Vec<u8>> = unique.keys().map(|k| k.to_vec()).collect();
        let values: Vec<Vec<u8>> = unique.values().map(|v| v.to_vec()).collect();
        let sql = "INSERT INTO postern_message_ids (key, entry) \
                   SELECT * FROM UNNEST($1::bytea[], $2::bytea[]) \
                   ON CONFLICT (key) DO UPDATE SET entry = excluded.entry \
                   RETURNING 1";
        self.shared
            .query(sql, vec![Box::new(keys), Box::new(values)])
            .map(drop)
    }

    fn message_id(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = "SELECT entry FROM postern_message_ids WHERE key = $1";
        let rows = self.shared.query(sql, vec![Box::new(key.to_vec())])?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn legacy_id_floor(&self) -> Result<u64, StoreError> {
        Ok(1)
    }
}

/// The system's host name (the node's name when the configuration gives none).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
