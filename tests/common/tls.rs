//! TLS server configurations for the fake upstreams: a certificate for `localhost` (and
//! its PEM for `ca_file`), and one whose handshake fails for a client without a
//! certificate of its own.

#![allow(dead_code)]

use std::sync::Arc;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;

/// A certificate for `localhost`: the server config using it and its PEM for `ca_file`.
pub fn localhost_cert() -> (Arc<ServerConfig>, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generate certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server config");
    (Arc::new(config), certified.cert.pem())
}

/// A server config whose handshake fails for a client without a certificate (it
/// requires one signed by a CA nobody has): what a broken STARTTLS looks like.
pub fn client_cert_required() -> Arc<ServerConfig> {
    use tokio_rustls::rustls::server::WebPkiClientVerifier;
    use tokio_rustls::rustls::RootCertStore;
    let ca = rcgen::generate_simple_self_signed(vec!["private-ca".to_string()]).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let provider = Arc::new(ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    Arc::new(config)
}
