//! OAuth2 access tokens for the upstream SASL mechanisms XOAUTH2 and OAUTHBEARER (SPEC §5):
//! the client-credentials grant (Microsoft identity platform, app-only), the
//! refresh-token grant (Google, Microsoft delegated) and the JWT-bearer grant of Google
//! service accounts (`service_account`) against a configurable token endpoint, over the
//! one HTTP client every upstream shares (`relay::Shared`; an upstream with its own
//! `ca_file` gets a client that also trusts it).
//!
//! A token is cached until `refresh_margin_secs` before it expires. However many
//! deliveries need one at the same time, one request is made (single flight: the first
//! caller fetches under the lock, the others wait for it and take its token). A token the
//! upstream refused is forgotten, so the next delivery fetches a new one. A rotated refresh
//! token (a provider may send a new one with each answer) replaces the old one, in memory
//! and in the store (`store::Refreshes`), which a restart takes it back from.
//! Secrets and tokens are never logged. The client authenticates with its secret or, with
//! `client_certificate`/`client_key`, with a signed assertion (`assertion`).
//!
//! Credentials do not die silently (`watch`): a refused refresh token, one about to expire
//! unused, a client secret or certificate near its end raise warnings about the upstream,
//! checked at start, once a day and at each token request.
//!
//! - `assertion`       — RS256 JWT signing; certificate credentials.
//! - `service_account` — Google's JSON key files and their assertions.
//! - `watch`           — end dates → warnings.
//! - `wire`            — the form and the answer of a token request; SASL initial responses.

mod assertion;
mod service_account;
pub mod watch;
mod wire;

pub use assertion::ClientAssertion;
pub use service_account::ServiceAccount;
pub use wire::{oauthbearer, xoauth2};

use crate::config::{OAuthConfig, OAuthGrant};
use crate::net::http::{parse_url, Client, HttpError, Url};
use crate::relay::warnings::{Subject, Warnings};
use crate::store::{Refresh, Refreshes};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use wire::{answer, encode_form, Answer};

/// How long a failed fetch is answered from memory.
const FAILURE_HOLD: Duration = Duration::from_secs(5);
/// The longest lifetime believed (seconds); a larger `expires_in` is cut to it.
const MAX_LIFETIME: u64 = 24 * 3600;
/// The longest a token request may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);

/// Why no token was obtained.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    #[error("token endpoint URL: {0}")]
    Config(String),
    #[error("token endpoint unreachable: {0}")]
    Http(#[from] HttpError),
    /// The endpoint answered with an OAuth2 error (RFC 6749 §5.2).
    #[error("token endpoint refused ({status}): {error}{}", description.as_deref().map(|d| format!(" — {d}")).unwrap_or_default())]
    Refused {
        status: u16,
        error: String,
        description: Option<String>,
    },
    #[error("token endpoint answered without a usable token ({0})")]
    BadAnswer(String),
}

impl OAuthError {
    /// True when asking again cannot help until an administrator changes something (bad
    /// client credentials or grant): the account is failing, not merely delayed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, OAuthError::Config(_))
            || matches!(self, OAuthError::Refused { error, .. }
                if matches!(error.as_str(), "invalid_client" | "invalid_grant" | "unauthorized_client" | "invalid_scope" | "unsupported_grant_type"))
    }
}

/// How the client proves who it is.
enum Credential {
    /// `client_secret` (possibly empty: a public client).
    Secret,
    /// A signed client assertion (certificate credentials).
    Certificate(ClientAssertion),
    /// A Google service account acting for `subject`.
    ServiceAccount(ServiceAccount, String),
}

struct Cached {
    token: String,
    /// When it must be replaced (expiry minus the margin).
    renew_at: Instant,
}

struct State {
    cached: Option<Cached>,
    /// The last failure and until when it is answered without asking again, so that the
    /// deliveries waiting behind a failed fetch do not each wait for one of their own.
    failed: Option<(Instant, OAuthError)>,
    /// The refresh token in force (rotated ones replace the configured one).
    refresh_token: String,
    /// The last successful refresh of the configured refresh token (Unix seconds).
    last_refresh: Option<u64>,
}

