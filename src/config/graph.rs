//! The `graph` upstream's settings (SPEC §5): Microsoft Graph `sendMail` with app-only
//! credentials (the client-credentials grant of the Microsoft identity platform, with a
//! client secret or a certificate), and what makes them unusable. The relay itself is
//! `relay::graph`; this module only describes and checks settings.
//!
//! `save_to_sent_items` exists for clarity and must stay `true`: `sendMail` with a MIME
//! body always saves the message in the mailbox's Sent Items (learn.microsoft.com/graph/
//! api/user-sendmail: `saveToSentItems` is a parameter of JSON bodies only), so a `false`
//! is refused rather than silently ignored.

use super::limits::UpstreamLimits;
use super::{OAuthConfig, OAuthGrant};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The default Graph endpoint (the global service; national clouds have their own).
pub const GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
/// The scope of an app-only Graph token: the permissions granted to the application.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Microsoft Graph `POST /users/{mailbox}/sendMail` with the message as MIME; the mailbox
/// is the account's address (the envelope sender). `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GraphUpstream {
    /// Directory (tenant) id or domain.
    pub tenant: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    /// Certificate credentials instead of `client_secret`: the certificate uploaded to the
    /// app registration (PEM) and its RSA private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// The client secret's end date (`YYYY-MM-DD`): warned `expiry_warn_days` before
    /// (`relay::oauth::watch`), as is the certificate's `notAfter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires: Option<String>,
    #[serde(default = "warn_days")]
    pub expiry_warn_days: u64,
    /// Default `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// The Graph endpoint, version included (`http://` only on loopback, for tests).
    #[serde(default = "graph_url")]
    pub graph_url: String,
    /// Extra PEM CA certificates trusted for `graph_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Seconds one request may take, connection included.
    #[serde(default = "timeout_secs")]
    pub timeout_secs: u64,
    /// Must be true: Graph saves every MIME `sendMail` in Sent Items.
    #[serde(default = "yes")]
    pub save_to_sent_items: bool,
    /// Sending limits over the `graph` preset (`config::limits::graph`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<UpstreamLimits>,
}

fn graph_url() -> String {
    GRAPH_URL.to_string()
}
fn timeout_secs() -> u64 {
    30
}
fn warn_days() -> u64 {
    14
}
fn yes() -> bool {
    true
}

impl std::fmt::Debug for GraphUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphUpstream")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &(!self.client_secret.is_empty()).then_some("[redacted]"),
            )
            .field("client_certificate", &self.client_certificate)
            .field("client_key", &self.client_key)
            .field("client_secret_expires", &self.client_secret_expires)
            .field("expiry_warn_days", &self.expiry_warn_days)
            .field("token_url", &self.token_url)
            .field("graph_url", &self.graph_url)
            .field("ca_file", &self.ca_file)
            .field("timeout_secs", &self.timeout_secs)
            .field("save_to_sent_items", &self.save_to_sent_items)
            .field("limits", &self.limits)
            .finish()
    }
}

impl GraphUpstream {
    /// The token endpoint: the configured one, or the tenant's on the Microsoft identity
    /// platform.
    pub fn token_endpoint(&self) -> String {
        self.token_url.clone().unwrap_or_else(|| {
            format!(
                "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                self.tenant
            )
        })
    }

    /// How the app-only token is obtained: client credentials, scope `.default` of Graph.
    pub fn oauth(&self) -> OAuthConfig {
        OAuthConfig {
            token_url: self.token_endpoint(),
            grant: OAuthGrant::ClientCredentials,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            refresh_token: String::new(),
            scope: GRAPH_SCOPE.to_string(),
            refresh_margin_secs: 300,
            client_certificate: self.client_certificate.clone(),
            client_key: self.client_key.clone(),
            service_account_key: None,
            subject: None,
            client_secret_expires: self.client_secret_expires.clone(),
            refresh_token_idle_days: None,
            expiry_warn_days: self.expiry_warn_days,
        }
    }

