//! `[store]`: where the control state lives (sled embedded, or PostgreSQL shared by
//! several nodes) and this node's name.

use serde::Deserialize;

/// Where the control state lives (`[store]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// The PostgreSQL database (`postgres://user:password@host:port/db?sslmode=require`);
    /// only with `backend = "postgres"`.
    pub url: String,
    /// This node's name, unique among the nodes sharing the database; empty: the host
    /// name.
    pub node: String,
    /// PostgreSQL: whether other nodes' changes wake this one by `LISTEN`/`NOTIFY` (as
    /// well as a poll every 250 ms). False: the poll only (behind PgBouncer in
    /// transaction mode, which does not carry notifications).
    pub notify: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::default(),
            url: String::new(),
            node: String::new(),
            notify: true,
        }
    }
}

/// Which backend holds the control state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Embedded under `data_dir/store`; one node.
    #[default]
    Sled,
    /// A PostgreSQL database shared by every node.
    Postgres,
}
