//! Bearer-token authentication. The bootstrap admin token comes from
//! `POSTERN_ADMIN_TOKEN`, or is generated at first start, printed once and stored only as
//! a SHA-256 digest; it is checked in constant time.

use super::{ApiState, Problem};
use crate::policy::{digest_matches, digest_secret};
use crate::store::{Store, StoreError};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

const SETTING: &str = "admin_token_sha256";

/// The digest of the admin token.
pub struct AdminToken {
    digest: String,
}

impl AdminToken {
    /// Uses `from_env` if given; otherwise the stored digest, or a new token that is
    /// returned (to be printed once) and stored hashed.
    pub fn init(
        store: &Store,
        from_env: Option<&str>,
    ) -> Result<(AdminToken, Option<String>), StoreError> {
        if let Some(token) = from_env.filter(|t| !t.is_empty()) {
            return Ok((
                AdminToken {
                    digest: digest_secret(token),
                },
                None,
            ));
        }
        if let Some(raw) = store.setting(SETTING)? {
            let digest = String::from_utf8(raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            return Ok((AdminToken { digest }, None));
        }
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = format!("pst_{}", URL_SAFE_NO_PAD.encode(bytes));
        let digest = digest_secret(&token);
        store.set_setting(SETTING, digest.as_bytes())?;
        Ok((AdminToken { digest }, Some(token)))
    }

    fn matches(&self, token: &str) -> bool {
        digest_matches(token, &self.digest)
    }
}

/// Extractor: the request carries the admin bearer token.
pub struct Admin;

impl FromRequestParts<ApiState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Admin, Problem> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(Problem::unauthorized)?;
        match state.admin.matches(token.trim()) {
            true => Ok(Admin),
            false => Err(Problem::unauthorized()),
        }
    }
}
