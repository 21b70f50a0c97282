//! Session state: subscriptions, the outgoing queue, the outbound inflight window with packet
//! ids, and inbound QoS 2 packet ids awaiting PUBREL. A session outlives its connections
//! (persistent sessions) and is attached to at most one connection at a time.
//!
//! Concurrency: the state sits behind a short `std::sync::Mutex`, never held across
//! `.await`. Routers push into the queue and `notify` the connection; the connection task
//! drains the queue into its inflight window. One queue serves online and offline clients,
//! so the bound `max_queued_messages` caps memory in both cases.
//!
//! Persistence: every change to the durable part of the state (see [`crate::store`]) bumps
//! `SessionState::changes` under the lock. [`Session::lock`] returns a [`SessionGuard`] that,
//! when a change happened while it was held and the session is durable (expiry > 0, or
//! already in the store), puts the client id on the broker's dirty list once
//! ([`crate::persist::Tracker`]); the background sync snapshots it later. A session that is
//! not durable, or a broker without a store, costs one branch per guard.

use std::collections::{HashMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferry_mqtt::{QoS, SubOptions};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::admin::ClientCounters;
use crate::hook::{ClientInfo, DurableAck};
use crate::message::{Delivery, Expiry};
use crate::metrics::{BrokerMetric, Metrics};
use crate::persist::Tracker;
use crate::queue::{Limits, Queue};

/// A subscription as the session remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub opts: SubOptions,
    pub sub_id: Option<u32>,
}

/// Why a connection is told to go away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Another connection with the same client id took the session over.
    TakenOver,
    /// An administrator kicked the client ([`crate::Broker::kick`]); the session is gone.
    /// MQTT 5 clients get DISCONNECT 0x98 (Administrative action).
    Admin,
    /// The client's queue stayed full for `mqtt.slow_subscriber_timeout`: DISCONNECT 0x97
    /// (Quota exceeded); the session stays as its expiry says.
    Slow,
    /// The server is shutting down ([`crate::Broker::close_connections`]): DISCONNECT 0x8B.
    Shutdown,
}

/// The connection attached to a session.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    pub(crate) id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflightState {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREL sent; waiting for PUBCOMP.
    Released,
}

#[derive(Debug, Clone)]
pub struct Inflight {
    pub packet_id: u16,
    pub delivery: Delivery,
    pub state: InflightState,
}

/// A packet the connection must (re)send.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// PUBLISH; `packet_id` is 0 for QoS 0.
    Publish {
        packet_id: u16,
        delivery: Delivery,
        dup: bool,
    },
    /// PUBREL for a QoS 2 message whose PUBREC arrived before the connection was lost.
    Release(u16),
}

#[derive(Debug)]
pub struct SessionState {
    pub(crate) conn: Option<ConnHandle>,
    /// The last connection told to go, and why ([`Session::kick`]); a connection that is
    /// neither attached nor this one was taken over.
    pub(crate) kick: Option<(u64, Kick)>,
    /// Who the current (or last) connection is; replaced on every attach.
    pub(crate) client: Arc<ClientInfo>,
    /// Milliseconds since the epoch of the last detach; 0 while attached or never detached.
    pub(crate) disconnected_at: i64,
    pub(crate) subscriptions: HashMap<String, Subscription>,
    pub(crate) queue: Queue,
    pub(crate) inflight: VecDeque<Inflight>,
    pub(crate) next_packet_id: u16,
    /// The outbound inflight window of the last connection (0: not known yet).
    pub(crate) inflight_window: u16,
    /// Inbound QoS 2 packet ids received and PUBREC'd but not yet released, sorted (a
    /// few at a time, at most the receive maximum; no allocation while there are none).
    pub(crate) awaiting_rel: Vec<u16>,
    pub(crate) expiry_interval: u32,
    /// Bumped on every attach and detach; timers compare it to know if they are stale.
    pub(crate) generation: u64,
    /// `generation` as of the last attach.
    pub(crate) attached_generation: u64,
    /// Bumped by every change to the durable part (subscriptions, queue, inflight,
    /// awaiting PUBREL, expiry, connect/disconnect).
    pub(crate) changes: u64,
    /// The client id is on the broker's dirty list (cleared by the sync's snapshot).
    pub(crate) enlisted: bool,
    /// The store holds a record of this session (so a change to expiry 0 deletes it).
    pub(crate) stored: bool,
    /// The sequence number of the next queued delivery.
    pub(crate) next_seq: u64,
    /// What the store holds of this session's deliveries, by sequence number (`None`: not
    /// known, so the next write replaces them all). Only the sync reads and writes it.
    /// Boxed: most sessions never persist, and an empty map is 48 bytes.
    pub(crate) written: Option<Box<Written>>,
}

