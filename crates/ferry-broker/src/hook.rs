//! In-process observers of the broker: the rule engine attaches here. The broker calls
//! hooks synchronously on the task that caused the event, so a hook must be quick and must
//! not block; heavy work belongs on its own task behind a bounded queue.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ferry_mqtt::{Connect, Properties, SubOptions};

use crate::acl::AclRule;
use crate::message::Message;

/// Who a client is, fixed for the life of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub client_id: Arc<str>,
    pub username: Option<Arc<str>>,
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    /// 3, 4 or 5.
    pub proto_ver: u8,
    pub keepalive: u16,
    pub clean_start: bool,
    pub expiry_interval: u32,
    /// Milliseconds since the epoch.
    pub connected_at: i64,
    /// The CONNECT's MQTT 5 properties (rules' `conn_props`); `None` when it had none,
    /// so a connection without properties pays one pointer.
    pub conn_props: Option<Box<Properties>>,
    /// What authentication granted this connection (superuser, per-client rules) and its
    /// authorization cache.
    pub auth: Arc<ClientAuth>,
}

/// What authentication granted one connection, and the cache of its authorization results.
#[derive(Debug, Default)]
pub struct ClientAuth {
    /// Skips every authorization check.
    pub is_superuser: bool,
    /// Per-client rules (a JWT `acl` claim, an HTTP service's answer), tried before the
    /// configured ones.
    pub rules: Vec<AclRule>,
    /// Where `rules` came from (`jwt`, `http`): the `authz_source` when one decides.
    pub rules_source: &'static str,
    pub(crate) cache: Mutex<AuthzCache>,
}

impl ClientAuth {
    pub fn new(is_superuser: bool, rules: Vec<AclRule>, rules_source: &'static str) -> ClientAuth {
        ClientAuth {
            is_superuser,
            rules,
            rules_source,
            cache: Mutex::default(),
        }
    }
}

impl PartialEq for ClientAuth {
    fn eq(&self, other: &Self) -> bool {
        self.is_superuser == other.is_superuser
            && self.rules == other.rules
            && self.rules_source == other.rules_source
    }
}

impl Eq for ClientAuth {}

/// What an authorization result is cached under: action, QoS, retain, topic.
pub(crate) type AuthzKey = (AuthzAction, u8, bool, Box<str>);

/// Authorization results of one connection, valid for one generation of the rules.
#[derive(Debug, Default)]
pub(crate) struct AuthzCache {
    pub(crate) generation: u64,
    /// Allocated on the first check (an idle connection has made none).
    #[allow(
        clippy::box_collection,
        reason = "an empty map is 48 bytes inline, 8 boxed, for every connection"
    )]
    pub(crate) entries: Option<Box<HashMap<AuthzKey, bool>>>,
}

impl ClientInfo {
    /// An in-process client (rule engine republish, Kafka source).
    pub fn internal(client_id: &str) -> ClientInfo {
        ClientInfo {
            client_id: client_id.into(),
            username: None,
            peer: None,
            local: None,
            proto_ver: 5,
            keepalive: 0,
            clean_start: true,
            expiry_interval: 0,
            connected_at: now_ms(),
            conn_props: None,
            auth: Arc::default(),
        }
    }

    /// Who sent a CONNECT that is refused before a session exists: what the packet says,
    /// for the `client_connack` hook.
    pub fn from_connect(c: &Connect, peer: SocketAddr, local: Option<SocketAddr>) -> ClientInfo {
        ClientInfo {
            client_id: c.client_id.as_str().into(),
            username: c.username.as_deref().map(Arc::from),
            peer: Some(peer),
            local,
            proto_ver: c.version.level(),
            keepalive: c.keep_alive,
            clean_start: c.clean_start,
            expiry_interval: c.properties.session_expiry_interval.unwrap_or(0),
            connected_at: now_ms(),
            conn_props: boxed_props(&c.properties),
            auth: Arc::default(),
        }
    }

    pub fn peerhost(&self) -> String {
        self.peer.map(|p| p.ip().to_string()).unwrap_or_default()
    }

    /// An in-process client (no socket): not authorized, not reported as a delivery
    /// target's peer.
    pub fn is_internal(&self) -> bool {
        self.peer.is_none()
    }
}

