//! OAuth2 for SMTP upstreams, the provider presets and direct delivery (SPEC §5):
//! `microsoft365` and `google` are an `smtp` upstream (the provider's submission host,
//! STARTTLS, XOAUTH2) with only the fields each provider needs — `host`, `port`, `tls` and
//! `ca_file` may be overridden (sovereign clouds, tests); `mx` delivers to the recipients'
//! own MX hosts.

use super::limits::{self, UpstreamLimits};
use super::{SmtpUpstream, UpstreamAuth, UpstreamTls};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which OAuth2 grant obtains the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OAuthGrant {
    /// The client's own credentials (an app-only token; Microsoft 365).
    #[default]
    ClientCredentials,
    /// A refresh token issued to a user (Google; Microsoft delegated).
    RefreshToken,
    /// A Google service account's signed assertion (RFC 7523 §2.1, JWT bearer), acting
    /// for `subject` by domain-wide delegation: `service_account_key` names its key file.
    ServiceAccount,
}

/// How an upstream obtains its OAuth2 access token (`auth = "xoauth2"` or
/// `"oauthbearer"`). `Debug` leaves the secrets out.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The token endpoint (`https://…`; `http://` only for tests on loopback). Empty with
    /// a service account: the key file's `token_uri`.
    #[serde(default)]
    pub token_url: String,
    #[serde(default)]
    pub grant: OAuthGrant,
    /// The application (client) id; not used by a service account.
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    /// For `grant = "refresh_token"`.
    #[serde(default)]
    pub refresh_token: String,
    #[serde(default)]
    pub scope: String,
    /// A token is replaced this long before it expires (at most half its lifetime).
    #[serde(default = "default_margin")]
    pub refresh_margin_secs: u64,
    /// Certificate credentials instead of `client_secret` (RFC 7523 assertion, RS256):
    /// the certificate registered for the application (PEM) and its RSA private key (PEM).
    #[serde(default)]
    pub client_certificate: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Google service account key file (JSON), for `grant = "service_account"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_key: Option<PathBuf>,
    /// The user a service account acts for; default: the upstream's `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The client secret's end date (`YYYY-MM-DD`, as the app registration shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires: Option<String>,
    /// Days an unused refresh token lives at the provider; default: known from
    /// `token_url` (Microsoft 90, Google 183), else not watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_idle_days: Option<u64>,
    /// Days before a credential's end (secret, certificate, idle refresh token) that the
    /// accounts turn `degraded` with a warning.
    #[serde(default = "default_warn_days")]
    pub expiry_warn_days: u64,
}

fn default_margin() -> u64 {
    300
}

fn default_warn_days() -> u64 {
    14
}

/// Microsoft 365 (Exchange Online): `smtp.office365.com:587`, STARTTLS, XOAUTH2 with a
/// token from the Microsoft identity platform — client credentials for the app
/// (`client_secret`), or a delegated `refresh_token`. `Debug` leaves the secrets out.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Microsoft365Upstream {
    /// Directory (tenant) id or domain.
    pub tenant: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    /// Certificate credentials instead of `client_secret`: the certificate uploaded to the
    /// app registration (PEM) and its RSA private key (PEM).
    #[serde(default)]
    pub client_certificate: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Set: the delegated (refresh-token) flow instead of client credentials.
    #[serde(default)]
    pub refresh_token: String,
    /// The client secret's end date (`YYYY-MM-DD`): warned `expiry_warn_days` before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires: Option<String>,
    #[serde(default = "default_warn_days")]
    pub expiry_warn_days: u64,
    /// The mailbox the token authenticates as.
    pub username: String,
    #[serde(default)]
    pub token_url: Option<String>,
    /// Overrides of the provider's SMTP endpoint.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Sending limits over the preset's (`config::limits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<UpstreamLimits>,
}

/// Google Workspace: `smtp.gmail.com:587`, STARTTLS, XOAUTH2 with a token from the
/// user's `refresh_token`, or from a service account with domain-wide delegation (scope
/// `https://mail.google.com/`). `Debug` leaves the secrets out.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleUpstream {
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    /// A user's refresh token (with `client_id`), or else `service_account_key`.
    #[serde(default)]
    pub refresh_token: String,
    /// A service account's key file (JSON) with domain-wide delegation, instead of a
    /// refresh token: it acts for `subject` (default: `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_key: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default = "default_warn_days")]
    pub expiry_warn_days: u64,
    /// The mailbox the token authenticates as.
    pub username: String,
    #[serde(default)]
    pub token_url: Option<String>,
    /// Overrides of the provider's SMTP endpoint.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Sending limits over the preset's (`config::limits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<UpstreamLimits>,
}