/// What the store holds of a session's deliveries: by sequence number, the packet id and
/// state if it was sent.
pub(crate) type Written = HashMap<u64, Option<(u16, InflightState)>>;

/// What [`Session::enqueue`] did beyond queueing.
#[derive(Debug)]
pub(crate) struct Enqueued {
    /// Deliveries that did not make it (a full queue), and the session's client if any.
    pub(crate) dropped: Vec<Delivery>,
    pub(crate) client: Option<Arc<ClientInfo>>,
    /// The publisher waits for this (backpressure).
    pub(crate) hold: Option<DurableAck>,
}

/// A client session. Shared by the broker (routing) and at most one connection.
#[derive(Debug)]
pub struct Session {
    pub client_id: Arc<str>,
    /// Milliseconds since the epoch when the session was created.
    pub created_at: i64,
    connected: AtomicBool,
    /// The attached connection's id (0: none) and the last one told to go (0: none),
    /// mirrored from the state under its lock: a connection looks at the state (under the
    /// lock) only when it is not the attached one or is the one told to go.
    attached_id: AtomicU64,
    kicked_id: AtomicU64,
    /// Traffic of this session's connections, for the admin API (relaxed atomics, added
    /// once per read or write batch by the connection).
    counters: ClientCounters,
    state: Mutex<SessionState>,
    notify: Notify,
    /// The broker's dirty list, if it persists state.
    tracker: Option<Arc<Tracker>>,
}

/// The lock on a session's state. On drop, a durable session changed under it is put on
/// the dirty list (see the module doc).
pub struct SessionGuard<'a> {
    guard: MutexGuard<'a, SessionState>,
    session: &'a Session,
    changes_at_lock: u64,
}

impl Deref for SessionGuard<'_> {
    type Target = SessionState;
    fn deref(&self) -> &SessionState {
        &self.guard
    }
}

impl DerefMut for SessionGuard<'_> {
    fn deref_mut(&mut self) -> &mut SessionState {
        &mut self.guard
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        let Some(tracker) = &self.session.tracker else {
            return;
        };
        let st = &mut *self.guard;
        if st.changes != self.changes_at_lock && (st.expiry_interval > 0 || st.stored) {
            tracker.changed();
            if !st.enlisted {
                st.enlisted = true;
                tracker.enlist(self.session.client_id.clone());
            }
        }
    }
}

impl std::fmt::Debug for SessionGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.guard.fmt(f)
    }
}

impl Session {
    pub(crate) fn new(client: Arc<ClientInfo>, tracker: Option<Arc<Tracker>>) -> Session {
        Session {
            client_id: client.client_id.clone(),
            created_at: crate::hook::now_ms(),
            connected: AtomicBool::new(false),
            attached_id: AtomicU64::new(0),
            kicked_id: AtomicU64::new(0),
            counters: ClientCounters::default(),
            state: Mutex::new(SessionState {
                conn: None,
                kick: None,
                client,
                disconnected_at: 0,
                subscriptions: HashMap::new(),
                queue: Queue::default(),
                inflight: VecDeque::new(),
                next_packet_id: 0,
                inflight_window: 0,
                awaiting_rel: Vec::new(),
                expiry_interval: 0,
                generation: 0,
                attached_generation: 0,
                changes: 0,
                enlisted: false,
                stored: false,
                next_seq: 1,
                written: None,
            }),
            notify: Notify::new(),
            tracker,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_connected(&self, v: bool) {
        self.connected.store(v, Ordering::Release);
    }

    /// Per-client traffic counters; the connection adds to them.
    pub fn counters(&self) -> &ClientCounters {
        &self.counters
    }

    /// Locks the state. A poisoned lock is recovered: the state is plain data that every
    /// operation leaves consistent, and one panicking connection must not take others down.
    pub fn lock(&self) -> SessionGuard<'_> {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        SessionGuard {
            changes_at_lock: guard.changes,
            guard,
            session: self,
        }
    }

