//! Persistence of sessions and retained messages through a [`Store`]: cheap change
//! recording on the routing path, batched commits on a background task, and the restore at
//! start.
//!
//! Recording: a change to a durable session (expiry > 0, or already stored) puts its client
//! id on the [`Tracker`]'s dirty list once per sync (the session's `enlisted` flag); a
//! retained set or delete records its topic in `Retained`'s changed set. Both happen under
//! locks the routing path already holds, plus one short leaf lock for the list. A session
//! that is not durable records nothing (a clean-start session with expiry 0 never reaches
//! the list), and a broker without a store has no tracker at all.
//!
//! Committing: [`Broker::sync`] takes the dirty ids and topics, snapshots each session (its
//! current state, under its lock, one at a time) and each retained topic, and hands the batch
//! to [`Store::apply`] (one transaction). [`Broker::run_sync`] calls it every
//! `sync_interval`, and once more at stop, on a blocking thread. Lock order: the sync lock
//! (one sync at a time) before everything else; then `sessions` (briefly, per id) and one
//! session at a time, then `retained`; the tracker's list is a leaf.
//!
//! Durably queued counts as delivered: when a sync snapshots a durable session that is
//! offline, it takes the delivery tickets of in-process publishers (Kafka sources) out of its
//! queued and inflight deliveries and releases them after the commit succeeded (after a
//! failed one, with the next commit that succeeds). So an offline device no longer holds
//! back a source's offsets; a connected session keeps its tickets until its client
//! acknowledges, and without a store nothing changes.
//!
//! Strict mode (`sync_interval` 0): a QoS 1/2 PUBLISH that changed durable state, a QoS 2
//! PUBLISH or a SUBSCRIBE of a durable session is acknowledged only after a commit that
//! covers it ([`Broker::commit_barrier`]); the sync task then commits as soon as someone
//! waits, grouping whatever accumulated while the previous commit ran.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_mqtt::reason;
use tokio::sync::{Notify, oneshot};

use crate::hook::{DurableAck, NotDurable, now_ms};
use crate::message::Delivery;
use crate::message::Ticket;
use crate::session::{Session, SessionState};
use crate::store::{
    Change, Loaded, NoStore, SessionRecord, SessionWrite, Store, StoreError, StoredDelivery,
    StoredSession,
};
use crate::{Broker, NEVER_EXPIRE, Registry, lock};
use ferry_metrics::{Counters, PersistMetric};

type Waiter = oneshot::Sender<Result<(), NotDurable>>;

/// The dirty list: client ids of durable sessions changed since the last sync, and the
/// acknowledgements waiting for the next commit (strict mode).
#[derive(Debug)]
pub(crate) struct Tracker {
    pending: Mutex<Pending>,
    /// Changes to durable state so far (strict mode compares it around a publish).
    marks: AtomicU64,
    /// Counts client ids put on the list (`PersistMetric::Marked`).
    registry: Arc<Registry>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct Pending {
    ids: Vec<Arc<str>>,
    waiters: Vec<Waiter>,
}

impl Tracker {
    /// A durable session changed (called with its lock held).
    pub(crate) fn changed(&self) {
        self.marks.fetch_add(1, Ordering::Relaxed);
    }

    /// Puts a client id on the list (once per sync per session: see `enlisted`).
    pub(crate) fn enlist(&self, id: Arc<str>) {
        self.registry.persist().inc(PersistMetric::Marked);
        lock(&self.pending).ids.push(id);
    }

    fn marks(&self) -> u64 {
        self.marks.load(Ordering::Relaxed)
    }
}

/// A broker's persistence: its store, dirty list and sync statistics.
#[derive(Debug)]
pub(crate) struct Persist {
    /// Replaced by a [`NoStore`] on [`Broker::close_store`].
    store: Mutex<Arc<dyn Store>>,
    pub(crate) tracker: Arc<Tracker>,
    interval: Duration,
    /// One sync at a time, so batches reach the store in the order they were taken.
    sync_lock: Mutex<()>,
    /// Tickets taken by a sync whose commit failed: released after the next commit that
    /// succeeds (their sessions are on the dirty list again).
    parked: Mutex<Vec<Arc<Ticket>>>,
    /// Set by [`Broker::close_store`]: later "commits" keep nothing, so they settle nothing.
    closed: AtomicBool,
}

/// What persistence did so far ([`Broker::persist_stats`]; the same numbers are in the
/// metrics registry as [`PersistMetric`]s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistStats {
    /// Commits handed to the store (batches with at least one change).
    pub commits: u64,
    /// Changes written (session puts and deletes, retained sets and deletes).
    pub changes: u64,
    /// Commits that failed (their changes are retried on the next sync).
    pub failures: u64,
    /// Times a session was put on the dirty list.
    pub enlisted: u64,
}

