//! Certificate credentials (RFC 7523 client assertions, as the Microsoft identity platform
//! takes them instead of a client secret): a JWT signed RS256 with the private key of a
//! certificate registered for the application, naming that certificate by its thumbprint
//! (`x5t`, SHA-1, and `x5t#S256`). A new assertion, valid ten minutes, goes with every
//! token request.

use super::OAuthError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use std::path::Path;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;

/// How long an assertion is valid (seconds).
const LIFETIME: u64 = 600;

/// A certificate's private key and thumbprints.
pub struct ClientAssertion {
    key: RsaKeyPair,
    x5t: String,
    x5t_s256: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for ClientAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAssertion")
            .field("x5t", &self.x5t)
            .finish_non_exhaustive()
    }
}

impl ClientAssertion {
    /// Reads the certificate (PEM, the first one) and its RSA private key (PEM, PKCS#8 or
    /// PKCS#1).
    pub fn load(certificate: &Path, key: &Path) -> Result<ClientAssertion, OAuthError> {
        let fail = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
            OAuthError::Config(format!("{what} {}: {e}", path.display()))
        };
        let pem = std::fs::read(certificate).map_err(|e| fail("certificate", certificate, &e))?;
        let der = rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .ok_or_else(|| fail("certificate", certificate, &"no PEM certificate"))?
            .map_err(|e| fail("certificate", certificate, &e))?;
        let pem = std::fs::read(key).map_err(|e| fail("key", key, &e))?;
        let private = rustls_pemfile::private_key(&mut pem.as_slice())
            .map_err(|e| fail("key", key, &e))?
            .ok_or_else(|| fail("key", key, &"no PEM private key"))?;
        let key = match &private {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => return Err(fail("key", key, &"not an RSA key (PKCS#8 or PKCS#1)")),
        }
        .map_err(|e| fail("key", key, &e))?;
        let digest = |alg| URL_SAFE_NO_PAD.encode(ring::digest::digest(alg, &der));
        Ok(ClientAssertion {
            key,
            x5t: digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
            x5t_s256: digest(&ring::digest::SHA256),
            rng: SystemRandom::new(),
        })
    }

    /// A signed assertion for `client_id` towards the token endpoint `audience`, issued at
    /// `now` (Unix seconds).
    pub fn jwt(&self, client_id: &str, audience: &str, now: u64) -> Result<String, OAuthError> {
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| OAuthError::Config("no randomness for the assertion id".into()))?;
        let header = serde_json::json!({
            "alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256,
        });
        let claims = serde_json::json!({
            "aud": audience, "iss": client_id, "sub": client_id,
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "iat": now, "nbf": now, "exp": now + LIFETIME,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| OAuthError::Config("the certificate's key cannot sign".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn pem(label: &str, der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn pkcs1_keys_sign_and_other_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let certified = rcgen::generate_simple_self_signed(vec!["app".into()]).unwrap();
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        let (pkcs1, _) = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(2048)
            .unwrap()
            .into_inner();
        let key = dir.path().join("rsa.pem");
        std::fs::write(&key, pem("RSA PRIVATE KEY", &pkcs1)).unwrap();
        let assertion = ClientAssertion::load(&cert, &key).unwrap();
        let jwt = assertion
            .jwt("app-id", "https://login.example/token", 1000)
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["exp"], 1600);
        assert_eq!(claims["aud"], "https://login.example/token");
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 256);

        // The certificate's own key is ECDSA: no RSA key, refused with its path.
        let ecdsa = dir.path().join("ec.pem");
        std::fs::write(&ecdsa, certified.key_pair.serialize_pem()).unwrap();
        let error = ClientAssertion::load(&cert, &ecdsa)
            .unwrap_err()
            .to_string();
        assert!(error.contains("ec.pem"), "{error}");
        let missing = ClientAssertion::load(&cert, &dir.path().join("none.pem"));
        assert!(matches!(missing, Err(OAuthError::Config(_))));
    }
}
