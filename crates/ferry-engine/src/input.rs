//! Broker messages and events as rule inputs, with EMQX's column names and shapes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_broker::{ClientInfo, DropReason, Message, hook::now_ms};
use ferry_mqtt::{Properties, SubOptions};
use ferry_rules::{Event, Map, MessageInput, Value};

/// A unique message id in EMQX's style (hex): time in microseconds and a sequence.
fn message_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{:016X}{:016X}", now_ms() as u64 * 1000, seq)
}

/// MQTT 5 properties the way EMQX shows them in `pub_props`.
pub(crate) fn pub_props(p: &Properties) -> Map {
    let mut m = Map::new();
    if let Some(v) = p.payload_format_indicator {
        m.insert("Payload-Format-Indicator".into(), Value::Int(i64::from(v)));
    }
    if let Some(v) = p.message_expiry_interval {
        m.insert("Message-Expiry-Interval".into(), Value::Int(i64::from(v)));
    }
    if let Some(v) = &p.content_type {
        m.insert("Content-Type".into(), Value::from(v.as_str()));
    }
    if let Some(v) = &p.response_topic {
        m.insert("Response-Topic".into(), Value::from(v.as_str()));
    }
    if let Some(v) = &p.correlation_data {
        m.insert("Correlation-Data".into(), Value::from_bytes(v.to_vec()));
    }
    if !p.user_properties.is_empty() {
        let mut up = Map::new();
        let mut pairs = Vec::new();
        for (k, v) in &p.user_properties {
            up.insert(k.clone(), Value::from(v.as_str()));
            pairs.push(Value::Map(Map::from_iter([
                ("key".to_owned(), Value::from(k.as_str())),
                ("value".to_owned(), Value::from(v.as_str())),
            ])));
        }
        m.insert("User-Property".into(), Value::Map(up));
        m.insert("User-Property-Pairs".into(), Value::Array(pairs));
    }
    m
}

/// Owned pieces a [`MessageInput`] borrows.
pub(crate) struct MessageParts<'a> {
    msg: &'a Message,
    id: String,
    peerhost: String,
    node: &'a str,
    pub_props: Map,
}

impl<'a> MessageParts<'a> {
    pub(crate) fn new(msg: &'a Arc<Message>, node: &'a str) -> MessageParts<'a> {
        MessageParts {
            msg,
            id: message_id(),
            peerhost: msg
                .publisher
                .as_ref()
                .map(|p| p.peerhost())
                .unwrap_or_default(),
            node,
            pub_props: pub_props(&msg.properties),
        }
    }

    pub(crate) fn input(&self) -> MessageInput<'_> {
        let p = self.msg.publisher.as_deref();
        MessageInput {
            id: &self.id,
            clientid: p.map_or("", |p| &*p.client_id),
            username: p.and_then(|p| p.username.as_deref()),
            payload: &self.msg.payload,
            peerhost: &self.peerhost,
            topic: &self.msg.topic,
            qos: self.msg.qos as u8,
            retain: self.msg.retain,
            dup: false,
            pub_props: self.pub_props.clone(),
            timestamp: self.msg.timestamp,
            node: self.node,
        }
    }
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn opt(v: Option<&str>) -> Value {
    v.map_or(Value::Null, Value::from)
}

fn base(event: Event, node: &str) -> Map {
    Map::from_iter([
        ("event".to_owned(), s(event.event_field())),
        ("timestamp".to_owned(), Value::Int(now_ms())),
        ("node".to_owned(), s(node)),
    ])
}

fn client_columns(m: &mut Map, c: &ClientInfo) {
    m.insert("clientid".into(), s(&c.client_id));
    m.insert("username".into(), opt(c.username.as_deref()));
    m.insert(
        "peername".into(),
        c.peer.map_or(Value::Null, |p| Value::from(p.to_string())),
    );
    m.insert(
        "sockname".into(),
        c.local.map_or(Value::Null, |p| Value::from(p.to_string())),
    );
    m.insert(
        "proto_name".into(),
        s(if c.proto_ver == 3 { "MQIsdp" } else { "MQTT" }),
    );
    m.insert("proto_ver".into(), Value::Int(i64::from(c.proto_ver)));
}