/// What [`Broker::with_store`] found in the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    pub sessions: usize,
    /// Sessions that expired while Ferry was down (deleted on the first sync).
    pub expired: usize,
    pub retained: usize,
    /// Subscriptions of the restored sessions put back in the tries.
    pub subscriptions: usize,
    /// Stored subscriptions refused when put back (e.g. a filter no longer valid).
    pub subscriptions_dropped: usize,
    /// Queued deliveries of the restored sessions.
    pub queued: usize,
    /// Inflight (sent, unacknowledged) deliveries of the restored sessions.
    pub inflight: usize,
    /// Retained messages whose expiry passed while Ferry was down (left out).
    pub retained_expired: usize,
}

impl Broker {
    /// A broker whose sessions and retained messages persist in `store`: loads what it
    /// holds (sessions offline, with their queues, inflight windows and subscriptions;
    /// session expiry timers restarted with the time already elapsed; expired sessions
    /// dropped). `sync_interval` is how often [`Broker::run_sync`] commits; zero is the strict
    /// mode (see the module doc). Needs a Tokio runtime (expiry timers); blocks on the store.
    pub fn with_store(
        config: crate::MqttConfig,
        store: Arc<dyn Store>,
        sync_interval: Duration,
    ) -> Result<(Arc<Broker>, Restored), StoreError> {
        let loaded = store.load()?;
        let registry = Registry::new();
        let persist = Persist {
            store: Mutex::new(store),
            tracker: Arc::new(Tracker {
                pending: Mutex::default(),
                marks: AtomicU64::new(0),
                registry: registry.clone(),
                wake: Notify::new(),
            }),
            interval: sync_interval,
            sync_lock: Mutex::new(()),
            parked: Mutex::default(),
            closed: AtomicBool::new(false),
        };
        let broker = Arc::new(Broker::build(config, registry, Some(persist)));
        let restored = broker.restore(loaded);
        restored.count(broker.registry.persist());
        Ok((broker, restored))
    }

    pub(crate) fn tracker(&self) -> Option<Arc<Tracker>> {
        self.persist.as_ref().map(|p| p.tracker.clone())
    }

    /// Is every QoS 1/2 PUBLISH and SUBSCRIBE that changes durable state acknowledged only
    /// after it was committed (`sync_interval` 0)?
    pub fn is_strict(&self) -> bool {
        self.persist.as_ref().is_some_and(|p| p.interval.is_zero())
    }

    /// Strict mode: resolves after a commit that covers every change recorded so far. `None`
    /// when the broker does not persist or is not strict.
    pub fn commit_barrier(&self) -> Option<DurableAck> {
        let p = self.persist.as_ref().filter(|p| p.interval.is_zero())?;
        let (tx, rx) = DurableAck::channel();
        lock(&p.tracker.pending).waiters.push(tx);
        p.tracker.wake.notify_one();
        Some(rx)
    }

    /// Strict mode: the count of durable changes, to compare after routing a publish.
    pub(crate) fn strict_marks(&self) -> Option<u64> {
        let p = self.persist.as_ref().filter(|p| p.interval.is_zero())?;
        Some(p.tracker.marks())
    }

    /// A retained message was set or cleared (strict mode waits for it).
    pub(crate) fn retained_changed(&self) {
        if let Some(p) = &self.persist {
            p.tracker.changed();
        }
    }

