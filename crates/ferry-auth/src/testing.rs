//! For tests (this crate's and the `ferry` crate's): a tiny HTTP/1.1 server, over plain TCP
//! or TLS (rustls), that answers each request with what its handler returns and counts the
//! requests it answered. It stands in for an HTTP authentication service or a JWKS endpoint;
//! it is not meant for anything else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A request as the handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// Answers a request: (status, JSON body).
pub type Handler = Arc<dyn Fn(&Request) -> (u16, String) + Send + Sync>;

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    sni: Arc<std::sync::Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl TestServer {
    /// Listens on 127.0.0.1 (a free port); with `tls` = (certificate chain PEM, private key
    /// PEM) it speaks HTTPS.
    pub async fn start(
        tls: Option<(&[u8], &[u8])>,
        handler: Handler,
    ) -> std::io::Result<TestServer> {
        let acceptor = match tls {
            None => None,
            Some((cert, key)) => {
                let certs = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(other)?;
                let key = PrivateKeyDer::from_pem_slice(key).map_err(other)?;
                let config =
                    ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                        .with_safe_default_protocol_versions()
                        .map_err(other)?
                        .with_no_client_auth()
                        .with_single_cert(certs, key)
                        .map_err(other)?;
                Some(TlsAcceptor::from(Arc::new(config)))
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        let sni = Arc::new(std::sync::Mutex::new(None));
        let last_sni = sni.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, handler, count) = (acceptor.clone(), handler.clone(), count.clone());
                let last_sni = last_sni.clone();
                tokio::spawn(async move {
                    match acceptor {
                        None => serve(tcp, &handler, &count).await,
                        Some(a) => {
                            if let Ok(tls) = a.accept(tcp).await {
                                let name = tls.get_ref().1.server_name().map(str::to_owned);
                                *last_sni.lock().unwrap_or_else(|e| e.into_inner()) = name;
                                serve(tls, &handler, &count).await;
                            }
                        }
                    }
                });
            }
        });
        Ok(TestServer {
            addr,
            requests,
            sni,
            task,
        })
    }

    /// The server name (SNI) the last TLS client sent, if any.
    pub fn last_sni(&self) -> Option<String> {
        self.sni.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    handler: &Handler,
    count: &AtomicUsize,
) {
    let mut buf = Vec::new();
    let request = loop {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 1 << 20 {
            return;
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = req.parse(&buf) else {
            continue;
        };
        let len = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| {
                std::str::from_utf8(h.value)
                    .ok()?
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
            .unwrap_or(0);
        if buf.len() >= head + len {
            break Request {
                method: req.method.unwrap_or("").to_owned(),
                path: req.path.unwrap_or("").to_owned(),
                body: buf[head..head + len].to_vec(),
            };
        }
    };
    let (status, body) = handler(&request);
    count.fetch_add(1, Ordering::SeqCst);
    let answer = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(answer.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// An HS256 JWT of `claims` signed with `secret`.
pub fn hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let signed = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let k = ::ring::hmac::Key::new(::ring::hmac::HMAC_SHA256, secret);
    format!(
        "{signed}.{}",
        b64(::ring::hmac::sign(&k, signed.as_bytes()).as_ref())
    )
}

/// A CA named `ca_name` (PEM) and a certificate for localhost/127.0.0.1 it signed (PEM, key
/// PEM). Panics if rcgen fails (tests only).
#[cfg(feature = "testing")]
#[allow(clippy::unwrap_used)]
pub fn pki(ca_name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_pem, leaf.pem(), key.serialize_pem())
}
