//! ferry-testkit (dev only): start a broker on 127.0.0.1:0 inside the test's runtime, talk
//! to it with a raw MQTT client that can send what client libraries will not, and poll for
//! conditions instead of sleeping.
//!
//! Must not: be a dependency of any non-test code; hide failures (every helper returns an
//! error or panics with a message naming what it waited for).

pub mod http;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::{Bytes, BytesMut};
use ferry_broker::{Broker, MqttConfig};
use ferry_mqtt::{
    Ack, Connect, Packet, Properties, Publish, QoS, SubOptions, Subscribe, Version, Will,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A broker serving one TCP listener on a free loopback port.
pub struct TestBroker {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        Self::with_config(MqttConfig::default()).await
    }

    pub async fn with_config(cfg: MqttConfig) -> TestBroker {
        Self::at(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// A broker on a given address (e.g. the port of a broker stopped earlier, to test
    /// reconnection).
    pub async fn at(cfg: MqttConfig, addr: SocketAddr) -> TestBroker {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let broker = Broker::new(cfg);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ferry_server::run(
            listener,
            broker.clone(),
            10_000,
            shutdown.clone(),
        ));
        TestBroker {
            addr,
            broker,
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the server and waits for its connections to close.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long a raw client waits for a packet before failing.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// A byte-level MQTT client: sends any packet (or raw bytes) and reads packets back.
pub struct RawClient {
    stream: TcpStream,
    pub version: Version,
    rbuf: BytesMut,
}

impl RawClient {
    pub async fn open(addr: SocketAddr, version: Version) -> anyhow::Result<RawClient> {
        let stream = TcpStream::connect(addr).await.context("connect")?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            version,
            rbuf: BytesMut::new(),
        })
    }

    /// Opens a connection and completes CONNECT/CONNACK; returns the CONNACK too.
    pub async fn connect(
        addr: SocketAddr,
        version: Version,
        client_id: &str,
        clean_start: bool,
    ) -> anyhow::Result<(RawClient, ferry_mqtt::ConnAck)> {
        let mut c = Self::open(addr, version).await?;
        let connack = c
            .handshake(connect_packet(version, client_id, clean_start))
            .await?;
        if connack.code != 0 {
            bail!("CONNACK refused with {:#04x}", connack.code);
        }
        Ok((c, connack))
    }

    /// Sends `connect` and returns the CONNACK.
    pub async fn handshake(&mut self, connect: Connect) -> anyhow::Result<ferry_mqtt::ConnAck> {
        self.send(&Packet::Connect(Box::new(connect))).await?;
        match self.recv().await? {
            Packet::ConnAck(a) => Ok(a),
            other => bail!("expected CONNACK, got {other:?}"),
        }
    }

    pub async fn send(&mut self, p: &Packet) -> anyhow::Result<()> {
        let mut buf = BytesMut::new();
        ferry_mqtt::encode(p, self.version, &mut buf)?;
        self.stream.write_all(&buf).await?;
        Ok(())
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Next packet, or an error if none arrives within [`RECV_TIMEOUT`] or the connection
    /// closes.
    pub async fn recv(&mut self) -> anyhow::Result<Packet> {
        self.recv_within(RECV_TIMEOUT)
            .await?
            .context("connection closed while waiting for a packet")
    }

    /// Next packet within `limit`; `Ok(None)` if the server closed the connection.
    pub async fn recv_within(&mut self, limit: Duration) -> anyhow::Result<Option<Packet>> {
        let fut = async {
            loop {
                if let Some(p) = ferry_mqtt::decode(&mut self.rbuf, self.version, u32::MAX)? {
                    return Ok(Some(p));
                }
                self.rbuf.reserve(4096);
                if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                    return Ok(None);
                }
            }
        };
        tokio::time::timeout(limit, fut)
            .await
            .context("timed out waiting for a packet")?
    }

    /// Asserts that nothing arrives for `d` (use with paused time, or a short real delay).
    pub async fn expect_silence(&mut self, d: Duration) -> anyhow::Result<()> {
        match tokio::time::timeout(d, self.recv_within(d + Duration::from_secs(1))).await {
            Err(_) | Ok(Err(_)) => Ok(()),
            Ok(Ok(Some(p))) => bail!("expected no packet, got {p:?}"),
            Ok(Ok(None)) => bail!("expected no packet, the connection closed"),
        }
    }

    /// Expects the server to close the connection, returning the DISCONNECT reason code
    /// it sent first, if any.
    pub async fn expect_close(&mut self) -> anyhow::Result<Option<u8>> {
        let mut code = None;
        loop {
            match self.recv_within(RECV_TIMEOUT).await? {
                None => return Ok(code),
                Some(Packet::Disconnect(d)) => code = Some(d.code),
                Some(_) => {}
            }
        }
    }

    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        pid: u16,
    ) -> anyhow::Result<()> {
        self.send(&Packet::Publish(publish_packet(
            topic, payload, qos, retain, pid,
        )))
        .await
    }

    /// Subscribes to one filter and returns the SUBACK codes.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> anyhow::Result<Vec<u8>> {
        self.subscribe_with(
            filter,
            SubOptions {
                qos,
                ..Default::default()
            },
            None,
        )
        .await
    }

    pub async fn subscribe_with(
        &mut self,
        filter: &str,
        opts: SubOptions,
        sub_id: Option<u32>,
    ) -> anyhow::Result<Vec<u8>> {
        let pid = 4242;
        let properties = Properties {
            subscription_identifiers: sub_id.into_iter().collect(),
            ..Default::default()
        };
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: pid,
            filters: vec![(filter.into(), opts)],
            properties,
        }))
        .await?;
        match self.recv().await? {
            Packet::SubAck(a) if a.packet_id == pid => Ok(a.codes),
            other => bail!("expected SUBACK, got {other:?}"),
        }
    }

    /// Next PUBLISH, acknowledging it as a well-behaved client would (QoS 1: PUBACK; QoS 2:
    /// PUBREC, then PUBREL is answered by PUBCOMP when it arrives on a later `recv`).
    pub async fn recv_publish(&mut self) -> anyhow::Result<Publish> {
        loop {
            match self.recv().await? {
                Packet::Publish(p) => {
                    match p.qos {
                        QoS::AtMostOnce => {}
                        QoS::AtLeastOnce => {
                            self.send(&Packet::PubAck(Ack::new(p.packet_id, 0))).await?
                        }
                        QoS::ExactlyOnce => {
                            self.send(&Packet::PubRec(Ack::new(p.packet_id, 0))).await?
                        }
                    }
                    return Ok(p);
                }
                Packet::PubRel(r) => {
                    self.send(&Packet::PubComp(Ack::new(r.packet_id, 0)))
                        .await?
                }
                other => bail!("expected PUBLISH, got {other:?}"),
            }
        }
    }

    /// Closes the socket without DISCONNECT (an abrupt loss of the connection).
    pub async fn drop_connection(self) {
        drop(self.stream);
    }

    pub async fn disconnect(mut self) -> anyhow::Result<()> {
        self.send(&Packet::Disconnect(Default::default())).await?;
        let _ = self.recv_within(Duration::from_secs(5)).await;
        Ok(())
    }
}

pub fn connect_packet(version: Version, client_id: &str, clean_start: bool) -> Connect {
    Connect {
        version,
        clean_start,
        keep_alive: 60,
        client_id: client_id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

pub fn will(topic: &str, payload: &[u8], qos: QoS, retain: bool) -> Will {
    Will {
        topic: topic.into(),
        payload: Bytes::copy_from_slice(payload),
        qos,
        retain,
        properties: Properties::default(),
    }
}

pub fn publish_packet(topic: &str, payload: &[u8], qos: QoS, retain: bool, pid: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain,
        topic: topic.into(),
        packet_id: if qos == QoS::AtMostOnce { 0 } else { pid },
        properties: Properties::default(),
        payload: Bytes::copy_from_slice(payload),
    }
}
