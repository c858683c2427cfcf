//! Certificate credentials (RFC 7523 client assertions, as the Microsoft identity platform
//! takes them instead of a client secret): a JWT signed RS256 with the private key of a
//! certificate registered for the application, naming that certificate by its thumbprint
//! (`x5t`, SHA-1, and `x5t#S256`). A new assertion, valid ten minutes, goes with every
//! token request. `Signer` (an RSA key that signs JWTs RS256) is shared with the Google
//! service accounts (`service_account`); the certificate's end date (`notAfter`) is read
//! here too, for the expiry warnings (`watch`).

use super::OAuthError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use std::path::Path;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use x509_cert::der::Decode;

/// How long an assertion is valid (seconds).
const LIFETIME: u64 = 600;

/// An RSA private key that signs JSON Web Tokens with RS256 (RFC 7518 §3.3).
pub(super) struct Signer {
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl Signer {
    /// The RSA key in `pem` (PKCS#8 or PKCS#1); the error says why it is unfit.
    pub(super) fn from_pem(pem: &[u8]) -> Result<Signer, String> {
        let private = rustls_pemfile::private_key(&mut &pem[..])
            .map_err(|e| e.to_string())?
            .ok_or("no PEM private key")?;
        let key = match &private {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => return Err("not an RSA key (PKCS#8 or PKCS#1)".into()),
        }
        .map_err(|e| e.to_string())?;
        Ok(Signer {
            key,
            rng: SystemRandom::new(),
        })
    }

    /// `header.claims.signature`, each part base64url without padding.
    pub(super) fn jwt(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<String, OAuthError> {
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
            .map_err(|_| OAuthError::Config("the RSA key cannot sign".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// A random JWT id (`jti`).
    fn nonce(&self) -> Result<String, OAuthError> {
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| OAuthError::Config("no randomness for the assertion id".into()))?;
        Ok(URL_SAFE_NO_PAD.encode(jti))
    }
}

/// A certificate's private key, thumbprints and end date.
pub struct ClientAssertion {
    signer: Signer,
    x5t: String,
    x5t_s256: String,
    /// The certificate's `notAfter` (Unix seconds).
    not_after: u64,
}

impl std::fmt::Debug for ClientAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAssertion")
            .field("x5t", &self.x5t)
            .field("not_after", &self.not_after)
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
        let not_after = not_after(&der).map_err(|e| fail("certificate", certificate, &e))?;
        let pem = std::fs::read(key).map_err(|e| fail("key", key, &e))?;
        let signer = Signer::from_pem(&pem).map_err(|e| fail("key", key, &e))?;
        let digest = |alg| URL_SAFE_NO_PAD.encode(ring::digest::digest(alg, &der));
        Ok(ClientAssertion {
            signer,
            x5t: digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
            x5t_s256: digest(&ring::digest::SHA256),
            not_after,
        })
    }

    /// When the certificate ends (its `notAfter`, Unix seconds).
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// A signed assertion for `client_id` towards the token endpoint `audience`, issued at
    /// `now` (Unix seconds).
    pub fn jwt(&self, client_id: &str, audience: &str, now: u64) -> Result<String, OAuthError> {
        let header = serde_json::json!({
            "alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256,
        });
        let claims = serde_json::json!({
            "aud": audience, "iss": client_id, "sub": client_id,
            "jti": self.signer.nonce()?,
            "iat": now, "nbf": now, "exp": now + LIFETIME,
        });
        self.signer.jwt(&header, &claims)
    }
}

/// The `notAfter` of the X.509 certificate `der` (RFC 5280 §4.1.2.5), Unix seconds.
fn not_after(der: &[u8]) -> Result<u64, String> {
    let certificate = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
    Ok(certificate
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    /// `der` as PEM under `label`.
    pub(crate) fn pem(label: &str, der: &[u8]) -> String {
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

    /// A PKCS#1 RSA key wrapped in PKCS#8 (RFC 5208), as Google's key files carry it.
    pub(crate) fn pkcs8_of_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
        fn der(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            match content.len() {
                n @ 0..=0x7f => out.push(n as u8),
                n @ 0x80..=0xff => out.extend([0x81, n as u8]),
                n => out.extend([0x82, (n >> 8) as u8, n as u8]),
            }
            out.extend_from_slice(content);
            out
        }
        let rsa_encryption: &[u8] = &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05,
            0x00,
        ];
        let version: &[u8] = &[0x02, 0x01, 0x00];
        der(0x30, &[version, rsa_encryption, &der(0x04, pkcs1)].concat())
    }

    #[test]
    fn the_certificates_end_is_its_not_after() {
        let dir = tempfile::tempdir().unwrap();
        let key_pair = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["app".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 4, 5);
        let cert = params.self_signed(&key_pair).unwrap();
        assert_eq!(
            not_after(cert.der()).unwrap(),
            crate::config::credentials::parse_date("2031-04-05").unwrap()
        );
        let (pkcs1, _) = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(2048)
            .unwrap()
            .into_inner();
        let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, pem("PRIVATE KEY", &pkcs8_of_pkcs1(&pkcs1))).unwrap();
        let loaded = ClientAssertion::load(&cert_path, &key_path).unwrap();
        assert_eq!(loaded.not_after(), not_after(cert.der()).unwrap());
        assert!(not_after(b"not a certificate").is_err());
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
