//! Messages as routed inside the broker, and deliveries queued for one session.

use std::sync::Arc;

use bytes::Bytes;
use ferry_mqtt::{Properties, QoS};
use tokio::time::Instant;

use crate::hook::ClientInfo;

/// An application message after it was accepted from a publisher. Shared (`Arc`) by every
/// session it is delivered to; never mutated after routing.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// The DUP flag of the PUBLISH it came in (rules' `flags.dup`); never forwarded:
    /// outgoing DUP flags are the broker's own.
    pub dup: bool,
    /// MQTT 5 properties forwarded to subscribers: payload format, content type, response
    /// topic, correlation data, user properties and message expiry. Never a topic alias or
    /// subscription identifier (those are per connection).
    pub properties: Properties,
    /// Who published it (No Local compares the client id); `None` for anonymous
    /// in-process publishers.
    pub publisher: Option<Arc<ClientInfo>>,
    /// Set by publishers that want to know when the message was delivered.
    pub completion: Option<Arc<Completion>>,
    pub received_at: Instant,
    /// Milliseconds since the epoch when it was received (rules' `timestamp`).
    pub timestamp: i64,
}

/// What `Message::expiry` says about a message at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    Remaining(u32),
    Expired,
}

impl Message {
    pub fn new(
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            dup: false,
            properties: Properties::default(),
            publisher: None,
            completion: None,
            received_at: Instant::now(),
            timestamp: crate::hook::now_ms(),
        }
    }

    /// The message expiry interval to forward: the original minus the whole seconds waited.
    pub fn publisher_id(&self) -> Option<&str> {
        self.publisher.as_ref().map(|p| &*p.client_id)
    }

    pub fn expiry(&self, now: Instant) -> Expiry {
        match self.properties.message_expiry_interval {
            None => Expiry::Never,
            Some(interval) => {
                let waited = now.saturating_duration_since(self.received_at).as_secs();
                match u64::from(interval).checked_sub(waited) {
                    Some(left) if left > 0 => Expiry::Remaining(left as u32),
                    _ => Expiry::Expired,
                }
            }
        }
    }
}

/// A shared subscription a delivery came through, so it can go to another member when the
/// chosen one goes away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedVia {
    pub group: Arc<str>,
    pub filter: Arc<str>,
}

/// One message on its way to one session.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub msg: Arc<Message>,
    /// Effective QoS: min(published, granted).
    pub qos: QoS,
    /// Retain flag as sent: set for retained messages sent on subscribe, or when the
    /// subscription asked for Retain As Published.
    pub retain: bool,
    pub sub_ids: Vec<u32>,
    pub shared: Option<SharedVia>,
    /// Held while this QoS 1/2 delivery is unfinished (see [`Completion`]).
    pub ticket: Option<Arc<Ticket>>,
    /// The session's sequence number, set when it is queued (its key in the store).
    pub seq: u64,
}

/// Tells an in-process publisher (e.g. a Kafka source) when a message it published was
/// delivered: every QoS 1/2 delivery acknowledged by its subscriber (PUBACK/PUBCOMP) or
/// given up (dropped from a full queue, expired, too large, session gone), or, when the
/// broker persists state, committed to the store while its persistent session is offline
/// (durably queued: see `persist`). QoS 0 deliveries count as delivered when queued.
///
/// Each QoS 1/2 delivery holds a [`Ticket`]; the last clone of a delivery going away
/// releases it, so every path that ends a delivery is covered without bookkeeping.
#[derive(Debug)]
pub struct Completion {
    remaining: std::sync::atomic::AtomicUsize,
    /// Woken (`notify_one`) when the message is delivered; one signal may serve many
    /// completions, so a waiter checks [`Completion::is_done`] on its own messages.
    signal: Arc<tokio::sync::Notify>,
}

impl Completion {
    /// A completion with the publisher's own hold, released by `Broker::publish`.
    pub fn new(signal: Arc<tokio::sync::Notify>) -> Arc<Completion> {
        Arc::new(Completion {
            remaining: 1.into(),
            signal,
        })
    }

    /// Every delivery ended (and the publisher's hold was released).
    pub fn is_done(&self) -> bool {
        self.remaining.load(std::sync::atomic::Ordering::Acquire) == 0
    }

    pub(crate) fn ticket(self: &Arc<Self>) -> Arc<Ticket> {
        self.remaining
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Arc::new(Ticket(self.clone()))
    }

    pub(crate) fn release(&self) {
        if self
            .remaining
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            self.signal.notify_one();
        }
    }
}

/// One unfinished delivery of a tracked message.
#[derive(Debug)]
pub struct Ticket(Arc<Completion>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.release();
    }
}
