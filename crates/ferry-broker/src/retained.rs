//! Retained messages, one per topic. Lookup for a filter without wildcards is a hash lookup;
//! a wildcard filter walks the stored topics (retained sets are small next to subscription
//! sets; a topic tree here is a later optimisation if profiles ask for it).
//!
//! With persistence, every set and delete also records its topic in `changed`, which the
//! background sync takes (see `crate::persist`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ferry_mqtt::topic::matches;

use crate::message::Message;

/// Why a retained message was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotKept {
    MaxCount,
    PayloadTooLarge,
}

#[derive(Debug, Default)]
pub(crate) struct Retained {
    by_topic: HashMap<String, Arc<Message>>,
    /// Topics set or cleared since the last sync; `None` without persistence.
    changed: Option<HashSet<String>>,
}

impl Retained {
    pub(crate) fn new(track_changes: bool) -> Retained {
        Retained {
            by_topic: HashMap::new(),
            changed: track_changes.then(HashSet::new),
        }
    }

    fn record(&mut self, topic: &str) {
        if let Some(c) = &mut self.changed
            && !c.contains(topic)
        {
            c.insert(topic.to_owned());
        }
    }

    /// Stores, replaces, or (empty payload) clears the retained message of its topic. Past
    /// `max_count` (0: no limit) a new topic is not kept, and neither is a payload over
    /// `max_payload`: why not, if it was not kept.
    pub(crate) fn set(
        &mut self,
        msg: &Arc<Message>,
        max_count: usize,
        max_payload: usize,
    ) -> Result<(), NotKept> {
        if msg.payload.is_empty() {
            if self.by_topic.remove(&msg.topic).is_some() {
                self.record(&msg.topic);
            }
            return Ok(());
        }
        if msg.payload.len() > max_payload {
            return Err(NotKept::PayloadTooLarge);
        }
        if max_count > 0
            && self.by_topic.len() >= max_count
            && !self.by_topic.contains_key(&msg.topic)
        {
            return Err(NotKept::MaxCount);
        }
        self.by_topic.insert(msg.topic.clone(), msg.clone());
        self.record(&msg.topic);
        Ok(())
    }

    /// Puts back a message loaded from the store (not a change).
    pub(crate) fn restore(&mut self, msg: Arc<Message>) {
        self.by_topic.insert(msg.topic.clone(), msg);
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
        let found = self.by_topic.remove(topic).is_some();
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
        n
    }

    pub(crate) fn len(&self) -> usize {
        self.by_topic.len()
    }
}
