//! OAuth2 access tokens for the upstream SASL mechanisms XOAUTH2 and OAUTHBEARER (SPEC §5):
//! the client-credentials grant (Microsoft identity platform, app-only) and the
//! refresh-token grant (Google, Microsoft delegated) against a configurable token endpoint.
//!
//! A token is cached until `refresh_margin_secs` before it expires. However many
//! deliveries need one at the same time, one request is made (single flight: the first
//! caller fetches under the lock, the others wait for it and take its token). A token the
//! upstream refused is forgotten, so the next delivery fetches a new one. A rotated refresh
//! token (a provider may send a new one with each answer) replaces the old one in memory.
//! Secrets and tokens are never logged. The client authenticates with its secret or, with
//! `client_certificate`/`client_key`, with a signed assertion (`assertion`).

mod assertion;

pub use assertion::ClientAssertion;

use crate::config::{OAuthConfig, OAuthGrant};
use crate::net::http::{parse_url, Client, HttpError, Url};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

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
}

/// The tokens of one upstream.
pub struct TokenSource {
    config: OAuthConfig,
    /// Certificate credentials, when configured instead of a secret.
    assertion: Option<ClientAssertion>,
    url: Url,
    client: Client,
    state: Mutex<State>,
}

impl TokenSource {
    /// Checks the endpoint URL now, so a bad setting fails at start.
    pub fn new(config: &OAuthConfig, timeout: Duration) -> Result<TokenSource, OAuthError> {
        let url = parse_url(&config.token_url).map_err(|e| OAuthError::Config(e.to_string()))?;
        if config.grant == OAuthGrant::RefreshToken && config.refresh_token.is_empty() {
            return Err(OAuthError::Config(
                "the refresh_token grant needs a refresh_token".into(),
            ));
        }
        let assertion = match (&config.client_certificate, &config.client_key) {
            (Some(certificate), Some(key)) => Some(ClientAssertion::load(certificate, key)?),
            _ => None,
        };
        Ok(TokenSource {
            assertion,
            url,
            client: Client::new(timeout.min(TOKEN_TIMEOUT))?,
            state: Mutex::new(State {
                cached: None,
                failed: None,
                refresh_token: config.refresh_token.clone(),
            }),
            config: config.clone(),
        })
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
        let fresh = match self.fetch(&state.refresh_token).await {
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
        let mut form = vec![("client_id", c.client_id.as_str())];
        match c.grant {
            OAuthGrant::ClientCredentials => form.push(("grant_type", "client_credentials")),
            OAuthGrant::RefreshToken => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", refresh_token));
            }
        }
        let signed = match &self.assertion {
            Some(assertion) => {
                let now = crate::spool::now_ms() / 1000;
                Some(assertion.jwt(&c.client_id, &c.token_url, now)?)
            }
            None => None,
        };
        if let Some(jwt) = &signed {
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
            form.push(("client_assertion", jwt.as_str()));
        } else if !c.client_secret.is_empty() {
            form.push(("client_secret", c.client_secret.as_str()));
        }
        if !c.scope.is_empty() {
            form.push(("scope", c.scope.as_str()));
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
            .post(&self.url, &headers, body.as_bytes())
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
}

/// A successful token answer (RFC 6749 §5.1).
struct Answer {
    access_token: String,
    expires_in: u64,
    refresh_token: Option<String>,
}

fn answer(json: &serde_json::Value) -> Result<Answer, OAuthError> {
    let access_token = json
        .get("access_token")
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| OAuthError::BadAnswer("no access_token".into()))?
        .to_string();
    // Some endpoints send the lifetime as a string; none: an hour (the common default).
    let expires_in = match json.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => Some(3600),
    }
    .filter(|&secs| secs > 0)
    .ok_or_else(|| OAuthError::BadAnswer("bad expires_in".into()))?;
    let refresh_token = json
        .get("refresh_token")
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok(Answer {
        access_token,
        expires_in,
        refresh_token,
    })
}

/// `application/x-www-form-urlencoded`.
fn encode_form(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The XOAUTH2 initial response (Google's and Microsoft's SASL XOAUTH2), before base64.
pub fn xoauth2(user: &str, token: &str) -> Vec<u8> {
    format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// The OAUTHBEARER initial response (RFC 7628 §3.1), before base64.
pub fn oauthbearer(user: &str, host: &str, port: u16, token: &str) -> Vec<u8> {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    format!("n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_initial_responses_are_encoded_as_specified() {
        assert_eq!(
            encode_form(&[
                ("scope", "https://outlook.office365.com/.default"),
                ("a b", "x&y=z")
            ]),
            "scope=https%3A%2F%2Foutlook.office365.com%2F.default&a+b=x%26y%3Dz"
        );
        assert_eq!(
            xoauth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        assert_eq!(
            oauthbearer("user@example.com", "server.example.com", 587, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="),
            b"n,a=user@example.com,\x01host=server.example.com\x01port=587\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
        );
    }

    #[test]
    fn answers_without_a_token_or_with_a_bad_lifetime_are_refused() {
        let ok = answer(&serde_json::json!({"access_token": "abc", "expires_in": "60"})).unwrap();
        assert_eq!((ok.access_token.as_str(), ok.expires_in), ("abc", 60));
        assert!(answer(&serde_json::json!({"expires_in": 60})).is_err());
        assert!(answer(&serde_json::json!({"access_token": "a\r\nb"})).is_err());
        assert!(answer(&serde_json::json!({"access_token": "a", "expires_in": 0})).is_err());
        let refused = |error: &str| OAuthError::Refused {
            status: 401,
            error: error.into(),
            description: None,
        };
        assert!(refused("invalid_client").is_permanent());
        assert!(!refused("temporarily_unavailable").is_permanent());
    }
}
