//! Postern: a mail gateway that sits in front of mail providers, decides who may send as
//! which mailbox, keeps every accepted message durably, and relays it upstream.
//!
//! # Layout
//!
//! - `config`  — serde structs for `postern.toml` (unknown keys refused), defaults, validation.
//! - `net`     — TCP accept loop with connection and per-IP limits; rustls server/client setup,
//!   self-signed development certificate.
//! - `smtp`    — the inbound SMTP server: `Session<S>` generic over the stream, strict framing
//!   (`io`), one file per command, every reply text in `reply`.
//! - `policy`  — principals and credential checks (argon2id off the runtime, SHA-256 digests
//!   for high-entropy secrets).
//! - `rewrite` — header-block edits on raw bytes (the `Received` trace field); the body is
//!   never touched.
//! - `spool`   — durable queue on sled: metadata and body stored apart, due index, group
//!   commit before every `250`, retry schedule, delivery worker, DSNs.
//! - `relay`   — the `Deliver` trait and its kinds: `maildir` and `smtp` (pooled, pipelined).
//! - `api`     — the axum control API: health, metrics, users; problem+json errors.
//! - `store`   — sole owner of the `sled::Db`: typed trees for users, settings and the spool;
//!   `flush` = sled's flush + `syncfs`, the durable point of every group commit.
//! - `metrics` — metric handles registered once on a Prometheus recorder owned by the app.
//! - `app`     — builds every piece from the config, starts the services, shuts them down.
//!
//! # Flow
//!
//! listener → `smtp::Session` (credentials at AUTH, limits at MAIL/RCPT/DATA) → data
//! receiver (strict CRLF, dot-unstuffing) → `rewrite` (Received prepended) → `spool` write +
//! group-commit fsync → `250 2.0.0 queued as <id>` → spool worker → `relay::Deliver` for the
//! upstream → per-recipient status made durable → DSN on permanent failure or expiry.

pub mod api;
pub mod app;
pub mod config;
pub mod metrics;
pub mod net;
pub mod policy;
pub mod relay;
pub mod rewrite;
pub mod smtp;
pub mod spool;
pub mod store;
