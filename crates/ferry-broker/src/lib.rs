//! ferry-broker: the broker core, with no sockets.
//!
//! Owns: sessions and their lifecycle (attach, takeover, expiry), the subscription trie with
//! shared subscription groups, retained messages, routing a [`Message`] to matching sessions
//! (overlap merging, No Local, Retain As Published, QoS downgrade), will messages with delay,
//! the broker counters of the metrics registry ([`Broker::registry`]), and the admin
//! queries and operations the HTTP API needs ([`admin`]: clients with per-client counters,
//! subscriptions, topics, retained messages, kick), and the authentication / authorization
//! decision points and the hooks that report them ([`Broker::authenticate`] through an
//! installed [`Authenticator`] chain, [`Broker::authorize`] with the [`acl`] rules).
//!
//! Must not: do network I/O or know the wire format beyond `ferry-mqtt`'s types; know about
//! rules or Kafka (those attach as in-process clients through [`Broker::publish`] and
//! sessions of their own).
//!
//! Locks: `sessions` (map of client ids), `subs` (the tries), `retained`, and each session's
//! state. Order: `sessions` before `subs` before a session's state; routing takes `subs` for
//! reading, releases it, then locks target sessions one at a time. No lock is held across
//! `.await`. Admin listings clone the session list out of `sessions` first, then lock each
//! session in turn, never the whole map while visiting every session. No hook runs while
//! `sessions` is held (a hook may call back into the broker): a discard returns what is left
//! to do (`Ended`) for after the lock. The session timers (`expiry`) are a leaf lock.

mod access;
pub mod acl;
pub mod admin;
pub mod config;
mod expiry;
pub mod hook;
pub mod limits;
pub mod message;
pub mod metrics;
mod persist;
pub mod queue;
mod retained;
pub mod session;
pub mod store;
mod subscriptions;
pub use ferry_mqtt::trie;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

use ferry_mqtt::topic::{TopicError, parse_subscription};
use ferry_mqtt::{Properties, QoS, SubOptions, Will, reason};
use tokio::time::Instant;

pub use access::{Authentication, Authenticator, AuthnDecision, AuthnFuture, AuthnOutcome};
pub use admin::{
    ClientCounters, ClientSnapshot, ClientStats, RetainedSnapshot, SubscriptionSnapshot,
};
pub use config::MqttConfig;
pub use ferry_metrics::Registry;
use ferry_mqtt::trie::Trie;
pub use hook::{
    AckSender, Authn, Authz, AuthzAction, ClientAuth, ClientInfo, DeliveryDropReason, DropReason,
    DurableAck, Hook, NotDurable,
};
pub use message::{Completion, Delivery, Expiry, Message, SharedVia, Ticket};
pub use metrics::{BrokerMetric, Metrics};
pub use persist::{PersistStats, Restored};
pub use session::{Kick, Outgoing, Session, SessionGuard, SessionState, Subscription};
pub use store::{
    Change, Loaded, NoStore, SessionRecord, SessionWrite, Store, StoreError, StoredDelivery,
    StoredSession,
};

/// Session expiry interval meaning "never expires".
pub const NEVER_EXPIRE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct SubEntry {
    session: Arc<Session>,
    opts: SubOptions,
    sub_id: Option<u32>,
}

#[derive(Debug)]
struct SharedGroup {
    name: Arc<str>,
    filter: Arc<str>,
    members: Vec<SubEntry>,
    next: AtomicUsize,
}

impl SharedGroup {
    /// Round robin over connected members; if none is connected, over all members (the
    /// message waits in that member's session queue).
    fn pick(&self, exclude: Option<&Arc<Session>>) -> Option<&SubEntry> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let eligible = |e: &&SubEntry| exclude.is_none_or(|x| !Arc::ptr_eq(x, &e.session));
        let mut ordered = (0..n)
            .map(|i| &self.members[(start + i) % n])
            .filter(eligible);
        ordered
            .clone()
            .find(|e| e.session.is_connected())
            .or_else(|| ordered.next())
    }
}

#[derive(Debug, Default)]
struct Subs {
    normal: Trie<Arc<str>, SubEntry>,
    /// Shared subscriptions, keyed by group name under their filter.
    shared: Trie<Arc<str>, SharedGroup>,
}

/// What `Broker::connect` hands the connection.
#[derive(Debug)]
pub struct Attached {
    pub session: Arc<Session>,
    pub conn_id: u64,
    pub session_present: bool,
}