/// Properties kept with a connection ([`ClientInfo::conn_props`], a DISCONNECT's): all of
/// them, boxed, or `None` when there are none.
pub fn boxed_props(p: &Properties) -> Option<Box<Properties>> {
    (*p != Properties::default()).then(|| Box::new(p.clone()))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Why a durable consumer could not take a message: the reason code the publisher gets
/// (MQTT 5: 0x80 unspecified error, 0x97 quota exceeded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDurable {
    pub code: u8,
    pub why: String,
}

/// The completing side of a [`DurableAck`].
pub type AckSender = tokio::sync::oneshot::Sender<Result<(), NotDurable>>;

/// Resolves when a durable consumer has made the message durable, or failed to.
///
/// A *holding* acknowledgement also asks the publishing connection to stop reading until it
/// resolves (a consumer that is full and applies backpressure): TCP then pushes back on the
/// publisher, whatever the QoS of its messages.
///
/// A hold may end on its own at a deadline ([`DurableAck::holding_until`]: a full
/// subscriber queue holds its publishers for at most `mqtt.queue_full_wait`), resolving
/// `Ok` then.
#[derive(Debug)]
pub struct DurableAck {
    rx: tokio::sync::oneshot::Receiver<Result<(), NotDurable>>,
    hold: bool,
    /// Resolves `Ok` at this instant if not resolved before (armed on the first poll).
    until: Option<Deadline>,
}

#[derive(Debug)]
struct Deadline {
    at: tokio::time::Instant,
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl DurableAck {
    /// An acknowledgement and the sender that completes it.
    pub fn channel() -> (AckSender, DurableAck) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ack = DurableAck {
            rx,
            hold: false,
            until: None,
        };
        (tx, ack)
    }

    /// The same acknowledgement, holding the publisher's reads until it resolves.
    pub fn holding(mut self) -> DurableAck {
        self.hold = true;
        self
    }

    /// Holding, and resolving `Ok` at `at` at the latest.
    pub fn holding_until(mut self, at: tokio::time::Instant) -> DurableAck {
        self.hold = true;
        self.until = Some(Deadline { at, timer: None });
        self
    }

    /// Does the publishing connection stop reading until this resolves?
    pub fn holds(&self) -> bool {
        self.hold
    }
}

impl DurableAck {
    /// The outcome if it is there already (as [`tokio::sync::oneshot::Receiver::try_recv`]).
    pub fn try_recv(
        &mut self,
    ) -> Result<Result<(), NotDurable>, tokio::sync::oneshot::error::TryRecvError> {
        match self.rx.try_recv() {
            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
                if self
                    .until
                    .as_ref()
                    .is_some_and(|d| tokio::time::Instant::now() >= d.at) =>
            {
                Ok(Ok(()))
            }
            r => r,
        }
    }
}

/// Resolves like the receiver it wraps (`Err` when the consumer went away), or `Ok` at
/// its deadline.
impl std::future::Future for DurableAck {
    type Output = Result<Result<(), NotDurable>, tokio::sync::oneshot::error::RecvError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if let std::task::Poll::Ready(r) = std::pin::Pin::new(&mut self.rx).poll(cx) {
            return std::task::Poll::Ready(r);
        }
        if let Some(d) = &mut self.until {
            let at = d.at;
            let timer = d
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if timer.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(Ok(Ok(())));
            }
        }
        std::task::Poll::Pending
    }
}

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    NoSubscribers,
    QueueFull,
    Expired,
    TooLarge,
    /// A QoS 2 PUBLISH beyond the receive maximum (the publisher is disconnected).
    ReceiveMaximumExceeded,
    /// A QoS 2 PUBLISH whose packet id still awaits PUBREL: a resend, acknowledged again
    /// but not routed again.
    PacketIdentifierInUse,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NoSubscribers => "no_subscribers",
            DropReason::QueueFull => "queue_full",
            DropReason::Expired => "expired",
            DropReason::TooLarge => "too_large",
            DropReason::ReceiveMaximumExceeded => "receive_maximum_exceeded",
            DropReason::PacketIdentifierInUse => "packet_identifier_inuse",
        }
    }
}

