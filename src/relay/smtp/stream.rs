//! The byte stream under an upstream connection: plain TCP or TLS over TCP (implicit or
//! after STARTTLS), and the rustls client configuration that verifies the upstream.
//!
//! Trust is webpki-roots plus the PEM certificates of `ca_file`; the name checked is the
//! configured host. Nothing here speaks SMTP.

use super::error::SmtpError;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

/// Plain TCP or TLS; an enum (not a trait object) so STARTTLS can take the TCP stream back.
pub(crate) enum Stream {
    /// Clear text (before STARTTLS, or `tls = none`).
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// True once TLS is up.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What a TLS handshake with this upstream needs: the verifier config and the name to check.
#[derive(Clone)]
pub(crate) struct TlsTarget {
    /// rustls client config (ring provider, webpki-roots + `ca_file`).
    pub(crate) config: Arc<ClientConfig>,
    /// The configured host, as the certificate must name it.
    pub(crate) name: ServerName<'static>,
}

impl TlsTarget {
    /// Builds the client configuration once per upstream; reads `ca_file` if given.
    pub(crate) fn new(host: &str, ca_file: Option<&Path>) -> Result<Self, SmtpError> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            SmtpError::Config(format!("host {host:?} is not a valid TLS name: {e}"))
        })?;
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_file {
            add_pem_file(&mut roots, path)?;
        }
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| SmtpError::TlsSetup(format!("tls protocol versions: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsTarget {
            config: Arc::new(config),
            name,
        })
    }

    /// For opportunistic TLS: encrypts, but accepts whatever certificate the server shows
    /// (an MX host's name is rarely what its certificate names; the alternative would be
    /// clear text).
    pub(crate) fn opportunistic(host: &str) -> Result<Self, SmtpError> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            SmtpError::Config(format!("host {host:?} is not a valid TLS name: {e}"))
        })?;
        let provider = Arc::new(ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| SmtpError::TlsSetup(format!("tls protocol versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Ok(TlsTarget {
            config: Arc::new(config),
            name,
        })
    }

    /// Runs the client handshake over `tcp`.
    pub(crate) async fn handshake(&self, tcp: TcpStream) -> Result<Stream, SmtpError> {
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let tls = connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| SmtpError::Tls(format!("handshake with {:?}: {e}", self.name)))?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// Adds every certificate of a PEM file to `roots`; a file without one is an error.
fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<(), SmtpError> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| SmtpError::TlsSetup(format!("cannot read ca_file {shown}: {e}")))?;
    let mut added = 0usize;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| SmtpError::TlsSetup(format!("ca_file {shown}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| SmtpError::TlsSetup(format!("ca_file {shown}: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(SmtpError::TlsSetup(format!(
            "ca_file {shown} holds no PEM certificate"
        )));
    }
    Ok(())
}

/// Accepts any certificate, still checking the handshake's signatures (opportunistic TLS).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