/// Direct delivery: each recipient domain's MX hosts by preference (its A/AAAA when it
/// has no MX), opportunistic STARTTLS, connections reused per destination host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MxUpstream {
    /// Name servers (`ip:port`) for the MX, A and AAAA lookups; empty: `[dns]
    /// nameservers`, else the system's resolver.
    #[serde(default)]
    pub nameservers: Vec<std::net::SocketAddr>,
    /// Port of the destination hosts.
    #[serde(default = "mx_port")]
    pub port: u16,
    /// Idle connections kept per destination host.
    #[serde(default = "mx_pool")]
    pub pool_size: usize,
    #[serde(default = "mx_idle")]
    pub pool_idle_secs: u64,
    /// Connections open at once per destination host.
    #[serde(default = "mx_pool")]
    pub max_connections: usize,
    /// Seconds allowed to connect, and for each reply (and for a DNS answer).
    #[serde(default = "mx_timeout")]
    pub timeout_secs: u64,
    /// Send with BDAT to hosts that offer CHUNKING and PIPELINING (as `chunking` of an SMTP
    /// upstream); false: DATA to every host.
    #[serde(default = "mx_chunking")]
    pub chunking: bool,
    /// Sending limits over the preset's (`config::limits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<UpstreamLimits>,
}

fn mx_chunking() -> bool {
    true
}
fn mx_port() -> u16 {
    25
}
fn mx_pool() -> usize {
    4
}
fn mx_idle() -> u64 {
    30
}
fn mx_timeout() -> u64 {
    60
}

/// Overrides of a preset's SMTP endpoint.
struct Endpoint<'a> {
    host: &'a Option<String>,
    port: Option<u16>,
    tls: Option<UpstreamTls>,
    ca_file: &'a Option<PathBuf>,
}

impl Microsoft365Upstream {
    /// The `smtp` upstream this preset stands for.
    pub fn to_smtp(&self) -> SmtpUpstream {
        let delegated = !self.refresh_token.is_empty();
        let oauth = OAuthConfig {
            token_url: self.token_url.clone().unwrap_or_else(|| {
                format!(
                    "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                    self.tenant
                )
            }),
            grant: match delegated {
                true => OAuthGrant::RefreshToken,
                false => OAuthGrant::ClientCredentials,
            },
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            refresh_token: self.refresh_token.clone(),
            scope: match delegated {
                true => "https://outlook.office365.com/SMTP.Send offline_access".into(),
                false => "https://outlook.office365.com/.default".into(),
            },
            refresh_margin_secs: default_margin(),
            client_certificate: self.client_certificate.clone(),
            client_key: self.client_key.clone(),
            service_account_key: None,
            subject: None,
            client_secret_expires: self.client_secret_expires.clone(),
            refresh_token_idle_days: Some(super::credentials::MICROSOFT_REFRESH_IDLE_DAYS),
            expiry_warn_days: self.expiry_warn_days,
        };
        let endpoint = Endpoint {
            host: &self.host,
            port: self.port,
            tls: self.tls,
            ca_file: &self.ca_file,
        };
        preset("smtp.office365.com", &self.username, endpoint, oauth)
    }
}

impl GoogleUpstream {
    /// The `smtp` upstream this preset stands for.
    pub fn to_smtp(&self) -> SmtpUpstream {
        let service = self.service_account_key.is_some();
        let oauth = OAuthConfig {
            // A service account's key file names its token endpoint.
            token_url: self.token_url.clone().unwrap_or_else(|| match service {
                true => String::new(),
                false => "https://oauth2.googleapis.com/token".into(),
            }),
            grant: match service {
                true => OAuthGrant::ServiceAccount,
                false => OAuthGrant::RefreshToken,
            },
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            refresh_token: self.refresh_token.clone(),
            scope: String::new(),
            refresh_margin_secs: default_margin(),
            client_certificate: None,
            client_key: None,
            service_account_key: self.service_account_key.clone(),
            subject: self.subject.clone(),
            client_secret_expires: None,
            refresh_token_idle_days: Some(super::credentials::GOOGLE_REFRESH_IDLE_DAYS),
            expiry_warn_days: self.expiry_warn_days,
        };
        let endpoint = Endpoint {
            host: &self.host,
            port: self.port,
            tls: self.tls,
            ca_file: &self.ca_file,
        };
        preset("smtp.gmail.com", &self.username, endpoint, oauth)
    }
}

