//! Session expiry and will delay timers: one broker-wide task over a map of deadlines, not a
//! task per disconnect.
//!
//! A detached session has at most one expiry deadline and one will deadline ([`Timers`],
//! keyed by the session's `Arc` address). A connection resuming the session removes both
//! ([`Timers::cancel`]), so a client that reconnects often leaves nothing behind, and a
//! session that is discarded hands back its pending will to be published at once (the
//! session ended before the will delay did). The task sleeps until the earliest deadline,
//! takes what is due under the timers lock, releases it, then fires: an expiry discards the
//! session if it was not attached or detached again since (its `generation`), a will is
//! published if no connection attached since.
//!
//! Locks: the timers lock is a leaf. It may be taken under `sessions` and a session's state
//! (arming under the session lock makes arming and a resuming connect's cancel one order),
//! and nothing else is locked, and nothing is called, while it is held.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use ferry_mqtt::Will;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::hook::ClientInfo;
use crate::session::{Kick, Session};
use crate::{Broker, lock, will_message};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Expiry,
    Will,
}

/// One deadline: when, and a sequence number that orders equal deadlines by arming order
/// (a will delay cut short by the session expiry fires before the expiry).
type Key = (Instant, u64);

#[derive(Debug)]
struct WillTimer {
    key: Key,
    generation: u64,
    /// Boxed: an armed session without a will pays one pointer.
    will: Box<Will>,
    client: Arc<ClientInfo>,
}

#[derive(Debug)]
struct Armed {
    session: Arc<Session>,
    /// The deadline and the session generation it was armed for.
    expiry: Option<(Key, u64)>,
    will: Option<WillTimer>,
}

#[derive(Debug, Default)]
struct State {
    due: BTreeMap<Key, (usize, Kind)>,
    armed: HashMap<usize, Armed>,
    next_seq: u64,
}

/// A deadline that passed.
#[derive(Debug)]
pub(crate) enum Fired {
    Expiry {
        session: Arc<Session>,
        generation: u64,
    },
    Will {
        session: Arc<Session>,
        generation: u64,
        will: Box<Will>,
        client: Arc<ClientInfo>,
    },
}

/// A pending will taken back from the timers.
pub(crate) type PendingWill = (Will, Arc<ClientInfo>);

/// The deadlines of detached sessions and the handle of the task that fires them.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    state: Mutex<State>,
    wake: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

fn key_of(s: &Arc<Session>) -> usize {
    Arc::as_ptr(s) as usize
}

impl Timers {
    /// Discards `session` at `at` unless it is attached or detached again (replaces an
    /// expiry armed before for it).
    pub(crate) fn arm_expiry(&self, session: &Arc<Session>, generation: u64, at: Instant) {
        {
            let mut st = lock(&self.state);
            let key = st.key(at);
            st.due.insert(key, (key_of(session), Kind::Expiry));
            let armed = st.entry(session);
            if let Some((k, _)) = armed.expiry.replace((key, generation)) {
                st.due.remove(&k);
            }
        }
        self.wake.notify_one();
    }

    /// Publishes `will` at `at` unless a connection attaches to `session` before (replaces
    /// a will armed before for it).
    pub(crate) fn arm_will(
        &self,
        session: &Arc<Session>,
        generation: u64,
        at: Instant,
        will: Will,
        client: Arc<ClientInfo>,
    ) {
        let old = {
            let mut st = lock(&self.state);
            let key = st.key(at);
            st.due.insert(key, (key_of(session), Kind::Will));
            let armed = st.entry(session);
            let old = armed.will.replace(WillTimer {
                key,
                generation,
                will: Box::new(will),
                client,
            });
            if let Some(w) = &old {
                st.due.remove(&w.key);
            }
            old
        };
        drop(old);
        self.wake.notify_one();
    }

