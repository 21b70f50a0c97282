//! A small MQTT client for the simulator and the load generator: one task per connection,
//! no locks, the codec of `ferry-mqtt`, over TCP or TLS ([`crate::tls`]). Cheap per message,
//! so that the tool costs less CPU than the broker it measures.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use ferry_mqtt::{Ack, Connect, Packet, Properties, Publish, QoS, SubOptions, Subscribe, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::tls::{Stream, TlsClient};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("connection refused with code {0:#04x}")]
    Refused(u8),
    #[error("timed out")]
    Timeout,
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub addr: SocketAddr,
    pub client_id: String,
    pub version: Version,
    pub clean_start: bool,
    pub keep_alive: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// TLS over the TCP connection (None: plain MQTT).
    pub tls: Option<TlsClient>,
}

impl Options {
    /// Clean start, keep alive 60 s, no credentials, plain TCP.
    pub fn new(addr: SocketAddr, client_id: impl Into<String>, version: Version) -> Options {
        Options {
            addr,
            client_id: client_id.into(),
            version,
            clean_start: true,
            keep_alive: 60,
            username: None,
            password: None,
            tls: None,
        }
    }
}

pub struct Client {
    stream: Stream,
    version: Version,
    rbuf: BytesMut,
    wbuf: BytesMut,
    next_id: u16,
}

