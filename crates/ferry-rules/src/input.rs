//! Inputs to rules: a published message (columns produced on demand, the payload decoded
//! only when a path into it is used) or a map of columns (events, the rule tester).

use crate::eval::Columns;
use crate::value::{Map, Value};

/// A published message as rules see it (EMQX's message columns).
#[derive(Debug, Clone)]
pub struct MessageInput<'a> {
    pub id: &'a str,
    pub clientid: &'a str,
    pub username: Option<&'a str>,
    pub payload: &'a [u8],
    pub peerhost: &'a str,
    /// The publisher's address and port (`None` for in-process publishers).
    pub peername: Option<std::net::SocketAddr>,
    pub topic: &'a str,
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    /// MQTT 5 PUBLISH properties, EMQX-shaped (`User-Property` as a map).
    pub pub_props: Map,
    /// Milliseconds since the epoch when the message was received.
    pub timestamp: i64,
    pub node: &'a str,
}

impl Columns for MessageInput<'_> {
    fn column(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => Value::from(self.id),
            "clientid" => Value::from(self.clientid),
            "username" => self.username.map_or(Value::Null, Value::from),
            "payload" => Value::from_bytes(self.payload.to_vec()),
            "peerhost" => Value::from(self.peerhost),
            "peername" => self
                .peername
                .map_or(Value::Null, |p| Value::from(p.to_string())),
            "topic" => Value::from(self.topic),
            "qos" => Value::Int(i64::from(self.qos)),
            "flags" => Value::Map(Map::from_iter([
                ("retain".to_owned(), Value::Bool(self.retain)),
                ("dup".to_owned(), Value::Bool(self.dup)),
            ])),
            "headers" => Value::Map(Map::from_iter([
                ("peerhost".to_owned(), Value::from(self.peerhost)),
                (
                    "username".to_owned(),
                    self.username.map_or(Value::Null, Value::from),
                ),
                ("properties".to_owned(), Value::Map(self.pub_props.clone())),
            ])),
            "pub_props" => Value::Map(self.pub_props.clone()),
            "timestamp" | "publish_received_at" => Value::Int(self.timestamp),
            "node" => Value::from(self.node),
            "event" => Value::from("message.publish"),
            // EMQX's client attributes (`mqtt.client_attrs_init`): Ferry sets none.
            "client_attrs" => Value::Map(Map::new()),
            _ => return None,
        })
    }

    fn payload(&self) -> Option<&[u8]> {
        Some(self.payload)
    }

    fn all(&self) -> Map {
        const COLS: [&str; 16] = [
            "id",
            "clientid",
            "username",
            "payload",
            "peerhost",
            "peername",
            "topic",
            "qos",
            "flags",
            "headers",
            "pub_props",
            "timestamp",
            "publish_received_at",
            "node",
            "event",
            "client_attrs",
        ];
        COLS.iter()
            .filter_map(|c| Some(((*c).to_owned(), self.column(c)?)))
            .collect()
    }

    fn topic(&self) -> Option<&str> {
        Some(self.topic)
    }
}

/// An input given as a map of columns (events, the rule tester, bridge records).
#[derive(Debug, Clone, Default)]
pub struct MapInput {
    pub columns: Map,
}

impl Columns for MapInput {
    fn column(&self, name: &str) -> Option<Value> {
        self.columns.get(name).cloned()
    }

    fn payload(&self) -> Option<&[u8]> {
        self.columns.get("payload").and_then(Value::as_bytes)
    }

    fn all(&self) -> Map {
        self.columns.clone()
    }

    fn topic(&self) -> Option<&str> {
        match self.columns.get("topic") {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
}