    pub fn persist_stats(&self) -> PersistStats {
        let m = self.registry.persist();
        PersistStats {
            commits: m.get(PersistMetric::Commits),
            changes: m.get(PersistMetric::Changes),
            failures: m.get(PersistMetric::CommitErrors),
            enlisted: m.get(PersistMetric::Marked),
        }
    }

    /// Commits every change recorded since the last sync, in one store transaction; returns
    /// how many changes it wrote. Blocks on the store: call it from a blocking thread (as
    /// [`Broker::run_sync`] does) or at shutdown. A failed commit is retried by the next.
    pub fn sync(&self) -> Result<usize, StoreError> {
        let Some(p) = &self.persist else {
            return Ok(0);
        };
        let _one = lock(&p.sync_lock);
        let started = std::time::Instant::now();
        let metrics = self.registry.persist();
        metrics.inc(PersistMetric::Syncs);
        let Pending { ids, waiters } = std::mem::take(&mut *lock(&p.tracker.pending));
        // Tickets of deliveries this commit makes durable (see `settle_offline`).
        let mut settled = std::mem::take(&mut *lock(&p.parked));
        let settle = !p.closed.load(Ordering::Acquire);
        let topics = lock(&self.retained).take_changed();
        let mut changes = Vec::with_capacity(ids.len() + topics.len());
        let mut seen = HashSet::with_capacity(ids.len());
        for id in &ids {
            if !seen.insert(id.clone()) {
                continue;
            }
            let registered = lock(&self.sessions).get(id).cloned();
            match registered {
                Some(s) => {
                    let mut st = s.lock();
                    st.enlisted = false;
                    if st.expiry_interval > 0 {
                        st.stored = true;
                        if settle && st.conn.is_none() {
                            settle_offline(&mut st, &mut settled);
                        }
                        changes.push(Change::PutSession(Box::new(write(&s, &mut st))));
                    } else {
                        st.stored = false;
                        st.written = None;
                        changes.push(Change::DeleteSession(id.clone()));
                    }
                }
                None => changes.push(Change::DeleteSession(id.clone())),
            }
        }
        {
            let r = lock(&self.retained);
            for t in &topics {
                changes.push(match r.get(t) {
                    Some(m) => Change::PutRetained(m),
                    None => Change::DeleteRetained(t.clone()),
                });
            }
        }
        let result = if changes.is_empty() {
            Ok(())
        } else {
            let store = lock(&p.store).clone();
            store.apply(&changes)
        };
        match &result {
            Ok(()) => {
                if !changes.is_empty() {
                    let took = started.elapsed();
                    metrics.inc(PersistMetric::Commits);
                    metrics.add(PersistMetric::Changes, changes.len() as u64);
                    metrics.set(
                        PersistMetric::LastCommitMicros,
                        u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                    );
                    self.registry.commit_latency().record(took);
                }
                for w in waiters {
                    let _ = w.send(Ok(()));
                }
                // Durably queued: counted as delivered (their publishers may move on).
                metrics.add(PersistMetric::DurablyQueued, settled.len() as u64);
                drop(settled);
            }
            Err(e) => {
                let n = metrics.inc(PersistMetric::CommitErrors);
                if n.is_power_of_two() {
                    tracing::error!(failures = n, "state commit failed: {e}");
                }
                // Retry on the next sync: the sessions and topics are dirty again.
                for id in seen {
                    if let Some(s) = lock(&self.sessions).get(&id).cloned() {
                        let mut st = s.lock();
                        st.enlisted = true;
                        // What the store holds is not known now: rewrite it whole.
                        st.written = None;
                    }
                    lock(&p.tracker.pending).ids.push(id);
                }
                lock(&self.retained).mark_changed(topics);
                lock(&p.parked).extend(settled);
                for w in waiters {
                    let _ = w.send(Err(NotDurable {
                        code: reason::UNSPECIFIED_ERROR,
                        why: e.to_string(),
                    }));
                }
            }
        }
        result.map(|()| changes.len())
    }

    /// Releases the store (e.g. so that a restart in the same process can open its file
    /// again) after a last sync. Later changes are kept in memory only.
    pub fn close_store(&self) -> Result<usize, StoreError> {
        let Some(p) = &self.persist else {
            return Ok(0);
        };
        let written = self.sync();
        let _one = lock(&p.sync_lock);
        *lock(&p.store) = Arc::new(NoStore::default());
        p.closed.store(true, Ordering::Release);
        written
    }

