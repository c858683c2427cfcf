//! The archive (SPEC §8): the mail of users whose account type is not `private`, kept
//! without a second copy of its bytes, and the backups handed over when a user leaves.
//!
//! - `owners`  — whose mail an accepted message is (a `Keep` in its spool metadata).
//! - `catalog` — the task that records each kept message leaving the queue in the store's
//!   catalog (metadata, linked tickets, retention), pointing at the journal record the
//!   spool already wrote.
//! - `links`   — the tickets a kept message is linked to.
//! - `purge`   — the job that removes what retention ended.
//! - `read`    — the archive as its readers see it: listings with filters, one message,
//!   its raw bytes (the API's `/api/v1/archive`; permissions are the caller's).
//! - `backup`  — backup jobs of a deactivated user's mail, written as `mbox` files.

pub mod backup;
pub mod catalog;
pub mod links;
pub mod mbox;
pub mod owners;
pub mod purge;
pub mod read;

pub use catalog::Catalog;

use crate::spool::SpoolError;
use crate::store::StoreError;

/// Why the archive could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Spool(#[from] SpoolError),
    #[error("backup file: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Failed(String),
    #[error("message {id} is kept in the spool of node {node}: read it through that node")]
    OnNode { id: u64, node: String },
}
