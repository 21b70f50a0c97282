//! Admin queries and operations for the HTTP API: clients (sessions) with their counters,
//! subscriptions, routed topic filters, retained messages, and kicking a client.
//!
//! Everything here returns owned snapshots: the API maps them to its JSON shapes without
//! holding a broker lock. Locks are taken briefly and in the broker's order (`sessions`,
//! then `subs`, then one session's state at a time): a query over every session first
//! clones the `Arc<Session>` list and releases the map, then locks each session in turn,
//! so routing and connects are never blocked for the length of a whole listing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use ferry_mqtt::topic::{TopicError, matches, parse_subscription, validate_filter, validate_name};
use ferry_mqtt::{QoS, SubOptions};
use tokio::time::Instant;

use crate::hook::ClientInfo;
use crate::message::{Expiry, Message};
use crate::session::{Kick, Session};
use crate::{Broker, lock};

/// Traffic of one session's connections (EMQX's per-client stats). Relaxed atomics: the
/// connection adds once per read or write batch, routers add `mqueue_dropped`; they are
/// read for reporting only. 7 × 8 = 56 bytes per session.
#[derive(Debug, Default)]
pub struct ClientCounters {
    /// PUBLISH packets received from the client.
    pub recv_msg: AtomicU64,
    /// PUBLISH packets sent to the client (resends included).
    pub send_msg: AtomicU64,
    /// Packets received (CONNECT included).
    pub recv_pkt: AtomicU64,
    /// Packets sent (CONNACK included).
    pub send_pkt: AtomicU64,
    /// Bytes received.
    pub recv_oct: AtomicU64,
    /// Bytes sent.
    pub send_oct: AtomicU64,
    /// Messages pushed out of the full session queue.
    pub mqueue_dropped: AtomicU64,
}

impl ClientCounters {
    /// Adds `n` (nothing to do for 0, so callers can flush unconditionally).
    pub fn add(c: &AtomicU64, n: u64) {
        if n != 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> ClientStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClientStats {
            recv_msg: g(&self.recv_msg),
            send_msg: g(&self.send_msg),
            recv_pkt: g(&self.recv_pkt),
            send_pkt: g(&self.send_pkt),
            recv_oct: g(&self.recv_oct),
            send_oct: g(&self.send_oct),
            mqueue_dropped: g(&self.mqueue_dropped),
        }
    }
}

/// A point-in-time copy of [`ClientCounters`]. They count over the life of the session
/// (a resumed session keeps counting), not per connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub recv_msg: u64,
    pub send_msg: u64,
    pub recv_pkt: u64,
    pub send_pkt: u64,
    pub recv_oct: u64,
    pub send_oct: u64,
    pub mqueue_dropped: u64,
}

/// One session as the admin API shows a client.
#[derive(Debug, Clone)]
pub struct ClientSnapshot {
    /// The current (or last) connection: client id, username, peer, proto_ver, keepalive,
    /// clean_start, the expiry interval asked for in CONNECT, connected_at.
    pub client: Arc<ClientInfo>,
    pub connected: bool,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Milliseconds since the epoch of the last disconnect; `None` while connected.
    pub disconnected_at: Option<i64>,
    /// The session expiry interval in force now (an MQTT 5 DISCONNECT may have changed it).
    pub expiry_interval: u32,
    pub subscriptions_cnt: usize,
    pub inflight_cnt: usize,
    /// The connection's inflight window if known, else `mqtt.max_inflight`.
    pub inflight_max: usize,
    pub mqueue_len: usize,
    /// `mqtt.max_queued_messages`.
    pub mqueue_max: usize,
    pub stats: ClientStats,
}

/// One subscription of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSnapshot {
    pub client_id: Arc<str>,
    /// The filter as subscribed (`$share/G/...` included).
    pub filter: String,
    /// The group of a shared subscription.
    pub share_group: Option<String>,
    pub opts: SubOptions,
    pub sub_id: Option<u32>,
}

impl SubscriptionSnapshot {
    /// The topic filter without a `$share/G/` prefix.
    pub fn topic(&self) -> &str {
        parse_subscription(&self.filter).map_or(&self.filter, |p| p.filter)
    }
}

/// A retained message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedSnapshot {
    pub topic: String,
    pub qos: QoS,
    pub payload: Bytes,
    /// The publisher's client id and username, if known (not for anonymous in-process
    /// publishers).
    pub from_clientid: Option<Arc<str>>,
    pub from_username: Option<Arc<str>>,
    /// Milliseconds since the epoch when the message was received.
    pub published_at: i64,
}

impl RetainedSnapshot {
    fn of(m: &Message) -> RetainedSnapshot {
        RetainedSnapshot {
            topic: m.topic.clone(),
            qos: m.qos,
            payload: m.payload.clone(),
            from_clientid: m.publisher.as_ref().map(|p| p.client_id.clone()),
            from_username: m.publisher.as_ref().and_then(|p| p.username.clone()),
            published_at: m.timestamp,
        }
    }
}

impl Broker {
    /// Every session (connected, or persistent and offline), by client id.
    pub fn clients(&self) -> Vec<ClientSnapshot> {
        let mut out: Vec<ClientSnapshot> = self
            .session_list()
            .iter()
            .map(|s| self.client_snapshot(s))
            .collect();
        out.sort_unstable_by(|a, b| a.client.client_id.cmp(&b.client.client_id));
        out
    }