    /// Resolves when deliveries were queued since the last call (no wake-up is lost), or
    /// once [`Session::kick`] told a connection to go: a connection enables it before it
    /// looks at [`Session::kicked`], so no kick is missed either.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Tells connection `conn_id` to go (under the state's lock). The caller wakes the
    /// connections with [`Session::wake_all`] once the lock is released.
    pub(crate) fn kick(&self, st: &mut SessionState, conn_id: u64, why: Kick) {
        st.kick = Some((conn_id, why));
        self.kicked_id.store(conn_id, Ordering::Release);
    }

    /// Attaches connection `conn_id` (or detaches, `None`), under the state's lock.
    pub(crate) fn set_conn(&self, st: &mut SessionState, conn_id: Option<u64>) {
        st.conn = conn_id.map(|id| ConnHandle { id });
        self.attached_id
            .store(conn_id.unwrap_or(0), Ordering::Release);
    }

    /// Wakes every connection waiting on this session (one of them was kicked).
    pub(crate) fn wake_all(&self) {
        self.notify.notify_waiters();
    }

    /// Why connection `conn_id` must go, if it must: it was kicked, or another connection
    /// took its place. Two loads while it is the attached connection and not told to go.
    pub fn kicked(&self, conn_id: u64) -> Option<Kick> {
        if self.attached_id.load(Ordering::Acquire) == conn_id
            && self.kicked_id.load(Ordering::Acquire) != conn_id
        {
            return None;
        }
        let st = self.lock();
        match st.kick {
            Some((id, why)) if id == conn_id => Some(why),
            _ if st.conn.as_ref().is_some_and(|c| c.id == conn_id) => None,
            _ => Some(Kick::TakenOver),
        }
    }

    /// A connection that goes passes on a wake-up it may have taken from the connection
    /// replacing it (both wait on this session while one takes over from the other).
    pub fn pass_wake(&self) {
        self.wake();
    }

    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Queues a delivery under `limits` (see [`crate::queue`]). `can_wait`: the publisher
    /// can be held (a client connection); only a connected session holds it.
    pub(crate) fn enqueue(
        &self,
        mut d: Delivery,
        limits: &Limits,
        can_wait: bool,
        metrics: &Metrics,
    ) -> Enqueued {
        let mut slow = false;
        let out = {
            let mut st = self.lock();
            d.seq = st.next_seq;
            st.next_seq += 1;
            let can_hold = can_wait && st.conn.is_some();
            let pushed = st.queue.push(d, limits, can_hold, Instant::now());
            st.changes += 1;
            if pushed.slow
                && let Some(id) = st.conn.as_ref().map(|c| c.id)
                && st.kick.is_none_or(|(k, _)| k != id)
            {
                // Once per connection: a later takeover finds it already going.
                self.kick(&mut st, id, Kick::Slow);
                slow = true;
                metrics.inc(BrokerMetric::SlowSubscribersDisconnected);
                tracing::warn!(client_id = %self.client_id, "disconnecting a slow subscriber: its queue stayed full for mqtt.slow_subscriber_timeout");
            }
            if pushed.hold.is_some() {
                metrics.inc(BrokerMetric::PublishersHeld);
            }
            let dropped = pushed.dropped;
            if !dropped.is_empty() {
                let k = dropped.len() as u64;
                ClientCounters::add(&self.counters.mqueue_dropped, k);
                let n = metrics.add(BrokerMetric::DroppedQueueFull, k);
                if (n.saturating_sub(k) + 1..=n).any(u64::is_power_of_two) {
                    tracing::warn!(client_id = %self.client_id, dropped_total = n, policy = ?limits.policy, "session queue full, dropped a message");
                }
            }
            let client = (!dropped.is_empty()).then(|| st.client.clone());
            Enqueued {
                dropped,
                client,
                hold: pushed.hold,
            }
        };
        self.wake();
        if slow {
            self.wake_all();
        }
        out
    }
}

