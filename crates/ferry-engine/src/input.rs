//! Broker messages and events as rule inputs, with EMQX's column names and shapes.

use std::cell::OnceCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_broker::{Authn, Authz, AuthzAction, ClientInfo, Message, hook::now_ms};
use ferry_mqtt::{Properties, SubOptions};
use ferry_rules::{Columns, Event, Map, MessageInput, Value};

/// A unique message id in EMQX's style (hex): time in microseconds and a sequence.
fn message_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut s = String::with_capacity(32);
    for n in [now_ms() as u64 * 1000, seq] {
        for shift in (0..16).rev() {
            let d = ((n >> (shift * 4)) & 0xF) as u8;
            s.push(char::from(if d < 10 { b'0' + d } else { b'A' + d - 10 }));
        }
    }
    s
}

/// MQTT 5 properties the way EMQX shows them (`pub_props`, `conn_props`, `disconn_props`,
/// `sub_props`, `unsub_props`, `puback_props`): each present property under its name in the
/// specification (`Session-Expiry-Interval`), user properties both as a map (`User-Property`,
/// the last value of a repeated key wins; always there, empty without user properties, as
/// EMQX's `printable_maps` starts from it) and as a list of pairs (`User-Property-Pairs`).
pub(crate) fn props_map(p: &Properties) -> Map {
    let mut m = Map::from_iter([("User-Property".to_owned(), Value::Map(Map::new()))]);
    let mut int = |k: &str, v: Option<i64>| {
        if let Some(v) = v {
            m.insert(k.into(), Value::Int(v));
        }
    };
    int(
        "Payload-Format-Indicator",
        p.payload_format_indicator.map(i64::from),
    );
    int(
        "Message-Expiry-Interval",
        p.message_expiry_interval.map(i64::from),
    );
    int(
        "Session-Expiry-Interval",
        p.session_expiry_interval.map(i64::from),
    );
    int("Server-Keep-Alive", p.server_keep_alive.map(i64::from));
    int(
        "Request-Problem-Information",
        p.request_problem_information.map(i64::from),
    );
    int("Will-Delay-Interval", p.will_delay_interval.map(i64::from));
    int(
        "Request-Response-Information",
        p.request_response_information.map(i64::from),
    );
    int("Receive-Maximum", p.receive_maximum.map(i64::from));
    int("Topic-Alias-Maximum", p.topic_alias_maximum.map(i64::from));
    int("Topic-Alias", p.topic_alias.map(i64::from));
    int("Maximum-QoS", p.maximum_qos.map(i64::from));
    int("Retain-Available", p.retain_available.map(i64::from));
    int("Maximum-Packet-Size", p.maximum_packet_size.map(i64::from));
    int(
        "Wildcard-Subscription-Available",
        p.wildcard_subscription_available.map(i64::from),
    );
    int(
        "Subscription-Identifier-Available",
        p.subscription_identifier_available.map(i64::from),
    );
    int(
        "Shared-Subscription-Available",
        p.shared_subscription_available.map(i64::from),
    );
    let strs = [
        ("Content-Type", &p.content_type),
        ("Response-Topic", &p.response_topic),
        ("Assigned-Client-Identifier", &p.assigned_client_identifier),
        ("Authentication-Method", &p.authentication_method),
        ("Response-Information", &p.response_information),
        ("Server-Reference", &p.server_reference),
        ("Reason-String", &p.reason_string),
    ];
    for (k, v) in strs {
        if let Some(v) = v {
            m.insert(k.into(), Value::from(v.as_str()));
        }
    }
    for (k, v) in [
        ("Correlation-Data", &p.correlation_data),
        ("Authentication-Data", &p.authentication_data),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), Value::from_bytes(v.to_vec()));
        }
    }
    match p.subscription_identifiers.as_slice() {
        [] => {}
        [one] => {
            m.insert(
                "Subscription-Identifier".into(),
                Value::Int(i64::from(*one)),
            );
        }
        many => {
            let ids = many.iter().map(|i| Value::Int(i64::from(*i))).collect();
            m.insert("Subscription-Identifier".into(), Value::Array(ids));
        }
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

/// Owned pieces a [`MessageInput`] borrows. The message id, the publisher's address as
/// text and the properties map are made only when a rule reads them (most rules, and the
/// templates of a `SELECT *` rule's actions, read none of them), once per message: every
/// rule sees the same id.
pub(crate) struct MessageParts<'a> {
    msg: &'a Message,
    id: OnceCell<String>,
    peerhost: OnceCell<String>,
    node: &'a str,
    pub_props: OnceCell<Map>,
}

