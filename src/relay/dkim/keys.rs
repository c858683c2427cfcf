//! DKIM key material: generating a key pair, the TXT record that publishes it, and the
//! signer built from a stored key. RSA public keys are published as SubjectPublicKeyInfo
//! (what `openssl rsa -pubout` prints and what every verifier reads), Ed25519 ones as
//! the raw 32 octets RFC 8463 asks for.

use super::DkimError;
use crate::store::{DkimAlgorithm, DkimKey};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mail_auth::common::crypto::{DkimKey as SigningKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim::generate::DkimKeyPair;
use mail_auth::dkim::{DkimSigner, Done};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};

/// RSA modulus size of generated keys.
const RSA_BITS: usize = 2048;

/// The header fields signed (RFC 6376 §5.4.1's list, plus threading). Absent ones are
/// signed too, so nobody can add them on the way without breaking the signature.
const SIGNED: &[&str] = &[
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-ID",
    "Content-Description",
];

/// A new key pair, base64: the private key as stored, the public key as published.
#[derive(Clone)]
pub struct Generated {
    pub private_key: String,
    pub public_key: String,
}

/// Generates a key pair (RSA-2048 takes a noticeable fraction of a second: call it off
/// the async workers).
pub fn generate(algorithm: DkimAlgorithm) -> Result<Generated, DkimError> {
    let fail = |e: mail_auth::Error| DkimError::Key(e.to_string());
    let (private, public) = match algorithm {
        DkimAlgorithm::Rsa2048 => {
            let (private, pkcs1) = DkimKeyPair::generate_rsa(RSA_BITS)
                .map_err(fail)?
                .into_inner();
            (private, rsa_spki(&pkcs1))
        }
        DkimAlgorithm::Ed25519 => DkimKeyPair::generate_ed25519().map_err(fail)?.into_inner(),
    };
    Ok(Generated {
        private_key: STANDARD.encode(private),
        public_key: STANDARD.encode(public),
    })
}

/// The name of the TXT record that publishes `key`.
pub fn record_name(key: &DkimKey) -> String {
    format!("{}._domainkey.{}", key.selector, key.domain)
}

/// The text of that TXT record.
pub fn record_value(key: &DkimKey) -> String {
    let k = match key.algorithm {
        DkimAlgorithm::Rsa2048 => "rsa",
        DkimAlgorithm::Ed25519 => "ed25519",
    };
    format!("v=DKIM1; k={k}; p={}", key.public_key)
}

/// A signer for one stored key.
pub struct Signer {
    pub domain: String,
    pub selector: String,
    inner: DkimSigner<SigningKey, Done>,
}

impl Signer {
    /// Loads `key`'s private key.
    pub fn load(key: &DkimKey) -> Result<Signer, DkimError> {
        let der = STANDARD
            .decode(&key.private_key)
            .map_err(|e| DkimError::Key(format!("private key is not base64: {e}")))?;
        let fail = |e: mail_auth::Error| DkimError::Key(e.to_string());
        let signing: SigningKey = match key.algorithm {
            DkimAlgorithm::Rsa2048 => {
                let der = PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der));
                RsaKey::<Sha256>::from_key_der(der).map_err(fail)?.into()
            }
            DkimAlgorithm::Ed25519 => Ed25519Key::from_pkcs8_der(&der).map_err(fail)?.into(),
        };
        let inner = DkimSigner::from_key(signing)
            .domain(key.domain.clone())
            .selector(key.selector.clone())
            .headers(SIGNED.iter().copied());
        Ok(Signer {
            domain: key.domain.clone(),
            selector: key.selector.clone(),
            inner,
        })
    }

    /// The `DKIM-Signature` field (CRLF-terminated) for `message`, relaxed/relaxed.
    pub fn sign(&self, message: &[u8]) -> Result<String, DkimError> {
        use mail_auth::common::headers::HeaderWriter;
        let signature = self
            .inner
            .sign(message)
            .map_err(|e| DkimError::Sign(e.to_string()))?;
        Ok(signature.to_header())
    }
}

/// Wraps a PKCS#1 `RSAPublicKey` into a SubjectPublicKeyInfo (rsaEncryption, NULL params).
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x03];
    bits.extend(der_len(pkcs1.len() + 1));
    bits.push(0);
    bits.extend_from_slice(pkcs1);
    let mut spki = vec![0x30];
    spki.extend(der_len(ALGORITHM.len() + bits.len()));
    spki.extend_from_slice(&ALGORITHM);
    spki.extend(bits);
    spki
}

/// A DER length.
fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..=0x7f => vec![len as u8],
        0x80..=0xff => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

/// A freshly generated key as the store would hold it (unit tests).
#[cfg(test)]
pub(crate) fn test_key(
    domain: &str,
    selector: &str,
    algorithm: DkimAlgorithm,
    status: crate::store::DkimStatus,
) -> DkimKey {
    let generated = generate(algorithm).unwrap();
    DkimKey {
        domain: domain.into(),
        selector: selector.into(),
        algorithm,
        status,
        public_key: generated.public_key,
        private_key: generated.private_key,
        created_at: 0,
        created_by: "test".into(),
        activated_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DkimStatus;

    fn stored(algorithm: DkimAlgorithm) -> DkimKey {
        test_key("corp.example", "s1", algorithm, DkimStatus::Active)
    }

    #[test]
    fn rsa_keys_are_published_as_subject_public_key_info() {
        let key = stored(DkimAlgorithm::Rsa2048);
        // The fixed prefix of every 2048-bit SPKI: SEQUENCE, rsaEncryption, NULL, BIT
        // STRING, then the PKCS#1 SEQUENCE and the modulus INTEGER.
        assert!(
            key.public_key
                .starts_with("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
            "{}",
            key.public_key
        );
        assert_eq!(
            record_value(&key),
            format!("v=DKIM1; k=rsa; p={}", key.public_key)
        );
        assert_eq!(record_name(&key), "s1._domainkey.corp.example");
    }

    #[test]
    fn ed25519_keys_are_published_raw() {
        let key = stored(DkimAlgorithm::Ed25519);
        assert_eq!(STANDARD.decode(&key.public_key).unwrap().len(), 32);
        assert!(record_value(&key).starts_with("v=DKIM1; k=ed25519; p="));
    }

    #[test]
    fn a_signature_names_the_key_and_the_signed_fields() {
        let message =
            b"From: desk@corp.example\r\nTo: c@example.net\r\nSubject: hi\r\n\r\nbody\r\n";
        for algorithm in [DkimAlgorithm::Rsa2048, DkimAlgorithm::Ed25519] {
            let signer = Signer::load(&stored(algorithm)).unwrap();
            let field = signer.sign(message).unwrap();
            let unfolded = field.replace("\r\n", "").replace([' ', '\t'], "");
            assert!(field.starts_with("DKIM-Signature: "), "{field}");
            assert!(field.ends_with("\r\n"), "{field}");
            assert!(unfolded.contains("d=corp.example;"), "{field}");
            assert!(unfolded.contains("s=s1;"), "{field}");
            let signed = unfolded
                .split("h=")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap();
            for name in ["From", "To", "Subject", "Sender", "Reply-To"] {
                // Present or not: an absent one cannot be added later either.
                assert!(signed.split(':').any(|n| n == name), "{name}: {field}");
            }
        }
    }

    #[test]
    fn a_damaged_private_key_is_refused() {
        let mut key = stored(DkimAlgorithm::Ed25519);
        key.private_key = STANDARD.encode(b"not a key");
        assert!(matches!(Signer::load(&key), Err(DkimError::Key(_))));
    }
}
