//! The typed configuration tree with its defaults (SPEC §10: a fresh install runs with no
//! file at all).

use super::{GoogleUpstream, Microsoft365Upstream, MxUpstream, SmtpUpstream, StoreConfig};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the store (`data_dir/store`) and the default maildir outbox live.
    pub data_dir: PathBuf,
    /// Name used in the greeting, `Received` fields and DSNs; empty = the system host name.
    pub hostname: String,
    /// Upstream used for mail that no other rule routes (and for DSNs).
    pub default_upstream: String,
    /// Seconds sessions in flight may take to finish after a stop is asked for.
    pub shutdown_grace_secs: u64,
    pub api: ApiConfig,
    pub console: ConsoleConfig,
    pub store: StoreConfig,
    pub tls: TlsConfig,
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    pub limits: Limits,
    pub queue: QueueConfig,
    pub webhooks: WebhookConfig,
    pub inbound: InboundConfig,
    pub archive: ArchiveConfig,
    pub dns: DnsConfig,
    #[serde(rename = "upstream")]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
}

impl Default for Config {
    fn default() -> Self {
        let mut upstreams = BTreeMap::new();
        upstreams.insert(
            "local".to_string(),
            UpstreamConfig::Maildir(MaildirUpstream { path: None }),
        );
        Config {
            data_dir: PathBuf::from("data"),
            hostname: String::new(),
            default_upstream: "local".into(),
            shutdown_grace_secs: 30,
            api: ApiConfig::default(),
            console: ConsoleConfig::default(),
            store: StoreConfig::default(),
            tls: TlsConfig::default(),
            listeners: vec![
                ListenerConfig {
                    name: "submission-loopback".into(),
                    bind: "127.0.0.1:2525".parse().expect("literal address"),
                    tls: TlsMode::None,
                    allow_plaintext_auth: true,
                    ..ListenerConfig::default()
                },
                ListenerConfig {
                    name: "submission".into(),
                    bind: "127.0.0.1:2587".parse().expect("literal address"),
                    tls: TlsMode::Starttls,
                    ..ListenerConfig::default()
                },
                ListenerConfig {
                    name: "inbound".into(),
                    bind: "127.0.0.1:2526".parse().expect("literal address"),
                    purpose: Purpose::Inbound,
                    tls: TlsMode::Starttls,
                    ..ListenerConfig::default()
                },
            ],
            limits: Limits::default(),
            queue: QueueConfig::default(),
            webhooks: WebhookConfig::default(),
            inbound: InboundConfig::default(),
            archive: ArchiveConfig::default(),
            dns: DnsConfig::default(),
            upstreams,
        }
    }
}

/// The control API listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub bind: SocketAddr,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            bind: "127.0.0.1:8025".parse().expect("literal address"),
        }
    }
}

/// The web console served by the API listener (`/console/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Seconds a console session lasts after its login.
    pub session_lifetime_secs: u64,
    /// The address people open the console at, e.g. `https://postern.example.com` behind a
    /// TLS proxy. An `https` address makes the session cookie `Secure` under the
    /// `__Host-` name; its origin is accepted on unsafe requests. Empty: the API listener
    /// itself, over plain HTTP.
    pub public_url: String,
    /// Failed logins per address, and per client IP, within 15 minutes before further
    /// attempts from it are refused until the window has passed.
    pub max_failed_logins: u32,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_lifetime_secs: 8 * 3600,
            public_url: String::new(),
            max_failed_logins: 10,
        }
    }
}

impl ConsoleConfig {
    /// Whether the console is reached over TLS (its public address is `https`).
    pub fn secure(&self) -> bool {
        self.public_url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    }
}

/// The server certificate shared by every TLS listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; generated (self-signed) when missing.
    pub cert: PathBuf,
    /// PEM private key; generated with the certificate when missing.
    pub key: PathBuf,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: PathBuf::from("certs/postern.pem"),
            key: PathBuf::from("certs/postern.key"),
        }
    }
}

/// What a listener is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Authenticated clients submitting outbound mail (RFC 6409).
    #[default]
    Submission,
    /// Mail from the internet for helpdesk mailboxes.
    Inbound,
}

/// How a listener speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text only; AUTH only if `allow_plaintext_auth` and the bind is loopback.
    None,
    /// Plain text, upgraded by STARTTLS (RFC 3207).
    #[default]
    Starttls,
    /// TLS from the first byte (RFC 8314).
    Implicit,
}

/// One SMTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    pub name: String,
    pub bind: SocketAddr,
    pub purpose: Purpose,
    pub tls: TlsMode,
    /// Offer AUTH without TLS; honoured only when `bind` is a loopback address.
    pub allow_plaintext_auth: bool,
    /// Clients from these networks may submit without AUTH as `trusted_principal`.
    pub trusted_networks: Vec<IpNet>,
    /// Login of the `system` user that trusted clients submit as.
    pub trusted_principal: String,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            name: String::new(),
            bind: "127.0.0.1:2587".parse().expect("literal address"),
            purpose: Purpose::Submission,
            tls: TlsMode::Starttls,
            allow_plaintext_auth: false,
            trusted_networks: Vec::new(),
            trusted_principal: String::new(),
        }
    }
}

