//! Bytes for [`SessionRecord`]s, their [`StoredDelivery`]s and retained [`Message`]s, for
//! stores that keep bytes.
//!
//! Format (integers big-endian; `str`/`bytes` are a u32 length then the bytes; `opt<T>` is a
//! u8 0/1 then T; `vec<T>` is a u32 count then the items):
//!
//! ```text
//! message  = u8 version=1, i64 timestamp_ms, opt<str client_id, opt<str username>> publisher,
//!            bytes publish   (an MQTT 5 PUBLISH packet: topic, qos, retain, properties,
//!                             payload; packet id 1 when qos > 0)
//! session  = u8 version=2, head, vec<u16> awaiting_rel
//! head     = str client_id, i64 created_at, u32 expiry_interval,
//!            i64 disconnected_at, i64 saved_at, u16 next_packet_id,
//!            client, vec<subscription>
//! stored delivery (key: client id, seq) = u8 version=1,
//!            opt<u16 packet_id, u8 state (0 published, 1 released)> sent, delivery
//! client   = opt<str> username, opt<str> peer, u8 proto_ver, u16 keepalive,
//!            u8 clean_start, u32 expiry_interval, i64 connected_at
//! subscription = str filter, u8 qos, u8 flags (1 no local, 2 retain as published),
//!            u8 retain_handling, opt<u32> sub_id
//! delivery = bytes message, u8 qos, u8 retain, vec<u32> sub_ids, opt<str group, str filter>
//! ```
//!
//! Version 1 session records (before deliveries had keys of their own) are still read:
//! `u8 version=1, head, vec<delivery> queue, vec<u16 packet_id, u8 state, delivery>
//! inflight, vec<u16> awaiting_rel`; their deliveries come back with `seq` 0, and the broker
//! renumbers them and rewrites the session in the new form on its next sync.
//!
//! A message's arrival instant is rebuilt from its timestamp, so message expiry keeps
//! counting across a restart.

use std::sync::Arc;

use bytes::BytesMut;
use ferry_mqtt::{Packet, Publish, QoS, SubOptions, Version};
use tokio::time::Instant;

use crate::hook::{ClientInfo, now_ms};
use crate::message::{Delivery, Message, SharedVia};
use crate::session::{InflightState, Subscription};
use crate::store::{SessionRecord, StoredDelivery, StoredSession};

/// Version of message and stored delivery encodings.
const VERSION: u8 = 1;
/// Version of session records: 2 (head only); 1 (deliveries inline) is still read.
const SESSION_VERSION: u8 = 2;

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
}

struct R<'a>(&'a [u8]);

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "invalid UTF-8".to_string())
    }
    fn opt(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(format!("invalid option flag {v}")),
        }
    }
    fn opt_str(&mut self) -> Result<Option<String>, String> {
        Ok(if self.opt()? { Some(self.str()?) } else { None })
    }
    /// A collection count, checked against what is left (each item takes >= `min` bytes).
    fn count(&mut self, min: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.0.len() {
            return Err("count larger than the record".into());
        }
        Ok(n)
    }
    fn qos(&mut self) -> Result<QoS, String> {
        let v = self.u8()?;
        QoS::from_u8(v).ok_or_else(|| format!("invalid QoS {v}"))
    }
    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes after the record", self.0.len()))
        }
    }
}

/// A retained or queued message as bytes.
pub fn encode_message(m: &Message) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(m.topic.len() + m.payload.len() + 64));
    message_into(&mut w, m);
    w.0
}

fn message_into(w: &mut W, m: &Message) {
    w.u8(VERSION);
    w.i64(m.timestamp);
    match &m.publisher {
        Some(p) => {
            w.u8(1);
            w.str(&p.client_id);
            w.opt_str(p.username.as_deref());
        }
        None => w.u8(0),
    }
    let publish = Packet::Publish(Publish {
        dup: false,
        qos: m.qos,
        retain: m.retain,
        topic: m.topic.clone(),
        packet_id: if m.qos == QoS::AtMostOnce { 0 } else { 1 },
        properties: m.properties.clone(),
        payload: m.payload.clone(),
    });
    let mut buf = BytesMut::new();
    // Only fails for packets beyond MQTT's size limit, which the broker never accepted.
    if ferry_mqtt::encode(&publish, Version::V5, &mut buf).is_err() {
        buf.clear();
    }
    w.bytes(&buf);
}