/// Why a message for one subscriber was not delivered (EMQX's `delivery.dropped` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryDropReason {
    /// The subscriber's queue was full: the message was pushed out by a newer one or
    /// refused, per `mqtt.queue_full`.
    QueueFull,
    /// The message expired before it could be sent.
    Expired,
    /// The subscriber published it and subscribed with No Local.
    NoLocal,
}

impl DeliveryDropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryDropReason::QueueFull => "queue_full",
            DeliveryDropReason::Expired => "expired",
            DeliveryDropReason::NoLocal => "no_local",
        }
    }
}

/// What authentication decided for a CONNECT ([`crate::Broker::authenticate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authn {
    /// A CONNACK reason code (MQTT 5): `reason::SUCCESS` or the refusal.
    pub reason_code: u8,
    pub is_superuser: bool,
    /// Accepted without any method identifying the client.
    pub is_anonymous: bool,
    /// The method that decided (`built_in_database`, `jwt`, `http`), or `anonymous` /
    /// `none` when no method decided.
    pub source: &'static str,
}

/// What a client asks to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthzAction {
    Publish,
    Subscribe,
}

impl AuthzAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthzAction::Publish => "publish",
            AuthzAction::Subscribe => "subscribe",
        }
    }
}

/// What authorization decided, and which source decided it (EMQX's `authz_source`:
/// `superuser`, `cache`, `jwt`/`http` for per-client rules, `file` for the configured
/// rules, `default` when no rule matched and `no_match` decided).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authz {
    pub allow: bool,
    pub source: &'static str,
}

impl Authz {
    pub fn result(self) -> &'static str {
        if self.allow { "allow" } else { "deny" }
    }
}

/// Observer of broker events. Every method has an empty default.
pub trait Hook: Send + Sync + 'static {
    /// A message was accepted from a publisher, before routing. A hook that makes the
    /// message durable (e.g. a Kafka action in sync mode) pushes a [`DurableAck`] into
    /// `acks`: the publisher's PUBACK/PUBREC waits for all of them.
    fn message_published(&self, _msg: &Arc<Message>, _acks: &mut Vec<DurableAck>) {}
    fn client_connected(&self, _client: &ClientInfo) {}
    /// `props` are those of the client's DISCONNECT (empty if it sent none).
    fn client_disconnected(&self, _client: &ClientInfo, _reason: &str, _props: &Properties) {}
    /// `props` are those of the SUBSCRIBE packet.
    fn session_subscribed(
        &self,
        _client: &ClientInfo,
        _filter: &str,
        _opts: &SubOptions,
        _props: &Properties,
    ) {
    }
    /// `props` are those of the UNSUBSCRIBE packet.
    fn session_unsubscribed(&self, _client: &ClientInfo, _filter: &str, _props: &Properties) {}
    /// A message was written to a subscriber's connection.
    fn message_delivered(&self, _to: &ClientInfo, _msg: &Arc<Message>) {}
    /// A subscriber acknowledged a QoS 1/2 message (PUBACK or PUBCOMP).
    fn message_acked(&self, _to: &ClientInfo, _msg: &Arc<Message>) {}
    fn message_dropped(&self, _msg: &Arc<Message>, _reason: DropReason) {}
    /// Whether [`Hook::message_dropped`] is worth building a message for, where one does
    /// not exist yet (a QoS 2 PUBLISH refused before routing).
    fn wants_message_dropped(&self) -> bool {
        true
    }
    /// A message routed to `to` was dropped before it reached that subscriber.
    fn delivery_dropped(&self, _to: &ClientInfo, _msg: &Arc<Message>, _reason: DeliveryDropReason) {
    }
    /// A CONNACK is about to be sent (success or refusal, an MQTT 5 reason code).
    fn client_connack(&self, _client: &ClientInfo, _reason_code: u8) {}
    /// Authentication of a CONNECT finished ([`crate::Broker::authenticate`]).
    fn client_check_authn_complete(&self, _client: &ClientInfo, _authn: &Authn) {}
    /// An authorization check finished ([`crate::Broker::authorize`]).
    fn client_check_authz_complete(
        &self,
        _client: &ClientInfo,
        _action: AuthzAction,
        _topic: &str,
        _authz: &Authz,
    ) {
    }
    /// Lets the broker skip building event data nobody wants.
    fn wants_message_events(&self) -> bool {
        true
    }
}