    /// Removes the deadlines of `session` (it is attached again, or discarded); returns
    /// its pending will.
    pub(crate) fn cancel(&self, session: &Arc<Session>) -> Option<PendingWill> {
        let armed = {
            let mut st = lock(&self.state);
            let armed = st.armed.remove(&key_of(session))?;
            if let Some((k, _)) = armed.expiry {
                st.due.remove(&k);
            }
            if let Some(w) = &armed.will {
                st.due.remove(&w.key);
            }
            armed
        };
        armed.will.map(|w| (*w.will, w.client))
    }

    /// Takes every deadline at or before `now`, earliest first.
    fn take_due(&self, now: Instant) -> Vec<Fired> {
        let mut out = Vec::new();
        let mut st = lock(&self.state);
        while let Some(entry) = st.due.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (addr, kind) = entry.remove();
            let Some(armed) = st.armed.get_mut(&addr) else {
                continue;
            };
            let session = armed.session.clone();
            match kind {
                Kind::Expiry => {
                    if let Some((_, generation)) = armed.expiry.take() {
                        out.push(Fired::Expiry {
                            session,
                            generation,
                        });
                    }
                }
                Kind::Will => {
                    if let Some(w) = armed.will.take() {
                        out.push(Fired::Will {
                            session,
                            generation: w.generation,
                            will: w.will,
                            client: w.client,
                        });
                    }
                }
            }
            if armed.expiry.is_none() && armed.will.is_none() {
                st.armed.remove(&addr);
            }
        }
        out
    }

    fn next_deadline(&self) -> Option<Instant> {
        lock(&self.state).due.first_key_value().map(|(k, _)| k.0)
    }

    /// Deadlines armed (expiries and wills).
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).due.len()
    }

    /// Wakes the task (the broker is gone: it ends).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

impl State {
    fn key(&mut self, at: Instant) -> Key {
        self.next_seq += 1;
        (at, self.next_seq)
    }

    fn entry(&mut self, session: &Arc<Session>) -> &mut Armed {
        self.armed.entry(key_of(session)).or_insert_with(|| Armed {
            session: session.clone(),
            expiry: None,
            will: None,
        })
    }
}

impl Broker {
    /// Starts the timer task if it is not running (the first disconnect, or a runtime that
    /// ended). Without a Tokio runtime the deadlines wait for the next call from one.
    pub(crate) fn ensure_timer_task(self: &Arc<Self>) {
        let mut task = lock(&self.timers.task);
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no Tokio runtime: session expiry and will delay timers wait");
            return;
        };
        *task = Some(rt.spawn(run(Arc::downgrade(self), self.timers.clone())));
    }

    /// How many session expiry and will delay deadlines are armed (one of each at most per
    /// detached session; none for an attached one).
    pub fn timers_armed(&self) -> usize {
        self.timers.len()
    }

    fn fire(&self, f: Fired) {
        match f {
            Fired::Will {
                session,
                generation,
                will,
                client,
            } => {
                // A connection resuming the session in the meantime cancels the will.
                if session.lock().attached_generation < generation {
                    self.publish(will_message(*will, &client));
                }
            }
            Fired::Expiry {
                session,
                generation,
            } => {
                let ended = {
                    let mut sessions = lock(&self.sessions);
                    let current = session.lock().generation == generation;
                    current.then(|| {
                        tracing::debug!(client_id = %session.client_id, "session expired");
                        self.discard_locked(&mut sessions, &session, Kick::TakenOver)
                    })
                };
                if let Some(e) = ended {
                    self.after_discard(e);
                }
            }
        }
    }
}

async fn run(broker: Weak<Broker>, timers: Arc<Timers>) {
    loop {
        match timers.next_deadline() {
            Some(at) => tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = timers.wake.notified() => {}
            },
            None => timers.wake.notified().await,
        }
        let Some(b) = broker.upgrade() else {
            return;
        };
        for f in timers.take_due(Instant::now()) {
            b.fire(f);
        }
    }
}
