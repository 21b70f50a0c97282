//! Test kit for the transports: certificates made with rcgen, a broker serving any set of
//! listeners on 127.0.0.1:0, and a small MQTT client over any wire (TCP, TLS, WebSocket).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use ferry_broker::{Broker, MqttConfig};
use ferry_mqtt::{Packet, QoS, Version};
use ferry_server::Endpoint;
use futures_util::{SinkExt as _, StreamExt as _};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_util::sync::CancellationToken;

/// A CA and the certificates it signed, as PEM files in a temp dir.
pub(crate) struct Pki {
    pub(crate) dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as files and as rustls values.
pub(crate) struct Leaf {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Leaf {
    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone().into())
    }
}

impl Pki {
    pub(crate) fn new(ca_name: &str) -> anyhow::Result<Pki> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, ca_name);
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate()?)?;
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("ca.pem"), ca.pem())?;
        Ok(Pki { dir, ca })
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A certificate for `localhost`/127.0.0.1 (server) or with subject `cn` (client),
    /// written as `NAME.pem` and `NAME.key`.
    pub(crate) fn leaf(&self, name: &str, cn: &str, server: bool) -> anyhow::Result<Leaf> {
        let sans = if server {
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
        } else {
            vec![format!("{cn}.fleet.example")]
        };
        let mut p = CertificateParams::new(sans)?;
        p.distinguished_name.push(DnType::OrganizationName, "Fleet");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.ca)?;
        let (cf, kf) = (
            self.dir.path().join(format!("{name}.pem")),
            self.dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&cf, cert.pem())?;
        std::fs::write(&kf, key.serialize_pem())?;
        Ok(Leaf {
            cert: cf,
            key: kf,
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        })
    }

    /// A TLS client trusting this CA, with an optional client certificate.
    pub(crate) fn client(&self, cert: Option<&Leaf>) -> anyhow::Result<tokio_rustls::TlsConnector> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone())?;
        let b =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots);
        let cfg = match cert {
            Some(l) => b.with_client_auth_cert(vec![l.der.clone()], l.key())?,
            None => b.with_no_client_auth(),
        };
        Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
    }
}

pub(crate) type Tls = tokio_rustls::client::TlsStream<TcpStream>;

pub(crate) async fn tls_connect(
    c: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> anyhow::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost")?;
    Ok(c.connect(name, tcp).await?)
}