fn preset(host: &str, username: &str, endpoint: Endpoint<'_>, oauth: OAuthConfig) -> SmtpUpstream {
    let mut smtp = SmtpUpstream::with_host(endpoint.host.as_deref().unwrap_or(host));
    smtp.port = endpoint.port.unwrap_or(587);
    smtp.tls = endpoint.tls.unwrap_or(UpstreamTls::Starttls);
    smtp.ca_file = endpoint.ca_file.clone();
    smtp.auth = UpstreamAuth::Xoauth2;
    smtp.username = username.to_string();
    smtp.oauth = Some(oauth);
    smtp
}

/// Debug output of a settings struct with its secrets replaced.
macro_rules! debug_without_secrets {
    ($type:ty, [$($field:ident),*], [$($secret:ident),*]) => {
        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut out = f.debug_struct(stringify!($type));
                $(out.field(stringify!($field), &self.$field);)*
                $(out.field(stringify!($secret), &(!self.$secret.is_empty()).then_some("[redacted]"));)*
                out.finish()
            }
        }
    };
}

debug_without_secrets!(
    OAuthConfig,
    [
        token_url,
        grant,
        client_id,
        scope,
        refresh_margin_secs,
        client_certificate,
        client_key,
        service_account_key,
        subject,
        client_secret_expires,
        refresh_token_idle_days,
        expiry_warn_days
    ],
    [client_secret, refresh_token]
);
debug_without_secrets!(
    Microsoft365Upstream,
    [
        tenant,
        client_id,
        client_certificate,
        client_key,
        client_secret_expires,
        expiry_warn_days,
        username,
        token_url,
        host,
        port,
        tls,
        ca_file
    ],
    [client_secret, refresh_token]
);
debug_without_secrets!(
    GoogleUpstream,
    [
        client_id,
        service_account_key,
        subject,
        expiry_warn_days,
        username,
        token_url,
        host,
        port,
        tls,
        ca_file
    ],
    [client_secret, refresh_token]
);

impl super::UpstreamConfig {
    /// The `smtp` upstream this one is (itself, or what a preset stands for); `None` for
    /// kinds that are not one SMTP endpoint (`maildir`, `mx`).
    pub fn smtp(&self) -> Option<SmtpUpstream> {
        match self {
            super::UpstreamConfig::Smtp(smtp) => Some(smtp.clone()),
            super::UpstreamConfig::Microsoft365(m) => Some(m.to_smtp()),
            super::UpstreamConfig::Google(g) => Some(g.to_smtp()),
            super::UpstreamConfig::Maildir(_) | super::UpstreamConfig::Mx(_) => None,
            super::UpstreamConfig::Graph(_) => None,
        }
    }

    /// The sending limits in force: the kind's preset with the configured overrides.
    pub fn limits(&self) -> UpstreamLimits {
        use super::UpstreamConfig as U;
        let (set, preset) = match self {
            U::Maildir(_) => (None, UpstreamLimits::default()),
            U::Smtp(smtp) => (smtp.limits, UpstreamLimits::default()),
            U::Microsoft365(m) => (m.limits, limits::microsoft365()),
            U::Google(g) => (g.limits, limits::google()),
            U::Mx(mx) => (mx.limits, UpstreamLimits::default()),
            U::Graph(g) => (g.limits, limits::graph()),
        };
        set.unwrap_or_default().over(preset)
    }
}

impl SmtpUpstream {
    /// What is wrong with these settings, as (field, reason); `None` if nothing.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let oauth = matches!(self.auth, UpstreamAuth::Xoauth2 | UpstreamAuth::Oauthbearer);
        if self.host.trim().is_empty() {
            return Some(("host", "must not be empty".into()));
        }
        if self.port == 0 {
            return Some(("port", "must be 1-65535".into()));
        }
        if self.auth != UpstreamAuth::None && self.username.is_empty() {
            return Some(("username", "required when auth is set".into()));
        }
        if oauth && self.oauth.is_none() {
            return Some((
                "oauth",
                "required when auth is xoauth2 or oauthbearer".into(),
            ));
        }
        if let Some(problem) = self.oauth.as_ref().and_then(OAuthConfig::problem) {
            return Some(problem);
        }
        if self.auth != UpstreamAuth::None && self.tls == UpstreamTls::Opportunistic {
            return Some((
                "tls",
                "opportunistic TLS checks no certificate: credentials need starttls or implicit"
                    .into(),
            ));
        }
        None
    }
}

#[cfg(test)]
#[path = "providers_tests.rs"]
mod tests;
