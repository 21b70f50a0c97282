//! Numbers over time for the API: gauges (`/stats`), counters (`/metrics`), samples every
//! [`SAMPLE_EVERY`] over the last hour (`/monitor`), rates now (`/monitor_current`), and the
//! rates EMQX shows per rule, action and source (`rate`, `rate_last5m`, `rate_max`). All in
//! memory, bounded: [`KEEP`] samples, and per object the samples of the last five minutes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_api::admin::ObjectKind;
use ferry_broker::Broker;
use ferry_metrics::BrokerMetric;
use serde_json::{Value, json};

use crate::control::{Control, View};
use crate::overlay::{self, Kind};

/// The states a connector, action or source reports (`status` in the API).
pub(crate) const STATES: [&str; 4] = ["connected", "connecting", "disconnected", "stopped"];

/// How often a sample is taken.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples kept: one hour.
pub(crate) const KEEP: usize = 360;
/// Per-object samples kept for `rate_last5m`.
const KEEP_5M: usize = 31;

/// Gauges, EMQX names.
pub(crate) fn stats(broker: &Broker) -> BTreeMap<String, u64> {
    let m = broker.metrics();
    let connections = m
        .get(BrokerMetric::ConnectionsOpened)
        .saturating_sub(m.get(BrokerMetric::ConnectionsClosed));
    let sessions = broker.session_count() as u64;
    let subs = broker.subscription_count() as u64;
    let topics = broker.topics().len() as u64;
    let retained = broker.retained_count() as u64;
    BTreeMap::from([
        ("connections.count".into(), connections),
        ("live_connections.count".into(), connections),
        ("sessions.count".into(), sessions),
        ("subscriptions.count".into(), subs),
        ("suboptions.count".into(), subs),
        ("topics.count".into(), topics),
        ("retained.count".into(), retained),
    ])
}

/// Counters, EMQX names (plus Ferry's Kafka totals).
pub(crate) fn counters(broker: &Broker, view: &View) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = broker.registry().json().into_iter().collect();
    let (mut ok, mut failed, mut dropped) = (0, 0, 0);
    for name in view.actions.keys() {
        let Some(a) = broker.registry().find_action(name) else {
            continue;
        };
        let j = a.json();
        ok += j.get("success").copied().unwrap_or(0);
        failed += j.get("failed").copied().unwrap_or(0);
        dropped += j.get("dropped").copied().unwrap_or(0);
    }
    out.insert("kafka.success".into(), ok);
    out.insert("kafka.failed".into(), failed);
    out.insert("kafka.dropped".into(), dropped);
    out
}

/// Resident memory of this process, bytes (0 if unknown).
pub(crate) fn resident_bytes() -> u64 {
    ferry_metrics::process::resident_bytes()
}

/// The Prometheus text of everything: the registry plus gauges read now.
pub(crate) fn prometheus(c: &Control) -> String {
    let view = c.view();
    let mut extra = Vec::new();
    for (k, v) in stats(&c.broker) {
        let name = match k.as_str() {
            "connections.count" => "connections",
            "live_connections.count" => "live_connections",
            "sessions.count" => "sessions",
            "subscriptions.count" => "subscriptions",
            "topics.count" => "topics",
            "retained.count" => "retained_messages",
            _ => continue,
        };
        extra.push(ferry_metrics::Sample::gauge(
            name,
            "Current count (EMQX /stats).",
            v as f64,
        ));
    }
    // State of every configured connector, action and source: 1 for its status, 0 for the
    // others (labels: configured names and a closed set of states).
    for (kind, label, metric, help) in [
        (
            Kind::Connector,
            "connector",
            "connector_state",
            "1 for the connector's current state, 0 for the others.",
        ),
        (
            Kind::Action,
            "action",
            "action_state",
            "1 for the action's current state, 0 for the others.",
        ),
        (
            Kind::Source,
            "source",
            "source_state",
            "1 for the source's current state, 0 for the others.",
        ),
    ] {
        for name in overlay::names(&view.config, kind) {
            let state = c.status(&view, kind, &name).0;
            for s in STATES {
                extra.push(
                    ferry_metrics::Sample::gauge(metric, help, if s == state { 1.0 } else { 0.0 })
                        .label(label, &name)
                        .label("state", s),
                );
            }
        }
    }
    c.broker.registry().encode_prometheus(&extra)
}

#[derive(Default)]
struct Rate {
    /// (when, counter value), oldest first.
    history: VecDeque<(Instant, u64)>,
    max: f64,
}

impl Rate {
    fn push(&mut self, at: Instant, v: u64) {
        if let Some(&(t, prev)) = self.history.back() {
            let secs = at.duration_since(t).as_secs_f64();
            if secs > 0.0 {
                self.max = self.max.max(v.saturating_sub(prev) as f64 / secs);
            }
        }
        self.history.push_back((at, v));
        while self.history.len() > KEEP_5M {
            self.history.pop_front();
        }
    }

    /// Per second between the sample `back` from the newest and the value `v` now.
    fn since(&self, back: usize, now: Instant, v: u64) -> f64 {
        let Some(&(t, old)) = self.history.iter().rev().nth(back) else {
            return 0.0;
        };
        let secs = now.duration_since(t).as_secs_f64();
        if secs < 0.5 {
            return 0.0;
        }
        v.saturating_sub(old) as f64 / secs
    }
}

#[derive(Default)]
struct Inner {
    samples: VecDeque<BTreeMap<String, Value>>,
    last: Option<(Instant, BTreeMap<String, u64>)>,
    rates: HashMap<(ObjectKind, String), Rate>,
}

/// Samples and rates; see the module doc.
#[derive(Default)]
pub(crate) struct Monitor {
    inner: Mutex<Inner>,
}

