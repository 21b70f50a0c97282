//! One client connection: CONNECT handshake, then a loop that reads packets, drains the
//! session queue into the socket, enforces keep alive, and reacts to takeover and shutdown.
//!
//! All per-connection protocol state lives here (negotiated limits, topic aliases both
//! ways, the will); per-session state lives in `ferry_broker::Session`. Every protocol
//! violation ends in [`Close::Error`] with its reason code, sent as DISCONNECT to MQTT 5
//! clients; nothing here panics. Traffic (packets, PUBLISH messages, bytes) is added to the
//! session's `ClientCounters` once per loop turn, not per packet.
//!
//! An idle connection costs what its task holds (ADR 0011): [`Live`] once, the loop's
//! locals, one timer and one wake-up. A field added to `Conn` or a by-value argument added
//! to the loop's async fns costs every connection; check the task's size when changing
//! them (`-Zprint-type-sizes`, see the ADR).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ferry_broker::acl::DenyAction;
use ferry_broker::limits::Bucket;
use ferry_broker::metrics::{self, BrokerMetric};
use ferry_broker::{
    Broker, ClientCounters, ClientInfo, Delivery, DropReason, DurableAck, Expiry, Kick, Message,
    MqttConfig, NotDurable, Outgoing, PublishDenied, Session,
};
use ferry_mqtt::topic::validate_name;
use ferry_mqtt::{
    Ack, ConnAck, Connect, DecodeError, Disconnect, Packet, Properties, Publish, QoS, SubAck,
    Subscribe, UnsubAck, Unsubscribe, Version, Will, reason,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, sleep_until, timeout};

mod acks;
mod handshake;
mod io;
mod outgoing;
mod subscribe;

use acks::{PendingAck, Rates, wait_front};

use handshake::{ConnectFailure, read_connect, refuse};

/// How a connection ends.
#[derive(Debug)]
enum Close {
    /// DISCONNECT with reason 0x00 from the client: the will is discarded.
    Normal,
    /// The client went away (socket closed, DISCONNECT with another reason): will applies.
    Gone,
    /// Ferry closes the connection with this reason code (sent to MQTT 5 clients).
    Error(u8, String),
}

fn err(code: u8, what: impl Into<String>) -> Close {
    Close::Error(code, what.into())
}

fn kick_close(k: Kick) -> Close {
    match k {
        Kick::TakenOver => err(reason::SESSION_TAKEN_OVER, "session taken over"),
        Kick::Admin => err(reason::ADMINISTRATIVE_ACTION, "kicked by an administrator"),
        Kick::Slow => err(
            reason::QUOTA_EXCEEDED,
            "slow subscriber: its queue stayed full",
        ),
        Kick::Shutdown => err(reason::SERVER_SHUTTING_DOWN, "server shutting down"),
    }
}

const BATCH: usize = 256;
/// The session queue is drained into the write buffer only while it holds less than this,
/// so a subscriber that reads slowly leaves its messages in the bounded queue (where
/// `mqtt.queue_full` applies), not in an unbounded buffer.
const WRITE_HIGH: usize = 64 * 1024;
/// Output waiting for the peer past which its connection is not read (its packets would
/// only add acknowledgements it does not read): bounds the write buffer.
const READ_STOP: usize = 4 * WRITE_HIGH;

/// Who is on the other end, as the transport established it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// The client's address (from the PROXY header when the listener expects one).
    pub(crate) addr: SocketAddr,
    pub(crate) local: Option<SocketAddr>,
    /// `peer_cert_as_username`: replaces the username in CONNECT.
    pub(crate) username: Option<String>,
    /// `peer_cert_as_clientid`: replaces the client id in CONNECT.
    pub(crate) client_id: Option<String>,
    /// The listener's `allow_anonymous`, if it overrides `[authentication]`'s.
    pub(crate) allow_anonymous: Option<bool>,
}

