//! Credential checks for SMTP AUTH and the console. The user is looked up in the policy
//! snapshot (every change of a user reaches it before the change's API call returns), so
//! an AUTH never waits on the store — with the store in PostgreSQL, never on the network.

use super::hasher::Hasher;
use super::{PolicyError, Principal};
use crate::store::{User, UserStatus};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Verifies logins against the users of the policy snapshot.
#[derive(Clone)]
pub struct Credentials {
    policy: Arc<super::Policy>,
    /// Dedicated argon2 threads: each verification holds ~19 MiB, so an unbounded number
    /// in flight (a flood of failing logins) would be a memory denial of service.
    hasher: Hasher,
}

impl Credentials {
    /// `parallel_hashes` argon2 verifications may run at once (the rest wait their turn).
    pub fn new(policy: Arc<super::Policy>, parallel_hashes: usize) -> Credentials {
        Credentials {
            policy,
            hasher: Hasher::new(parallel_hashes),
        }
    }

    /// Checks `login`/`secret`; only an active user passes.
    pub async fn verify(&self, login: &str, secret: &str) -> Result<Principal, PolicyError> {
        let user = self
            .policy
            .snapshot()
            .user_by_login(login)
            .filter(|u| u.status == UserStatus::Active)
            .cloned()
            .ok_or(PolicyError::InvalidCredentials)?;
        if let Some(digest) = &user.secret_sha256 {
            return match digest_matches(secret, digest) {
                true => Ok(principal(&user)),
                false => Err(PolicyError::InvalidCredentials),
            };
        }
        let Some(phc) = user.password_hash.clone() else {
            return Err(PolicyError::InvalidCredentials);
        };
        let secret = secret.to_string();
        let ok = self
            .hasher
            .run(move || verify_password(&secret, &phc))
            .await?;
        match ok {
            true => Ok(principal(&user)),
            false => Err(PolicyError::InvalidCredentials),
        }
    }
}

/// The principal a user authenticates as.
pub fn principal(user: &User) -> Principal {
    Principal {
        id: user.id,
        login: user.login.clone(),
        email: user.email.clone(),
        kind: user.kind,
    }
}

/// An argon2id PHC string for `password`. CPU-heavy: call it off the async workers.
pub fn hash_password(password: &str) -> Result<String, PolicyError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PolicyError::Hash(e.to_string()))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new high-entropy secret: 32 random bytes, base64url without padding (API tokens,
/// system secrets, webhook secrets, password links).
pub fn new_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256 of a high-entropy secret, as stored.
pub fn digest_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares the digest of `secret` with `stored` in constant time.
pub fn digest_matches(secret: &str, stored: &str) -> bool {
    let computed = digest_secret(secret);
    computed.as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
    }

    #[test]
    fn digest_compare() {
        let stored = digest_secret("s3cr3t-0123456789abcdef");
        assert!(digest_matches("s3cr3t-0123456789abcdef", &stored));
        assert!(!digest_matches("s3cr3t-0123456789abcdeF", &stored));
    }
}
