//! Retained messages, one per topic. Lookup for a filter without wildcards is a hash lookup;
//! a wildcard filter walks the stored topics (retained sets are small next to subscription
//! sets; a topic tree here is a later optimisation if profiles ask for it).
//!
//! With persistence, every set and delete also records its topic in `changed`, which the
//! background sync takes (see `crate::persist`).
//!
//! Bounded: at most `max_retained_messages` topics and `max_retained_bytes` of topic and
//! payload. Expired messages are purged when a bound is reached (before refusing a new
//! one) and every `SWEEP_EVERY` stores, so they do not hold memory until someone asks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ferry_mqtt::topic::matches;
use tokio::time::Instant;

use crate::message::{Expiry, Message};

/// Why a retained message was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotKept {
    MaxCount,
    MaxBytes,
    PayloadTooLarge,
}

/// The bounds of the store (`[mqtt]`; 0: no bound for count and bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_count: usize,
    pub(crate) max_bytes: usize,
    pub(crate) max_payload: usize,
}

/// Stores between two sweeps for expired messages.
const SWEEP_EVERY: u32 = 4096;

#[derive(Debug, Default)]
pub(crate) struct Retained {
    by_topic: HashMap<String, Arc<Message>>,
    /// Topic and payload bytes held.
    bytes: usize,
    /// Stores since the last sweep.
    since_sweep: u32,
    /// Topics set or cleared since the last sync; `None` without persistence.
    changed: Option<HashSet<String>>,
}

fn size(m: &Message) -> usize {
    m.topic.len() + m.payload.len()
}

impl Retained {
    pub(crate) fn new(track_changes: bool) -> Retained {
        Retained {
            changed: track_changes.then(HashSet::new),
            ..Retained::default()
        }
    }

    fn insert(&mut self, msg: Arc<Message>) {
        self.bytes += size(&msg);
        if let Some(old) = self.by_topic.insert(msg.topic.clone(), msg) {
            self.bytes -= size(&old);
        }
    }

    fn take(&mut self, topic: &str) -> Option<Arc<Message>> {
        let old = self.by_topic.remove(topic)?;
        self.bytes -= size(&old);
        Some(old)
    }

    /// Removes the expired messages; returns how many.
    pub(crate) fn purge_expired(&mut self, now: Instant) -> usize {
        self.since_sweep = 0;
        let expired: Vec<String> = self
            .by_topic
            .iter()
            .filter(|(_, m)| m.expiry(now) == Expiry::Expired)
            .map(|(t, _)| t.clone())
            .collect();
        for t in &expired {
            self.take(t);
            self.record(t);
        }
        expired.len()
    }

    /// Would one more message of `extra` bytes on a new topic go past a bound?
    fn full(&self, l: &Limits, extra: usize) -> Option<NotKept> {
        if l.max_count > 0 && self.by_topic.len() >= l.max_count {
            return Some(NotKept::MaxCount);
        }
        if l.max_bytes > 0 && self.bytes + extra > l.max_bytes {
            return Some(NotKept::MaxBytes);
        }
        None
    }

    fn record(&mut self, topic: &str) {
        if let Some(c) = &mut self.changed
            && !c.contains(topic)
        {
            c.insert(topic.to_owned());
        }
    }

