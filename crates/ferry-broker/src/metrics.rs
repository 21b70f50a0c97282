//! Broker counters. Plain atomics, relaxed: they are read for reporting only. Gauges are
//! paired counters (opened/closed) so no racy decrement is needed.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_delivered: AtomicU64,
    pub messages_no_subscribers: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_expired: AtomicU64,
    pub dropped_too_large: AtomicU64,
    pub protocol_errors: AtomicU64,
}

/// A point-in-time copy of [`Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MetricsSnapshot {
    pub connections: u64,
    pub messages_received: u64,
    pub messages_delivered: u64,
    pub messages_no_subscribers: u64,
    pub dropped_queue_full: u64,
    pub dropped_expired: u64,
    pub dropped_too_large: u64,
    pub protocol_errors: u64,
}

impl Metrics {
    /// Increments and returns the new value.
    pub fn inc(&self, c: &AtomicU64) -> u64 {
        c.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            connections: g(&self.connections_opened).saturating_sub(g(&self.connections_closed)),
            messages_received: g(&self.messages_received),
            messages_delivered: g(&self.messages_delivered),
            messages_no_subscribers: g(&self.messages_no_subscribers),
            dropped_queue_full: g(&self.dropped_queue_full),
            dropped_expired: g(&self.dropped_expired),
            dropped_too_large: g(&self.dropped_too_large),
            protocol_errors: g(&self.protocol_errors),
        }
    }
}
