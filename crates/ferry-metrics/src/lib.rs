//! ferry-metrics: the one metrics registry of Ferry.
//!
//! Owns: the typed list of metric names ([`names`]: one enum per scope with Prometheus
//! family, labels, EMQX JSON name and help), their storage ([`Counters`]: one relaxed
//! `AtomicU64` per variant; [`Histogram`]: atomic buckets), the [`Registry`] that hands out
//! per-rule/action/source handles, and the exposition: EMQX-named JSON maps and the
//! Prometheus text format (encoded by `prometheus-client`, which is used for exposition
//! only), plus process metrics from `/proc/self`.
//!
//! Must not: know broker, rule or Kafka types (callers pass numbers and configured names),
//! take a lock per message, or take a label value from anything but a configured object
//! name or a closed enum written in `names.rs` (never client ids, usernames or topics).

mod counters;
pub mod doc;
mod exposition;
mod histogram;
pub mod names;
pub mod process;
mod registry;

pub use counters::Counters;
pub use exposition::{Sample, SampleKind};
pub use histogram::{BUCKETS_SECONDS, Histogram, HistogramSnapshot};
pub use names::{
    ActionMetric, BrokerMetric, Def, Kind, MetricSet, PersistMetric, RuleMetric, SourceMetric,
};
pub use registry::{ActionStats, Registry, RuleStats, SourceStats};

/// The Prometheus name prefix.
pub const PREFIX: &str = "ferry";

#[cfg(test)]
mod tests;