/// Result of one SUBSCRIBE entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribed {
    pub granted: QoS,
    /// The same filter was already subscribed by this session.
    pub existed: bool,
}

/// Why a subscription was refused: the MQTT 5 reason code and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeError {
    pub code: u8,
    pub what: String,
}

impl std::fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (reason code 0x{:02x})", self.what, self.code)
    }
}

impl std::error::Error for SubscribeError {}

impl From<TopicError> for SubscribeError {
    fn from(e: TopicError) -> Self {
        SubscribeError {
            code: reason::TOPIC_FILTER_INVALID,
            what: e.to_string(),
        }
    }
}

/// The broker core. Cheap to share (`Arc`); every method is synchronous and short.
#[derive(Debug)]
pub struct Broker {
    config: MqttConfig,
    sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    subs: RwLock<Subs>,
    retained: Mutex<retained::Retained>,
    registry: Arc<Registry>,
    next_conn_id: AtomicU64,
    hooks: Hooks,
    /// The store and dirty list, if sessions and retained messages persist.
    persist: Option<persist::Persist>,
    /// Who may not connect (replaced as a whole).
    banned: RwLock<Arc<limits::Banned>>,
    authn: RwLock<access::Authentication>,
    acl: RwLock<Arc<acl::Acl>>,
    /// Bumped by every change of `acl`: cached authorization results of older
    /// generations are stale.
    acl_generation: AtomicU64,
    /// `acl` has no rules: what `no_match` says (1 allow, 2 deny); 0 when it has rules.
    acl_trivial: std::sync::atomic::AtomicU8,
    /// Session expiry and will delay deadlines, fired by one task ([`expiry`]).
    timers: Arc<expiry::Timers>,
    /// [`Broker::close_connections`] was called: connections attaching now are told to go.
    closing: AtomicBool,
}

impl Drop for Broker {
    fn drop(&mut self) {
        // The timer task holds the broker weakly: woken, it finds it gone and ends.
        self.timers.wake();
    }
}

/// What a discarded session leaves to do once the `sessions` lock is released: its shared
/// deliveries go to the rest of their groups, its pending will is published (both may run
/// hooks, which may call back into the broker).
#[must_use = "pass it to Broker::after_discard once the sessions lock is released"]
#[derive(Debug)]
struct Ended {
    session: Arc<Session>,
    shared: Vec<Delivery>,
    will: Option<expiry::PendingWill>,
}

/// A PUBLISH refused by authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishDenied {
    /// What the rules say to do with the publisher.
    pub action: acl::DenyAction,
}