pub(crate) fn connected(c: &ClientInfo, node: &str) -> Map {
    let mut m = base(Event::ClientConnected, node);
    client_columns(&mut m, c);
    m.insert("mountpoint".into(), Value::Null);
    m.insert("keepalive".into(), Value::Int(i64::from(c.keepalive)));
    m.insert("clean_start".into(), Value::Bool(c.clean_start));
    m.insert(
        "expiry_interval".into(),
        Value::Int(i64::from(c.expiry_interval)),
    );
    m.insert("is_bridge".into(), Value::Bool(false));
    m.insert("connected_at".into(), Value::Int(c.connected_at));
    m.insert("conn_props".into(), Value::Map(Map::new()));
    m
}

pub(crate) fn disconnected(c: &ClientInfo, reason: &str, node: &str) -> Map {
    let mut m = base(Event::ClientDisconnected, node);
    client_columns(&mut m, c);
    m.insert("reason".into(), s(reason));
    m.insert("disconnected_at".into(), Value::Int(now_ms()));
    m.insert("disconn_props".into(), Value::Map(Map::new()));
    m
}

pub(crate) fn subscription(
    c: &ClientInfo,
    filter: &str,
    opts: Option<&SubOptions>,
    node: &str,
) -> Map {
    let ev = if opts.is_some() {
        Event::SessionSubscribed
    } else {
        Event::SessionUnsubscribed
    };
    let mut m = base(ev, node);
    m.insert("clientid".into(), s(&c.client_id));
    m.insert("username".into(), opt(c.username.as_deref()));
    m.insert("peerhost".into(), s(&c.peerhost()));
    m.insert("topic".into(), s(filter));
    m.insert("qos".into(), Value::Int(opts.map_or(0, |o| o.qos as i64)));
    let key = if opts.is_some() {
        "sub_props"
    } else {
        "unsub_props"
    };
    m.insert(key.into(), Value::Map(Map::new()));
    m
}

pub(crate) fn message_event(
    ev: Event,
    to: Option<&ClientInfo>,
    msg: &Arc<Message>,
    reason: Option<DropReason>,
    node: &str,
) -> Map {
    let mut m = base(ev, node);
    let from = msg.publisher.as_deref();
    m.insert("id".into(), Value::from(message_id()));
    if let Some(to) = to {
        m.insert("from_clientid".into(), opt(from.map(|p| &*p.client_id)));
        m.insert(
            "from_username".into(),
            opt(from.and_then(|p| p.username.as_deref())),
        );
        m.insert("clientid".into(), s(&to.client_id));
        m.insert("username".into(), opt(to.username.as_deref()));
        m.insert("peerhost".into(), s(&to.peerhost()));
    } else {
        m.insert("clientid".into(), opt(from.map(|p| &*p.client_id)));
        m.insert(
            "username".into(),
            opt(from.and_then(|p| p.username.as_deref())),
        );
        m.insert(
            "peerhost".into(),
            s(&from.map(|p| p.peerhost()).unwrap_or_default()),
        );
    }
    if let Some(r) = reason {
        m.insert("reason".into(), s(r.as_str()));
    }
    m.insert("payload".into(), Value::from_bytes(msg.payload.to_vec()));
    m.insert("topic".into(), s(&msg.topic));
    m.insert("qos".into(), Value::Int(msg.qos as i64));
    m.insert(
        "flags".into(),
        Value::Map(Map::from_iter([
            ("retain".to_owned(), Value::Bool(msg.retain)),
            ("dup".to_owned(), Value::Bool(false)),
        ])),
    );
    m.insert("pub_props".into(), Value::Map(pub_props(&msg.properties)));
    m.insert("publish_received_at".into(), Value::Int(msg.timestamp));
    m
}
