//! Google service accounts with domain-wide delegation: the JWT-bearer grant (RFC 7523
//! §2.1) as Google documents it for server-to-server applications
//! (<https://developers.google.com/identity/protocols/oauth2/service-account>, "Preparing
//! to make an authorized API call" → HTTP/REST): a JWT signed RS256 with the key from the
//! service account's JSON key file, naming the key (`kid`), the account (`iss`), the user
//! it acts for (`sub`), the scope and the token endpoint (`aud`), valid an hour, POSTed as
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…`.
//!
//! The key file is read once, at start; what is wrong with it (unreadable, not a service
//! account key, a field missing, a key that is not RSA) stops the start with its path.

use super::assertion::Signer;
use super::OAuthError;
use serde::Deserialize;
use std::path::Path;

/// The grant type of an assertion grant (RFC 7523 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The scope of SMTP and IMAP access to Gmail (XOAUTH2).
pub const GMAIL_SCOPE: &str = "https://mail.google.com/";
/// How long an assertion is valid (seconds): Google takes at most an hour.
const LIFETIME: u64 = 3600;

/// The fields of Google's JSON key file that the grant needs.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

/// A service account's key, ready to sign.
pub struct ServiceAccount {
    signer: Signer,
    client_email: String,
    private_key_id: String,
    /// The token endpoint the key file names: the assertion's audience.
    token_uri: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Reads the JSON key file at `path`.
    pub fn load(path: &Path) -> Result<ServiceAccount, OAuthError> {
        let fail = |e: &dyn std::fmt::Display| {
            OAuthError::Config(format!("service account key {}: {e}", path.display()))
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(&e))?;
        let file: KeyFile =
            serde_json::from_str(&text).map_err(|e| fail(&format!("not JSON: {e}")))?;
        if file.kind.as_deref() != Some("service_account") {
            return Err(fail(&format!(
                "\"type\" is {:?}, not \"service_account\" (download a key of the service account, not an OAuth client)",
                file.kind.unwrap_or_default()
            )));
        }
        let field = |value: Option<String>, name: &str| {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| fail(&format!("\"{name}\" is missing")))
        };
        let client_email = field(file.client_email, "client_email")?;
        let private_key = field(file.private_key, "private_key")?;
        let private_key_id = field(file.private_key_id, "private_key_id")?;
        let token_uri = field(file.token_uri, "token_uri")?;
        let signer = Signer::from_pem(private_key.as_bytes())
            .map_err(|e| fail(&format!("\"private_key\": {e}")))?;
        Ok(ServiceAccount {
            signer,
            client_email,
            private_key_id,
            token_uri,
        })
    }

    /// The token endpoint of the key file.
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// The assertion asking for a token with `scope` for the user `subject`, issued at
    /// `now` (Unix seconds).
    pub fn jwt(&self, subject: &str, scope: &str, now: u64) -> Result<String, OAuthError> {
        let header = serde_json::json!({
            "alg": "RS256", "typ": "JWT", "kid": self.private_key_id,
        });
        let claims = serde_json::json!({
            "iss": self.client_email, "sub": subject, "scope": scope,
            "aud": self.token_uri, "iat": now, "exp": now + LIFETIME,
        });
        self.signer.jwt(&header, &claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn pkcs8_pem() -> String {
        // An RSA key in PKCS#8, as Google's key files carry it.
        let (pkcs1, _) = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(2048)
            .unwrap()
            .into_inner();
        let pkcs8 = super::super::assertion::tests::pkcs8_of_pkcs1(&pkcs1);
        super::super::assertion::tests::pem("PRIVATE KEY", &pkcs8)
    }

    #[test]
    fn a_key_file_signs_assertions_and_a_wrong_one_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let key = serde_json::json!({
            "type": "service_account", "project_id": "p", "private_key_id": "kid-1",
            "private_key": pkcs8_pem(), "client_email": "relay@p.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token",
        });
        std::fs::write(&path, key.to_string()).unwrap();
        let account = ServiceAccount::load(&path).unwrap();
        let jwt = account.jwt("desk@corp.example", GMAIL_SCOPE, 1000).unwrap();
        let part = |i: usize| -> serde_json::Value {
            let raw = URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(i).unwrap())
                .unwrap();
            serde_json::from_slice(&raw).unwrap()
        };
        assert_eq!(part(0)["kid"], "kid-1");
        assert_eq!(part(0)["alg"], "RS256");
        let claims = part(1);
        assert_eq!(claims["iss"], "relay@p.iam.gserviceaccount.com");
        assert_eq!(claims["sub"], "desk@corp.example");
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(
            (claims["iat"].as_u64(), claims["exp"].as_u64()),
            (Some(1000), Some(4600))
        );

        let wrong = |json: serde_json::Value| {
            std::fs::write(&path, json.to_string()).unwrap();
            ServiceAccount::load(&path).unwrap_err().to_string()
        };
        let mut other = key.clone();
        other["type"] = "authorized_user".into();
        assert!(wrong(other).contains("not \"service_account\""));
        let mut other = key.clone();
        other.as_object_mut().unwrap().remove("client_email");
        assert!(wrong(other).contains("\"client_email\" is missing"));
        let mut other = key.clone();
        other["private_key"] =
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
        assert!(wrong(other).contains("\"private_key\""));
        let missing = ServiceAccount::load(&dir.path().join("none.json")).unwrap_err();
        assert!(missing.to_string().contains("none.json"), "{missing}");
    }
}
