//! The storage interface for MQTT state that outlives the process: persistent sessions and
//! retained messages. The broker owns the interface; implementations live elsewhere (the
//! redb file store in `ferry-store`; a Kafka-backed one later), so the broker core does no
//! file I/O and knows no database.
//!
//! Keys: one [`SessionRecord`] per client id, one [`StoredDelivery`] per (client id,
//! sequence number) for each message queued or inflight for a session, one retained
//! [`Message`] per topic. Writes arrive as batches of [`Change`]s that a store applies
//! atomically (all or nothing), in order; [`Store::load`] returns the latest value of every
//! key. That is what a key-value file and a compacted Kafka topic both do well. Deliveries
//! have keys of their own so that a change to a session with a long queue writes what
//! changed (the new, sent or acknowledged deliveries), not the whole queue.
//!
//! What a session record holds: the client id, the session expiry interval, when the session
//! was created and last disconnected (so expiry keeps counting across restarts), the last
//! connection's client info, subscriptions with their options and subscription identifiers,
//! and the inbound QoS 2 packet ids awaiting PUBREL. Its deliveries: the queue (QoS 0, 1 and
//! 2, as the queue holds them) and the outbound inflight window with packet ids and states.
//! Not stored: delivery tickets of in-process publishers (a Kafka source re-reads after a
//! restart, or already counted a durably queued delivery as delivered), traffic counters,
//! the will (a will belongs to a connection, and every connection ends at a restart).
//!
//! [`codec`] turns records into bytes for stores that keep bytes.

pub mod codec;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::hook::ClientInfo;
use crate::message::{Delivery, Message};
use crate::session::{InflightState, Subscription};

/// The durable part of one session, without its deliveries.
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

/// One message queued or inflight for a session, stored under (client id, `seq`).
#[derive(Debug, Clone)]
pub struct StoredDelivery {
    /// The session's sequence number of the delivery: assigned when it was queued, increasing,
    /// so the order of the keys is the order of the queue (and of the inflight window). 0
    /// only for deliveries read from a version 1 session record, which held them inline.
    pub seq: u64,
    /// Its ticket is always `None`.
    pub delivery: Delivery,
    /// Sent and unacknowledged: its packet id and state. `None`: still queued.
    pub sent: Option<(u16, InflightState)>,
}

/// A write of one session (see [`Change::PutSession`]).
#[derive(Debug, Clone)]
pub struct SessionWrite {
    pub record: SessionRecord,
    /// First deletes every stored delivery of the session (its first write, or after a
    /// failed commit, when what the store holds is not known).
    pub replace: bool,
    /// Deliveries to store (new ones, or ones whose `sent` changed).
    pub put: Vec<StoredDelivery>,
    /// Sequence numbers of deliveries to delete (acknowledged, dropped, expired, handed to
    /// another member of a shared group).
    pub removed: Vec<u64>,
}

/// One change to stored state.
#[derive(Debug, Clone)]
pub enum Change {
    /// Writes a session record and changes its deliveries.
    PutSession(Box<SessionWrite>),
    /// Deletes a session record and all its deliveries.
    DeleteSession(Arc<str>),
    /// Sets the retained message of its topic.
    PutRetained(Arc<Message>),
    /// Clears the retained message of a topic.
    DeleteRetained(String),
}

/// A session as loaded: its record and its deliveries, in `seq` order.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub record: SessionRecord,
    pub deliveries: Vec<StoredDelivery>,
}

/// Everything a store holds, as loaded at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sessions: Vec<StoredSession>,
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
    sessions: BTreeMap<String, Vec<u8>>,
    deliveries: BTreeMap<(String, u64), Vec<u8>>,
    retained: BTreeMap<String, Vec<u8>>,
    applies: u64,
    changes: u64,
    deliveries_written: u64,
}

impl MemStore {
    fn inner(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (apply calls, changes applied) so far.
    pub fn counts(&self) -> (u64, u64) {
        let g = self.inner();
        (g.applies, g.changes)
    }

    /// Deliveries written (put) so far.
    pub fn deliveries_written(&self) -> u64 {
        self.inner().deliveries_written
    }

    /// Deliveries stored now.
    pub fn deliveries_stored(&self) -> usize {
        self.inner().deliveries.len()
    }

    /// Stores a session record's bytes as they are (tests: records of older formats).
    pub fn put_raw_session(&self, client_id: &str, bytes: Vec<u8>) {
        self.inner().sessions.insert(client_id.to_owned(), bytes);
    }
}

fn corrupt(key: String) -> impl FnOnce(String) -> StoreError {
    move |why| StoreError::Corrupt { key, why }
}

impl Store for MemStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        let g = self.inner();
        let mut out = Loaded::default();
        let mut by_id = std::collections::HashMap::new();
        for (k, v) in &g.sessions {
            let s = codec::decode_session(v).map_err(corrupt(format!("sessions/{k}")))?;
            by_id.insert(k.clone(), out.sessions.len());
            out.sessions.push(s);
        }
        for ((id, seq), v) in &g.deliveries {
            let d = codec::decode_delivery(*seq, v)
                .map_err(corrupt(format!("deliveries/{id}/{seq}")))?;
            // A delivery without its session cannot be (sessions delete theirs); skipped.
            if let Some(s) = by_id.get(id).and_then(|i| out.sessions.get_mut(*i)) {
                s.deliveries.push(d);
            }
        }
        for (k, v) in &g.retained {
            let m = codec::decode_message(v).map_err(corrupt(format!("retained/{k}")))?;
            out.retained.push(Arc::new(m));
        }
        Ok(out)
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let mut g = self.inner();
        g.applies += 1;
        g.changes += changes.len() as u64;
        for c in changes {
            match c {
                Change::PutSession(w) => {
                    let id = w.record.client_id.to_string();
                    g.sessions
                        .insert(id.clone(), codec::encode_session(&w.record));
                    if w.replace {
                        g.deliveries.retain(|(k, _), _| *k != id);
                    }
                    for seq in &w.removed {
                        g.deliveries.remove(&(id.clone(), *seq));
                    }
                    for d in &w.put {
                        g.deliveries
                            .insert((id.clone(), d.seq), codec::encode_delivery(d));
                    }
                    g.deliveries_written += w.put.len() as u64;
                }
                Change::DeleteSession(id) => {
                    g.sessions.remove(&**id);
                    g.deliveries.retain(|(k, _), _| **k != **id);
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
