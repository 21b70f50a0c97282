//! TLS for the simulator and the load generator (rustls with the ring provider, TLS 1.2 and
//! 1.3): the client configuration built from `--cafile` (the CA that signs the broker's
//! certificate) or `--insecure` (no verification at all, for self-signed test set-ups), and
//! the stream a [`Client`](crate::client::Client) reads and writes, plain TCP or TLS.
//!
//! Session resumption is off unless asked for: a bench of connect rates should measure full
//! handshakes, the cost a fleet reconnecting after a broker restart puts on the broker.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};

/// What is wrong with the TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--cafile: cannot read {}: {source}", file.display())]
    Read { file: PathBuf, source: io::Error },
    #[error("--cafile: no usable PEM certificate in {}", file.display())]
    NoCertificate { file: PathBuf },
    #[error("--cafile or --insecure: one of them is needed for TLS")]
    NoTrust,
    #[error("--tls-server-name: {0:?} is not a DNS name or an IP address")]
    ServerName(String),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// How to reach a TLS broker.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// PEM file with the CA certificate(s) the broker's certificate must chain to.
    pub cafile: Option<PathBuf>,
    /// Accept any certificate (test set-ups only).
    pub insecure: bool,
    /// The name the certificate must carry (a DNS name or an IP address).
    pub server_name: String,
    /// Resume sessions (abbreviated handshakes) instead of a full handshake each time.
    pub resume: bool,
}

/// A ready client configuration and the name to ask for; cheap to clone, shared by every
/// connection of a run.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    pub fn new(s: &TlsSettings) -> Result<TlsClient, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let mut config = if s.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
                .with_no_client_auth()
        } else {
            let file = s.cafile.as_deref().ok_or(TlsError::NoTrust)?;
            builder
                .with_root_certificates(roots(file)?)
                .with_no_client_auth()
        };
        config.resumption = if s.resume {
            Resumption::default()
        } else {
            Resumption::disabled()
        };
        let server_name = ServerName::try_from(s.server_name.clone())
            .map_err(|_| TlsError::ServerName(s.server_name.clone()))?;
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// The TLS handshake over an open TCP connection.
    pub async fn handshake(&self, tcp: TcpStream) -> io::Result<Stream> {
        let s = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await?;
        Ok(Stream::Tls(Box::new(s)))
    }
}

fn roots(file: &Path) -> Result<RootCertStore, TlsError> {
    let pem = std::fs::read(file).map_err(|source| TlsError::Read {
        file: file.to_owned(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem).flatten() {
        // A certificate rustls cannot use as a trust anchor is skipped; none at all is an error.
        let _ = roots.add(c);
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate {
            file: file.to_owned(),
        });
    }
    Ok(roots)
}

/// `--insecure`: any certificate is accepted, signatures are still checked.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A connection to the broker: plain TCP or TLS over TCP.
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// The negotiated TLS version and cipher suite, if this is TLS.
    pub fn tls_info(&self) -> Option<(String, String)> {
        let Stream::Tls(s) = self else { return None };
        let (_, c) = s.get_ref();
        Some((
            c.protocol_version()
                .map_or_else(String::new, |v| format!("{v:?}")),
            c.negotiated_cipher_suite()
                .map_or_else(String::new, |s| format!("{:?}", s.suite())),
        ))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
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
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