/// A connection past CONNECT: its protocol state and its stream. A connection's task
/// holds this once and awaits [`Live::run`] on it; that is what an idle connection costs
/// (everything before it runs in boxed futures freed when done).
///
/// The stream is not split in halves (that would be one more allocation, and a lock per
/// read and write): one future polls it for both ([`io::transfer`]). The connection waits
/// on one thing besides its stream and its timer: its session's wake-up, which deliveries,
/// takeovers, kicks and the server's shutdown all use ([`Session::kicked`]).
pub(crate) struct Live<S> {
    conn: Conn,
    stream: S,
    /// The listener's connection slot, given back when the connection ends.
    _slot: OwnedSemaphorePermit,
}

/// Reads CONNECT from `stream` and accepts it; `None` if it was refused (answered and
/// closed). Any transport: plain TCP, TLS and WebSocket streams are each a type of their
/// own, so the connection is monomorphized per transport (no dynamic dispatch per read or
/// write).
pub(crate) async fn open<S>(
    mut stream: S,
    who: Peer,
    broker: Arc<Broker>,
    slot: OwnedSemaphorePermit,
) -> Option<Live<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn = handshake(&mut stream, who, broker).await?;
    Some(Live {
        conn,
        stream,
        _slot: slot,
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin> Live<S> {
    /// Serves the connection until it ends. Takes `&mut self`, not `self`: an async fn
    /// keeps its arguments' space for as long as it runs, so a `Live` passed by value
    /// would be held twice. The goodbye is boxed: a future is as large as its largest
    /// state.
    pub(crate) async fn run(&mut self) {
        let close = self.conn.run(&mut self.stream).await;
        Box::pin(self.conn.finish(close, &mut self.stream)).await;
    }
}

/// Reads CONNECT and accepts it (`None`: refused, answered and closed).
async fn handshake<S>(stream: &mut S, who: Peer, broker: Arc<Broker>) -> Option<Conn>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut rbuf = BytesMut::new();
    let mut connect_bytes = 0;
    let connect = read_connect(stream, &mut rbuf, broker.config(), &mut connect_bytes).await;
    broker
        .metrics()
        .add(BrokerMetric::BytesReceived, connect_bytes);
    let peer = who.addr;
    let connect = match connect {
        Ok(c) => c,
        Err(ConnectFailure {
            connack,
            refused,
            why,
        }) => {
            tracing::info!(%peer, "connection refused before CONNECT completed: {why}");
            if let Some((version, code)) = connack {
                if let Some((c, level)) = refused {
                    let client = ClientInfo {
                        proto_ver: level,
                        ..ClientInfo::from_connect(&c, peer, who.local)
                    };
                    broker.connack(&client, code);
                }
                refuse(stream, version, code).await;
            }
            return None;
        }
    };
    let mut conn = match Conn::accept(broker, *connect, who).await {
        Ok(c) => c,
        Err((version, code, why)) => {
            tracing::info!(%peer, "CONNECT refused ({code:#04x}): {why}");
            refuse(stream, version, code).await;
            return None;
        }
    };
    let counters = conn.session.counters();
    ClientCounters::add(&counters.recv_oct, connect_bytes);
    ClientCounters::add(&counters.recv_pkt, 1);
    conn.broker.metrics().inc(BrokerMetric::PacketsReceived);
    // What arrived together with CONNECT.
    conn.rbuf = rbuf;
    Some(conn)
}

struct Conn {
    broker: Arc<Broker>,
    version: Version,
    /// Who the client is (its id, address, what authentication granted).
    client: Arc<ClientInfo>,
    session: Arc<Session>,
    conn_id: u64,
    /// Boxed: most clients have none, and a will is 400 bytes.
    will: Option<Box<Will>>,
    keep_alive: Option<Duration>,
    /// Session expiry in CONNECT was 0: DISCONNECT may not raise it (MQTT 5 3.14.2.2.2).
    connect_expiry_zero: bool,
    client_receive_max: u16,
    client_max_packet: u32,
    client_alias_max: u16,
    /// Topic aliases both ways, allocated when a client first uses them.
    aliases: Option<Box<Aliases>>,
    /// Bytes read and not handled yet (an incomplete frame, or frames read while reading
    /// is held); empty and unallocated while idle.
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Written since the last flush (TLS and WebSocket streams buffer; TCP does not).
    unflushed: bool,
    /// QoS 1/2 publishes whose PUBACK/PUBREC waits for durable consumers, in arrival order
    /// (acknowledgements must keep the order of the PUBLISH packets), and QoS 0 publishes
    /// held by a consumer's backpressure.
    pending: VecDeque<PendingAck>,
    /// Entries of `pending` that hold the reads: while any, the socket is not read.
    holding: usize,
    /// `client_message_rate` / `client_byte_rate`, when configured.
    rates: Option<Box<Rates>>,
    traffic: Traffic,
    /// When the last read completed: a PUBLISH's PUBACK delay starts here, and its
    /// messages count as received then (message expiry, `timestamp`): one clock reading per
    /// read, not per message.
    read_at: Instant,
    /// `read_at` in milliseconds since the epoch.
    read_ms: i64,
    /// The properties of the client's DISCONNECT, if it sent one with any (rules'
    /// `disconn_props`).
    disconn_props: Option<Box<Properties>>,
}

/// Topic aliases: the client's (inbound) and Ferry's (outbound).
#[derive(Debug, Default)]
struct Aliases {
    inbound: HashMap<u16, String>,
    outbound: HashMap<String, u16>,
}

/// Packets counted during one turn of the loop, added to the session's
/// [`ClientCounters`] and the broker's counters once per turn rather than once per packet.
#[derive(Debug, Default)]
struct Traffic {
    recv_pkt: u32,
    recv_msg: u32,
    send_pkt: u32,
    send_msg: u32,
}

impl Conn {
    async fn run<S>(&mut self, stream: &mut S) -> Close
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        // One timer: the keep alive deadline, or while the client is over its rate limits
        // (and so not read, keep alive not applying), the end of its throttle.
        let timer = sleep_until(self.keep_alive_deadline());
        tokio::pin!(timer);
        let session = self.session.clone();
        // Frames that arrived together with CONNECT.
        if let Some(close) = self.handle_buffered() {
            return close;
        }
        let mut was_reading = true;
        loop {
            // Enabled before looking at the session, so a kick or a delivery from now on
            // wakes this turn's wait.
            let woken = session.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Some(k) = session.kicked(self.conn_id) {
                // A wake-up meant for the connection taking over may have come here.
                session.pass_wake();
                return kick_close(k);
            }
            if let Err(e) = self.drain_out(stream) {
                tracing::debug!(client_id = %self.client.client_id, "write failed: {e}");
                return Close::Gone;
            }
            if self.reading() && !was_reading {
                // Reading again (a hold settled, a rate limit allows, the peer took its
                // output): what was read and not handled yet goes first, and the client's
                // keep alive counts from now.
                if let Some(close) = self.handle_buffered() {
                    return close;
                }
                timer.as_mut().reset(self.keep_alive_deadline());
            }
            // After any handling above or in the last turn: a rate limit just reached.
            if let Some(until) = self.rates.as_mut().and_then(|r| r.newly_throttled()) {
                self.broker.metrics().inc(BrokerMetric::Throttled);
                timer.as_mut().reset(until.into());
            }
            was_reading = self.reading();
            self.flush_traffic();
            if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
                // Idle: hold no read buffer (a busy connection allocates one per read).
                self.rbuf = BytesMut::new();
            }
            let (reading, writing) = (self.reading(), self.writing());
            tokio::select! {
                biased;
                // Not reading (backpressure, rate limits) means not hearing PINGREQs either;
                // a peer that is not read because it does not read its output is still
                // held to its keep alive.
                _ = &mut timer, if self.holding == 0 || self.throttled() => {
                    let Some(r) = self.rates.as_mut().filter(|r| r.throttled()) else {
                        return err(reason::KEEP_ALIVE_TIMEOUT, "keep alive timeout");
                    };
                    // Reading again (resumed at the top of the loop); keep alive counts
                    // from now.
                    r.resume();
                    timer.as_mut().reset(self.keep_alive_deadline());
                }
                // A peer that does not read holds up only this branch's writes: keep alive,
                // takeover, shutdown and acknowledgements go on.
                r = io::transfer(&mut *stream, reading.then_some(&mut self.rbuf), writing.then_some(&self.wbuf)), if reading || writing => match r {
                    io::Transfer::Wrote(Ok(n)) => self.wrote(n),
                    io::Transfer::Wrote(Err(e)) | io::Transfer::Read(Err(e)) => {
                        tracing::debug!(client_id = %self.client.client_id, "socket error: {e}");
                        return Close::Gone;
                    }
                    io::Transfer::Read(Ok(0)) => return Close::Gone,
                    io::Transfer::Read(Ok(n)) => {
                        self.read_at = Instant::now();
                        self.read_ms = ferry_broker::hook::now_ms();
                        self.broker.metrics().add(BrokerMetric::BytesReceived, n as u64);
                        ClientCounters::add(&self.session.counters().recv_oct, n as u64);
                        timer.as_mut().reset(self.keep_alive_deadline_from(self.read_at));
                        if let Some(close) = self.handle_buffered() {
                            return close;
                        }
                    }
                },
                // Deliveries (while the write buffer is full they wait in the session
                // queue: the next turn takes none), kicks, shutdown.
                _ = &mut woken => {}
                r = wait_front(&mut self.pending), if !self.pending.is_empty() => {
                    if let Some(close) = self.release_front(r) {
                        return close;
                    }
                }
            }
        }
    }

    /// When keep alive ends the connection if nothing is read before (a year away without
    /// keep alive).
    fn keep_alive_deadline(&self) -> Instant {
        self.keep_alive_deadline_from(Instant::now())
    }

    fn keep_alive_deadline_from(&self, now: Instant) -> Instant {
        now + self.keep_alive.unwrap_or(Duration::from_secs(86_400 * 365))
    }

    /// Handles the complete frames in `rbuf`.
    /// Over a rate limit, or held by backpressure, it stops, leaving the rest in `rbuf`
    /// for when the limit allows or the hold ends.
    fn handle_buffered(&mut self) -> Option<Close> {
        let mut rbuf = std::mem::take(&mut self.rbuf);
        let close = self.handle_frames(&mut rbuf);
        self.rbuf = rbuf;
        close
    }

    fn handle_frames(&mut self, rbuf: &mut BytesMut) -> Option<Close> {
        loop {
            if !self.reading() {
                return None;
            }
            let frame = match ferry_mqtt::read_frame(rbuf, self.broker.config().max_packet_size) {
                Ok(None) => return None,
                Ok(Some(frame)) => frame,
                Err(e) => return Some(err(e.reason_code(), e.to_string())),
            };
            let len = frame.body.len() as u64 + 2;
            let p = match ferry_mqtt::parse(frame, self.version) {
                Ok(p) => p,
                Err(e) => return Some(err(e.reason_code(), e.to_string())),
            };
            if let Some(r) = &mut self.rates {
                r.charge(u64::from(matches!(p, Packet::Publish(_))), len);
            }
            if let Some(close) = self.handle(p) {
                return Some(close);
            }
        }
    }

    fn send(&mut self, p: &Packet) {
        match ferry_mqtt::encode(p, self.version, &mut self.wbuf) {
            Ok(_) => self.traffic.send_pkt += 1,
            Err(e) => {
                tracing::warn!(client_id = %self.client.client_id, "cannot encode {}: {e}", p.name())
            }
        }
    }

    /// Adds the packets counted since the last call to the session's and the broker's
    /// counters.
    fn flush_traffic(&mut self) {
        let t = std::mem::take(&mut self.traffic);
        let c = self.session.counters();
        ClientCounters::add(&c.recv_pkt, t.recv_pkt.into());
        ClientCounters::add(&c.recv_msg, t.recv_msg.into());
        ClientCounters::add(&c.send_pkt, t.send_pkt.into());
        ClientCounters::add(&c.send_msg, t.send_msg.into());
        let m = self.broker.metrics();
        if t.recv_pkt > 0 {
            m.add(BrokerMetric::PacketsReceived, t.recv_pkt.into());
        }
        if t.send_pkt > 0 {
            m.add(BrokerMetric::PacketsSent, t.send_pkt.into());
        }
    }

    fn handle(&mut self, p: Packet) -> Option<Close> {
        let v5 = self.version.is_v5();
        self.traffic.recv_pkt += 1;
        match p {
            Packet::Publish(p) => {
                self.traffic.recv_msg += 1;
                return self.on_publish(p);
            }
            Packet::PubAck(a) => {
                let acked = self.session.lock().puback(a.packet_id);
                if let Some(d) = acked {
                    self.acked(&d);
                }
            }
            Packet::PubRec(a) => {
                let ok = a.code < 0x80;
                let known = self.session.lock().pubrec(a.packet_id, ok);
                if ok {
                    let code = if known {
                        reason::SUCCESS
                    } else {
                        reason::PACKET_IDENTIFIER_NOT_FOUND
                    };
                    self.send(&Packet::PubRel(Ack::new(a.packet_id, code)));
                }
            }
            Packet::PubRel(a) => {
                let known = self.session.lock().release_rel(a.packet_id);
                let code = if known {
                    reason::SUCCESS
                } else {
                    reason::PACKET_IDENTIFIER_NOT_FOUND
                };
                self.send(&Packet::PubComp(Ack::new(a.packet_id, code)));
            }
            Packet::PubComp(a) => {
                let done = self.session.lock().pubcomp(a.packet_id);
                if let Some(d) = done {
                    self.acked(&d);
                }
            }
            Packet::Subscribe(s) => return self.on_subscribe(s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(u),
            Packet::PingReq => self.send(&Packet::PingResp),
            Packet::Disconnect(d) => {
                self.disconn_props = ferry_broker::hook::boxed_props(&d.properties);
                if let Some(exp) = d.properties.session_expiry_interval {
                    if self.connect_expiry_zero && exp != 0 {
                        return Some(err(
                            reason::PROTOCOL_ERROR,
                            "session expiry set in DISCONNECT after 0 in CONNECT",
                        ));
                    }
                    self.session.lock().set_expiry_interval(exp);
                }
                return Some(if !v5 || d.code == reason::SUCCESS {
                    Close::Normal
                } else {
                    Close::Gone
                });
            }
            Packet::Connect(_) => return Some(err(reason::PROTOCOL_ERROR, "second CONNECT")),
            Packet::Auth(_) => {
                return Some(err(
                    reason::PROTOCOL_ERROR,
                    "AUTH without enhanced authentication",
                ));
            }
            other => {
                return Some(err(
                    reason::PROTOCOL_ERROR,
                    format!("{} is not sent by clients", other.name()),
                ));
            }
        }
        None
    }

    /// The message a client's PUBLISH carries.
    fn inbound(&self, p: Publish) -> Message {
        Message {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            dup: p.dup,
            properties: p.properties,
            publisher: Some(self.client.clone()),
            completion: None,
            received_at: self.read_at,
            timestamp: self.read_ms,
        }
    }

    /// Tells hooks a QoS 2 PUBLISH was not routed (EMQX's `message.dropped` with the
    /// reason code's name); the message is built only if a hook wants it.
    fn qos2_dropped(&self, p: Publish, why: DropReason) {
        let hooks = self.broker.hooks();
        if !hooks.iter().any(|h| h.wants_message_dropped()) {
            return;
        }
        let msg = Arc::new(self.inbound(p));
        for h in hooks {
            h.message_dropped(&msg, why);
        }
    }

    fn on_publish(&mut self, mut p: Publish) -> Option<Close> {
        if self.version.is_v5() {
            if let Some(alias) = p.properties.topic_alias.take() {
                if alias == 0 || alias > self.broker.config().max_topic_alias {
                    return Some(err(
                        reason::TOPIC_ALIAS_INVALID,
                        format!("topic alias {alias} out of range"),
                    ));
                }
                if p.topic.is_empty() {
                    match self.aliases.as_ref().and_then(|a| a.inbound.get(&alias)) {
                        Some(t) => p.topic = t.clone(),
                        None => {
                            return Some(err(
                                reason::PROTOCOL_ERROR,
                                format!("unknown topic alias {alias}"),
                            ));
                        }
                    }
                } else {
                    let a = self.aliases.get_or_insert_with(Default::default);
                    a.inbound.insert(alias, p.topic.clone());
                }
            }
            if !p.properties.subscription_identifiers.is_empty() {
                return Some(err(
                    reason::PROTOCOL_ERROR,
                    "PUBLISH from a client with a subscription identifier",
                ));
            }
        }
        if p.topic.is_empty() {
            return Some(err(reason::PROTOCOL_ERROR, "PUBLISH without topic"));
        }
        if let Err(e) = validate_name(&p.topic) {
            return Some(err(
                reason::TOPIC_NAME_INVALID,
                format!("invalid topic {:?}: {e}", p.topic),
            ));
        }
        if p.retain && !self.broker.config().retain_available {
            return Some(err(reason::RETAIN_NOT_SUPPORTED, "retain is not available"));
        }
        if p.qos == QoS::ExactlyOnce {
            let mut st = self.session.lock();
            if st.awaits_rel(p.packet_id) {
                // A resend of a message already routed: acknowledge again (once it is
                // durable, if it is still pending), do not route.
                drop(st);
                if !self.pending.iter().any(|x| x.packet_id == p.packet_id) {
                    self.send(&Packet::PubRec(Ack::new(p.packet_id, reason::SUCCESS)));
                }
                self.qos2_dropped(p, DropReason::PacketIdentifierInUse);
                return None;
            }
            let pending_qos1 = self
                .pending
                .iter()
                .filter(|p| p.qos == QoS::AtLeastOnce)
                .count();
            if st.awaiting_rel_len() + pending_qos1
                >= usize::from(self.broker.config().receive_maximum)
            {
                drop(st);
                self.qos2_dropped(p, DropReason::ReceiveMaximumExceeded);
                return Some(err(
                    reason::RECEIVE_MAXIMUM_EXCEEDED,
                    "receive maximum exceeded",
                ));
            }
            st.await_rel(p.packet_id);
        } else if p.qos == QoS::AtLeastOnce && !self.pending.is_empty() {
            let pending_qos1 = self
                .pending
                .iter()
                .filter(|p| p.qos == QoS::AtLeastOnce)
                .count();
            if pending_qos1 + self.session.lock().awaiting_rel_len()
                >= usize::from(self.broker.config().receive_maximum)
            {
                return Some(err(
                    reason::RECEIVE_MAXIMUM_EXCEEDED,
                    "receive maximum exceeded",
                ));
            }
        }
        let (qos, packet_id) = (p.qos, p.packet_id);
        let msg = self.inbound(p);
        let read_at = self.read_at;
        let mut acks = Vec::new();
        let routed = match self.broker.publish_checked(msg, &mut acks) {
            Ok(n) => n,
            Err(denied) => return self.publish_denied(qos, packet_id, denied),
        };
        // Strict state persistence: a QoS 2 id awaiting PUBREL is committed before PUBREC.
        if qos == QoS::ExactlyOnce
            && self.broker.is_strict()
            && self.session.lock().expiry_interval() > 0
            && let Some(barrier) = self.broker.commit_barrier()
        {
            acks.push(barrier);
        }
        let code = if routed == 0 && self.version.is_v5() {
            reason::NO_MATCHING_SUBSCRIBERS
        } else {
            reason::SUCCESS
        };
        let holds = acks.iter().any(DurableAck::holds);
        if qos != QoS::AtMostOnce || holds {
            if acks.is_empty() && self.pending.is_empty() {
                self.send_ack(qos, packet_id, code, read_at);
            } else {
                self.push_pending(PendingAck {
                    read_at,
                    qos,
                    packet_id,
                    code,
                    acks,
                    suback: None,
                    holds,
                });
            }
        }
        None
    }

    /// A PUBLISH refused by authorization: closed (`deny_action = "disconnect"`), or
    /// acknowledged with 0x87 to MQTT 5 clients and as usual to 3.x clients, which cannot
    /// be told (their message is dropped).
    fn publish_denied(&mut self, qos: QoS, packet_id: u16, denied: PublishDenied) -> Option<Close> {
        if qos == QoS::ExactlyOnce
            && (self.version.is_v5() || denied.action == DenyAction::Disconnect)
        {
            self.session.lock().release_rel(packet_id);
        }
        if denied.action == DenyAction::Disconnect {
            return Some(err(reason::NOT_AUTHORIZED, "publish not authorized"));
        }
        let code = if self.version.is_v5() {
            reason::NOT_AUTHORIZED
        } else {
            reason::SUCCESS
        };
        if qos != QoS::AtMostOnce {
            if self.pending.is_empty() {
                self.send_ack(qos, packet_id, code, self.read_at);
            } else {
                self.push_pending(PendingAck {
                    read_at: self.read_at,
                    qos,
                    packet_id,
                    code,
                    acks: Vec::new(),
                    suback: None,
                    holds: false,
                });
            }
        }
        None
    }

    fn acked(&self, d: &Delivery) {
        for h in self.broker.hooks() {
            h.message_acked(&self.client, &d.msg);
        }
    }

    async fn finish<W: AsyncWrite + Unpin>(&mut self, close: Close, wr: &mut W) {
        let will = match &close {
            Close::Normal => None,
            Close::Gone | Close::Error(..) => self.will.take().map(|w| *w),
        };
        if let Close::Error(code, why) = &close {
            if ![
                reason::SESSION_TAKEN_OVER,
                reason::SERVER_SHUTTING_DOWN,
                reason::ADMINISTRATIVE_ACTION,
                reason::NOT_AUTHORIZED,
                reason::QUOTA_EXCEEDED,
            ]
            .contains(code)
            {
                self.broker.metrics().inc(BrokerMetric::ProtocolErrors);
            }
            tracing::info!(client_id = %self.client.client_id, peer = ?self.client.peer, "closing connection ({code:#04x}): {why}");
            if self.version.is_v5() {
                // After what is pending (a packet may be partly written already).
                self.send(&Packet::Disconnect(Disconnect {
                    code: *code,
                    properties: Properties::default(),
                }));
            }
        }
        // shutdown also ends TLS (close_notify) and WebSocket (close frame) politely. A
        // peer that does not read gets 5 seconds.
        let _ = timeout(Duration::from_secs(5), async {
            while !self.wbuf.is_empty() {
                match wr.write(&self.wbuf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.wrote(n),
                }
            }
            let _ = wr.shutdown().await;
        })
        .await;
        self.flush_traffic();
        let reason = match &close {
            Close::Normal => "normal",
            Close::Gone => "sock_closed",
            Close::Error(reason::SESSION_TAKEN_OVER, _) => "takenover",
            Close::Error(reason::KEEP_ALIVE_TIMEOUT, _) => "keepalive_timeout",
            Close::Error(reason::SERVER_SHUTTING_DOWN, _) => "server_shutdown",
            Close::Error(reason::ADMINISTRATIVE_ACTION, _) => "kicked",
            Close::Error(reason::NOT_AUTHORIZED, _) => "not_authorized",
            Close::Error(reason::QUOTA_EXCEEDED, _) => "slow_subscriber",
            Close::Error(..) => "protocol_error",
        };
        let none = Properties::default();
        let props = self.disconn_props.as_deref().unwrap_or(&none);
        for h in self.broker.hooks() {
            h.client_disconnected(&self.client, reason, props);
        }
        self.broker
            .disconnect(&self.session, self.conn_id, will, &self.client);
        tracing::debug!(client_id = %self.client.client_id, "client disconnected");
    }
}
