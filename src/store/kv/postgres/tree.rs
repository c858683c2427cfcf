//! One tree: the rows of `postern_kv` whose `tree` is its name. Keys are `bytea`, ordered
//! bytewise as in sled; scans are `ORDER BY key` with a `LIMIT`.

use super::retry::retry;
use super::write::{single, Statement, UPSERT};
use super::Shared;
use crate::store::kv::{Pair, TreeBackend};
use crate::store::StoreError;
use std::ops::Bound;
use std::sync::Arc;
use tokio_postgres::types::ToSql;

/// A tree of the PostgreSQL backend.
pub(super) struct PgTree {
    pub shared: Arc<Shared>,
    pub name: Arc<str>,
    pub control: bool,
}

impl PgTree {
    /// Runs write `sql` with the tree's name, `key` and the `values` given; what its rows
    /// returned (one a row written).
    fn write(
        &self,
        sql: &'static str,
        key: &[u8],
        values: [Option<&[u8]>; 2],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let pool = self.shared.pool.clone();
        let (name, control, key) = (self.name.clone(), self.control, key.to_vec());
        let values = values.map(|v| v.map(<[u8]>::to_vec));
        self.shared.run(async move {
            let name: &str = &name;
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&name, &key];
            params.extend(values.iter().flatten().map(|v| v as &(dyn ToSql + Sync)));
            let statement = Statement {
                sql,
                idempotent: sql == UPSERT,
            };
            let rows = single(&pool, control, statement, &params).await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }
}

impl TreeBackend for PgTree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let pool = self.shared.pool.clone();
        let (name, key) = (self.name.clone(), key.to_vec());
        self.shared.run(async move {
            let name: &str = &name;
            let key = &key;
            retry(&pool, |client| async move {
                let sql = "SELECT value FROM postern_kv WHERE tree = $1 AND key = $2";
                let statement = client.prepare_cached(sql).await?;
                let row = client.query_opt(&statement, &[&name, key]).await?;
                Ok(row.map(|r| r.get(0)))
            })
            .await
        })
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.write(UPSERT, key, [Some(value), None]).map(drop)
    }

    fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = "DELETE FROM postern_kv WHERE tree = $1 AND key = $2 RETURNING value";
        Ok(self
            .write(sql, key, [None, None])?
            .into_iter()
            .next()
            .flatten())
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let sql = match (old, new) {
            (None, None) => return Ok(self.get(key)?.is_none()),
            (None, Some(_)) => {
                "INSERT INTO postern_kv (tree, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (tree, key) DO NOTHING RETURNING NULL::bytea"
            }
            (Some(_), None) => {
                "DELETE FROM postern_kv WHERE tree = $1 AND key = $2 AND value = $3 \
                 RETURNING NULL::bytea"
            }
            (Some(_), Some(_)) => {
                "UPDATE postern_kv SET value = $4 WHERE tree = $1 AND key = $2 AND value = $3 \
                 RETURNING NULL::bytea"
            }
        };
        let values = match old {
            Some(old) => [Some(old), new],
            None => [new, None],
        };
        Ok(!self.write(sql, key, values)?.is_empty())
    }

    fn scan(
        &self,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError> {
        let pool = self.shared.pool.clone();
        let name = self.name.clone();
        let (from, to) = (from.map(<[u8]>::to_vec), to.map(<[u8]>::to_vec));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.shared.run(async move {
            let mut sql = String::from("SELECT key, value FROM postern_kv WHERE tree = $1");
            let name: &str = &name;
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&name];
            for (bound, included, excluded) in [(&from, ">=", ">"), (&to, "<=", "<")] {
                let op = match bound {
                    Bound::Included(_) => included,
                    Bound::Excluded(_) => excluded,
                    Bound::Unbounded => continue,
                };
                if let Bound::Included(key) | Bound::Excluded(key) = bound {
                    params.push(key);
                }
                sql.push_str(&format!(" AND key {op} ${}", params.len()));
            }
            let order = if reverse { "DESC" } else { "ASC" };
            params.push(&limit);
            sql.push_str(&format!(" ORDER BY key {order} LIMIT ${}", params.len()));
            let (sql, params) = (&sql, &params);
            let rows = retry(&pool, |client| async move {
                let statement = client.prepare_cached(sql).await?;
                Ok(client.query(&statement, params).await?)
            })
            .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn len(&self) -> Result<usize, StoreError> {
        let pool = self.shared.pool.clone();
        let name = self.name.clone();
        self.shared.run(async move {
            let name: &str = &name;
            retry(&pool, |client| async move {
                let sql = "SELECT count(*) FROM postern_kv WHERE tree = $1";
                let statement = client.prepare_cached(sql).await?;
                let row = client.query_one(&statement, &[&name]).await?;
                Ok(row.get::<_, i64>(0) as usize)
            })
            .await
        })
    }
}