    /// Stores, replaces, or (empty payload) clears the retained message of its topic. Past
    /// a bound a new message is not kept (expired ones are purged first), and neither is a
    /// payload over `max_payload`: why not, if it was not kept. Returns the expired
    /// messages purged.
    pub(crate) fn set(
        &mut self,
        msg: &Arc<Message>,
        limits: &Limits,
        now: Instant,
    ) -> Result<usize, NotKept> {
        if msg.payload.is_empty() {
            if self.take(&msg.topic).is_some() {
                self.record(&msg.topic);
            }
            return Ok(0);
        }
        if msg.payload.len() > limits.max_payload {
            return Err(NotKept::PayloadTooLarge);
        }
        let mut purged = 0;
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            purged += self.purge_expired(now);
        }
        // A replacement frees what it replaces.
        let freed = self.by_topic.get(&msg.topic).map(|m| size(m));
        let extra = size(msg).saturating_sub(freed.unwrap_or(0));
        let over = |r: &Retained| match freed {
            Some(_) => (limits.max_bytes > 0 && r.bytes + extra > limits.max_bytes)
                .then_some(NotKept::MaxBytes),
            None => r.full(limits, extra),
        };
        if over(self).is_some() {
            purged += self.purge_expired(now);
            if let Some(why) = over(self) {
                return Err(why);
            }
        }
        self.insert(msg.clone());
        self.record(&msg.topic);
        Ok(purged)
    }

    /// Puts back a message loaded from the store (not a change).
    pub(crate) fn restore(&mut self, msg: Arc<Message>) {
        self.insert(msg);
    }

    /// The topics changed since the last call.
    pub(crate) fn take_changed(&mut self) -> HashSet<String> {
        match &mut self.changed {
            Some(c) => std::mem::take(c),
            None => HashSet::new(),
        }
    }

    /// Records `topics` as changed again (a failed commit).
    pub(crate) fn mark_changed(&mut self, topics: HashSet<String>) {
        if let Some(c) = &mut self.changed {
            c.extend(topics);
        }
    }

    pub(crate) fn matching(&self, filter: &str) -> Vec<Arc<Message>> {
        if !filter.contains(['+', '#']) {
            return self.by_topic.get(filter).cloned().into_iter().collect();
        }
        self.by_topic
            .iter()
            .filter(|(t, _)| matches(filter, t))
            .map(|(_, m)| m.clone())
            .collect()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Message>> {
        self.by_topic.values()
    }

    pub(crate) fn get(&self, topic: &str) -> Option<Arc<Message>> {
        self.by_topic.get(topic).cloned()
    }

    /// Removes the retained message of `topic`; `false` if there was none.
    pub(crate) fn remove(&mut self, topic: &str) -> bool {
        let found = self.take(topic).is_some();
        if found {
            self.record(topic);
        }
        found
    }

    /// Removes every retained message; returns how many there were.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.by_topic.len();
        if let Some(c) = &mut self.changed {
            c.extend(self.by_topic.drain().map(|(t, _)| t));
        }
        self.by_topic.clear();
        self.bytes = 0;
        n
    }

    pub(crate) fn len(&self) -> usize {
        self.by_topic.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use ferry_mqtt::{Properties, QoS};

    use super::*;

    fn msg(topic: &str, len: usize, expiry: Option<u32>) -> Arc<Message> {
        Arc::new(Message {
            topic: topic.into(),
            payload: Bytes::from(vec![1u8; len]),
            qos: QoS::AtMostOnce,
            retain: true,
            dup: false,
            properties: Properties {
                message_expiry_interval: expiry,
                ..Properties::default()
            },
            publisher: None,
            completion: None,
            received_at: Instant::now(),
            timestamp: 0,
        })
    }

    const NO_BOUND: Limits = Limits {
        max_count: 0,
        max_bytes: 0,
        max_payload: usize::MAX,
    };

    #[test]
    fn bytes_are_bounded_and_replacements_count_what_they_free() {
        let l = Limits {
            max_bytes: 30,
            ..NO_BOUND
        };
        let mut r = Retained::default();
        let now = Instant::now();
        // "t/1" + 10 bytes = 13 each.
        assert_eq!(r.set(&msg("t/1", 10, None), &l, now), Ok(0));
        assert_eq!(r.set(&msg("t/2", 10, None), &l, now), Ok(0));
        assert_eq!(
            r.set(&msg("t/3", 10, None), &l, now),
            Err(NotKept::MaxBytes)
        );
        // Replacing t/1 with a larger one fits (30 = 13 + 17); larger does not.
        assert_eq!(r.set(&msg("t/1", 14, None), &l, now), Ok(0));
        assert_eq!(
            r.set(&msg("t/1", 15, None), &l, now),
            Err(NotKept::MaxBytes)
        );
        assert_eq!(r.bytes, 30);
        assert!(r.remove("t/2"));
        assert_eq!(r.bytes, 17);
        r.clear();
        assert_eq!(r.bytes, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_messages_are_purged_before_a_bound_refuses() {
        let l = Limits {
            max_count: 2,
            ..NO_BOUND
        };
        let mut r = Retained::new(true);
        r.set(&msg("t/1", 1, Some(1)), &l, Instant::now()).unwrap();
        r.set(&msg("t/2", 1, None), &l, Instant::now()).unwrap();
        r.take_changed();
        assert_eq!(
            r.set(&msg("t/3", 1, None), &l, Instant::now()),
            Err(NotKept::MaxCount)
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(r.set(&msg("t/3", 1, None), &l, Instant::now()), Ok(1));
        assert!(r.get("t/1").is_none());
        assert!(
            r.take_changed().contains("t/1"),
            "the purge is a change to persist"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_purges_expired_messages_without_pressure() {
        let mut r = Retained::default();
        r.set(&msg("old", 1, Some(1)), &NO_BOUND, Instant::now())
            .unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        let mut purged = 0;
        for i in 0..SWEEP_EVERY {
            purged += r
                .set(
                    &msg(&format!("t/{}", i % 8), 1, None),
                    &NO_BOUND,
                    Instant::now(),
                )
                .unwrap();
        }
        assert_eq!(purged, 1);
        assert!(r.get("old").is_none());
    }
}