    /// What is wrong with these settings, as (field, reason); `None` if nothing.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.tenant.trim().is_empty() && self.token_url.is_none() {
            return Some(("tenant", "must not be empty".into()));
        }
        if self.client_id.trim().is_empty() {
            return Some(("client_id", "must not be empty".into()));
        }
        if let Some(problem) = self.credentials_problem() {
            return Some(problem);
        }
        let ends = self.client_secret_expires.as_deref();
        if ends.is_some_and(|date| super::credentials::parse_date(date).is_none()) {
            return Some(("client_secret_expires", "not a date (YYYY-MM-DD)".into()));
        }
        if let Some(reason) = endpoint_problem(&self.graph_url) {
            return Some(("graph_url", reason));
        }
        if let Some(reason) = endpoint_problem(&self.token_endpoint()) {
            return Some(("token_url", reason));
        }
        if self.timeout_secs == 0 {
            return Some(("timeout_secs", "must be at least 1".into()));
        }
        if !self.save_to_sent_items {
            return Some((
                "save_to_sent_items",
                "Graph's sendMail saves every MIME message in Sent Items (saveToSentItems \
                 exists only for JSON bodies): it cannot be false"
                    .into(),
            ));
        }
        None
    }

    fn credentials_problem(&self) -> Option<(&'static str, String)> {
        let secret = !self.client_secret.is_empty();
        match (&self.client_certificate, &self.client_key) {
            (Some(_), None) => Some(("client_key", "required with client_certificate".into())),
            (None, Some(_)) => Some(("client_certificate", "required with client_key".into())),
            (Some(_), Some(_)) if secret => Some((
                "client_secret",
                "either a client secret or a certificate, not both".into(),
            )),
            (None, None) if !secret => Some((
                "client_secret",
                "required (or client_certificate and client_key)".into(),
            )),
            _ => None,
        }
    }
}

/// Why `url` cannot be an endpoint: not `http(s)://host[:port]/path`, or plain `http://`
/// to anything but a loopback host (a token or a mailbox's mail in clear text).
fn endpoint_problem(url: &str) -> Option<String> {
    let parsed = match crate::net::http::parse_url(url) {
        Ok(parsed) => parsed,
        Err(error) => return Some(error.to_string()),
    };
    if parsed.path.contains(['?', '#']) {
        return Some("must not have a query or fragment".into());
    }
    let loopback = parsed.host.eq_ignore_ascii_case("localhost")
        || parsed
            .host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!parsed.https && !loopback).then(|| "must be https:// (http:// only on loopback)".into())
}

#[cfg(test)]
mod tests {
    use crate::config::UpstreamConfig;

    fn parse(text: &str) -> Result<UpstreamConfig, toml::de::Error> {
        toml::from_str(text)
    }

    const BASE: &str =
        "kind = \"graph\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"c\"\n";

    fn graph(extra: &str) -> super::GraphUpstream {
        match parse(&format!("{BASE}{extra}")).unwrap() {
            UpstreamConfig::Graph(graph) => graph,
            other => panic!("not a graph upstream: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_global_service_with_client_credentials() {
        let g = graph("client_secret = \"s3cret\"\n");
        assert_eq!(g.graph_url, "https://graph.microsoft.com/v1.0");
        assert_eq!((g.timeout_secs, g.save_to_sent_items), (30, true));
        assert_eq!(g.problem(), None);
        let oauth = g.oauth();
        assert_eq!(
            oauth.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(oauth.scope, "https://graph.microsoft.com/.default");
        assert_eq!(oauth.grant, crate::config::OAuthGrant::ClientCredentials);
        let shown = format!("{g:?}");
        assert!(
            shown.contains("[redacted]") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(parse(&format!("{BASE}client_secret = \"s\"\nusername = \"u\"\n")).is_err());
    }

    #[test]
    fn bad_settings_are_named() {
        let field = |extra: &str| graph(extra).problem().map(|p| p.0);
        assert_eq!(field(""), Some("client_secret"));
        assert_eq!(
            field(
                "client_secret = \"s\"\nclient_certificate = \"c.pem\"\nclient_key = \"k.pem\"\n"
            ),
            Some("client_secret")
        );
        assert_eq!(
            field("client_certificate = \"c.pem\"\n"),
            Some("client_key")
        );
        assert_eq!(
            field("client_certificate = \"c.pem\"\nclient_key = \"k.pem\"\n"),
            None
        );
        let s = "client_secret = \"s\"\n";
        assert_eq!(
            field(&format!("{s}graph_url = \"http://graph.example/v1.0\"\n")),
            Some("graph_url")
        );
        assert_eq!(
            field(&format!("{s}graph_url = \"http://127.0.0.1:9/v1.0\"\n")),
            None
        );
        assert_eq!(
            field(&format!("{s}graph_url = \"http://[::1]:9/v1.0\"\n")),
            None
        );
        assert_eq!(
            field(&format!("{s}graph_url = \"https://g.example/v1.0?x=1\"\n")),
            Some("graph_url")
        );
        assert_eq!(
            field(&format!("{s}token_url = \"http://login.example/t\"\n")),
            Some("token_url")
        );
        assert_eq!(
            field(&format!("{s}timeout_secs = 0\n")),
            Some("timeout_secs")
        );
        assert_eq!(
            field(&format!("{s}save_to_sent_items = false\n")),
            Some("save_to_sent_items")
        );
    }
}
