//! The registry: broker counters, per-object handles and the latency histograms.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::counters::Counters;
use crate::histogram::Histogram;
use crate::names::{ActionMetric, BrokerMetric, PersistMetric, RuleMetric, SourceMetric};

/// One rule's counters.
pub type RuleStats = Counters<RuleMetric>;

/// One Kafka action's counters and its MQTT-arrival-to-Kafka-ack latency.
#[derive(Debug, Default)]
pub struct ActionStats {
    pub counters: Counters<ActionMetric>,
    pub latency: Histogram,
    /// Disk buffer: duration of each group commit (write + fdatasync).
    pub commit_latency: Histogram,
}

/// One Kafka source's counters, its delivery latency (record consumed to delivery done)
/// and its lag per partition.
#[derive(Debug, Default)]
pub struct SourceStats {
    pub counters: Counters<SourceMetric>,
    pub latency: Histogram,
    /// "topic/partition" → high watermark − next offset; replaced every 5 s by the
    /// consumer's statistics callback, never per record.
    lag: Mutex<BTreeMap<String, i64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Percentiles of `h` as JSON fields `PREFIX.p50_us`, `.p99_us` (0 when empty).
fn latency_json(out: &mut BTreeMap<String, u64>, prefix: &str, h: &Histogram) {
    let s = h.snapshot();
    let us =
        |d: Option<Duration>| d.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    out.insert(format!("{prefix}.p50_us"), us(s.quantile(0.5)));
    out.insert(format!("{prefix}.p99_us"), us(s.quantile(0.99)));
    out.insert(format!("{prefix}.mean_us"), us(s.mean()));
    out.insert(format!("{prefix}.count"), s.count);
}

impl ActionStats {
    /// EMQX's action metrics (`matched`, `success`, `failed`, `dropped`, `dropped.queue_full`,
    /// `queuing`, `inflight`, `retried`, ...) plus `latency.p50_us`, `latency.p99_us`,
    /// `latency.mean_us`, `latency.count`.
    pub fn json(&self) -> BTreeMap<String, u64> {
        let mut out = self.counters.json();
        latency_json(&mut out, "latency", &self.latency);
        latency_json(&mut out, "buffer.commit", &self.commit_latency);
        out
    }

    pub fn reset(&self) {
        self.counters.reset();
        self.latency.reset();
        self.commit_latency.reset();
    }
}

impl SourceStats {
    /// Replaces the lag per partition and the `lag` gauge (their sum).
    pub fn set_lag(&self, lag: BTreeMap<String, i64>) {
        let sum = lag.values().map(|v| u64::try_from(*v).unwrap_or(0)).sum();
        *lock(&self.lag) = lag;
        self.counters.set(SourceMetric::Lag, sum);
    }

    /// Lag per partition ("topic/partition").
    pub fn lag(&self) -> BTreeMap<String, i64> {
        lock(&self.lag).clone()
    }

    /// `received`, `delivered`, `failed`, `inflight`, `released`, `lag`, ... plus
    /// `latency.p50_us`, `latency.p99_us`, `latency.mean_us`, `latency.count`.
    pub fn json(&self) -> BTreeMap<String, u64> {
        let mut out = self.counters.json();
        latency_json(&mut out, "latency", &self.latency);
        out
    }

    pub fn reset(&self) {
        self.counters.reset();
        self.latency.reset();
    }
}

/// Objects of one kind by configured name.
#[derive(Debug)]
pub(crate) struct Named<T>(Mutex<BTreeMap<String, Arc<T>>>);

impl<T: Default> Named<T> {
    fn new() -> Self {
        Named(Mutex::new(BTreeMap::new()))
    }

    fn get_or_create(&self, name: &str) -> Arc<T> {
        lock(&self.0).entry(name.to_owned()).or_default().clone()
    }

    fn get(&self, name: &str) -> Option<Arc<T>> {
        lock(&self.0).get(name).cloned()
    }