/// A broker with any number of listeners; everything stops with [`Server::stop`] (or drop).
pub(crate) struct Server {
    pub(crate) broker: Arc<Broker>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn new() -> Server {
        Server {
            broker: Broker::new(MqttConfig::default()),
            stop: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    pub(crate) async fn listen(&mut self, ep: Endpoint) -> anyhow::Result<SocketAddr> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        self.tasks.push(tokio::spawn(ferry_server::serve(
            l,
            ep,
            self.broker.clone(),
            self.stop.clone(),
        )));
        Ok(addr)
    }

    pub(crate) fn metric(&self, m: ferry_broker::BrokerMetric) -> u64 {
        self.broker.metrics().get(m)
    }

    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Bytes in and out: a plain or TLS stream, or a WebSocket carrying binary messages.
pub(crate) trait Wire {
    fn put(&mut self, b: &[u8]) -> impl Future<Output = anyhow::Result<()>>;
    /// Appends what arrives; 0 means closed.
    fn get(&mut self, buf: &mut BytesMut) -> impl Future<Output = anyhow::Result<usize>>;
}

pub(crate) struct Stream<S>(pub S);

impl<S: AsyncRead + AsyncWrite + Unpin> Wire for Stream<S> {
    async fn put(&mut self, b: &[u8]) -> anyhow::Result<()> {
        self.0.write_all(b).await?;
        Ok(self.0.flush().await?)
    }
    async fn get(&mut self, buf: &mut BytesMut) -> anyhow::Result<usize> {
        Ok(self.0.read_buf(buf).await?)
    }
}

pub(crate) struct Ws<S>(pub WebSocketStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> Wire for Ws<S> {
    async fn put(&mut self, b: &[u8]) -> anyhow::Result<()> {
        Ok(self.0.send(Message::Binary(b.to_vec().into())).await?)
    }
    async fn get(&mut self, buf: &mut BytesMut) -> anyhow::Result<usize> {
        loop {
            match self.0.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(0),
                Some(Ok(Message::Binary(b))) => {
                    buf.extend_from_slice(&b);
                    return Ok(b.len());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }
}

/// Upgrades `stream` to a WebSocket on `/mqtt`, offering `subprotocol`; returns the
/// subprotocol the server chose.
pub(crate) async fn ws_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    subprotocol: &'static str,
) -> anyhow::Result<(Ws<S>, Option<String>)> {
    let mut req = "ws://localhost/mqtt".into_client_request()?;
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(subprotocol),
    );
    let (ws, resp) = tokio_tungstenite::client_async(req, stream).await?;
    let chosen = resp
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((Ws(ws), chosen))
}

/// A minimal MQTT 3.1.1 client over any [`Wire`].
pub(crate) struct Client<W> {
    pub(crate) wire: W,
    buf: BytesMut,
    next_id: u16,
}

impl<W: Wire> Client<W> {
    pub(crate) async fn connect(wire: W, client_id: &str) -> anyhow::Result<Client<W>> {
        let mut c = Client {
            wire,
            buf: BytesMut::new(),
            next_id: 1,
        };
        let p = ferry_testkit::connect_packet(Version::V311, client_id, true);
        c.send(&Packet::Connect(Box::new(p))).await?;
        match c.recv().await? {
            Packet::ConnAck(a) if a.code == 0 => Ok(c),
            other => bail!("expected a successful CONNACK, got {other:?}"),
        }
    }

    pub(crate) async fn send(&mut self, p: &Packet) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        ferry_mqtt::encode(p, Version::V311, &mut out)?;
        self.wire.put(&out).await
    }

    pub(crate) async fn recv(&mut self) -> anyhow::Result<Packet> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(f) = ferry_mqtt::read_frame(&mut self.buf, 1 << 24)? {
                    return Ok(ferry_mqtt::parse(f, Version::V311)?);
                }
                if self.wire.get(&mut self.buf).await? == 0 {
                    bail!("connection closed");
                }
            }
        })
        .await
        .context("no packet within 10 s")?
    }

    pub(crate) async fn subscribe(&mut self, filter: &str) -> anyhow::Result<()> {
        let id = self.id();
        self.send(&Packet::Subscribe(ferry_mqtt::Subscribe {
            packet_id: id,
            filters: vec![(
                filter.into(),
                ferry_mqtt::SubOptions {
                    qos: QoS::AtLeastOnce,
                    ..Default::default()
                },
            )],
            properties: Default::default(),
        }))
        .await?;
        match self.recv().await? {
            Packet::SubAck(_) => Ok(()),
            other => bail!("expected SUBACK, got {other:?}"),
        }
    }

    pub(crate) async fn publish(&mut self, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
        let id = self.id();
        let p = ferry_testkit::publish_packet(topic, payload, QoS::AtLeastOnce, false, id);
        self.send(&Packet::Publish(p)).await?;
        match self.recv().await? {
            Packet::PubAck(_) => Ok(()),
            other => bail!("expected PUBACK, got {other:?}"),
        }
    }

    /// The next PUBLISH (acknowledged): (topic, payload).
    pub(crate) async fn next_message(&mut self) -> anyhow::Result<(String, Vec<u8>)> {
        loop {
            if let Packet::Publish(p) = self.recv().await? {
                if p.qos != QoS::AtMostOnce {
                    self.send(&Packet::PubAck(ferry_mqtt::Ack::new(p.packet_id, 0)))
                        .await?;
                }
                return Ok((p.topic.to_string(), p.payload.to_vec()));
            }
        }
    }

    /// PINGREQ answered: the connection is alive.
    pub(crate) async fn ping(&mut self) -> anyhow::Result<()> {
        self.send(&Packet::PingReq).await?;
        match self.recv().await? {
            Packet::PingResp => Ok(()),
            other => bail!("expected PINGRESP, got {other:?}"),
        }
    }

    fn id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }
}
