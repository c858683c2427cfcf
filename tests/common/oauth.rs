//! A faithful OAuth2 token endpoint for the tests (RFC 6749 form posts over HTTP/1.1 on
//! 127.0.0.1) and an SMTP upstream that accepts only the tokens it issued, unexpired. The
//! client authenticates with `app-secret` or, when a certificate is registered, with an
//! RS256 client assertion (RFC 7523) that the endpoint checks as the Microsoft identity
//! platform does: thumbprint, audience, issuer, lifetime, signature. A Google service
//! account's JWT-bearer grant (RFC 7523 §2.1) is checked as Google does: key id, issuer,
//! subject, scope, audience, lifetime of at most an hour, signature.

use super::upstream::{FakeUpstream, Script};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The token endpoint's state.
#[derive(Default)]
pub struct Issuer {
    /// Tokens issued, with their expiry.
    pub tokens: HashMap<String, Instant>,
    /// Form bodies of the requests received.
    pub requests: Vec<HashMap<String, String>>,
    /// Answer this many requests with 503.
    pub fail_next: usize,
    /// Answer every request with this OAuth2 error.
    pub refuse: Option<&'static str>,
    /// Lifetime of the tokens issued.
    pub lifetime: u64,
    /// The refresh token the endpoint expects (refresh grant), rotated at each use.
    pub refresh_token: Option<String>,
    /// A certificate registered for the client: then only assertions signed with its key
    /// are taken, never a secret.
    pub certificate: Option<Registered>,
    /// Assertion ids seen (a replayed assertion is refused).
    pub seen: std::collections::HashSet<String>,
    /// A service account whose assertions are taken (JWT-bearer grant).
    pub service_account: Option<ServiceAccount>,
}

/// A service account known to the endpoint, with domain-wide delegation for `subject`.
#[derive(Clone)]
pub struct ServiceAccount {
    pub client_email: String,
    pub key_id: String,
    /// Its RSA public key (PKCS#1 DER).
    pub public_key: Vec<u8>,
    /// The token endpoint's URL, the assertion's audience.
    pub audience: String,
    /// The only user it may act for.
    pub subject: String,
}

/// A service account's JSON key file for the endpoint at `audience`, acting for `subject`:
/// (the key file's text, what the endpoint knows).
pub fn service_account(audience: &str, subject: &str) -> (String, ServiceAccount) {
    let (pkcs8_pem, public_key) = rsa_key();
    let account = ServiceAccount {
        client_email: "relay@postern-test.iam.gserviceaccount.com".into(),
        key_id: "0123456789abcdef".into(),
        public_key,
        audience: audience.into(),
        subject: subject.into(),
    };
    let file = serde_json::json!({
        "type": "service_account",
        "project_id": "postern-test",
        "private_key_id": account.key_id,
        "private_key": pkcs8_pem,
        "client_email": account.client_email,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": audience,
    });
    (file.to_string(), account)
}

/// The JSON parts of a JWT and whether its RS256 signature verifies under `public_key`.
fn verified(jwt: &str, public_key: &[u8]) -> Option<(serde_json::Value, serde_json::Value)> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let json = |part: &str| -> Option<serde_json::Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key,
    );
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).ok()?;
    let signed = format!("{}.{}", parts[0], parts[1]);
    key.verify(signed.as_bytes(), &signature).ok()?;
    Some((json(parts[0])?, json(parts[1])?))
}

/// Whether `jwt` is a valid service-account assertion for Gmail as `account` allows.
pub fn service_assertion_is_valid(jwt: &str, account: &ServiceAccount) -> bool {
    let Some((header, claims)) = verified(jwt, &account.public_key) else {
        return false;
    };
    let now = unix_now();
    let (iat, exp) = (claims["iat"].as_u64(), claims["exp"].as_u64());
    header["alg"] == "RS256"
        && header["typ"] == "JWT"
        && header["kid"] == account.key_id.as_str()
        && claims["iss"] == account.client_email.as_str()
        && claims["sub"] == account.subject.as_str()
        && claims["scope"] == "https://mail.google.com/"
        && claims["aud"] == account.audience.as_str()
        && iat.is_some_and(|iat| iat <= now + 5)
        && exp.is_some_and(|exp| exp > now && exp - iat.unwrap_or(0) <= 3600)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A certificate registered for `app-id`.
#[derive(Clone)]
pub struct Registered {
    /// The certificate (DER): its thumbprint names it.
    pub der: Vec<u8>,
    /// Its RSA public key (PKCS#1 DER).
    pub public_key: Vec<u8>,
    /// The token endpoint's URL, the assertion's audience.
    pub audience: String,
}

/// A new RSA-2048 key: (private key PEM as PKCS#8, public key as PKCS#1 DER). rcgen and
/// ring cannot make RSA keys; mail-auth's DKIM key generator can.
pub fn rsa_key() -> (String, Vec<u8>) {
    let (pkcs1, public_key) = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(2048)
        .unwrap()
        .into_inner();
    let algorithm: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let pkcs8 = der(
        0x30,
        &[&[0x02, 0x01, 0x00], algorithm, &der(0x04, &pkcs1)].concat(),
    );
    let body = base64::engine::general_purpose::STANDARD.encode(pkcs8);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    (pem, public_key)
}

/// A self-signed RSA-2048 certificate for the application: (certificate PEM, private key
/// PEM as PKCS#8, what the endpoint registers).
pub fn certificate(audience: &str) -> (String, String, Registered) {
    certificate_until(audience, None)
}

/// As `certificate`, ending on `not_after` (Unix seconds) if given.
pub fn certificate_until(audience: &str, not_after: Option<u64>) -> (String, String, Registered) {
    let (pkcs8_pem, public_key) = rsa_key();
    let key = rcgen::KeyPair::from_pem_and_sign_algo(&pkcs8_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["postern-app".into()]).unwrap();
    if let Some(secs) = not_after {
        let day = postern::rewrite::date::yyyymmdd(secs);
        let part = |range: std::ops::Range<usize>| -> u32 { day[range].parse().unwrap() };
        params.not_after =
            rcgen::date_time_ymd(part(0..4) as i32, part(4..6) as u8, part(6..8) as u8);
    }
    let cert = params.self_signed(&key).unwrap();
    let registered = Registered {
        der: cert.der().to_vec(),
        public_key,
        audience: audience.to_string(),
    };
    (cert.pem(), key.serialize_pem(), registered)
}

/// A DER element.
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

/// Whether `jwt` is a valid client assertion for `app-id` under `registered` that was not
/// seen before (its id is then remembered).
pub fn assertion_is_valid(
    jwt: &str,
    registered: &Registered,
    seen: &mut std::collections::HashSet<String>,
) -> bool {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    let json = |part: &str| -> Option<serde_json::Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    let (Some(header), Some(claims), Ok(signature)) = (
        json(parts[0]),
        json(parts[1]),
        URL_SAFE_NO_PAD.decode(parts[2]),
    ) else {
        return false;
    };
    let thumbprint = |alg| URL_SAFE_NO_PAD.encode(ring::digest::digest(alg, &registered.der));
    let now = unix_now();
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &registered.public_key,
    );
    let signed = format!("{}.{}", parts[0], parts[1]);
    let jti = claims["jti"].as_str().unwrap_or("").to_string();
    header["alg"] == "RS256"
        && header["x5t"] == thumbprint(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY)
        && header["x5t#S256"] == thumbprint(&ring::digest::SHA256)
        && claims["aud"] == registered.audience.as_str()
        && claims["iss"] == "app-id"
        && claims["sub"] == "app-id"
        && claims["exp"].as_u64().is_some_and(|exp| exp > now)
        && claims["nbf"].as_u64().is_some_and(|nbf| nbf <= now + 5)
        && key.verify(signed.as_bytes(), &signature).is_ok()
        && !jti.is_empty()
        && seen.insert(jti)
}