#[derive(Default)]
struct Hooks(OnceLock<Vec<Arc<dyn Hook>>>);

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} hooks", self.0.get().map_or(0, Vec::len))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Broker {
    /// A broker that keeps its state in memory only (see [`Broker::with_store`]).
    pub fn new(config: MqttConfig) -> Arc<Broker> {
        Arc::new(Broker::build(config, Registry::new(), None))
    }

    fn build(
        config: MqttConfig,
        registry: Arc<Registry>,
        persist: Option<persist::Persist>,
    ) -> Broker {
        Broker {
            config,
            sessions: Mutex::default(),
            subs: RwLock::default(),
            retained: Mutex::new(retained::Retained::new(persist.is_some())),
            registry,
            next_conn_id: AtomicU64::new(1),
            hooks: Hooks::default(),
            persist,
            banned: RwLock::default(),
            authn: RwLock::default(),
            acl: RwLock::default(),
            acl_generation: AtomicU64::new(0),
            acl_trivial: std::sync::atomic::AtomicU8::new(1),
            timers: Arc::default(),
            closing: AtomicBool::new(false),
        }
    }

    /// Replaces the banned list (at start, and when the config changes).
    pub fn set_banned(&self, banned: limits::Banned) {
        *self.banned.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(banned);
    }

    /// The banned list in force.
    pub fn banned(&self) -> Arc<limits::Banned> {
        self.banned
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Installs the in-process observers (once, at startup). Returns them back if hooks
    /// were already installed.
    pub fn install_hooks(&self, hooks: Vec<Arc<dyn Hook>>) -> Result<(), Vec<Arc<dyn Hook>>> {
        self.hooks.0.set(hooks)
    }

    pub fn hooks(&self) -> &[Arc<dyn Hook>] {
        self.hooks.0.get().map_or(&[], Vec::as_slice)
    }

    /// Queues a delivery for a session; a message that does not make it into a full queue
    /// is reported to hooks as dropped for that subscriber.
    fn enqueue(&self, session: &Session, d: Delivery) {
        self.enqueue_held(session, d, None);
    }

    /// [`Broker::enqueue`] for a publisher that waits: a full queue applying backpressure
    /// pushes a holding acknowledgement into `hold`.
    fn enqueue_held(&self, session: &Session, d: Delivery, hold: Option<&mut Vec<DurableAck>>) {
        let c = &self.config;
        let limits = queue::Limits {
            max_messages: c.max_queued_messages,
            max_bytes: c.max_queued_bytes,
            policy: c.queue_full,
            wait: c.queue_full_wait.0,
            slow_after: c.slow_subscriber_timeout.0,
        };
        let out = session.enqueue(d, &limits, hold.is_some(), self.metrics());
        if let (Some(ack), Some(acks)) = (out.hold, hold) {
            acks.push(ack);
        }
        if let Some(to) = out.client {
            for d in &out.dropped {
                // EMQX reports a full queue as `delivery.dropped` (per subscriber), not as
                // `message.dropped` (which is for a message nobody took).
                self.delivery_dropped(&to, &d.msg, DeliveryDropReason::QueueFull);
            }
        }
    }

    pub fn config(&self) -> &MqttConfig {
        &self.config
    }

    /// The broker-wide counters (the broker's part of [`Broker::registry`]).
    pub fn metrics(&self) -> &Metrics {
        self.registry.broker()
    }

    /// The one metrics registry: broker counters, and the rules', actions' and sources'
    /// handles (they register through it).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    pub fn subscription_count(&self) -> usize {
        let s = self.subs.read().unwrap_or_else(|e| e.into_inner());
        s.normal.len() + s.shared.len()
    }

    pub fn retained_count(&self) -> usize {
        lock(&self.retained).len()
    }

    /// Attaches a connection of `client` to the session of its client id, taking it over
    /// from another connection if needed. `client.clean_start` discards an existing
    /// session; `client.expiry_interval` is the session expiry from now on. The session
    /// keeps `client` as its current connection's info (for the admin API).
    pub fn connect(&self, client: Arc<ClientInfo>) -> Attached {
        let client_id = client.client_id.clone();
        let (clean_start, expiry_interval) = (client.clean_start, client.expiry_interval);
        let conn_id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let mut sessions = lock(&self.sessions);
        let existing = sessions.get(&client_id).cloned();
        let mut ended = None;
        let (session, present) = match existing {
            Some(s) if !clean_start => (s, true),
            Some(old) => {
                ended = Some(self.discard_locked(&mut sessions, &old, Kick::TakenOver));
                let s = Arc::new(Session::new(client.clone(), self.tracker()));
                sessions.insert(client_id, s.clone());
                (s, false)
            }
            None => {
                let s = Arc::new(Session::new(client.clone(), self.tracker()));
                sessions.insert(client_id, s.clone());
                (s, false)
            }
        };
        let resumed_will = {
            let mut st = session.lock();
            // Resumed: its expiry is off and a delayed will is cancelled (dropped below).
            let will = self.timers.cancel(&session);
            if let Some(old) = st.conn.take() {
                session.kick(&mut st, old.id, Kick::TakenOver);
            }
            session.set_conn(&mut st, Some(conn_id));
            if self.closing.load(Ordering::Acquire) {
                session.kick(&mut st, conn_id, Kick::Shutdown);
            }
            st.generation += 1;
            st.attached_generation = st.generation;
            st.expiry_interval = expiry_interval;
            st.client = client;
            st.disconnected_at = 0;
            st.changes += 1;
            session.set_connected(true);
            will
        };
        drop(sessions);
        session.wake_all();
        drop(resumed_will);
        if let Some(e) = ended {
            self.after_discard(e);
        }
        self.metrics().inc(BrokerMetric::ConnectionsOpened);
        Attached {
            session,
            conn_id,
            session_present: present,
        }
    }

    /// Tells every connection to go because the server is shutting down (MQTT 5 clients
    /// get DISCONNECT 0x8B), and every connection that attaches from now on as soon as it
    /// does. The listeners call it when they stop accepting.
    pub fn close_connections(&self) {
        // Before the sessions lock: a connection attaching after the sweep below sees it.
        self.closing.store(true, Ordering::Release);
        let sessions: Vec<Arc<Session>> = lock(&self.sessions).values().cloned().collect();
        for s in sessions {
            {
                let mut st = s.lock();
                if let Some(id) = st.conn.as_ref().map(|c| c.id) {
                    s.kick(&mut st, id, Kick::Shutdown);
                }
            }
            s.wake_all();
        }
    }

    /// Removes a session and its subscriptions and timers; kicks its connection, if one is
    /// attached, with `why`. Runs no hook: what is left to do (redispatching its shared
    /// deliveries, publishing a pending will) is returned for [`Broker::after_discard`].
    fn discard_locked(
        &self,
        sessions: &mut HashMap<Arc<str>, Arc<Session>>,
        s: &Arc<Session>,
        why: Kick,
    ) -> Ended {
        if sessions
            .get(&s.client_id)
            .is_some_and(|cur| Arc::ptr_eq(cur, s))
        {
            sessions.remove(&s.client_id);
        }
        let filters: Vec<String> = {
            let mut st = s.lock();
            if let Some(c) = st.conn.take() {
                s.set_conn(&mut st, None);
                s.kick(&mut st, c.id, why);
                st.disconnected_at = hook::now_ms();
            }
            s.set_connected(false);
            st.generation += 1;
            st.changes += 1;
            st.subscriptions.drain().map(|(f, _)| f).collect()
        };
        s.wake_all();
        let mut subs = self.subs.write().unwrap_or_else(|e| e.into_inner());
        for f in filters {
            Self::remove_sub(&mut subs, &f, s);
        }
        drop(subs);
        let shared = {
            let mut st = s.lock();
            // Messages a removed member had not received go to the rest of their group.
            let shared = st.take_shared();
            // What the session still held will never be delivered: end it now (this
            // releases delivery tickets) rather than whenever the last reference goes.
            st.queue.clear();
            st.inflight.clear();
            shared
        };
        Ended {
            session: s.clone(),
            shared,
            will: self.timers.cancel(s),
        }
    }

    /// The rest of a discard, without the `sessions` lock: shared deliveries to the other
    /// members of their groups (those nobody else can take are dropped with the session),
    /// a pending will published (the session ended before its delay).
    fn after_discard(&self, e: Ended) {
        drop(self.redispatch(e.shared, &e.session));
        if let Some((w, client)) = e.will {
            self.publish(will_message(w, &client));
        }
    }

    /// Detaches connection `conn_id` from its session. `will` is the will message still
    /// armed (none after a normal DISCONNECT). Starts the session expiry and will delay
    /// timers; needs a Tokio runtime.
    pub fn disconnect(
        self: &Arc<Self>,
        session: &Arc<Session>,
        conn_id: u64,
        will: Option<Will>,
        client: &Arc<ClientInfo>,
    ) {
        self.metrics().inc(BrokerMetric::ConnectionsClosed);
        let now = Instant::now();
        let (mine, expiry, will) = {
            let mut st = session.lock();
            if st.attached_to(conn_id) {
                session.set_conn(&mut st, None);
                st.disconnected_at = hook::now_ms();
                session.set_connected(false);
                st.generation += 1;
                st.changes += 1;
                let (expiry, generation) = (st.expiry_interval, st.generation);
                // Armed under the session lock: a connect resuming the session (which
                // cancels them under this lock) comes either before (then this connection
                // is not attached) or after.
                let will = match will {
                    Some(w) if expiry > 0 && will_delay(&w).min(expiry) > 0 => {
                        let delay = secs(will_delay(&w).min(expiry));
                        self.timers
                            .arm_will(session, generation, now + delay, w, client.clone());
                        None
                    }
                    w => w,
                };
                if expiry != 0 && expiry != NEVER_EXPIRE {
                    self.timers
                        .arm_expiry(session, generation, now + secs(expiry));
                }
                (true, expiry, will)
            } else {
                (false, 0, will)
            }
        };
        if !mine {
            // Taken over. A resumed session cancels a delayed will; a discarded one ends
            // the old session, which publishes it now.
            if let Some(w) = will {
                let still_registered = lock(&self.sessions)
                    .get(&session.client_id)
                    .is_some_and(|s| Arc::ptr_eq(s, session));
                if !still_registered || will_delay(&w) == 0 {
                    self.publish(will_message(w, client));
                }
            }
            return;
        }
        let pending = session.lock().take_shared();
        // Nobody else can take them: they stay with the departed member's session.
        for d in self.redispatch(pending, session) {
            self.enqueue(session, d);
        }

        if expiry == 0 {
            let ended = self.discard_locked(&mut lock(&self.sessions), session, Kick::TakenOver);
            self.after_discard(ended);
        } else {
            self.ensure_timer_task();
        }
        // No delay (or a session that ends now): the will goes out at once.
        if let Some(w) = will {
            self.publish(will_message(w, client));
        }
    }

    /// Gives deliveries taken from a departed shared-group member to other connected
    /// members; returns those nobody else can take.
    fn redispatch(&self, pending: Vec<Delivery>, from: &Arc<Session>) -> Vec<Delivery> {
        if pending.is_empty() {
            return pending;
        }
        let subs = self.subs.read().unwrap_or_else(|e| e.into_inner());
        let mut targets = Vec::new();
        let mut keep = Vec::new();
        for d in pending {
            let Some(via) = &d.shared else { continue };
            let chosen = subs
                .shared
                .get(&via.filter, &via.group)
                .and_then(|g| g.pick(Some(from)))
                .filter(|e| e.session.is_connected())
                .cloned();
            match chosen {
                Some(e) => targets.push((e, d)),
                None => keep.push(d),
            }
        }
        drop(subs);
        for (e, mut d) in targets {
            d.qos = d.msg.qos.min(e.opts.qos);
            self.enqueue(&e.session, d);
        }
        keep
    }

    /// Routes a message: stores or clears it as retained if flagged, then queues it for every
    /// matching session. Returns how many sessions it was queued for.
    pub fn publish(&self, msg: Message) -> usize {
        let mut acks = Vec::new();
        self.route(msg, &mut acks, false).unwrap_or(0)
    }

    /// Like [`Broker::publish`], collecting the acknowledgements of durable consumers: a
    /// QoS 1/2 publisher is acknowledged only when all of them resolved `Ok`.
    /// A message its publisher may not publish is dropped (0 sessions).
    pub fn publish_durable(&self, msg: Message, acks: &mut Vec<DurableAck>) -> usize {
        self.publish_checked(msg, acks).unwrap_or(0)
    }

    /// Like [`Broker::publish_durable`], telling a publisher refused by authorization.
    /// The caller waits for `acks`: a full subscriber queue applying backpressure holds it
    /// (see [`queue`]).
    pub fn publish_checked(
        &self,
        msg: Message,
        acks: &mut Vec<DurableAck>,
    ) -> Result<usize, PublishDenied> {
        self.route(msg, acks, true)
    }

    fn route(
        &self,
        msg: Message,
        acks: &mut Vec<DurableAck>,
        waits: bool,
    ) -> Result<usize, PublishDenied> {
        self.metrics().inc(metrics::received(msg.qos));
        if let Some(from) = msg.publisher.as_deref().filter(|p| !p.is_internal())
            && !self
                .authorize(from, AuthzAction::Publish, &msg.topic, msg.qos, msg.retain)
                .allow
        {
            return Err(PublishDenied {
                action: self.acl().deny_action,
            });
        }
        let msg = Arc::new(msg);
        for h in self.hooks() {
            h.message_published(&msg, acks);
        }
        let strict_before = match msg.qos {
            QoS::AtMostOnce => None,
            _ => self.strict_marks(),
        };
        if msg.retain {
            let limits = retained::Limits {
                max_count: self.config.max_retained_messages,
                max_bytes: self.config.max_retained_bytes,
                max_payload: self.config.max_retained_payload_size,
            };
            let kept = lock(&self.retained).set(&msg, &limits, Instant::now());
            match kept {
                Ok(purged) => {
                    if purged > 0 {
                        self.metrics()
                            .add(BrokerMetric::RetainedExpiredPurged, purged as u64);
                    }
                    self.retained_changed();
                }
                Err(retained::NotKept::MaxCount) => {
                    self.metrics().inc(BrokerMetric::RetainedNotKeptCount);
                }
                Err(retained::NotKept::MaxBytes) => {
                    self.metrics().inc(BrokerMetric::RetainedNotKeptBytes);
                }
                Err(retained::NotKept::PayloadTooLarge) => {
                    self.metrics().inc(BrokerMetric::RetainedNotKeptSize);
                }
            }
        }
        let mut normal: Vec<SubEntry> = Vec::new();
        let mut shared: Vec<(SubEntry, SharedVia)> = Vec::new();
        let mut no_local: Vec<Arc<Session>> = Vec::new();
        {
            let subs = self.subs.read().unwrap_or_else(|e| e.into_inner());
            subs.normal.for_each_match(&msg.topic, |e| {
                let own = e.opts.no_local && msg.publisher_id() == Some(&*e.session.client_id);
                if own {
                    no_local.push(e.session.clone());
                } else {
                    normal.push(e.clone());
                }
            });
            subs.shared.for_each_match(&msg.topic, |g| {
                if let Some(e) = g.pick(None) {
                    shared.push((
                        e.clone(),
                        SharedVia {
                            group: g.name.clone(),
                            filter: g.filter.clone(),
                        },
                    ));
                }
            });
        }
        for s in no_local {
            let to = s.lock().client().clone();
            self.delivery_dropped(&to, &msg, DeliveryDropReason::NoLocal);
        }
        let count = self.deliver_merged(&msg, normal, acks, waits) + shared.len();
        for (e, via) in shared {
            let qos = msg.qos.min(e.opts.qos);
            let d = Delivery {
                qos,
                retain: msg.retain && e.opts.retain_as_published,
                sub_ids: e.sub_id.into_iter().collect(),
                ticket: ticket_for(&msg, qos),
                seq: 0,
                msg: msg.clone(),
                shared: Some(via),
            };
            self.enqueue_held(&e.session, d, waits.then_some(&mut *acks));
        }
        if count == 0 {
            self.metrics().inc(BrokerMetric::DroppedNoSubscribers);
            for h in self.hooks() {
                h.message_dropped(&msg, DropReason::NoSubscribers);
            }
        }
        // The publisher's own hold: with no QoS 1/2 delivery left, the message is delivered.
        if let Some(c) = &msg.completion {
            c.release();
        }
        // Strict persistence: acknowledged once the durable state it changed is committed.
        if let Some(before) = strict_before
            && self.strict_marks() != Some(before)
            && let Some(barrier) = self.commit_barrier()
        {
            acks.push(barrier);
        }
        Ok(count)
    }

    /// Overlapping subscriptions of one session give one delivery: the highest granted QoS,
    /// every subscription identifier, retain as published if any subscription asked for it.
    fn deliver_merged(
        &self,
        msg: &Arc<Message>,
        mut entries: Vec<SubEntry>,
        acks: &mut Vec<DurableAck>,
        waits: bool,
    ) -> usize {
        entries.sort_unstable_by_key(|e| Arc::as_ptr(&e.session));
        let mut count = 0;
        let mut i = 0;
        while i < entries.len() {
            let session = entries[i].session.clone();
            let mut qos = QoS::AtMostOnce;
            let mut rap = false;
            let mut sub_ids = Vec::new();
            while i < entries.len() && Arc::ptr_eq(&entries[i].session, &session) {
                let e = &entries[i];
                qos = qos.max(e.opts.qos);
                rap |= e.opts.retain_as_published;
                sub_ids.extend(e.sub_id);
                i += 1;
            }
            let qos = msg.qos.min(qos);
            let d = Delivery {
                msg: msg.clone(),
                qos,
                retain: msg.retain && rap,
                sub_ids,
                shared: None,
                ticket: ticket_for(msg, qos),
                seq: 0,
            };
            self.enqueue_held(&session, d, waits.then_some(&mut *acks));
            count += 1;
        }
        count
    }
}

/// QoS 1/2 deliveries of a tracked message hold a ticket until they end.
fn ticket_for(msg: &Arc<Message>, qos: QoS) -> Option<Arc<Ticket>> {
    match &msg.completion {
        Some(c) if qos != QoS::AtMostOnce => Some(c.ticket()),
        _ => None,
    }
}

fn will_delay(w: &Will) -> u32 {
    w.properties.will_delay_interval.unwrap_or(0)
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// The application message a will becomes when published.
pub fn will_message(w: Will, client: &Arc<ClientInfo>) -> Message {
    let p = w.properties;
    Message {
        topic: w.topic,
        payload: w.payload,
        qos: w.qos,
        retain: w.retain,
        dup: false,
        properties: Properties {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type,
            response_topic: p.response_topic,
            correlation_data: p.correlation_data,
            user_properties: p.user_properties,
            ..Properties::default()
        },
        publisher: Some(client.clone()),
        completion: None,
        received_at: Instant::now(),
        timestamp: hook::now_ms(),
    }
}

#[cfg(test)]
mod tests;