impl SessionState {
    /// Is `conn_id` the connection currently attached?
    pub fn attached_to(&self, conn_id: u64) -> bool {
        self.conn.as_ref().is_some_and(|c| c.id == conn_id)
    }

    /// Changes the session expiry interval (MQTT 5 DISCONNECT may do so).
    pub fn set_expiry_interval(&mut self, secs: u32) {
        self.expiry_interval = secs;
        self.changes += 1;
    }

    /// The session's subscriptions, by filter as subscribed.
    pub fn subscriptions(&self) -> &HashMap<String, Subscription> {
        &self.subscriptions
    }

    /// Is the inbound QoS 2 message `packet_id` received and not yet released?
    pub fn awaits_rel(&self, packet_id: u16) -> bool {
        self.awaiting_rel.binary_search(&packet_id).is_ok()
    }

    /// Inbound QoS 2 messages received and not yet released.
    pub fn awaiting_rel_len(&self) -> usize {
        self.awaiting_rel.len()
    }

    /// Records an inbound QoS 2 message as received (PUBREC sent or pending).
    pub fn await_rel(&mut self, packet_id: u16) {
        if let Err(at) = self.awaiting_rel.binary_search(&packet_id) {
            self.awaiting_rel.insert(at, packet_id);
        }
        self.changes += 1;
    }

    /// PUBREL (or a refused QoS 2 publish): forgets `packet_id`; `false` if unknown.
    pub fn release_rel(&mut self, packet_id: u16) -> bool {
        let at = self.awaiting_rel.binary_search(&packet_id);
        if let Ok(at) = at {
            self.awaiting_rel.remove(at);
        }
        let known = at.is_ok();
        self.changes += u64::from(known);
        known
    }

    pub fn expiry_interval(&self) -> u32 {
        self.expiry_interval
    }

    /// Records the outbound inflight window the attached connection uses (min of the
    /// client's Receive Maximum and `mqtt.max_inflight`), reported as `inflight_max`.
    pub fn set_inflight_window(&mut self, window: u16) {
        self.inflight_window = window;
    }

    /// The current (or last) connection's client.
    pub fn client(&self) -> &Arc<ClientInfo> {
        &self.client
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    fn allocate_packet_id(&mut self) -> u16 {
        loop {
            self.next_packet_id = self.next_packet_id.wrapping_add(1);
            if self.next_packet_id == 0 {
                continue;
            }
            let id = self.next_packet_id;
            if !self.inflight.iter().any(|i| i.packet_id == id) {
                return id;
            }
        }
    }

    /// Moves queued deliveries out for sending: QoS 0 always, QoS 1/2 while the inflight
    /// window has room (they enter it with a fresh packet id). Expired messages are dropped.
    pub fn next_batch(
        &mut self,
        conn_id: u64,
        window: usize,
        limit: usize,
        now: Instant,
        metrics: &Metrics,
        out: &mut Vec<Outgoing>,
    ) {
        let mut expired = Vec::new();
        let limit = (limit, usize::MAX);
        self.next_batch_reporting(conn_id, window, limit, now, metrics, out, &mut expired);
    }

    /// [`SessionState::next_batch`], handing the expired deliveries to `expired` (for the
    /// `delivery_dropped` hook, run by [`crate::Broker::next_batch`] outside the lock).
    /// `limit`: at most this many deliveries, and no more once this many bytes of topic and
    /// payload were taken (at least one is).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn next_batch_reporting(
        &mut self,
        conn_id: u64,
        window: usize,
        (limit, max_bytes): (usize, usize),
        now: Instant,
        metrics: &Metrics,
        out: &mut Vec<Outgoing>,
        expired: &mut Vec<Delivery>,
    ) {
        if !self.attached_to(conn_id) {
            return;
        }
        let mut bytes = 0;
        while out.len() < limit && bytes < max_bytes {
            let Some(front) = self.queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce && self.inflight.len() >= window {
                break;
            }
            let Some(d) = self.queue.pop_front() else {
                break;
            };
            self.changes += 1;
            bytes += crate::queue::size(&d);
            if d.msg.expiry(now) == Expiry::Expired {
                metrics.inc(BrokerMetric::DroppedExpired);
                expired.push(d);
                continue;
            }
            if d.qos == QoS::AtMostOnce {
                out.push(Outgoing::Publish {
                    packet_id: 0,
                    delivery: d,
                    dup: false,
                });
            } else {
                let packet_id = self.allocate_packet_id();
                self.inflight.push_back(Inflight {
                    packet_id,
                    delivery: d.clone(),
                    state: InflightState::Published,
                });
                out.push(Outgoing::Publish {
                    packet_id,
                    delivery: d,
                    dup: false,
                });
            }
        }
    }