/// The tokens of one upstream.
pub struct TokenSource {
    upstream: String,
    config: OAuthConfig,
    credential: Credential,
    url: Url,
    client: Client,
    warnings: Arc<Warnings>,
    /// Where successful refreshes are recorded (none: only in memory).
    refreshes: Option<Refreshes>,
    /// Names the configured refresh token in those records.
    token_digest: String,
    /// The client secret's configured end (Unix seconds).
    secret_ends: Option<u64>,
    state: Mutex<State>,
}

impl TokenSource {
    /// The token source of upstream `upstream`, authenticating as `username` (the subject
    /// of a service account unless `subject` is set). Reads its key files and checks the
    /// endpoint URL now, so a bad setting fails at start; then checks its credentials'
    /// end dates now and once a day (in the runtime it is built in).
    pub fn new(
        upstream: &str,
        config: &OAuthConfig,
        username: &str,
        shared: &crate::relay::Shared,
        ca_file: Option<&Path>,
    ) -> Result<Arc<TokenSource>, OAuthError> {
        let config_error = |e: String| OAuthError::Config(e);
        let credential = credential(config, username)?;
        let token_url = match (&credential, config.token_url.is_empty()) {
            (Credential::ServiceAccount(account, _), true) => account.token_uri().to_string(),
            _ => config.token_url.clone(),
        };
        let url = parse_url(&token_url).map_err(|e| config_error(e.to_string()))?;
        if config.grant == OAuthGrant::RefreshToken && config.refresh_token.is_empty() {
            return Err(config_error(
                "the refresh_token grant needs a refresh_token".into(),
            ));
        }
        let secret_ends = match &config.client_secret_expires {
            Some(date) => Some(crate::config::credentials::parse_date(date).ok_or_else(|| {
                config_error(format!(
                    "client_secret_expires {date:?} is not a YYYY-MM-DD date"
                ))
            })?),
            None => None,
        };
        let client = match ca_file {
            Some(path) => Client::with_ca_file(TOKEN_TIMEOUT, path)?,
            None => shared.http.clone(),
        };
        let source = Arc::new(TokenSource {
            upstream: upstream.to_string(),
            credential,
            url,
            client,
            warnings: shared.warnings.clone(),
            refreshes: shared.refreshes.clone(),
            token_digest: digest(&config.refresh_token),
            secret_ends,
            state: Mutex::new(State {
                cached: None,
                failed: None,
                refresh_token: config.refresh_token.clone(),
                last_refresh: None,
            }),
            config: config.clone(),
        });
        source.watch_daily();
        Ok(source)
    }

    /// A token valid for at least the margin: the cached one, or a fresh one.
    pub async fn token(&self) -> Result<String, OAuthError> {
        let mut state = self.state.lock().await;
        if let Some(cached) = &state.cached {
            if Instant::now() < cached.renew_at {
                return Ok(cached.token.clone());
            }
        }
        if let Some((until, error)) = &state.failed {
            if Instant::now() < *until {
                return Err(error.clone());
            }
        }
        let fetched = self.fetch(&state.refresh_token).await;
        self.judge(&mut state, &fetched);
        let fresh = match fetched {
            Ok(fresh) => fresh,
            Err(error) => {
                state.failed = Some((Instant::now() + FAILURE_HOLD, error.clone()));
                return Err(error);
            }
        };
        state.failed = None;
        if let Some(rotated) = fresh.refresh_token {
            state.refresh_token = rotated;
        }
        let lifetime = Duration::from_secs(fresh.expires_in.min(MAX_LIFETIME));
        let margin = Duration::from_secs(self.config.refresh_margin_secs).min(lifetime / 2);
        state.cached = Some(Cached {
            token: fresh.access_token.clone(),
            renew_at: Instant::now() + lifetime - margin,
        });
        Ok(fresh.access_token)
    }

