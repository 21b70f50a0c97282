//! Per-action counters and the publish-to-Kafka-ack latency histogram. Gauges are paired
//! counters (enqueued/dequeued, sent/done), so nothing decrements racily.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in milliseconds (the last bucket is unbounded).
pub const LATENCY_BUCKETS_MS: [u64; 13] =
    [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 14],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let ms = d.as_millis() as u64;
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (bucket upper bound in ms or None for +Inf, count in that bucket).
    pub fn buckets(&self) -> Vec<(Option<u64>, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (
                    LATENCY_BUCKETS_MS.get(i).copied(),
                    b.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn mean(&self) -> Duration {
        let n = self.count().max(1);
        Duration::from_micros(self.sum_us.load(Ordering::Relaxed) / n)
    }
}

#[derive(Debug, Default)]
pub struct ActionMetrics {
    pub matched: AtomicU64,
    pub success: AtomicU64,
    pub failed: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub retried: AtomicU64,
    pub enqueued: AtomicU64,
    pub dequeued: AtomicU64,
    pub inflight_sent: AtomicU64,
    pub inflight_done: AtomicU64,
    pub latency: Histogram,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ActionMetricsSnapshot {
    pub matched: u64,
    pub success: u64,
    pub failed: u64,
    pub dropped_queue_full: u64,
    pub retried: u64,
    pub queuing: u64,
    pub inflight: u64,
    pub latency_count: u64,
    pub latency_mean_us: u64,
}

impl ActionMetrics {
    pub fn snapshot(&self) -> ActionMetricsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ActionMetricsSnapshot {
            matched: g(&self.matched),
            success: g(&self.success),
            failed: g(&self.failed),
            dropped_queue_full: g(&self.dropped_queue_full),
            retried: g(&self.retried),
            queuing: g(&self.enqueued).saturating_sub(g(&self.dequeued)),
            inflight: g(&self.inflight_sent).saturating_sub(g(&self.inflight_done)),
            latency_count: self.latency.count(),
            latency_mean_us: self.latency.mean().as_micros() as u64,
        }
    }
}