    fn remove(&self, name: &str) -> Option<Arc<T>> {
        lock(&self.0).remove(name)
    }

    pub(crate) fn all(&self) -> Vec<(String, Arc<T>)> {
        lock(&self.0)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Everything Ferry counts. Shared as `Arc<Registry>`; the broker creates it. Objects get
/// their handle once (`rule`, `action`, `source`) and touch only atomics afterwards: the
/// maps' locks are taken at creation, removal and scrape time, never per message.
#[derive(Debug)]
pub struct Registry {
    pub(crate) broker: Counters<BrokerMetric>,
    pub(crate) puback_delay: Histogram,
    pub(crate) persist: Counters<PersistMetric>,
    pub(crate) commit_latency: Histogram,
    pub(crate) rules: Named<RuleStats>,
    pub(crate) actions: Named<ActionStats>,
    pub(crate) sources: Named<SourceStats>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            broker: Counters::default(),
            puback_delay: Histogram::default(),
            persist: Counters::default(),
            commit_latency: Histogram::default(),
            rules: Named::new(),
            actions: Named::new(),
            sources: Named::new(),
        }
    }
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// Broker-wide counters.
    pub fn broker(&self) -> &Counters<BrokerMetric> {
        &self.broker
    }

    /// PUBLISH read to PUBACK/PUBREC written, broker-wide (what sync mode costs a device).
    pub fn puback_delay(&self) -> &Histogram {
        &self.puback_delay
    }

    /// MQTT state persistence: sync counters and restore counts.
    pub fn persist(&self) -> &Counters<PersistMetric> {
        &self.persist
    }

    /// Duration of each MQTT state commit (snapshot and store transaction).
    pub fn commit_latency(&self) -> &Histogram {
        &self.commit_latency
    }

    /// Broker counters by EMQX name (`messages.received`, `messages.dropped`, ...), then
    /// the persistence counters (`state.commits`, `state.restored.sessions`, ...) and the
    /// commit latency (`state.commit.p50_us`, `.p99_us`, `.mean_us`, `.count`).
    pub fn json(&self) -> BTreeMap<String, u64> {
        let mut out = self.broker.json();
        out.extend(self.persist.json());
        latency_json(&mut out, "state.commit", &self.commit_latency);
        out
    }

    /// The rule's counters, created on first use. `name` is the configured rule name.
    pub fn rule(&self, name: &str) -> Arc<RuleStats> {
        self.rules.get_or_create(name)
    }

    pub fn action(&self, name: &str) -> Arc<ActionStats> {
        self.actions.get_or_create(name)
    }

    pub fn source(&self, name: &str) -> Arc<SourceStats> {
        self.sources.get_or_create(name)
    }

    /// The rule's counters if it is registered (for reads: does not create).
    pub fn find_rule(&self, name: &str) -> Option<Arc<RuleStats>> {
        self.rules.get(name)
    }

    pub fn find_action(&self, name: &str) -> Option<Arc<ActionStats>> {
        self.actions.get(name)
    }

    pub fn find_source(&self, name: &str) -> Option<Arc<SourceStats>> {
        self.sources.get(name)
    }

    /// Forgets a deleted rule: its series leave the exposition. Handles still held keep
    /// counting into a detached copy.
    pub fn remove_rule(&self, name: &str) -> bool {
        self.rules.remove(name).is_some()
    }

    pub fn remove_action(&self, name: &str) -> bool {
        self.actions.remove(name).is_some()
    }

    pub fn remove_source(&self, name: &str) -> bool {
        self.sources.remove(name).is_some()
    }

    /// Every registered rule, by name.
    pub fn rules(&self) -> Vec<(String, Arc<RuleStats>)> {
        self.rules.all()
    }

    pub fn actions(&self) -> Vec<(String, Arc<ActionStats>)> {
        self.actions.all()
    }

    pub fn sources(&self) -> Vec<(String, Arc<SourceStats>)> {
        self.sources.all()
    }
}
