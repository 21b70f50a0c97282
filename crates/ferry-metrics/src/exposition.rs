//! Prometheus text exposition. The values are copied from the atomics at scrape time into
//! a [`Collector`] that `prometheus-client` encodes (text format 0.0.4); the format itself
//! is never written here.

use std::collections::HashMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::counters::Counters;
use crate::histogram::{Histogram, HistogramSnapshot};
use crate::names::{Kind, MetricSet};
use crate::registry::Registry;

/// A value the caller computes at scrape time (gauges such as connections, sessions,
/// or an object's state as 0/1 per state label).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Family without the `ferry_` prefix; counters end in `_total`.
    pub name: String,
    pub help: String,
    /// Only configured names and closed enums, as everywhere in this crate.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub kind: SampleKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    Counter,
    Gauge,
}

impl Sample {
    pub fn gauge(name: &str, help: &str, value: f64) -> Sample {
        Sample {
            name: name.to_owned(),
            help: help.to_owned(),
            labels: Vec::new(),
            value,
            kind: SampleKind::Gauge,
        }
    }

    pub fn counter(name: &str, help: &str, value: f64) -> Sample {
        Sample {
            kind: SampleKind::Counter,
            ..Sample::gauge(name, help, value)
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> Sample {
        self.labels.push((key.to_owned(), value.to_owned()));
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FamilyKind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug)]
enum Value {
    Int(u64),
    Float(f64),
    Histogram(HistogramSnapshot),
}

#[derive(Debug)]
struct Family {
    /// As prometheus-client wants it: no prefix, counters without `_total` (it adds it).
    name: String,
    help: String,
    kind: FamilyKind,
    series: Vec<(Vec<(String, String)>, Value)>,
}

/// The families of one scrape, in first-seen order.
#[derive(Debug, Default)]
struct Exposition {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

type Labels = Vec<(String, String)>;

impl Exposition {
    fn push(&mut self, name: &str, help: &str, kind: FamilyKind, labels: Labels, value: Value) {
        let name = match kind {
            FamilyKind::Counter => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => {
                self.families.push(Family {
                    name: name.to_owned(),
                    help: help.to_owned(),
                    kind,
                    series: Vec::new(),
                });
                self.index.insert(name.to_owned(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        if let Some(f) = self.families.get_mut(i) {
            f.series.push((labels, value));
        }
    }

    fn counters<M: MetricSet>(&mut self, c: &Counters<M>, object: Option<&str>) {
        let scope = |extra: &[(&str, &str)]| -> Labels {
            let mut l: Labels = match (M::SCOPE, object) {
                (Some(k), Some(v)) => vec![(k.to_owned(), v.to_owned())],
                _ => Vec::new(),
            };
            l.extend(
                extra
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
            l
        };
        for m in M::ALL {
            let d = m.def();
            let kind = match d.kind {
                Kind::Counter => FamilyKind::Counter,
                Kind::Gauge => FamilyKind::Gauge,
            };
            self.push(d.name, d.help, kind, scope(d.labels), Value::Int(c.get(*m)));
        }
        for d in M::DERIVED {
            self.push(
                d.name,
                d.help,
                FamilyKind::Gauge,
                scope(&[]),
                Value::Int(c.derived(d)),
            );
        }
    }

    fn histogram(&mut self, name: &str, help: &str, labels: Labels, h: &Histogram) {
        self.push(
            name,
            help,
            FamilyKind::Histogram,
            labels,
            Value::Histogram(h.snapshot()),
        );
    }

    fn sample(&mut self, s: &Sample) {
        let kind = match s.kind {
            SampleKind::Counter => FamilyKind::Counter,
            SampleKind::Gauge => FamilyKind::Gauge,
        };
        self.push(
            &s.name,
            &s.help,
            kind,
            s.labels.clone(),
            Value::Float(s.value),
        );
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for f in &self.families {
            let ty = match f.kind {
                FamilyKind::Counter => MetricType::Counter,
                FamilyKind::Gauge => MetricType::Gauge,
                FamilyKind::Histogram => MetricType::Histogram,
            };
            let mut metric = encoder.encode_descriptor(&f.name, &f.help, None, ty)?;
            for (labels, value) in &f.series {
                let mut m = metric.encode_family(labels)?;
                match (f.kind, value) {
                    (FamilyKind::Counter, Value::Int(v)) => {
                        m.encode_counter::<NoLabelSet, _, u64>(v, None)?;
                    }
                    (FamilyKind::Counter, Value::Float(v)) => {
                        m.encode_counter::<NoLabelSet, _, f64>(v, None)?;
                    }
                    (_, Value::Int(v)) => m.encode_gauge(v)?,
                    (_, Value::Float(v)) => m.encode_gauge(v)?,
                    (_, Value::Histogram(h)) => {
                        m.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets, None)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Registry {
    /// The Prometheus text exposition (format 0.0.4) of everything in the registry, the
    /// caller's `extra` samples (gauges computed at scrape time), process metrics and
    /// `ferry_build_info{version}`. Every name carries the `ferry_` prefix.
    pub fn encode_prometheus(&self, extra: &[Sample]) -> String {
        let mut e = Exposition::default();
        e.counters(&self.broker, None);
        e.histogram(
            "puback_delay_seconds",
            "Time from reading a QoS 1/2 PUBLISH to writing its PUBACK/PUBREC (waits for durable actions in sync mode).",
            Vec::new(),
            &self.puback_delay,
        );
        e.counters(&self.persist, None);
        e.histogram(
            "state_commit_seconds",
            "Duration of each MQTT state commit (snapshot and store transaction).",
            Vec::new(),
            &self.commit_latency,
        );
        for (name, r) in self.rules.all() {
            e.counters(&*r, Some(&name));
        }
        for (name, a) in self.actions.all() {
            e.counters(&a.counters, Some(&name));
            e.histogram(
                "action_latency_seconds",
                "Time from MQTT arrival to Kafka acknowledgement, per action.",
                vec![("action".to_owned(), name.clone())],
                &a.latency,
            );
            e.histogram(
                "action_buffer_commit_seconds",
                "Disk buffer: duration of each group commit (write and fdatasync), per action.",
                vec![("action".to_owned(), name.clone())],
                &a.commit_latency,
            );
        }
        for (name, s) in self.sources.all() {
            e.counters(&s.counters, Some(&name));
            e.histogram(
                "source_delivery_latency_seconds",
                "Time from consuming a Kafka record to its delivery being done, per source.",
                vec![("source".to_owned(), name.clone())],
                &s.latency,
            );
        }
        for s in extra {
            e.sample(s);
        }
        for s in crate::process::samples() {
            e.sample(&s);
        }
        e.sample(
            &Sample::gauge("build_info", "Ferry build information.", 1.0)
                .label("version", env!("CARGO_PKG_VERSION")),
        );
        let mut reg = prometheus_client::registry::Registry::with_prefix(crate::PREFIX);
        reg.register_collector(Box::new(e));
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would leave a partial text.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &reg);
        out
    }
}
