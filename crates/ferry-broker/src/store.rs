//! The storage interface for MQTT state that outlives the process: persistent sessions and
//! retained messages. The broker owns the interface; implementations live elsewhere (the
//! redb file store in `ferry-store`; a Kafka-backed one later), so the broker core does no
//! file I/O and knows no database.
//!
//! The unit of storage is a whole record: one [`SessionRecord`] per client id, one retained
//! [`Message`] per topic. Writes arrive as batches of [`Change`]s that a store applies
//! atomically (all or nothing), in order; [`Store::load`] returns the latest record of every
//! key. That is what a key-value file and a compacted Kafka topic both do well.
//!
//! What a session record holds: the client id, the session expiry interval, when the session
//! was created and last disconnected (so expiry keeps counting across restarts), the last
//! connection's client info, subscriptions with their options and subscription identifiers,
//! the queue (QoS 0, 1 and 2 deliveries, as the queue holds them), the outbound inflight
//! window with packet ids and states, and the inbound QoS 2 packet ids awaiting PUBREL. Not
//! stored: delivery tickets of in-process publishers (a Kafka source re-reads after a
//! restart), traffic counters, the will (a will belongs to a connection, and every
//! connection ends at a restart).
//!
//! [`codec`] turns records into bytes for stores that keep bytes.

pub mod codec;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::hook::ClientInfo;
use crate::message::{Delivery, Message};
use crate::session::{Inflight, Subscription};

/// The durable part of one session.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub client_id: Arc<str>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub expiry_interval: u32,
    /// Milliseconds since the epoch of the last disconnect; 0 if a connection was attached
    /// when the record was saved (expiry then counts from `saved_at`).
    pub disconnected_at: i64,
    /// Milliseconds since the epoch when the record was taken.
    pub saved_at: i64,
    /// The last connection's client info (the admin API shows it for offline sessions).
    pub client: Arc<ClientInfo>,
    /// By filter as subscribed (`$share/G/...` included).
    pub subscriptions: Vec<(String, Subscription)>,
    /// Queued deliveries, oldest first. Tickets are never stored.
    pub queue: Vec<Delivery>,
    /// Sent and unacknowledged, in send order.
    pub inflight: Vec<Inflight>,
    /// Inbound QoS 2 packet ids received and not yet released.
    pub awaiting_rel: Vec<u16>,
    /// The last outbound packet id allocated.
    pub next_packet_id: u16,
}

impl SessionRecord {
    /// When the session's expiry started counting, in milliseconds since the epoch.
    pub fn expiry_from(&self) -> i64 {
        if self.disconnected_at != 0 {
            self.disconnected_at
        } else {
            self.saved_at
        }
    }
}

/// One change to stored state.
#[derive(Debug, Clone)]
pub enum Change {
    PutSession(Box<SessionRecord>),
    DeleteSession(Arc<str>),
    /// Sets the retained message of its topic.
    PutRetained(Arc<Message>),
    /// Clears the retained message of a topic.
    DeleteRetained(String),
}

/// Everything a store holds, as loaded at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sessions: Vec<SessionRecord>,
    pub retained: Vec<Arc<Message>>,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The backend failed (I/O, database, Kafka); the message is the backend's.
    Backend(String),
    /// A stored record could not be decoded.
    Corrupt { key: String, why: String },
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Backend(e) => write!(f, "state store: {e}"),
            StoreError::Corrupt { key, why } => {
                write!(f, "state store: record {key:?} is corrupt: {why}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// Durable storage of sessions and retained messages. Methods block (they do I/O): the
/// broker calls them from a blocking thread, never from the routing path.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Every stored session and retained message.
    fn load(&self) -> Result<Loaded, StoreError>;
    /// Applies `changes` in order, atomically and durably: when this returns `Ok`, all of
    /// them survive a crash; on `Err`, none of them is applied.
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError>;
}

/// Keeps nothing: state lives in memory only (`[node] persistence = false`). Counts the
/// calls it gets, so tests can prove which traffic reaches a store at all.
#[derive(Debug, Default)]
pub struct NoStore {
    applied: AtomicU64,
}

impl NoStore {
    /// How many `apply` calls it received.
    pub fn apply_calls(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }
}

impl Store for NoStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        Ok(Loaded::default())
    }

    fn apply(&self, _changes: &[Change]) -> Result<(), StoreError> {
        self.applied.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Keeps everything in memory, encoded with [`codec`] as a byte store would: a reference
/// implementation for tests (a "restart" is a new broker on the same `MemStore`).
#[derive(Debug, Default)]
pub struct MemStore {
    inner: std::sync::Mutex<MemInner>,
}

#[derive(Debug, Default)]
struct MemInner {
    sessions: std::collections::BTreeMap<String, Vec<u8>>,
    retained: std::collections::BTreeMap<String, Vec<u8>>,
    applies: u64,
    changes: u64,
}

impl MemStore {
    /// (apply calls, changes applied) so far.
    pub fn counts(&self) -> (u64, u64) {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (g.applies, g.changes)
    }
}

impl Store for MemStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Loaded::default();
        for (k, v) in &g.sessions {
            out.sessions
                .push(codec::decode_session(v).map_err(|why| StoreError::Corrupt {
                    key: k.clone(),
                    why,
                })?);
        }
        for (k, v) in &g.retained {
            out.retained
                .push(Arc::new(codec::decode_message(v).map_err(|why| {
                    StoreError::Corrupt {
                        key: k.clone(),
                        why,
                    }
                })?));
        }
        Ok(out)
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.applies += 1;
        g.changes += changes.len() as u64;
        for c in changes {
            match c {
                Change::PutSession(r) => {
                    g.sessions
                        .insert(r.client_id.to_string(), codec::encode_session(r));
                }
                Change::DeleteSession(id) => {
                    g.sessions.remove(&**id);
                }
                Change::PutRetained(m) => {
                    g.retained.insert(m.topic.clone(), codec::encode_message(m));
                }
                Change::DeleteRetained(t) => {
                    g.retained.remove(t);
                }
            }
        }
        Ok(())
    }
}
