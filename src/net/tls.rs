//! TLS: the server certificate for every TLS listener (rustls, ring). When the configured
//! files are missing a self-signed certificate for the host name is generated there, so a
//! fresh install can speak STARTTLS at once; `certs/README.md` says how to use a real one.

use super::NetError;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Validity of a generated development certificate.
const VALID_DAYS: u64 = 365;

/// Loads the certificate and key, generating a self-signed pair first if either is missing.
pub fn acceptor(cert: &Path, key: &Path, hostname: &str) -> Result<TlsAcceptor, NetError> {
    if !cert.exists() || !key.exists() {
        generate(cert, key, hostname)?;
        tracing::warn!(cert = %cert.display(), key = %key.display(),
            "generated a self-signed development certificate; see certs/README.md for a real one");
    }
    let chain = load_chain(cert)?;
    let private = load_key(key)?;
    let config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| NetError::Tls(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Writes a self-signed certificate for `hostname` (and `localhost`), key mode 0600.
pub fn generate(cert: &Path, key: &Path, hostname: &str) -> Result<(), NetError> {
    let fail = |path: &Path, reason: String| NetError::Certificate {
        path: path.display().to_string(),
        reason,
    };
    let mut names = vec![hostname.to_string()];
    if hostname != "localhost" {
        names.push("localhost".into());
    }
    let mut params = CertificateParams::new(names).map_err(|e| fail(cert, e.to_string()))?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, hostname);
    let now = SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + Duration::from_secs(VALID_DAYS * 86_400)).into();
    let pair = KeyPair::generate().map_err(|e| fail(key, e.to_string()))?;
    let certificate = params
        .self_signed(&pair)
        .map_err(|e| fail(cert, e.to_string()))?;
    for path in [cert, key] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(path, e.to_string()))?;
        }
    }
    write_private(key, pair.serialize_pem().as_bytes()).map_err(|e| fail(key, e.to_string()))?;
    std::fs::write(cert, certificate.pem()).map_err(|e| fail(cert, e.to_string()))?;
    Ok(())
}

fn write_private(path: &Path, pem: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(pem)
}

/// Reads every PEM certificate in `path`.
pub fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let fail = |reason: String| NetError::Certificate {
        path: path.display().to_string(),
        reason,
    };
    let data = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let chain = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if chain.is_empty() {
        return Err(fail("no certificate in file".into()));
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, NetError> {
    let fail = |reason: String| NetError::Certificate {
        path: path.display().to_string(),
        reason,
    };
    let data = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("no private key in file".into()))
}