    /// Everything unacknowledged, to resend on a resumed session, in the original order.
    pub fn resend_all(&self) -> Vec<Outgoing> {
        self.inflight
            .iter()
            .map(|i| match i.state {
                InflightState::Published => Outgoing::Publish {
                    packet_id: i.packet_id,
                    delivery: i.delivery.clone(),
                    dup: true,
                },
                InflightState::Released => Outgoing::Release(i.packet_id),
            })
            .collect()
    }

    fn position(&self, packet_id: u16, qos: QoS, state: InflightState) -> Option<usize> {
        self.inflight
            .iter()
            .position(|i| i.packet_id == packet_id && i.delivery.qos == qos && i.state == state)
    }

    /// PUBACK from the client: the acknowledged message, or `None` if no QoS 1 message
    /// with this id was inflight.
    pub fn puback(&mut self, packet_id: u16) -> Option<Delivery> {
        let i = self.position(packet_id, QoS::AtLeastOnce, InflightState::Published)?;
        self.changes += 1;
        self.inflight.remove(i).map(|e| e.delivery)
    }

    /// PUBREC from the client; on success the message moves to `Released` (send PUBREL).
    /// A PUBREC with an error reason ends the exchange.
    pub fn pubrec(&mut self, packet_id: u16, success: bool) -> bool {
        match self.position(packet_id, QoS::ExactlyOnce, InflightState::Published) {
            Some(i) if success => {
                self.inflight[i].state = InflightState::Released;
                self.changes += 1;
                true
            }
            Some(i) => {
                self.inflight.remove(i);
                self.changes += 1;
                false
            }
            None => self
                .position(packet_id, QoS::ExactlyOnce, InflightState::Released)
                .is_some(),
        }
    }

    /// PUBCOMP from the client: the completed message, if it was inflight.
    pub fn pubcomp(&mut self, packet_id: u16) -> Option<Delivery> {
        let i = self.position(packet_id, QoS::ExactlyOnce, InflightState::Released)?;
        self.changes += 1;
        self.inflight.remove(i).map(|e| e.delivery)
    }

    /// Drops an inflight message the connection could not send (e.g. larger than the
    /// client's Maximum Packet Size): it is treated as delivered, as MQTT 5 requires.
    pub fn forget(&mut self, packet_id: u16) {
        self.inflight.retain(|i| i.packet_id != packet_id);
        self.changes += 1;
    }

    /// Takes the deliveries that came through a shared subscription and were not yet
    /// received by the client, so they can be given to another member of the group.
    pub(crate) fn take_shared(&mut self) -> Vec<Delivery> {
        let mut out = Vec::new();
        self.queue.retain(|d| {
            if d.shared.is_some() {
                out.push(d.clone());
                false
            } else {
                true
            }
        });
        self.inflight.retain(|i| {
            if i.delivery.shared.is_some() && i.state == InflightState::Published {
                out.push(i.delivery.clone());
                false
            } else {
                true
            }
        });
        if !out.is_empty() {
            self.changes += 1;
        }
        out
    }
}