/// Protocol limits (SPEC §6); defaults follow RFC 5321 and Postfix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
    pub command_line: usize,
    /// Longest text line in a message, CRLF included (RFC 5321 §4.5.3.1.6).
    pub text_line: usize,
    /// Largest header block of a message, in octets.
    pub header_block: usize,
    /// Largest message, advertised with SIZE.
    pub message_size: usize,
    /// Recipients accepted per message; more get `452 4.5.3`.
    pub recipients: usize,
    /// `Received` fields a message may carry before it is taken for a loop.
    pub received_hops: usize,
    /// Refused commands before the session is closed.
    pub errors_per_session: u32,
    /// Failed AUTH attempts before the session is closed.
    pub auth_failures: u32,
    /// Seconds a command line (or AUTH answer, or TLS handshake, at most 30 s) may take to
    /// arrive whole, from the moment the server waits for it: a deadline per line, not per
    /// read. Also the first allowance of DATA and of each BDAT chunk.
    pub idle_timeout_secs: u64,
    /// Octets per second DATA and BDAT must keep to (Postfix's `smtpd_min_data_rate`): the
    /// payload's deadline moves `n / min_data_rate` seconds on for `n` octets received, but
    /// never beyond `idle_timeout_secs` from the last read. 0: only the idle timeout.
    pub min_data_rate: u64,
    /// Longest a session may last, in seconds, whatever it is doing (also mid-line or
    /// mid-message).
    pub session_timeout_secs: u64,
    /// Concurrent sessions from one IP address, per listener.
    pub connections_per_ip: usize,
    /// Concurrent sessions per listener.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            command_line: 512,
            text_line: 1000,
            header_block: 100 * 1024,
            message_size: 25 * 1024 * 1024,
            recipients: 100,
            received_hops: 50,
            errors_per_session: 20,
            auth_failures: 3,
            idle_timeout_secs: 300,
            min_data_rate: 500,
            session_timeout_secs: 3600,
            connections_per_ip: 50,
            max_connections: 1000,
        }
    }
}

/// Retry schedule and delivery concurrency (SPEC §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Delay before each retry, in seconds; the last one repeats until expiry.
    pub retry_intervals_secs: Vec<u64>,
    /// A message still undelivered this many seconds after it was accepted expires.
    pub expire_after_secs: u64,
    /// Deliveries in flight at once, over all upstreams.
    pub concurrency: usize,
    /// Free space (MiB) kept on the spool's and the store's file systems: below it new
    /// mail is refused with `452 4.3.1` before anything is written (Postfix's
    /// `queue_minfree`), and no spare journal segment is made from it.
    pub min_free_mb: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            retry_intervals_secs: vec![60, 300, 900, 1800, 3600],
            expire_after_secs: 5 * 24 * 3600,
            concurrency: 64,
            min_free_mb: 64,
        }
    }
}

/// How webhook calls of the inbound hook are made and retried (SPEC §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Delay before each retry of a failed call, in seconds; the last one repeats until the
    /// webhook's `max_attempts` is reached and the delivery is dead.
    pub retry_intervals_secs: Vec<u64>,
    /// Longest wait for an answer, connection included.
    pub timeout_secs: u64,
    /// Calls in flight at once.
    pub concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            retry_intervals_secs: vec![10, 60, 300, 900, 3600],
            timeout_secs: 10,
            concurrency: 16,
        }
    }
}

/// The archive of non-private users' mail and its retention (SPEC §8).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Keep the mail of users whose account type is not `private`.
    pub enabled: bool,
    /// Days a message of a `record_level` user is kept (0: for ever).
    pub record_level_days: u64,
    /// Days a message of a `complete` user is kept (0: for ever).
    pub complete_days: u64,
    /// Seconds between two runs of the purge job.
    pub purge_interval_secs: u64,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            enabled: true,
            record_level_days: 730,
            complete_days: 730,
            purge_interval_secs: 3600,
        }
    }
}

/// Inbound (helpdesk) mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    /// Check SPF, DKIM, DMARC and ARC of inbound mail and record the verdicts.
    pub authenticate: bool,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig { authenticate: true }
    }
}

/// DNS for the authentication checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Name servers (`ip:port`); empty: the system's `/etc/resolv.conf`.
    pub nameservers: Vec<std::net::SocketAddr>,
    /// Longest wait for one answer.
    pub timeout_secs: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            timeout_secs: 5,
        }
    }
}

/// Where messages go once accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum UpstreamConfig {
    Maildir(MaildirUpstream),
    Smtp(SmtpUpstream),
    Microsoft365(Microsoft365Upstream),
    Google(GoogleUpstream),
    Mx(MxUpstream),
    Graph(super::GraphUpstream),
}

/// A local maildir (the default: `data_dir/outbox`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaildirUpstream {
    /// Folder holding `tmp/`, `new/`, `cur/`; default `data_dir/outbox`.
    pub path: Option<PathBuf>,
}
