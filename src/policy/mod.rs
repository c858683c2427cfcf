//! Policy: who a session is, and what it may send as.
//!
//! - `credentials` — principals are looked up in the store and their credentials verified:
//!   argon2id for human passwords (on the `hasher` threads, never on the async workers), a
//!   constant-time compare of SHA-256 digests for high-entropy secrets.
//! - `hasher` — a fixed pool of threads for argon2, bounding its concurrency and memory.
//! - `address` — the canonical form of a mailbox address (SPEC §12), the one key every
//!   address comparison uses.
//! - `snapshot` — an immutable, atomically swapped picture of users, roles and accounts.
//! - `decide` — the send-as rules of SPEC §3 as pure functions over a snapshot.
//! - `explain` — a decision with its rule trail and the rewrite it would apply.
//!
//! Policy decisions never write and never await; they read a snapshot and return a verdict.

pub mod address;
mod credentials;
mod decide;
mod explain;
mod hasher;
mod snapshot;
pub mod watch;

pub use credentials::{
    digest_matches, digest_secret, hash_password, new_secret, principal, Credentials,
};
pub use decide::{
    admit, check_envelope, decide, right_name, scope_admits, Decision, Refusal, SendRight,
};
pub use explain::{explain, from_display, sender, Explanation};
pub use hasher::Hasher;
pub use snapshot::{normalize, Blocked, Policy, Snapshot};

use crate::store::{StoreError, UserKind};

/// An authenticated (or trusted) sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: u64,
    pub login: String,
    pub email: String,
    pub kind: UserKind,
}

/// Why a credential check failed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Unknown login, wrong secret, or a user who may not log in: one answer for all.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hash(String),
}
