//! The wire forms of a token request: the form body (`application/x-www-form-urlencoded`),
//! the successful answer (RFC 6749 §5.1), and the SASL initial responses that carry the
//! token (XOAUTH2, OAUTHBEARER).

use super::OAuthError;

/// A successful token answer (RFC 6749 §5.1).
pub(super) struct Answer {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
}

pub(super) fn answer(json: &serde_json::Value) -> Result<Answer, OAuthError> {
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
pub(super) fn encode_form(pairs: &[(&str, &str)]) -> String {
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