impl Client {
    pub async fn connect(o: &Options) -> Result<Client, ClientError> {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(o.addr))
            .await
            .map_err(|_| ClientError::Timeout)??;
        stream.set_nodelay(true)?;
        let stream = match &o.tls {
            None => Stream::Tcp(stream),
            Some(tls) => tokio::time::timeout(Duration::from_secs(10), tls.handshake(stream))
                .await
                .map_err(|_| ClientError::Timeout)??,
        };
        let mut c = Client {
            stream,
            version: o.version,
            rbuf: BytesMut::with_capacity(8192),
            wbuf: BytesMut::new(),
            next_id: 0,
        };
        c.queue(&Packet::Connect(Box::new(Connect {
            version: o.version,
            clean_start: o.clean_start,
            keep_alive: o.keep_alive,
            client_id: o.client_id.clone(),
            will: None,
            username: o.username.clone(),
            password: o.password.clone().map(Bytes::from),
            properties: Properties::default(),
        })))?;
        c.flush().await?;
        match tokio::time::timeout(Duration::from_secs(10), c.recv())
            .await
            .map_err(|_| ClientError::Timeout)??
        {
            Packet::ConnAck(a) if a.code == 0 => Ok(c),
            Packet::ConnAck(a) => Err(ClientError::Refused(a.code)),
            other => Err(ClientError::Protocol(format!(
                "expected CONNACK, got {}",
                other.name()
            ))),
        }
    }

    fn queue(&mut self, p: &Packet) -> Result<(), ClientError> {
        ferry_mqtt::encode(p, self.version, &mut self.wbuf)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    pub async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            // TLS may keep records back until flushed; a no-op on TCP.
            self.stream.flush().await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// The negotiated TLS version and cipher suite, if the connection is TLS.
    pub fn tls_info(&self) -> Option<(String, String)> {
        self.stream.tls_info()
    }

    fn packet_id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    /// Queues a PUBLISH (call `flush` to send); returns its packet id (0 for QoS 0).
    pub fn publish(
        &mut self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        user_properties: &[(String, String)],
    ) -> Result<u16, ClientError> {
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            self.packet_id()
        };
        let properties = Properties {
            user_properties: user_properties.to_vec(),
            ..Default::default()
        };
        self.queue(&Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: topic.to_owned(),
            packet_id,
            properties,
            payload,
        }))?;
        Ok(packet_id)
    }

    /// Queues a PUBLISH written straight into the send buffer (no packet built): the load
    /// generator's path. Returns its packet id (0 for QoS 0).
    pub fn publish_bytes(
        &mut self,
        topic: &str,
        qos: QoS,
        payload: &[u8],
    ) -> Result<u16, ClientError> {
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            self.packet_id()
        };
        ferry_mqtt::fast::put_publish_header(
            &mut self.wbuf,
            self.version,
            topic,
            qos,
            packet_id,
            payload.len(),
        )
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.wbuf.extend_from_slice(payload);
        Ok(packet_id)
    }

    /// One read from the network into the receive buffer (as much as is there, up to 64 KiB).
    pub async fn fill(&mut self) -> Result<(), ClientError> {
        self.rbuf.reserve(64 * 1024);
        if self.stream.read_buf(&mut self.rbuf).await? == 0 {
            return Err(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }

    /// Takes every whole packet buffered: each PUBLISH payload goes to `on` in place and is
    /// acknowledged (queued); anything else is answered as `handle_control` does. Returns
    /// the number of PUBLISH packets. The load generator's subscriber path.
    pub fn take_publishes(&mut self, mut on: impl FnMut(&[u8])) -> Result<u64, ClientError> {
        self.take_frames(|_, _, view, wbuf| match view {
            Some(p) => {
                on(p.payload);
                ferry_mqtt::fast::put_subscriber_ack(wbuf, p.qos, p.packet_id);
                true
            }
            None => false,
        })
    }

    /// Takes every whole packet buffered and returns how many QoS 1/2 publishes they
    /// completed (PUBACK, PUBCOMP); PUBREC is answered with PUBREL (queued). The load
    /// generator's publisher path.
    pub fn take_completions(&mut self) -> Result<u64, ClientError> {
        self.take_completions_with(|_| {})
    }

    /// As [`take_completions`](Self::take_completions), and `on` sees the packet id of each
    /// completed publish (for publish-to-acknowledgement latency).
    pub fn take_completions_with(&mut self, mut on: impl FnMut(u16)) -> Result<u64, ClientError> {
        self.take_frames(|kind, frame, _, _| {
            if !matches!(kind, 4 | 7) {
                return false;
            }
            // An acknowledgement's remaining length fits in one byte: the id follows it.
            if let Some(id) = frame.get(2..4) {
                on(u16::from_be_bytes([id[0], id[1]]));
            }
            true
        })
    }

    /// Takes every whole packet buffered. `fast` sees each in place (its packet type, its
    /// bytes, the PUBLISH in it if it is one, the send buffer) and says whether it dealt with it; the
    /// others are decoded and answered as `handle_control` does. Returns how many `fast`
    /// dealt with.
    fn take_frames(
        &mut self,
        mut fast: impl FnMut(
            u8,
            &[u8],
            Option<ferry_mqtt::fast::PublishView<'_>>,
            &mut BytesMut,
        ) -> bool,
    ) -> Result<u64, ClientError> {
        let proto = |e: ferry_mqtt::DecodeError| ClientError::Protocol(e.to_string());
        let mut n = 0;
        loop {
            let mut at = 0;
            let mut other = false;
            while let Some((len, view)) =
                ferry_mqtt::fast::peek_frame(&self.rbuf[at..], self.version).map_err(proto)?
            {
                let kind = ferry_mqtt::fast::packet_type(&self.rbuf[at..]);
                if !fast(kind, &self.rbuf[at..at + len], view, &mut self.wbuf) {
                    other = true;
                    break;
                }
                n += 1;
                at += len;
            }
            self.rbuf.advance(at);
            if !other || !self.decode_control()? {
                return Ok(n);
            }
        }
    }

    /// Decodes the next buffered packet and answers it as `handle_control` does; false if
    /// no whole packet is buffered.
    fn decode_control(&mut self) -> Result<bool, ClientError> {
        match ferry_mqtt::decode(&mut self.rbuf, self.version, u32::MAX)
            .map_err(|e| ClientError::Protocol(e.to_string()))?
        {
            Some(p) => {
                self.handle_control(&p)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<u8, ClientError> {
        let packet_id = self.packet_id();
        self.queue(&Packet::Subscribe(Subscribe {
            packet_id,
            filters: vec![(
                filter.to_owned(),
                SubOptions {
                    qos,
                    ..Default::default()
                },
            )],
            properties: Properties::default(),
        }))?;
        self.flush().await?;
        loop {
            match self.recv().await? {
                Packet::SubAck(a) if a.packet_id == packet_id => {
                    return Ok(a.codes.first().copied().unwrap_or(0x80));
                }
                _ => {}
            }
        }
    }

    /// Reads the next packet.
    pub async fn recv(&mut self) -> Result<Packet, ClientError> {
        loop {
            match ferry_mqtt::decode(&mut self.rbuf, self.version, u32::MAX) {
                Ok(Some(p)) => return Ok(p),
                Ok(None) => {}
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
            self.fill().await?;
        }
    }

    /// Answers a received PUBLISH as a subscriber must (PUBACK / PUBREC), queued.
    pub fn ack(&mut self, p: &Publish) -> Result<(), ClientError> {
        match p.qos {
            QoS::AtMostOnce => Ok(()),
            QoS::AtLeastOnce => self.queue(&Packet::PubAck(Ack::new(p.packet_id, 0))),
            QoS::ExactlyOnce => self.queue(&Packet::PubRec(Ack::new(p.packet_id, 0))),
        }
    }

    /// Completes the QoS 2 handshakes: PUBREL → PUBCOMP, PUBREC → PUBREL. Returns true if
    /// the packet was such a control packet.
    pub fn handle_control(&mut self, p: &Packet) -> Result<bool, ClientError> {
        match p {
            Packet::PubRel(a) => self.queue(&Packet::PubComp(Ack::new(a.packet_id, 0)))?,
            Packet::PubRec(a) => self.queue(&Packet::PubRel(Ack::new(a.packet_id, 0)))?,
            Packet::PingResp => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Reads one packet within `limit`: the acknowledgement ending a QoS 1/2 publish
    /// (PUBACK or PUBCOMP), or `None` after answering anything else that needs it.
    pub async fn next_completion(&mut self, limit: Duration) -> Result<Option<Ack>, ClientError> {
        let p = tokio::time::timeout(limit, self.recv())
            .await
            .map_err(|_| ClientError::Timeout)??;
        match p {
            Packet::PubAck(a) | Packet::PubComp(a) => Ok(Some(a)),
            other => {
                self.handle_control(&other)?;
                self.flush().await?;
                Ok(None)
            }
        }
    }

    pub async fn ping(&mut self) -> Result<(), ClientError> {
        self.queue(&Packet::PingReq)?;
        self.flush().await
    }

    pub async fn disconnect(mut self) -> Result<(), ClientError> {
        self.queue(&Packet::Disconnect(Default::default()))?;
        self.flush().await?;
        let _ = self.stream.shutdown().await;
        Ok(())
    }
}