    /// Forgets `token` after the upstream refused it (revoked, or expired early).
    pub async fn reject(&self, token: &str) {
        let mut state = self.state.lock().await;
        if state.cached.as_ref().is_some_and(|c| c.token == token) {
            state.cached = None;
        }
    }

    async fn fetch(&self, refresh_token: &str) -> Result<Answer, OAuthError> {
        let c = &self.config;
        let now = crate::spool::now_ms() / 1000;
        let mut form = Vec::new();
        let signed;
        match &self.credential {
            Credential::ServiceAccount(account, subject) => {
                let scope = match c.scope.is_empty() {
                    true => service_account::GMAIL_SCOPE,
                    false => c.scope.as_str(),
                };
                signed = account.jwt(subject, scope, now)?;
                form.push(("grant_type", service_account::GRANT_TYPE));
                form.push(("assertion", signed.as_str()));
            }
            credential => {
                form.push(("client_id", c.client_id.as_str()));
                match c.grant {
                    OAuthGrant::RefreshToken => {
                        form.push(("grant_type", "refresh_token"));
                        form.push(("refresh_token", refresh_token));
                    }
                    _ => form.push(("grant_type", "client_credentials")),
                }
                if let Credential::Certificate(assertion) = credential {
                    signed = assertion.jwt(&c.client_id, &c.token_url, now)?;
                    form.push((
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ));
                    form.push(("client_assertion", signed.as_str()));
                } else if !c.client_secret.is_empty() {
                    form.push(("client_secret", c.client_secret.as_str()));
                }
                if !c.scope.is_empty() {
                    form.push(("scope", c.scope.as_str()));
                }
            }
        }
        let body = encode_form(&form);
        let headers = [
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("Accept", "application/json".to_string()),
        ];
        let response = self
            .client
            .send_within(
                "POST",
                &self.url.to_string(),
                &headers,
                body.into_bytes(),
                TOKEN_TIMEOUT,
            )
            .await?;
        let json: serde_json::Value = serde_json::from_str(&response.body)
            .map_err(|_| OAuthError::BadAnswer(format!("HTTP {}, not JSON", response.status)))?;
        if !(200..300).contains(&response.status) {
            let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_string);
            return Err(OAuthError::Refused {
                status: response.status,
                error: text("error").unwrap_or_else(|| "unknown".into()),
                description: text("error_description"),
            });
        }
        answer(&json)
    }

    /// What a token request says about the credentials: a refused refresh token raises
    /// `refresh_token_refused`, a successful refresh clears it and is recorded; then the
    /// end dates are checked again.
    fn judge(&self, state: &mut State, fetched: &Result<Answer, OAuthError>) {
        if self.config.grant != OAuthGrant::RefreshToken {
            return self.check(state.last_refresh);
        }
        let subject = Subject::Upstream(self.upstream.clone());
        let now = crate::spool::now_ms() / 1000;
        match fetched {
            Ok(fresh) => {
                self.warnings.clear(&subject, "refresh_token_refused");
                state.last_refresh = Some(now);
                let current = fresh.refresh_token.as_ref().unwrap_or(&state.refresh_token);
                self.record(now, current.clone());
            }
            Err(OAuthError::Refused {
                error, description, ..
            }) if error == "invalid_grant" => {
                let message = format!(
                    "the token endpoint refused the refresh token (invalid_grant{}): it was revoked or has expired; sign in again (re-consent) and set the new refresh_token",
                    description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
                );
                self.warnings
                    .raise(subject, "refresh_token_refused", message, Some(now));
            }
            Err(_) => {}
        }
        self.check(state.last_refresh);
    }

    /// Raises or clears the end-date warnings, given the last successful refresh.
    fn check(&self, last_refresh: Option<u64>) {
        let ends = watch::Ends {
            secret: self
                .secret_ends
                .filter(|_| matches!(self.credential, Credential::Secret)),
            certificate: match &self.credential {
                Credential::Certificate(assertion) => Some(assertion.not_after()),
                _ => None,
            },
            refresh: (self.config.grant == OAuthGrant::RefreshToken)
                .then(|| {
                    self.config.refresh_token_idle_days.or_else(|| {
                        crate::config::credentials::idle_days_of(&self.config.token_url)
                    })
                })
                .flatten()
                .map(|days| (days, last_refresh)),
            warn_days: self.config.expiry_warn_days,
        };
        let now = crate::spool::now_ms() / 1000;
        watch::apply(&self.warnings, &self.upstream, ends.verdicts(now));
        if self.config.grant != OAuthGrant::RefreshToken {
            let subject = Subject::Upstream(self.upstream.clone());
            self.warnings.clear(&subject, "refresh_token_refused");
        }
    }

    /// Makes a successful refresh at `now`, and the refresh token then in force, durable
    /// (in the background: a token in hand is not held back for it).
    fn record(&self, now: u64, current: String) {
        let Some(refreshes) = self.refreshes.clone() else {
            return;
        };
        let record = Refresh {
            token: self.token_digest.clone(),
            at: now,
            current: Some(current),
        };
        let upstream = self.upstream.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = refreshes.record(&upstream, &record) {
                tracing::warn!(%error, upstream, "refresh token use not recorded");
            }
        });
    }

    /// What the store says of the configured refresh token, read into `state`: its last
    /// successful refresh and, unless this source already rotated it, the token in force.
    async fn recall(&self) {
        let Some(record) = self.recorded().await else {
            return;
        };
        let mut state = self.state.lock().await;
        state.last_refresh = state.last_refresh.max(Some(record.at));
        if let Some(current) = record
            .current
            .filter(|_| state.refresh_token == self.config.refresh_token)
        {
            state.refresh_token = current;
        }
    }

    /// The store's record for the configured refresh token.
    async fn recorded(&self) -> Option<Refresh> {
        let refreshes = self.refreshes.clone()?;
        let upstream = self.upstream.clone();
        let read = tokio::task::spawn_blocking(move || refreshes.get(&upstream)).await;
        match read {
            Ok(Ok(Some(record))) if record.token == self.token_digest => Some(record),
            Ok(Err(error)) => {
                tracing::warn!(%error, upstream = self.upstream, "refresh record not read");
                None
            }
            _ => None,
        }
    }

    /// Checks the credentials now and then once a day, for as long as this source is in
    /// use (the task ends after the upstream was replaced or removed). A refresh token is
    /// used each time (unless a token from it is in hand): one revoked is known before mail
    /// needs it, and one in use does not expire for want of use.
    fn watch_daily(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let source = Arc::downgrade(self);
        runtime.spawn(async move {
            while let Some(this) = source.upgrade() {
                this.recall().await;
                let last_refresh = this.state.lock().await.last_refresh;
                this.check(last_refresh);
                if this.config.grant == OAuthGrant::RefreshToken {
                    if let Err(error) = this.token().await {
                        tracing::warn!(upstream = this.upstream, %error, "refresh token not usable");
                    }
                }
                drop(this);
                tokio::time::sleep(Duration::from_secs(watch::DAY)).await;
            }
        });
    }
}

/// The credential `config` names; key files are read here.
fn credential(config: &OAuthConfig, username: &str) -> Result<Credential, OAuthError> {
    if config.grant == OAuthGrant::ServiceAccount {
        let path = config.service_account_key.as_ref().ok_or_else(|| {
            OAuthError::Config("grant \"service_account\" needs service_account_key".into())
        })?;
        let subject = config
            .subject
            .clone()
            .unwrap_or_else(|| username.to_string());
        return Ok(Credential::ServiceAccount(
            ServiceAccount::load(path)?,
            subject,
        ));
    }
    Ok(match (&config.client_certificate, &config.client_key) {
        (Some(certificate), Some(key)) => {
            Credential::Certificate(ClientAssertion::load(certificate, key)?)
        }
        _ => Credential::Secret,
    })
}

/// Names a refresh token in the store without keeping it: the first 16 octets of its
/// SHA-256, in hex.
pub fn digest(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