    /// The sync task: commits every `sync_interval` (strict mode: whenever an
    /// acknowledgement waits) until `stop` resolves, then once more so that a graceful stop
    /// writes everything. Returns at once, after that final sync, without a store.
    pub async fn run_sync(self: Arc<Self>, stop: impl Future<Output = ()>) {
        let Some(p) = &self.persist else {
            stop.await;
            return;
        };
        let strict = p.interval.is_zero();
        let mut tick = tokio::time::interval(p.interval.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let tracker = p.tracker.clone();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick(), if !strict => {}
                _ = tracker.wake.notified(), if strict => {}
            }
            self.sync_blocking().await;
        }
        self.sync_blocking().await;
    }

    async fn sync_blocking(self: &Arc<Self>) {
        let b = self.clone();
        // Errors are counted and logged by `sync`, and retried by the next one.
        let _ = tokio::task::spawn_blocking(move || b.sync()).await;
    }

    /// Puts loaded state back: sessions offline with their subscriptions in the tries and
    /// expiry timers restarted, retained messages (expired ones left out).
    fn restore(self: &Arc<Self>, loaded: Loaded) -> Restored {
        let mut out = Restored::default();
        let now = now_ms();
        let tracker = self.tracker();
        for StoredSession {
            record: r,
            deliveries,
        } in loaded.sessions
        {
            let elapsed = u64::try_from(now.saturating_sub(r.expiry_from())).unwrap_or(0);
            let expiry_ms = u64::from(r.expiry_interval) * 1000;
            if r.expiry_interval == 0 || (r.expiry_interval != NEVER_EXPIRE && elapsed >= expiry_ms)
            {
                tracing::debug!(client_id = %r.client_id, "stored session expired while stopped");
                if let Some(t) = &tracker {
                    t.enlist(r.client_id.clone());
                }
                out.expired += 1;
                continue;
            }
            let mut session = Session::new(r.client.clone(), tracker.clone());
            session.created_at = r.created_at;
            let session = Arc::new(session);
            let generation = {
                let mut st = session.lock();
                st.expiry_interval = r.expiry_interval;
                st.disconnected_at = r.expiry_from();
                put_back(&mut st, deliveries);
                out.queued += st.queue.len();
                out.inflight += st.inflight.len();
                st.awaiting_rel = r.awaiting_rel;
                st.awaiting_rel.sort_unstable();
                st.awaiting_rel.dedup();
                st.next_packet_id = r.next_packet_id;
                st.stored = true;
                st.generation = 1;
                st.generation
            };
            lock(&self.sessions).insert(r.client_id.clone(), session.clone());
            for (filter, sub) in r.subscriptions {
                match self.subscribe_quiet(&session, &filter, sub.opts, sub.sub_id) {
                    Ok(_) => out.subscriptions += 1,
                    Err(e) => {
                        out.subscriptions_dropped += 1;
                        tracing::warn!(client_id = %r.client_id, filter, "stored subscription dropped: {}", e.what);
                    }
                }
            }
            if r.expiry_interval != NEVER_EXPIRE {
                let left = Duration::from_millis(expiry_ms - elapsed);
                let at = tokio::time::Instant::now() + left;
                self.timers.arm_expiry(&session, generation, at);
                self.ensure_timer_task();
            }
            out.sessions += 1;
        }
        let at = tokio::time::Instant::now();
        let mut retained = lock(&self.retained);
        for m in loaded.retained {
            if m.expiry(at) != crate::Expiry::Expired {
                retained.restore(m);
                out.retained += 1;
            } else {
                out.retained_expired += 1;
            }
        }
        out
    }
}