impl<'a> MessageParts<'a> {
    pub(crate) fn new(msg: &'a Arc<Message>, node: &'a str) -> MessageParts<'a> {
        MessageParts {
            msg,
            id: OnceCell::new(),
            peerhost: OnceCell::new(),
            node,
            pub_props: OnceCell::new(),
        }
    }

    pub(crate) fn input(&self) -> LazyMessage<'_> {
        LazyMessage {
            light: self.build(false),
            full: OnceCell::new(),
            parts: self,
        }
    }

    /// The input; without `full`, the lazily made columns are left empty.
    fn build(&self, full: bool) -> MessageInput<'_> {
        let p = self.msg.publisher.as_deref();
        let (id, peerhost, pub_props) = if full {
            (
                self.id.get_or_init(message_id).as_str(),
                self.peerhost
                    .get_or_init(|| p.map(|p| p.peerhost()).unwrap_or_default())
                    .as_str(),
                self.pub_props
                    .get_or_init(|| props_map(&self.msg.properties))
                    .clone(),
            )
        } else {
            ("", "", Map::new())
        };
        MessageInput {
            id,
            clientid: p.map_or("", |p| &*p.client_id),
            username: p.and_then(|p| p.username.as_deref()),
            payload: &self.msg.payload,
            peerhost,
            peername: p.and_then(|p| p.peer),
            topic: &self.msg.topic,
            qos: self.msg.qos as u8,
            retain: self.msg.retain,
            dup: self.msg.dup,
            pub_props,
            timestamp: self.msg.timestamp,
            node: self.node,
        }
    }
}

/// A broker message as a rule input: the columns that are cheap come from a
/// [`MessageInput`] without the lazily made ones; asking for one of those (or for every
/// column) builds the full input once.
pub(crate) struct LazyMessage<'p> {
    light: MessageInput<'p>,
    full: OnceCell<MessageInput<'p>>,
    parts: &'p MessageParts<'p>,
}

impl LazyMessage<'_> {
    fn full(&self) -> &MessageInput<'_> {
        self.full.get_or_init(|| self.parts.build(true))
    }
}

