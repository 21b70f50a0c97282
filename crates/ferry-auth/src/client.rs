//! A minimal HTTP/1.1 client for the services the authentication methods ask (the HTTP
//! authentication service, a JWKS endpoint): one request per connection (`Connection:
//! close`), `http://` over a tokio socket or `https://` over tokio-rustls (TLS 1.2/1.3, SNI
//! from the URL's host), an answer of at most 64 KiB. Callers bound each request with their
//! timeout.
//!
//! TLS trust (`verify = "verify_peer"`, the default): the PEM bundle of `cacertfile`, or the
//! system bundle [`SYSTEM_CA_BUNDLE`] when it is not set; `verify = "verify_none"` accepts
//! any certificate (the connection is still encrypted), as EMQX's ssl option of that name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring, verify_tls12_signature};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

const MAX_ANSWER: usize = 64 * 1024;

/// Where the system's CA certificates are (Debian, Ubuntu, Alpine with ca-certificates).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// `verify`: whether an `https://` service's certificate is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// The certificate must chain to `cacertfile` (or the system bundle) and name the host.
    #[default]
    VerifyPeer,
    /// Any certificate is accepted (encrypted, not authenticated).
    VerifyNone,
}

/// Why an endpoint cannot be set up; [`EndpointError::field`] says which config key.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("{0:?}: expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH")]
    Url(String),
    #[error("cannot read {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("{path}: no PEM certificate in it")]
    CaEmpty { path: PathBuf },
    #[error(
        "not set, and the system CA bundle cannot be used ({reason}); set cacertfile to the \
         service's CA (PEM), or verify = \"verify_none\""
    )]
    NoSystemBundle { path: PathBuf, reason: String },
    #[error("TLS setup: {0}")]
    Tls(String),
}

impl EndpointError {
    /// The config key at fault: `"url"` (the caller's name for it) or `"cacertfile"`.
    pub fn field(&self) -> &'static str {
        match self {
            EndpointError::Url(_) => "url",
            _ => "cacertfile",
        }
    }
}

/// A parsed URL and, for `https://`, its TLS client.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port` to connect to.
    authority: String,
    /// The `Host` header: the URL's authority as written.
    host_header: String,
    path: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Endpoint {
    /// Parses `url` and, for `https://`, loads the trusted certificates (file reads: call at
    /// config load, not per request).
    pub fn new(
        url: &str,
        cacertfile: Option<&Path>,
        verify: Verify,
    ) -> Result<Endpoint, EndpointError> {
        let bad = || EndpointError::Url(url.to_owned());
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let (written, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if written.is_empty() || written.contains('@') {
            return Err(bad());
        }
        // "[::1]:8443", "[::1]", "host:8443", "host".
        let (host, port) = match written.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
            _ => (written, None),
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port = port.unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
                .map_err(|_| bad())?
                .to_owned();
            let system = Path::new(SYSTEM_CA_BUNDLE);
            Some((connector(cacertfile, verify, system)?, name))
        } else {
            None
        };
        Ok(Endpoint {
            authority: format!("{host}:{port}"),
            host_header: written.to_owned(),
            path: path.to_owned(),
            tls,
        })
    }

    /// Sends one request and returns the status and the body (de-chunked). Errors say what
    /// failed (connect, TLS handshake, a malformed or too large answer).
    pub async fn request(
        &self,
        method: &str,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>), String> {
        let tcp = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("connect {}: {e}", self.authority))?;
        let mut req = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n",
            self.path, self.host_header
        );
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        match &self.tls {
            None => exchange(tcp, &req).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {}: {e}", self.authority))?;
                exchange(tls, &req).await
            }
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    req: &str,
) -> Result<(u16, Vec<u8>), String> {
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        let read = (&mut s)
            .take((MAX_ANSWER + 1 - buf.len()) as u64)
            .read_buf(&mut buf)
            .await;
        match read {
            Ok(0) => break,
            Ok(_) => {}
            // A TLS peer that closes without close_notify: the length checks below still
            // catch a truncated answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => break,
            Err(e) => return Err(e.to_string()),
        }
        if buf.len() > MAX_ANSWER {
            return Err("answer larger than 64 KiB".into());
        }
    }
    parse_answer(&buf)
}

fn parse_answer(buf: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err("malformed HTTP answer".into()),
    };
    let status = resp.code.unwrap_or(0);
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
    };
    let body = &buf[head..];
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return Ok((status, dechunk(body)?));
    }
    if let Some(len) = header("content-length") {
        let len: usize = len.trim().parse().map_err(|_| "bad Content-Length")?;
        let body = body.get(..len).ok_or("truncated answer")?;
        return Ok((status, body.to_vec()));
    }
    Ok((status, body.to_vec()))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&b[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size".to_string())?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or("truncated chunk")?);
        b = b.get(size + 2..).ok_or("truncated chunk")?;
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn connector(
    cacertfile: Option<&Path>,
    verify: Verify,
    system: &Path,
) -> Result<TlsConnector, EndpointError> {
    let tls = |e: rustls::Error| EndpointError::Tls(e.to_string());
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls)?;
    let config = match verify {
        Verify::VerifyNone => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth(),
        Verify::VerifyPeer => {
            let roots = match cacertfile {
                Some(p) => roots(p, true)?,
                None => roots(system, false).map_err(|e| EndpointError::NoSystemBundle {
                    path: system.to_owned(),
                    reason: e.to_string(),
                })?,
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The certificates of a PEM bundle. `strict`: every certificate must parse (a file the user
/// named); otherwise the unparsable ones of a system bundle are skipped.
fn roots(path: &Path, strict: bool) -> Result<RootCertStore, EndpointError> {
    let read_err = |reason: String| EndpointError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| read_err(e.to_string()))?;
    let mut store = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem) {
        let c = c.map_err(|e| read_err(format!("bad PEM: {e}")))?;
        match store.add(c) {
            Ok(()) => {}
            Err(e) if strict => return Err(read_err(format!("bad certificate: {e}"))),
            Err(_) => {}
        }
    }
    if store.is_empty() {
        return Err(EndpointError::CaEmpty {
            path: path.to_owned(),
        });
    }
    Ok(store)
}

/// `verify = "verify_none"`: any certificate; the handshake signatures are still checked.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_answers_parse() {
        let e = Endpoint::new("http://h/a", None, Verify::VerifyPeer).unwrap();
        assert_eq!((e.authority.as_str(), e.path.as_str()), ("h:80", "/a"));
        let e = Endpoint::new("http://[::1]:81", None, Verify::VerifyPeer).unwrap();
        assert_eq!((e.authority.as_str(), e.path.as_str()), ("[::1]:81", "/"));
        let e = Endpoint::new("https://127.0.0.1:8443/x", None, Verify::VerifyNone).unwrap();
        assert_eq!(e.authority, "127.0.0.1:8443");
        assert!(e.tls.is_some());
        for bad in ["ftp://h/", "http://", "http://u@h/", "http://h:x/"] {
            assert!(matches!(
                Endpoint::new(bad, None, Verify::VerifyPeer),
                Err(EndpointError::Url(_))
            ));
        }
        let missing = Endpoint::new(
            "https://h/",
            Some(Path::new("/nonexistent/ca.pem")),
            Verify::VerifyPeer,
        )
        .unwrap_err();
        assert_eq!(missing.field(), "cacertfile");
        assert!(
            missing.to_string().contains("/nonexistent/ca.pem"),
            "{missing}"
        );
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert_eq!(
            parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap(),
            (200, b"ok".to_vec())
        );
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok").is_err());
    }
}