impl Restored {
    /// Sets the restore gauges of the registry.
    fn count(&self, m: &Counters<PersistMetric>) {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        m.set(PersistMetric::RestoredSessions, n(self.sessions));
        m.set(PersistMetric::RestoredSubscriptions, n(self.subscriptions));
        m.set(PersistMetric::RestoredQueued, n(self.queued));
        m.set(PersistMetric::RestoredInflight, n(self.inflight));
        m.set(PersistMetric::RestoredRetained, n(self.retained));
        m.set(PersistMetric::DroppedExpiredSessions, n(self.expired));
        m.set(
            PersistMetric::DroppedInvalidSubscriptions,
            n(self.subscriptions_dropped),
        );
        m.set(
            PersistMetric::DroppedExpiredRetained,
            n(self.retained_expired),
        );
    }
}

/// An offline durable session is about to be committed: every queued and inflight delivery
/// it holds will be in the store, so their tickets (of in-process publishers, e.g. Kafka
/// sources) are taken out, to be released once the commit succeeded (issue 12 item 5: an
/// offline device no longer holds back a source's offsets). A session that is online keeps
/// its tickets until its client acknowledges.
fn settle_offline(st: &mut SessionState, out: &mut Vec<Arc<Ticket>>) {
    let deliveries = st
        .queue
        .iter_mut()
        .chain(st.inflight.iter_mut().map(|i| &mut i.delivery));
    out.extend(deliveries.filter_map(|d| d.ticket.take()));
}

/// A session's deliveries back in its queue and inflight window, in `seq` order. Version 1
/// records (seq 0) are renumbered, and the next write replaces what the store holds.
fn put_back(st: &mut SessionState, mut deliveries: Vec<StoredDelivery>) {
    let legacy = deliveries.iter().any(|d| d.seq == 0);
    if legacy {
        for (seq, d) in (1..).zip(deliveries.iter_mut()) {
            d.seq = seq;
            d.delivery.seq = seq;
        }
    } else {
        deliveries.sort_unstable_by_key(|d| d.seq);
    }
    st.next_seq = deliveries.last().map_or(1, |d| d.seq + 1);
    let mut written = HashMap::with_capacity(deliveries.len());
    for d in deliveries {
        written.insert(d.seq, d.sent);
        match d.sent {
            Some((packet_id, state)) => st.inflight.push_back(crate::session::Inflight {
                packet_id,
                delivery: d.delivery,
                state,
            }),
            None => st.queue.push_back(d.delivery),
        }
    }
    st.written = (!legacy).then(|| Box::new(written));
}

/// The write of a durable session, taken under its lock: its record, and its deliveries
/// compared with what the store holds (`SessionState::written`), so that only new and
/// changed deliveries are written and only gone ones deleted. Tickets are left out: a
/// delivery ticket belongs to this process's publisher.
fn write(s: &Session, st: &mut SessionState) -> SessionWrite {
    let record = SessionRecord {
        client_id: s.client_id.clone(),
        created_at: s.created_at,
        expiry_interval: st.expiry_interval,
        disconnected_at: st.disconnected_at,
        saved_at: now_ms(),
        client: st.client.clone(),
        subscriptions: st
            .subscriptions
            .iter()
            .map(|(f, sub)| (f.clone(), sub.clone()))
            .collect(),
        awaiting_rel: st.awaiting_rel.clone(),
        next_packet_id: st.next_packet_id,
    };
    let (replace, mut before) = match st.written.take() {
        Some(w) => (false, *w),
        None => (true, HashMap::new()),
    };
    let current = st
        .inflight
        .iter()
        .map(|i| (&i.delivery, Some((i.packet_id, i.state))))
        .chain(st.queue.iter().map(|d| (d, None)));
    let mut now = HashMap::with_capacity(st.inflight.len() + st.queue.len());
    let mut put = Vec::new();
    for (d, sent) in current {
        if before.remove(&d.seq) != Some(sent) {
            put.push(StoredDelivery {
                seq: d.seq,
                delivery: Delivery {
                    ticket: None,
                    ..d.clone()
                },
                sent,
            });
        }
        now.insert(d.seq, sent);
    }
    let mut removed: Vec<u64> = before.into_keys().collect();
    removed.sort_unstable();
    st.written = Some(Box::new(now));
    SessionWrite {
        record,
        replace,
        put,
        removed,
    }
}

#[cfg(test)]
mod incremental_tests;
#[cfg(test)]
mod settle_tests;
#[cfg(test)]
mod tests;
