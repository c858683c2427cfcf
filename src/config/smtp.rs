//! The settings of an SMTP upstream (`kind = "smtp"`, and what the `microsoft365` and
//! `google` presets expand to): endpoint, TLS, authentication, pooling, limits.

use super::{OAuthConfig, UpstreamLimits};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// TLS towards an SMTP upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamTls {
    #[default]
    Starttls,
    Implicit,
    None,
    /// STARTTLS when the server offers it, without checking its certificate (direct
    /// delivery to MX hosts, like Postfix's `smtp_tls_security_level = may`).
    Opportunistic,
}

/// SASL mechanism towards an SMTP upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamAuth {
    #[default]
    None,
    Plain,
    Login,
    /// OAuth2 bearer token (Google, Microsoft); needs `oauth`.
    Xoauth2,
    /// OAuth2 bearer token, RFC 7628; needs `oauth`.
    Oauthbearer,
}

/// An SMTP relay (a provider's submission host, a smarthost).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpUpstream {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: UpstreamTls,
    #[serde(default)]
    pub auth: UpstreamAuth,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// Extra PEM CA certificates trusted for this upstream (private relays, tests).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Idle connections kept open for reuse.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Seconds an idle pooled connection is kept.
    #[serde(default = "default_pool_idle")]
    pub pool_idle_secs: u64,
    /// Connections open to this upstream at once; deliveries beyond it wait for one to be
    /// free (like Postfix's destination concurrency limit) instead of opening a connection
    /// the pool could not keep.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds allowed to connect, and for each reply.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Send messages with BDAT (RFC 3030), pipelined with MAIL and RCPT, when the upstream
    /// offers CHUNKING and PIPELINING: one round trip per message instead of two.
    #[serde(default = "default_chunking")]
    pub chunking: bool,
    /// Where the OAuth2 token for `xoauth2` / `oauthbearer` comes from.
    #[serde(default)]
    pub oauth: Option<OAuthConfig>,
    /// Sending limits over the kind's preset (`config::limits`); none for a plain relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<UpstreamLimits>,
}

impl SmtpUpstream {
    /// An upstream at `host` with every other setting at its default (what a file with
    /// only `host` gives).
    pub fn with_host(host: &str) -> SmtpUpstream {
        SmtpUpstream {
            host: host.to_string(),
            port: default_smtp_port(),
            tls: UpstreamTls::default(),
            auth: UpstreamAuth::default(),
            username: String::new(),
            password: String::new(),
            ca_file: None,
            pool_size: default_pool_size(),
            pool_idle_secs: default_pool_idle(),
            max_connections: default_max_connections(),
            timeout_secs: default_timeout(),
            chunking: default_chunking(),
            oauth: None,
            limits: None,
        }
    }
}

fn default_smtp_port() -> u16 {
    587
}
fn default_pool_size() -> usize {
    32
}
fn default_max_connections() -> usize {
    32
}
fn default_pool_idle() -> u64 {
    30
}
fn default_timeout() -> u64 {
    60
}
fn default_chunking() -> bool {
    true
}