pub fn decode_message(b: &[u8]) -> Result<Message, String> {
    let mut r = R(b);
    let m = message_from(&mut r)?;
    r.end()?;
    Ok(m)
}

fn message_from(r: &mut R<'_>) -> Result<Message, String> {
    let v = r.u8()?;
    if v != VERSION {
        return Err(format!("unknown message format version {v}"));
    }
    let timestamp = r.i64()?;
    let publisher = if r.opt()? {
        let client_id = r.str()?;
        let username = r.opt_str()?;
        Some(Arc::new(ClientInfo {
            username: username.map(Arc::from),
            connected_at: 0,
            auth: Arc::default(),
            ..ClientInfo::internal(&client_id)
        }))
    } else {
        None
    };
    let raw = r.bytes()?;
    let mut buf = BytesMut::from(raw);
    let packet = ferry_mqtt::decode(&mut buf, Version::V5, u32::MAX)
        .map_err(|e| format!("stored PUBLISH: {e}"))?;
    let Some(Packet::Publish(p)) = packet else {
        return Err("stored PUBLISH: not a PUBLISH packet".into());
    };
    let waited = u64::try_from(now_ms().saturating_sub(timestamp)).unwrap_or(0);
    let now = Instant::now();
    Ok(Message {
        topic: p.topic,
        payload: p.payload,
        qos: p.qos,
        retain: p.retain,
        dup: false,
        properties: p.properties,
        publisher,
        completion: None,
        received_at: now
            .checked_sub(std::time::Duration::from_millis(waited))
            .unwrap_or(now),
        timestamp,
    })
}

fn delivery_into(w: &mut W, d: &Delivery) {
    let mut m = W(Vec::new());
    message_into(&mut m, &d.msg);
    w.bytes(&m.0);
    w.u8(d.qos as u8);
    w.u8(u8::from(d.retain));
    w.u32(d.sub_ids.len() as u32);
    for id in &d.sub_ids {
        w.u32(*id);
    }
    match &d.shared {
        Some(s) => {
            w.u8(1);
            w.str(&s.group);
            w.str(&s.filter);
        }
        None => w.u8(0),
    }
}

fn delivery_from(r: &mut R<'_>) -> Result<Delivery, String> {
    let mut mr = R(r.bytes()?);
    let msg = message_from(&mut mr)?;
    mr.end()?;
    let qos = r.qos()?;
    let retain = r.u8()? != 0;
    let n = r.count(4)?;
    let sub_ids = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
    let shared = if r.opt()? {
        Some(SharedVia {
            group: r.str()?.into(),
            filter: r.str()?.into(),
        })
    } else {
        None
    };
    Ok(Delivery {
        msg: Arc::new(msg),
        qos,
        retain,
        sub_ids,
        shared,
        ticket: None,
        seq: 0,
    })
}

fn state_byte(s: InflightState) -> u8 {
    match s {
        InflightState::Published => 0,
        InflightState::Released => 1,
    }
}

fn state_from(r: &mut R<'_>) -> Result<InflightState, String> {
    match r.u8()? {
        0 => Ok(InflightState::Published),
        1 => Ok(InflightState::Released),
        v => Err(format!("invalid inflight state {v}")),
    }
}

/// A stored delivery as bytes (its key, client id and `seq`, is not part of them).
pub fn encode_delivery(d: &StoredDelivery) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(d.delivery.msg.payload.len() + 64));
    w.u8(VERSION);
    match d.sent {
        Some((packet_id, state)) => {
            w.u8(1);
            w.u16(packet_id);
            w.u8(state_byte(state));
        }
        None => w.u8(0),
    }
    delivery_into(&mut w, &d.delivery);
    w.0
}

/// The stored delivery `seq` of a session from its bytes.
pub fn decode_delivery(seq: u64, b: &[u8]) -> Result<StoredDelivery, String> {
    let mut r = R(b);
    let v = r.u8()?;
    if v != VERSION {
        return Err(format!("unknown delivery format version {v}"));
    }
    let sent = if r.opt()? {
        Some((r.u16()?, state_from(&mut r)?))
    } else {
        None
    };
    let mut delivery = delivery_from(&mut r)?;
    r.end()?;
    delivery.seq = seq;
    Ok(StoredDelivery {
        seq,
        delivery,
        sent,
    })
}

