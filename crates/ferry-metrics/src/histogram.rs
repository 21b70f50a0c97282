//! A lock-free latency histogram with fixed buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (100 µs to 60 s); one more bucket is unbounded.
pub const BUCKETS_SECONDS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// The same bounds in nanoseconds, for comparing without floating point.
const BOUNDS_NS: [u64; 18] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// Counts per bucket (not cumulative), the sum and the count. `record` is three relaxed
/// `fetch_add`s and a short search over 18 bounds.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 19],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

/// A point-in-time copy of a [`Histogram`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistogramSnapshot {
    /// Per bucket (upper bound in seconds, `f64::INFINITY` last; count in that bucket only).
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.partition_point(|b| *b < ns);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
        self.sum_ns.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let le = BUCKETS_SECONDS.get(i).copied().unwrap_or(f64::INFINITY);
                (le, b.load(Ordering::Relaxed))
            })
            .collect();
        HistogramSnapshot {
            // The count as the buckets say, so the exposition stays consistent while
            // records land during the copy.
            count: buckets.iter().map(|(_, n)| n).sum(),
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
            buckets,
        }
    }

    /// Estimated `q` quantile (0..=1), see [`HistogramSnapshot::quantile`].
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        self.snapshot().quantile(q)
    }
}

impl HistogramSnapshot {
    /// Estimated `q` quantile (0..=1) by linear interpolation inside the bucket that holds
    /// it, as Prometheus' `histogram_quantile` does; the unbounded bucket answers its lower
    /// bound (60 s). `None` when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * self.count as f64;
        let mut below = 0u64;
        let mut lower = 0.0;
        for (le, n) in &self.buckets {
            if *n > 0 && (below + n) as f64 >= rank {
                if le.is_infinite() {
                    return Some(Duration::from_secs_f64(lower));
                }
                let within = ((rank - below as f64) / *n as f64).clamp(0.0, 1.0);
                return Some(Duration::from_secs_f64(lower + (le - lower) * within));
            }
            below += n;
            if le.is_finite() {
                lower = *le;
            }
        }
        Some(Duration::from_secs_f64(lower))
    }

    /// The mean, or `None` when nothing was recorded.
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_secs_f64(self.sum_seconds / self.count as f64))
    }
}