    /// One session by client id.
    pub fn client(&self, client_id: &str) -> Option<ClientSnapshot> {
        let s = lock(&self.sessions).get(client_id).cloned()?;
        Some(self.client_snapshot(&s))
    }

    /// Disconnects the client and discards its session with its subscriptions (EMQX's
    /// `DELETE /clients/{id}`). The connection sends DISCONNECT 0x98 to MQTT 5 clients and
    /// publishes the will at once, as for any abnormal disconnect. An offline persistent
    /// session is just discarded. `false` if there is no such session.
    pub fn kick(&self, client_id: &str) -> bool {
        let mut sessions = lock(&self.sessions);
        let Some(s) = sessions.get(client_id).cloned() else {
            return false;
        };
        let ended = self.discard_locked(&mut sessions, &s, Kick::Admin);
        drop(sessions);
        self.after_discard(ended);
        tracing::info!(client_id, "client kicked by an administrator");
        true
    }

    /// Every subscription of every session, by client id then filter.
    pub fn subscriptions(&self) -> Vec<SubscriptionSnapshot> {
        let mut out = Vec::new();
        for s in self.session_list() {
            subscriptions_of(&s, &mut out);
        }
        out.sort_unstable_by(|a, b| (&a.client_id, &a.filter).cmp(&(&b.client_id, &b.filter)));
        out
    }

    /// The subscriptions of one session, by filter; `None` if there is no such session.
    pub fn client_subscriptions(&self, client_id: &str) -> Option<Vec<SubscriptionSnapshot>> {
        let s = lock(&self.sessions).get(client_id).cloned()?;
        let mut out = Vec::new();
        subscriptions_of(&s, &mut out);
        out.sort_unstable_by(|a, b| a.filter.cmp(&b.filter));
        Some(out)
    }

    /// The distinct topic filters with at least one subscriber, sorted. Shared
    /// subscriptions count as their filter (without `$share/G/`).
    pub fn topics(&self) -> Vec<String> {
        let mut out = {
            let subs = self.subs.read().unwrap_or_else(|e| e.into_inner());
            let mut v = subs.normal.filters();
            v.extend(subs.shared.filters());
            v
        };
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Retained messages whose topic matches `filter` (`#` lists all, `$` topics included),
    /// by topic. Expired ones are left out.
    pub fn retained_list(&self, filter: &str) -> Result<Vec<RetainedSnapshot>, TopicError> {
        validate_filter(filter)?;
        let now = Instant::now();
        let mut out: Vec<RetainedSnapshot> = {
            let r = lock(&self.retained);
            r.iter()
                .filter(|m| filter == "#" || matches(filter, &m.topic))
                .filter(|m| m.expiry(now) != Expiry::Expired)
                .map(|m| RetainedSnapshot::of(m))
                .collect()
        };
        out.sort_unstable_by(|a, b| a.topic.cmp(&b.topic));
        Ok(out)
    }

    /// The retained message of one topic (`None` if none, expired, or not a valid name).
    pub fn retained_get(&self, topic: &str) -> Option<RetainedSnapshot> {
        validate_name(topic).ok()?;
        let m = lock(&self.retained).get(topic)?;
        (m.expiry(Instant::now()) != Expiry::Expired).then(|| RetainedSnapshot::of(&m))
    }

    /// Deletes the retained message of one topic; `false` if there was none.
    pub fn retained_delete(&self, topic: &str) -> bool {
        lock(&self.retained).remove(topic)
    }

    /// Deletes every retained message; returns how many there were.
    pub fn retained_clear(&self) -> usize {
        lock(&self.retained).clear()
    }

    /// The sessions, cloned out of the map so the map lock is held only for the copy.
    fn session_list(&self) -> Vec<Arc<Session>> {
        lock(&self.sessions).values().cloned().collect()
    }

    fn client_snapshot(&self, s: &Arc<Session>) -> ClientSnapshot {
        let st = s.lock();
        let window = match st.inflight_window {
            0 => self.config.max_inflight,
            w => w,
        };
        ClientSnapshot {
            client: st.client.clone(),
            connected: s.is_connected(),
            created_at: s.created_at,
            disconnected_at: (st.disconnected_at != 0).then_some(st.disconnected_at),
            expiry_interval: st.expiry_interval,
            subscriptions_cnt: st.subscriptions.len(),
            inflight_cnt: st.inflight.len(),
            inflight_max: usize::from(window),
            mqueue_len: st.queue.len(),
            mqueue_max: self.config.max_queued_messages,
            stats: s.counters().snapshot(),
        }
    }
}

fn subscriptions_of(s: &Session, out: &mut Vec<SubscriptionSnapshot>) {
    let st = s.lock();
    out.extend(st.subscriptions.iter().map(|(f, sub)| {
        SubscriptionSnapshot {
            client_id: s.client_id.clone(),
            filter: f.clone(),
            share_group: parse_subscription(f)
                .ok()
                .and_then(|p| p.group)
                .map(str::to_owned),
            opts: sub.opts,
            sub_id: sub.sub_id,
        }
    }));
}

#[cfg(test)]
mod tests;