/// A session record (without its deliveries) as bytes.
pub fn encode_session(s: &SessionRecord) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(256));
    w.u8(SESSION_VERSION);
    w.str(&s.client_id);
    w.i64(s.created_at);
    w.u32(s.expiry_interval);
    w.i64(s.disconnected_at);
    w.i64(s.saved_at);
    w.u16(s.next_packet_id);
    let c = &s.client;
    w.opt_str(c.username.as_deref());
    w.opt_str(c.peer.map(|p| p.to_string()).as_deref());
    w.u8(c.proto_ver);
    w.u16(c.keepalive);
    w.u8(u8::from(c.clean_start));
    w.u32(c.expiry_interval);
    w.i64(c.connected_at);
    w.u32(s.subscriptions.len() as u32);
    for (filter, sub) in &s.subscriptions {
        w.str(filter);
        w.u8(sub.opts.qos as u8);
        w.u8(u8::from(sub.opts.no_local) | (u8::from(sub.opts.retain_as_published) << 1));
        w.u8(sub.opts.retain_handling);
        match sub.sub_id {
            Some(id) => {
                w.u8(1);
                w.u32(id);
            }
            None => w.u8(0),
        }
    }
    w.u32(s.awaiting_rel.len() as u32);
    for id in &s.awaiting_rel {
        w.u16(*id);
    }
    w.0
}

/// A session record; a version 1 record also brings its deliveries (with `seq` 0).
pub fn decode_session(b: &[u8]) -> Result<StoredSession, String> {
    let mut r = R(b);
    let v = r.u8()?;
    if v != SESSION_VERSION && v != 1 {
        return Err(format!("unknown session format version {v}"));
    }
    let client_id: Arc<str> = r.str()?.into();
    let created_at = r.i64()?;
    let expiry_interval = r.u32()?;
    let disconnected_at = r.i64()?;
    let saved_at = r.i64()?;
    let next_packet_id = r.u16()?;
    let username = r.opt_str()?;
    let peer = r.opt_str()?.and_then(|p| p.parse().ok());
    let client = Arc::new(ClientInfo {
        client_id: client_id.clone(),
        username: username.map(Arc::from),
        peer,
        local: None,
        proto_ver: r.u8()?,
        keepalive: r.u16()?,
        clean_start: r.u8()? != 0,
        expiry_interval: r.u32()?,
        connected_at: r.i64()?,
        // Not persisted: a restored session's CONNECT properties are those of its next
        // connection.
        conn_props: None,
        auth: Arc::default(),
    });
    let n = r.count(8)?;
    let mut subscriptions = Vec::with_capacity(n);
    for _ in 0..n {
        let filter = r.str()?;
        let qos = r.qos()?;
        let flags = r.u8()?;
        let retain_handling = r.u8()?;
        let sub_id = if r.opt()? { Some(r.u32()?) } else { None };
        subscriptions.push((
            filter,
            Subscription {
                opts: SubOptions {
                    qos,
                    no_local: flags & 1 != 0,
                    retain_as_published: flags & 2 != 0,
                    retain_handling,
                },
                sub_id,
            },
        ));
    }
    let mut deliveries = Vec::new();
    if v == 1 {
        // Inline queue, then inflight window (sent before anything queued).
        let n = r.count(8)?;
        let mut queue = Vec::with_capacity(n);
        for _ in 0..n {
            queue.push(delivery_from(&mut r)?);
        }
        let n = r.count(10)?;
        for _ in 0..n {
            let packet_id = r.u16()?;
            let state = state_from(&mut r)?;
            deliveries.push(StoredDelivery {
                seq: 0,
                delivery: delivery_from(&mut r)?,
                sent: Some((packet_id, state)),
            });
        }
        deliveries.extend(queue.into_iter().map(|delivery| StoredDelivery {
            seq: 0,
            delivery,
            sent: None,
        }));
    }
    let n = r.count(2)?;
    let awaiting_rel = (0..n).map(|_| r.u16()).collect::<Result<Vec<_>, _>>()?;
    r.end()?;
    Ok(StoredSession {
        record: SessionRecord {
            client_id,
            created_at,
            expiry_interval,
            disconnected_at,
            saved_at,
            client,
            subscriptions,
            awaiting_rel,
            next_packet_id,
        },
        deliveries,
    })
}