impl Columns for LazyMessage<'_> {
    fn column(&self, name: &str) -> Option<Value> {
        match name {
            "id" | "peerhost" | "headers" | "pub_props" => self.full().column(name),
            _ => self.light.column(name),
        }
    }

    fn payload(&self) -> Option<&[u8]> {
        self.light.payload()
    }

    fn all(&self) -> Map {
        self.full().all()
    }

    fn topic(&self) -> Option<&str> {
        self.light.topic()
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

/// EMQX's client attributes (`mqtt.client_attrs_init`): Ferry sets none.
fn client_attrs(m: &mut Map) {
    m.insert("client_attrs".into(), Value::Map(Map::new()));
}

fn peername(c: Option<&ClientInfo>) -> Value {
    c.and_then(|c| c.peer)
        .map_or(Value::Null, |p| Value::from(p.to_string()))
}

fn client_columns(m: &mut Map, c: &ClientInfo) {
    m.insert("clientid".into(), s(&c.client_id));
    m.insert("username".into(), opt(c.username.as_deref()));
    m.insert("peername".into(), peername(Some(c)));
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

/// The session columns `client.connected` and `client.connack` share.
fn session_columns(m: &mut Map, c: &ClientInfo) {
    m.insert("keepalive".into(), Value::Int(i64::from(c.keepalive)));
    m.insert("clean_start".into(), Value::Bool(c.clean_start));
    m.insert(
        "expiry_interval".into(),
        Value::Int(i64::from(c.expiry_interval)),
    );
    m.insert("connected_at".into(), Value::Int(c.connected_at));
    let none = Properties::default();
    let props = props_map(c.conn_props.as_deref().unwrap_or(&none));
    m.insert("conn_props".into(), Value::Map(props));
}

pub(crate) fn connected(c: &ClientInfo, node: &str) -> Map {
    let mut m = base(Event::ClientConnected, node);
    client_columns(&mut m, c);
    m.insert("mountpoint".into(), Value::Null);
    m.insert("is_bridge".into(), Value::Bool(false));
    session_columns(&mut m, c);
    client_attrs(&mut m);
    m
}

/// `client.connack`: `reason_code` is EMQX's name of the MQTT 5 reason code.
pub(crate) fn connack(c: &ClientInfo, code: u8, node: &str) -> Map {
    let mut m = base(Event::ClientConnack, node);
    m.insert("reason_code".into(), s(reason_name(code)));
    client_columns(&mut m, c);
    session_columns(&mut m, c);
    m
}

pub(crate) fn authn_complete(c: &ClientInfo, a: &Authn, node: &str) -> Map {
    let mut m = base(Event::ClientCheckAuthnComplete, node);
    m.insert("clientid".into(), s(&c.client_id));
    m.insert("username".into(), opt(c.username.as_deref()));
    m.insert("peername".into(), peername(Some(c)));
    m.insert("reason_code".into(), s(reason_name(a.reason_code)));
    m.insert("is_superuser".into(), Value::Bool(a.is_superuser));
    m.insert("is_anonymous".into(), Value::Bool(a.is_anonymous));
    client_attrs(&mut m);
    m
}

pub(crate) fn authz_complete(
    c: &ClientInfo,
    action: AuthzAction,
    topic: &str,
    a: &Authz,
    node: &str,
) -> Map {
    let mut m = base(Event::ClientCheckAuthzComplete, node);
    m.insert("clientid".into(), s(&c.client_id));
    m.insert("username".into(), opt(c.username.as_deref()));
    m.insert("peerhost".into(), s(&c.peerhost()));
    m.insert("peername".into(), peername(Some(c)));
    m.insert("topic".into(), s(topic));
    m.insert("action".into(), s(action.as_str()));
    m.insert("authz_source".into(), s(a.source));
    m.insert("result".into(), s(a.result()));
    client_attrs(&mut m);
    m
}

/// EMQX's name of an MQTT 5 reason code (`emqx_reason_codes:name/1`).
pub(crate) fn reason_name(code: u8) -> &'static str {
    match code {
        0x00 => "success",
        0x01 => "granted_qos1",
        0x02 => "granted_qos2",
        0x04 => "disconnect_with_will_message",
        0x10 => "no_matching_subscribers",
        0x11 => "no_subscription_existed",
        0x18 => "continue_authentication",
        0x19 => "re_authenticate",
        0x80 => "unspecified_error",
        0x81 => "malformed_packet",
        0x82 => "protocol_error",
        0x83 => "implementation_specific_error",
        0x84 => "unsupported_protocol_version",
        0x85 => "client_identifier_not_valid",
        0x86 => "bad_username_or_password",
        0x87 => "not_authorized",
        0x88 => "server_unavailable",
        0x89 => "server_busy",
        0x8A => "banned",
        0x8B => "server_shutting_down",
        0x8C => "bad_authentication_method",
        0x8D => "keepalive_timeout",
        0x8E => "session_taken_over",
        0x8F => "topic_filter_invalid",
        0x90 => "topic_name_invalid",
        0x91 => "packet_identifier_inuse",
        0x92 => "packet_identifier_not_found",
        0x93 => "receive_maximum_exceeded",
        0x94 => "topic_alias_invalid",
        0x95 => "packet_too_large",
        0x96 => "message_rate_too_high",
        0x97 => "quota_exceeded",
        0x98 => "administrative_action",
        0x99 => "payload_format_invalid",
        0x9A => "retain_not_supported",
        0x9B => "qos_not_supported",
        0x9C => "use_another_server",
        0x9D => "server_moved",
        0x9E => "shared_subscriptions_not_supported",
        0x9F => "connection_rate_exceeded",
        0xA0 => "maximum_connect_time",
        0xA1 => "subscription_identifiers_not_supported",
        0xA2 => "wildcard_subscriptions_not_supported",
        _ => "unknown_error",
    }
}

pub(crate) fn disconnected(c: &ClientInfo, reason: &str, props: &Properties, node: &str) -> Map {
    let mut m = base(Event::ClientDisconnected, node);
    client_columns(&mut m, c);
    m.insert("reason".into(), s(reason));
    m.insert("connected_at".into(), Value::Int(c.connected_at));
    m.insert("disconnected_at".into(), Value::Int(now_ms()));
    m.insert("disconn_props".into(), Value::Map(props_map(props)));
    client_attrs(&mut m);
    m
}

pub(crate) fn subscription(
    c: &ClientInfo,
    filter: &str,
    opts: Option<&SubOptions>,
    props: &Properties,
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
    m.insert("peername".into(), peername(Some(c)));
    m.insert("topic".into(), s(filter));
    m.insert("qos".into(), Value::Int(opts.map_or(0, |o| o.qos as i64)));
    let key = if opts.is_some() {
        "sub_props"
    } else {
        "unsub_props"
    };
    m.insert(key.into(), Value::Map(props_map(props)));
    client_attrs(&mut m);
    m
}

/// The columns of a message event: `to` is the subscriber (delivered, acked, delivery
/// dropped), otherwise the publisher is the client (message dropped).
pub(crate) fn message_event(
    ev: Event,
    to: Option<&ClientInfo>,
    msg: &Arc<Message>,
    reason: Option<&str>,
    node: &str,
) -> Map {
    let mut m = base(ev, node);
    let from = msg.publisher.as_deref();
    m.insert("id".into(), Value::from(message_id()));
    if let Some(r) = reason {
        m.insert("reason".into(), s(r));
    }
    let client = match to {
        Some(to) => {
            m.insert("from_clientid".into(), opt(from.map(|p| &*p.client_id)));
            m.insert(
                "from_username".into(),
                opt(from.and_then(|p| p.username.as_deref())),
            );
            Some(to)
        }
        None => from,
    };
    m.insert("clientid".into(), opt(client.map(|c| &*c.client_id)));
    m.insert(
        "username".into(),
        opt(client.and_then(|c| c.username.as_deref())),
    );
    m.insert(
        "peerhost".into(),
        s(&client.map(|c| c.peerhost()).unwrap_or_default()),
    );
    m.insert("peername".into(), peername(client));
    m.insert("payload".into(), Value::from_bytes(msg.payload.to_vec()));
    m.insert("topic".into(), s(&msg.topic));
    m.insert("qos".into(), Value::Int(msg.qos as i64));
    m.insert(
        "flags".into(),
        Value::Map(Map::from_iter([
            ("retain".to_owned(), Value::Bool(msg.retain)),
            ("dup".to_owned(), Value::Bool(msg.dup)),
        ])),
    );
    m.insert("pub_props".into(), Value::Map(props_map(&msg.properties)));
    if ev == Event::MessageAcked {
        // Ferry keeps no PUBACK properties: EMQX's rendering of none.
        let none = Properties::default();
        m.insert("puback_props".into(), Value::Map(props_map(&none)));
    }
    m.insert("publish_received_at".into(), Value::Int(msg.timestamp));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_mqtt::QoS;

    #[test]
    fn message_id_is_32_upper_hex_digits_of_time_and_sequence() {
        let id = message_id();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
        );
        let (t, seq) = id.split_at(16);
        let t = u64::from_str_radix(t, 16).unwrap_or_default();
        assert_eq!(t % 1000, 0);
        assert!(u64::from_str_radix(seq, 16).is_ok());
        assert_ne!(message_id(), id);
    }

    #[test]
    fn a_lazy_message_has_the_columns_of_the_full_input_and_one_id() {
        let mut msg = Message::new("t/1", &b"{\"a\": 1}"[..], QoS::AtLeastOnce, false);
        msg.properties.content_type = Some("text/plain".into());
        msg.properties
            .user_properties
            .push(("k".into(), "v".into()));
        msg.publisher = Some(Arc::new(ClientInfo {
            client_id: "c1".into(),
            username: Some("u".into()),
            peer: "10.0.0.7:5000".parse().ok(),
            local: None,
            proto_ver: 5,
            keepalive: 60,
            clean_start: true,
            expiry_interval: 0,
            connected_at: 0,
            conn_props: None,
            auth: Default::default(),
        }));
        let msg = Arc::new(msg);
        let parts = MessageParts::new(&msg, "n");
        let lazy = parts.input();
        let full = parts.build(true);
        let all = full.all();
        assert_eq!(lazy.all(), all);
        for (name, v) in &all {
            assert_eq!(lazy.column(name).as_ref(), Some(v), "{name}");
        }
        assert_eq!(lazy.column("nope"), None);
        // The id is made once per message: a second input (another rule) sees the same.
        assert_eq!(parts.input().column("id"), all.get("id").cloned());
        assert_eq!(all.get("peerhost"), Some(&Value::from("10.0.0.7")));
    }
}
