//! Configuration: the serde structs behind `postern.toml`, their built-in defaults, and
//! validation. Unknown keys are refused with their name (`deny_unknown_fields`).
//!
//! This module only describes settings; it opens no socket and touches no file except the
//! one it is asked to read.

pub mod credentials;
mod graph;
pub mod limits;
mod load;
mod providers;
mod smtp;
mod store;
mod types;

pub use graph::GraphUpstream;
pub use limits::{SendLimits, UpstreamLimits};
pub use load::{load, parse};
pub use providers::*;
pub use smtp::{SmtpUpstream, UpstreamAuth, UpstreamTls};
pub use store::{StoreBackend, StoreConfig};
pub use types::*;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}
