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
    ClientConnack,
    ClientCheckAuthzComplete,
    ClientCheckAuthnComplete,
    DeliveryDropped,
}

impl Event {
    pub const ALL: [Event; 11] = [
        Event::ClientConnected,
        Event::ClientDisconnected,
        Event::SessionSubscribed,
        Event::SessionUnsubscribed,
        Event::MessageDelivered,
        Event::MessageAcked,
        Event::MessageDropped,
        Event::ClientConnack,
        Event::ClientCheckAuthzComplete,
        Event::ClientCheckAuthnComplete,
        Event::DeliveryDropped,
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
            Event::ClientConnack => "client_connack",
            Event::ClientCheckAuthzComplete => "client_check_authz_complete",
            Event::ClientCheckAuthnComplete => "client_check_authn_complete",
            Event::DeliveryDropped => "delivery_dropped",
        }
    }

    /// The newer namespaced name after `$events/` (EMQX 5.x), next to the legacy one.
    pub fn topic_name(self) -> &'static str {
        match self {
            Event::ClientConnected => "client/connected",
            Event::ClientDisconnected => "client/disconnected",
            Event::SessionSubscribed => "session/subscribed",
            Event::SessionUnsubscribed => "session/unsubscribed",
            Event::MessageDelivered => "message/delivered",
            Event::MessageAcked => "message/acked",
            Event::MessageDropped => "message/dropped",
            Event::ClientConnack => "client/connack",
            Event::ClientCheckAuthzComplete => "auth/check_authz_complete",
            Event::ClientCheckAuthnComplete => "auth/check_authn_complete",
            Event::DeliveryDropped => "message/delivery_dropped",
        }
    }

    /// An event by its legacy name (`client_connected`), namespaced name
    /// (`client/connected`) or `event` column value (`client.connected`).
    pub fn from_name(n: &str) -> Option<Event> {
        Event::ALL
            .into_iter()
            .find(|e| e.name() == n || e.topic_name() == n || e.event_field() == n)
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
            Event::ClientConnack => "client.connack",
            Event::ClientCheckAuthzComplete => "client.check_authz_complete",
            Event::ClientCheckAuthnComplete => "client.check_authn_complete",
            Event::DeliveryDropped => "delivery.dropped",
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
                "client_attrs",
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
                "connected_at",
                "disconnected_at",
                "disconn_props",
                "timestamp",
                "node",
                "client_attrs",
            ],
            Event::SessionSubscribed => &[
                "event",
                "clientid",
                "username",
                "peerhost",
                "peername",
                "topic",
                "qos",
                "sub_props",
                "timestamp",
                "node",
                "client_attrs",
            ],
            Event::SessionUnsubscribed => &[
                "event",
                "clientid",
                "username",
                "peerhost",
                "peername",
                "topic",
                "qos",
                "unsub_props",
                "timestamp",
                "node",
                "client_attrs",
            ],
            // EMQX gives `puback_props` to acked messages only.
            Event::MessageDelivered => &[
                "event",
                "id",
                "from_clientid",
                "from_username",
                "clientid",
                "username",
                "payload",
                "peerhost",
                "peername",
                "topic",
                "qos",
                "flags",
                "pub_props",
                "timestamp",
                "publish_received_at",
                "node",
            ],
            Event::MessageAcked => &[
                "event",
                "id",
                "from_clientid",
                "from_username",
                "clientid",
                "username",
                "payload",
                "peerhost",
                "peername",
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
                "peername",
                "topic",
                "qos",
                "flags",
                "pub_props",
                "timestamp",
                "publish_received_at",
                "node",
            ],
            Event::ClientConnack => &[
                "event",
                "reason_code",
                "clientid",
                "username",
                "peername",
                "sockname",
                "proto_name",
                "proto_ver",
                "keepalive",
                "clean_start",
                "expiry_interval",
                "connected_at",
                "conn_props",
                "timestamp",
                "node",
            ],
            Event::ClientCheckAuthzComplete => &[
                "event",
                "clientid",
                "username",
                "peerhost",
                "peername",
                "topic",
                "action",
                "authz_source",
                "result",
                "timestamp",
                "node",
                "client_attrs",
            ],
            Event::ClientCheckAuthnComplete => &[
                "event",
                "clientid",
                "username",
                "peername",
                "reason_code",
                "is_superuser",
                "is_anonymous",
                "timestamp",
                "node",
                "client_attrs",
            ],
            Event::DeliveryDropped => &[
                "event",
                "id",
                "reason",
                "from_clientid",
                "from_username",
                "clientid",
                "username",
                "payload",
                "peerhost",
                "peername",
                "topic",
                "qos",
                "flags",
                "pub_props",
                "publish_received_at",
                "timestamp",
                "node",
            ],
        }
    }
}
