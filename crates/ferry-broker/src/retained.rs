//! Retained messages, one per topic. Lookup for a filter without wildcards is a hash lookup;
//! a wildcard filter walks the stored topics (retained sets are small next to subscription
//! sets; a topic tree here is a later optimisation if profiles ask for it).

use std::collections::HashMap;
use std::sync::Arc;

use ferry_mqtt::topic::matches;

use crate::message::Message;

#[derive(Debug, Default)]
pub(crate) struct Retained {
    by_topic: HashMap<String, Arc<Message>>,
}

impl Retained {
    /// Stores, replaces, or (empty payload) clears the retained message of its topic.
    pub(crate) fn set(&mut self, msg: &Arc<Message>) {
        if msg.payload.is_empty() {
            self.by_topic.remove(&msg.topic);
        } else {
            self.by_topic.insert(msg.topic.clone(), msg.clone());
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
        self.by_topic.remove(topic).is_some()
    }

    /// Removes every retained message; returns how many there were.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.by_topic.len();
        self.by_topic.clear();
        n
    }

    pub(crate) fn len(&self) -> usize {
        self.by_topic.len()
    }
}