pub type Shared = Arc<Mutex<Issuer>>;

fn form(body: &str) -> HashMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let mut out = Vec::new();
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// What the endpoint answers to one request: status and JSON.
fn answer(issuer: &mut Issuer, request: HashMap<String, String>) -> (u16, String) {
    issuer.requests.push(request.clone());
    if issuer.fail_next > 0 {
        issuer.fail_next -= 1;
        return (503, r#"{"error":"temporarily_unavailable"}"#.into());
    }
    if let Some(error) = issuer.refuse {
        return (
            401,
            format!(
                r#"{{"error":"{error}","error_description":"AADSTS7000215: Invalid client secret provided."}}"#
            ),
        );
    }
    let get = |k: &str| request.get(k).map(String::as_str).unwrap_or("");
    let mut rotated = None;
    let good = match get("grant_type") {
        "client_credentials" => {
            let client = match &issuer.certificate {
                Some(registered) => {
                    get("client_secret").is_empty()
                        && get("client_assertion_type")
                            == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                        && assertion_is_valid(get("client_assertion"), registered, &mut issuer.seen)
                }
                None => get("client_secret") == "app-secret",
            };
            client
                && get("client_id") == "app-id"
                && get("scope") == "https://outlook.office365.com/.default"
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => issuer
            .service_account
            .as_ref()
            .is_some_and(|account| service_assertion_is_valid(get("assertion"), account)),
        "refresh_token" => {
            let expected = issuer.refresh_token.clone().unwrap_or_default();
            let ok = get("client_id") == "app-id" && get("refresh_token") == expected;
            if ok {
                rotated = Some(format!("rt-{}", issuer.requests.len()));
                issuer.refresh_token = rotated.clone();
            }
            ok
        }
        _ => false,
    };
    if !good {
        return (400, r#"{"error":"invalid_request"}"#.into());
    }
    let token = format!("tok-{}", issuer.requests.len());
    let expiry = Instant::now() + Duration::from_secs(issuer.lifetime);
    issuer.tokens.insert(token.clone(), expiry);
    let refresh = rotated
        .map(|r| format!(r#","refresh_token":"{r}""#))
        .unwrap_or_default();
    (
        200,
        format!(
            r#"{{"token_type":"Bearer","expires_in":{},"access_token":"{token}"{refresh}}}"#,
            issuer.lifetime
        ),
    )
}

/// A token endpoint on 127.0.0.1 (one request per connection, like the gateway's client).
pub async fn token_endpoint(issuer: Shared) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let issuer = issuer.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        assert!(
                            head.starts_with("POST /tenant-1/oauth2/v2.0/token "),
                            "{head}"
                        );
                        assert!(head.contains("application/x-www-form-urlencoded"), "{head}");
                        break body.to_string();
                    }
                };
                let (status, json) = answer(&mut issuer.lock().unwrap(), form(&body));
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                    json.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

/// An upstream that accepts only tokens the issuer gave out and that have not expired,
/// and closes each connection after one message (so every delivery authenticates).
pub async fn upstream(issuer: Shared) -> FakeUpstream {
    let check = move |user: &str, token: &str| {
        let issuer = issuer.lock().unwrap();
        user == "desk@corp.example"
            && issuer
                .tokens
                .get(token)
                .is_some_and(|expiry| Instant::now() < *expiry)
    };
    FakeUpstream::start(Script {
        pipelining: true,
        oauth: Some(Arc::new(check)),
        close_after_messages: Some(1),
        ..Script::default()
    })
    .await
}
