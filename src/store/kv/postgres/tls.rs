//! TLS to the database: rustls (ring provider). `sslmode=disable` never uses it, `prefer`
//! (the default) uses it when the server offers it, `require` refuses a server without it.
//! When TLS is used the server's certificate is always verified, chain and host name (as
//! libpq's `verify-full`): against the web PKI roots, or against the certificates of the
//! file named by `sslrootcert=FILE` in the URL (a private CA, a cloud provider's CA).

use crate::store::StoreError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls;

/// The URL without its `sslrootcert` parameter (tokio-postgres knows none), and the file
/// that parameter names.
pub(super) fn split_root_file(url: &str) -> (String, Option<PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("sslrootcert=") {
            Some(file) => {
                root = Some(PathBuf::from(percent_decoded(file)));
                false
            }
            None => true,
        })
        .collect();
    match kept.is_empty() {
        true => (base.to_string(), root),
        false => (format!("{base}?{}", kept.join("&")), root),
    }
}

/// The connector: roots from `root_file`, or the web PKI's.
pub(super) fn connector(root_file: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let roots = match root_file {
        Some(file) => read_roots(file)?,
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("store TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Every PEM certificate of `file`, as roots.
fn read_roots(file: &Path) -> Result<rustls::RootCertStore, StoreError> {
    let fail = |reason: String| {
        StoreError::Backend(format!("store sslrootcert {}: {reason}", file.display()))
    };
    let pem = std::fs::read(file).map_err(|e| fail(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| fail(e.to_string()))?;
        roots.add(cert).map_err(|e| fail(e.to_string()))?;
    }
    match roots.is_empty() {
        true => Err(fail("no certificate in it".into())),
        false => Ok(roots),
    }
}

/// `text` with its `%XX` escapes decoded.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::split_root_file;
    use std::path::PathBuf;

    #[test]
    fn the_root_file_is_taken_out_of_the_url() {
        let url = "postgres://u@h/db?sslmode=require&sslrootcert=%2Fetc%2Fca.pem&x=1";
        let (rest, file) = split_root_file(url);
        assert_eq!(rest, "postgres://u@h/db?sslmode=require&x=1");
        assert_eq!(file, Some(PathBuf::from("/etc/ca.pem")));
        let (rest, file) = split_root_file("postgres://u@h/db?sslrootcert=ca.pem");
        assert_eq!(
            (rest.as_str(), file),
            ("postgres://u@h/db", Some("ca.pem".into()))
        );
        let (rest, file) = split_root_file("postgres://u@h/db");
        assert_eq!((rest.as_str(), file), ("postgres://u@h/db", None));
    }
}
