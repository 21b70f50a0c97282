//! Client and session events rules can select from (`FROM "$events/..."`), with the
//! columns EMQX gives each.

/// An event a rule can listen to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    ClientConnected,
    ClientDisconnected,
    SessionSubscribed,
    SessionUnsubscribed,
    MessageDelivered,
    MessageAcked,
    MessageDropped,
}

impl Event {
    pub const ALL: [Event; 7] = [
        Event::ClientConnected,
        Event::ClientDisconnected,
        Event::SessionSubscribed,
        Event::SessionUnsubscribed,
        Event::MessageDelivered,
        Event::MessageAcked,
        Event::MessageDropped,
    ];

    /// The name after `$events/`.
    pub fn name(self) -> &'static str {
        match self {
            Event::ClientConnected => "client_connected",
            Event::ClientDisconnected => "client_disconnected",
            Event::SessionSubscribed => "session_subscribed",
            Event::SessionUnsubscribed => "session_unsubscribed",
            Event::MessageDelivered => "message_delivered",
            Event::MessageAcked => "message_acked",
            Event::MessageDropped => "message_dropped",
        }
    }

    pub fn from_name(n: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.name() == n)
    }

    /// The `event` column value, e.g. `client.connected`.
    pub fn event_field(self) -> &'static str {
        match self {
            Event::ClientConnected => "client.connected",
            Event::ClientDisconnected => "client.disconnected",
            Event::SessionSubscribed => "session.subscribed",
            Event::SessionUnsubscribed => "session.unsubscribed",
            Event::MessageDelivered => "message.delivered",
            Event::MessageAcked => "message.acked",
            Event::MessageDropped => "message.dropped",
        }
    }

    /// The columns this event has, as EMQX documents them.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Event::ClientConnected => &[
                "event",
                "clientid",
                "username",
                "mountpoint",
                "peername",
                "sockname",
                "proto_name",
                "proto_ver",
                "keepalive",
                "clean_start",
                "expiry_interval",
                "is_bridge",
                "connected_at",
                "conn_props",
                "timestamp",
                "node",
            ],
            Event::ClientDisconnected => &[
                "event",
                "clientid",
                "username",
                "reason",
                "peername",
                "sockname",
                "proto_name",
                "proto_ver",
                "disconnected_at",
                "disconn_props",
                "timestamp",
                "node",
            ],
            Event::SessionSubscribed => &[
                "event",
                "clientid",
                "username",
                "peerhost",
                "topic",
                "qos",
                "sub_props",
                "timestamp",
                "node",
            ],
            Event::SessionUnsubscribed => &[
                "event",
                "clientid",
                "username",
                "peerhost",
                "topic",
                "qos",
                "unsub_props",
                "timestamp",
                "node",
            ],
            Event::MessageDelivered | Event::MessageAcked => &[
                "event",
                "id",
                "from_clientid",
                "from_username",
                "clientid",
                "username",
                "payload",
                "peerhost",
                "topic",
                "qos",
                "flags",
                "pub_props",
                "puback_props",
                "timestamp",
                "publish_received_at",
                "node",
            ],
            Event::MessageDropped => &[
                "event",
                "id",
                "reason",
                "clientid",
                "username",
                "payload",
                "peerhost",
                "topic",
                "qos",
                "flags",
                "pub_props",
                "timestamp",
                "publish_received_at",
                "node",
            ],
        }
    }
}