/// The counter a rate is computed from, per kind of object.
fn rate_counter(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Rule | ObjectKind::Action => "matched",
        ObjectKind::Source => "received",
        ObjectKind::Connector => "",
    }
}

const TRAFFIC: [(&str, &str); 3] = [
    ("received", "messages.received"),
    ("sent", "messages.sent"),
    ("dropped", "messages.dropped"),
];

impl Monitor {
    pub(crate) fn new() -> Monitor {
        Monitor::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one sample (the gateway calls this every [`SAMPLE_EVERY`]).
    pub(crate) fn tick(&self, c: &Control) {
        let now = Instant::now();
        let view = c.view();
        let counters = counters(&c.broker, &view);
        let mut objects = Vec::new();
        let reg = c.broker.registry();
        for (name, m) in reg.rules() {
            objects.push((
                ObjectKind::Rule,
                name,
                m.get(ferry_metrics::RuleMetric::Matched),
            ));
        }
        for (name, a) in reg.actions() {
            let v = a.counters.get(ferry_metrics::ActionMetric::Matched);
            objects.push((ObjectKind::Action, name, v));
        }
        for (name, s) in reg.sources() {
            let v = s.counters.get(ferry_metrics::SourceMetric::Received);
            objects.push((ObjectKind::Source, name, v));
        }
        let mut sample: BTreeMap<String, Value> = stats(&c.broker)
            .into_iter()
            .map(|(k, v)| (k.trim_end_matches(".count").replace('.', "_"), json!(v)))
            .collect();
        sample.insert("time_stamp".into(), json!(ferry_broker::hook::now_ms()));
        let mut inner = self.lock();
        let prev = inner.last.as_ref().map(|(_, p)| p.clone());
        for (field, key) in TRAFFIC.iter().chain(
            [
                ("kafka_success", "kafka.success"),
                ("kafka_failed", "kafka.failed"),
            ]
            .iter(),
        ) {
            let v = counters.get(*key).copied().unwrap_or(0);
            let before = prev
                .as_ref()
                .and_then(|p| p.get(*key))
                .copied()
                .unwrap_or(v);
            sample.insert((*field).into(), json!(v.saturating_sub(before)));
        }
        inner.samples.push_back(sample);
        while inner.samples.len() > KEEP {
            inner.samples.pop_front();
        }
        inner.last = Some((now, counters));
        let live: std::collections::HashSet<(ObjectKind, String)> =
            objects.iter().map(|(k, n, _)| (*k, n.clone())).collect();
        inner.rates.retain(|k, _| live.contains(k));
        for (k, n, v) in objects {
            inner.rates.entry((k, n)).or_default().push(now, v);
        }
    }

    /// Samples of the last `latest` seconds (all if None), oldest first.
    pub(crate) fn samples(&self, latest: Option<u64>) -> Vec<BTreeMap<String, Value>> {
        let inner = self.lock();
        let n = latest.map_or(inner.samples.len(), |s| {
            (s / SAMPLE_EVERY.as_secs()).max(1) as usize
        });
        let skip = inner.samples.len().saturating_sub(n);
        inner.samples.iter().skip(skip).cloned().collect()
    }

    /// Rates now (per second since the last sample) and the current gauges.
    pub(crate) fn current(&self, broker: &Broker, view: &View) -> BTreeMap<String, Value> {
        let now = Instant::now();
        let counters = counters(broker, view);
        let mut out: BTreeMap<String, Value> = stats(broker)
            .into_iter()
            .map(|(k, v)| (k.trim_end_matches(".count").replace('.', "_"), json!(v)))
            .collect();
        out.insert(
            "retained_msg_count".into(),
            out.get("retained").cloned().unwrap_or(json!(0)),
        );
        let inner = self.lock();
        for (field, key) in TRAFFIC.iter().chain(
            [
                ("kafka_success", "kafka.success"),
                ("kafka_failed", "kafka.failed"),
            ]
            .iter(),
        ) {
            let v = counters.get(*key).copied().unwrap_or(0);
            let rate = match &inner.last {
                Some((t, p)) => {
                    let secs = now.duration_since(*t).as_secs_f64().max(1.0);
                    v.saturating_sub(p.get(*key).copied().unwrap_or(v)) as f64 / secs
                }
                None => 0.0,
            };
            out.insert(format!("{field}_msg_rate"), json!(round2(rate)));
        }
        out
    }

    /// Adds EMQX's `rate`, `rate_last5m` and `rate_max` (or `matched.rate...` for rules).
    pub(crate) fn add_rates(&self, kind: ObjectKind, name: &str, counters: &mut Value) {
        let counter = rate_counter(kind);
        let Value::Object(m) = counters else {
            return;
        };
        let Some(v) = m.get(counter).and_then(Value::as_u64) else {
            return;
        };
        let now = Instant::now();
        let inner = self.lock();
        let (rate, last5m, max) = match inner.rates.get(&(kind, name.to_owned())) {
            Some(r) => (
                r.since(0, now, v),
                r.since(KEEP_5M - 1, now, v).max(r.since(
                    r.history.len().saturating_sub(1),
                    now,
                    v,
                )),
                r.max,
            ),
            None => (0.0, 0.0, 0.0),
        };
        let (a, b, c) = match kind {
            ObjectKind::Rule => ("matched.rate", "matched.rate.last5m", "matched.rate.max"),
            _ => ("rate", "rate_last5m", "rate_max"),
        };
        m.insert(a.into(), json!(round2(rate)));
        m.insert(b.into(), json!(round2(last5m)));
        m.insert(c.into(), json!(round2(max.max(rate))));
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
