//! The `[mqtt]` section of the config: protocol limits and features.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::queue::QueueFull;

/// MQTT protocol settings (`[mqtt]`). Defaults follow EMQX where the specification leaves
/// a choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Largest packet accepted from a client, in bytes (fixed header included). Larger ones
    /// close the connection with reason 0x95. Announced to MQTT 5 clients in CONNACK.
    pub max_packet_size: u32,
    /// How many QoS 1/2 PUBLISH packets a client may have unacknowledged towards Ferry.
    /// Exceeding it closes the connection with reason 0x93.
    pub receive_maximum: u16,
    /// Topic aliases a client may use towards Ferry (0 disables them).
    pub max_topic_alias: u16,
    /// If set, overrides the keep alive an MQTT 5 client asked for (Server Keep Alive).
    pub server_keepalive: Option<u16>,
    /// Longest keep alive accepted, in seconds (0: no cap). An MQTT 5 client asking for
    /// more, or for none (0), is told this value (Server Keep Alive); an MQTT 3.x client
    /// asking for more cannot be told and is refused (CONNACK 2, identifier rejected, as
    /// Mosquitto does); a 3.x client asking for none (0) is accepted.
    pub max_keepalive: u16,
    /// Longest session expiry granted, in seconds: an MQTT 5 client asking for more gets
    /// this (told in CONNACK); MQTT 3.x sessions get `min(session_expiry_interval, this)`.
    pub max_session_expiry_interval: u32,
    /// Messages queued per session (online or offline); when full, `queue_full` applies.
    pub max_queued_messages: usize,
    /// Bytes (topic and payload) queued per session (0: no byte bound); when full,
    /// `queue_full` applies. A single message larger than this is still queued alone.
    pub max_queued_bytes: usize,
    /// What a message does when a subscriber's queue is full: `backpressure` (its publisher
    /// is not read and not acknowledged until there is room, for at most `queue_full_wait`;
    /// then, and for offline sessions, wills, republish and API publishes, as `drop_oldest`),
    /// `drop_oldest` or `drop_newest`. Drops are counted (`messages.dropped.queue_full`).
    pub queue_full: QueueFull,
    /// Longest a full queue holds its publishers, from when it became full.
    pub queue_full_wait: Dur,
    /// A subscriber whose queue stays full this long is disconnected (0x97, counted);
    /// "0s": never.
    pub slow_subscriber_timeout: Dur,
    /// QoS 1/2 messages sent to a client and not yet acknowledged, per session (further
    /// limited by the client's own Receive Maximum).
    pub max_inflight: u16,
    /// Whether retained messages are supported (else a retained PUBLISH gets 0x9A).
    pub retain_available: bool,
    /// Whether `$share/group/filter` subscriptions are supported.
    pub shared_subscription: bool,
    /// Session expiry for MQTT 3.x clients with clean session = false, in seconds.
    pub session_expiry_interval: u32,
    /// Keep alive is enforced at this multiple of the negotiated interval.
    pub keepalive_multiplier: f32,
    /// Seconds a new connection may take to send CONNECT.
    pub connect_timeout: u16,
    /// Longest client id accepted.
    pub max_clientid_len: usize,
    /// PUBLISH packets a client may send per second (0: no limit). Over it the connection
    /// is not read until the rate allows (TCP pushes back); nothing is dropped.
    pub client_message_rate: u64,
    /// Bytes a client may send per second (0: no limit), enforced the same way.
    pub client_byte_rate: u64,
    /// Subscriptions a client may hold (0: no limit); past it SUBACK says 0x97 (quota
    /// exceeded; 0x80 to MQTT 3.x).
    pub max_subscriptions: usize,
    /// Retained messages kept (0: no limit); past it a new retained topic is not retained
    /// (the message is still delivered; counted), a retained topic may still be replaced.
    pub max_retained_messages: usize,
    /// Largest payload kept as a retained message, in bytes (larger ones are delivered but
    /// not retained; counted).
    pub max_retained_payload_size: usize,
    /// Bytes (topic and payload) of all retained messages together (0: no limit); past it a
    /// new retained message is not kept (delivered; counted), after expired ones were purged.
    pub max_retained_bytes: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            max_packet_size: 1024 * 1024,
            receive_maximum: 32,
            max_topic_alias: 65535,
            server_keepalive: None,
            max_keepalive: 0,
            max_session_expiry_interval: u32::MAX,
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            queue_full: QueueFull::Backpressure,
            queue_full_wait: Dur(Duration::from_secs(5)),
            slow_subscriber_timeout: Dur(Duration::ZERO),
            max_inflight: 32,
            retain_available: true,
            shared_subscription: true,
            session_expiry_interval: 7200,
            keepalive_multiplier: 1.5,
            connect_timeout: 15,
            max_clientid_len: 65535,
            client_message_rate: 0,
            client_byte_rate: 0,
            max_subscriptions: 0,
            max_retained_messages: 0,
            max_retained_payload_size: 1024 * 1024,
            max_retained_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl MqttConfig {
    /// Checks values serde cannot; returns every problem found, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if self.max_packet_size < 64 || self.max_packet_size > 268_435_460 {
            errs.push("mqtt.max_packet_size: must be between 64 and 268435460 bytes".into());
        }
        if self.receive_maximum == 0 {
            errs.push("mqtt.receive_maximum: must be at least 1".into());
        }
        if self.max_inflight == 0 {
            errs.push("mqtt.max_inflight: must be at least 1".into());
        }
        if self.max_queued_messages == 0 {
            errs.push("mqtt.max_queued_messages: must be at least 1".into());
        }
        if self.queue_full_wait.0 > Duration::from_secs(3600) {
            errs.push("mqtt.queue_full_wait: must be at most 1h".into());
        }
        if self.queue_full == QueueFull::Backpressure && self.queue_full_wait.0.is_zero() {
            errs.push(
                "mqtt.queue_full_wait: must be above 0s with queue_full = \"backpressure\"".into(),
            );
        }
        if !(self.keepalive_multiplier >= 1.0 && self.keepalive_multiplier <= 10.0) {
            errs.push("mqtt.keepalive_multiplier: must be between 1.0 and 10.0".into());
        }
        if self.connect_timeout == 0 {
            errs.push("mqtt.connect_timeout: must be at least 1 second".into());
        }
        if let Some(k) = self.server_keepalive
            && self.max_keepalive > 0
            && k > self.max_keepalive
        {
            errs.push(format!(
                "mqtt.server_keepalive: {k} is above mqtt.max_keepalive ({})",
                self.max_keepalive
            ));
        }
        if self.max_clientid_len == 0 {
            errs.push("mqtt.max_clientid_len: must be at least 1".into());
        }
        errs
    }
}

/// A duration written as "500ms", "5s", "2m" or "1h".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn parse(s: &str) -> Result<Dur, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let bad = || format!("{s:?} is not a duration such as \"500ms\" or \"5s\"");
        let n: u64 = n.parse().map_err(|_| bad())?;
        Ok(Dur(match unit.trim() {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(bad()),
        }))
    }

    pub fn ms(self) -> u64 {
        self.0.as_millis() as u64
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The largest unit that says it exactly, so printed configs read like written ones.
        let ms = self.0.as_millis();
        let text = match ms {
            0 => "0s".to_owned(),
            ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
            ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
            ms if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
            ms => format!("{ms}ms"),
        };
        s.serialize_str(&text)
    }
}
