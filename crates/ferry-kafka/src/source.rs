//! Kafka consumer sources: Kafka records delivered to MQTT, at least once.
//!
//! A source consumes its topics in a consumer group and, for each record, renders the MQTT
//! topic, payload, QoS and retain flag from templates over the record's envelope
//! (`key, value, topic, partition, offset, ts, ts_type, headers`) and publishes it through the
//! broker with a delivery [`Completion`]. An offset is committed only when the record and
//! every record before it were delivered: each QoS 1/2 subscriber acknowledged it (or its
//! delivery was given up: dropped from a full queue, expired, session gone) and QoS 0
//! subscribers had it queued. At most `max_inflight` records wait for delivery; past that
//! the source stops reading (librdkafka's prefetch is bounded too). On shutdown the
//! in-flight records get `drain_timeout` to finish before the last commit.
//!
//! Records that cannot be mapped (a template with no value) are counted as failed and
//! skipped: they never stall the source.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use ferry_broker::{Broker, ClientInfo, Completion, Message};
use ferry_engine::RuleEngine;
use ferry_mqtt::{Properties, QoS};
use ferry_rules::{Map, Template, Value};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{Message as _, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::Dur;
use crate::connector::{Connector, client_config};

/// `[sources.kafka.NAME]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub connector: String,
    /// Topics to consume (or `topic_pattern`).
    #[serde(default)]
    pub topics: Vec<String>,
    /// A regular expression of topics to consume instead of `topics`.
    pub topic_pattern: Option<String>,
    /// Default: `ferry-source-NAME`.
    pub group_id: Option<String>,
    #[serde(default)]
    pub offset_reset: OffsetReset,
    /// Start from the first record at or after this time (ms since the epoch) instead of
    /// the group's committed offsets; partitions are then assigned, not balanced (`topics` only).
    pub start_from_timestamp: Option<i64>,
    #[serde(default)]
    pub key_encoding: Encoding,
    #[serde(default)]
    pub value_encoding: Encoding,
    /// MQTT topic template, e.g. `vehicles/${key}/commands`.
    pub mqtt_topic: String,
    #[serde(default = "one")]
    pub qos: u8,
    /// A Kafka header whose value ("0", "1", "2") overrides `qos`.
    pub qos_header: Option<String>,
    #[serde(default)]
    pub retain: bool,
    /// A Kafka header whose value ("true"/"false") overrides `retain`.
    pub retain_header: Option<String>,
    /// Payload template: `${value}` (default), or e.g. `${.}` for the whole envelope.
    #[serde(default = "default_payload")]
    pub payload: String,
    /// Records waiting for MQTT delivery before the source stops reading.
    #[serde(default = "default_inflight")]
    pub max_inflight: usize,
    #[serde(default = "default_drain")]
    pub drain_timeout: Dur,
}

fn one() -> u8 {
    1
}
fn default_payload() -> String {
    "${value}".into()
}
fn default_inflight() -> usize {
    1000
}
fn default_drain() -> Dur {
    Dur(Duration::from_secs(10))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OffsetReset {
    #[default]
    Latest,
    Earliest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    #[default]
    None,
    Base64,
}

/// Per-source counters.
#[derive(Debug, Default)]
pub struct SourceMetrics {
    pub received: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub committed: AtomicU64,
    /// Consumer lag per partition ("topic/partition" → high watermark − next offset).
    pub lag: Mutex<BTreeMap<String, i64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceMetricsSnapshot {
    pub received: u64,
    pub delivered: u64,
    pub failed: u64,
    pub inflight: u64,
    pub lag: BTreeMap<String, i64>,
}

impl SourceMetrics {
    pub fn snapshot(&self) -> SourceMetricsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SourceMetricsSnapshot {
            received: g(&self.received),
            delivered: g(&self.delivered),
            failed: g(&self.failed),
            inflight: g(&self.received).saturating_sub(g(&self.delivered) + g(&self.failed)),
            lag: self.lag.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

pub fn validate(name: &str, s: &SourceConfig, connectors: &crate::KafkaConnectors) -> Vec<String> {
    let key = format!("sources.kafka.{name}");
    let mut errs = Vec::new();
    if !connectors.kafka.contains_key(&s.connector) {
        errs.push(format!(
            "{key}.connector: no [connectors.kafka.{}]",
            s.connector
        ));
    }
    if s.topics.is_empty() == s.topic_pattern.is_none() {
        errs.push(format!("{key}: give either topics or topic_pattern"));
    }
    for (field, t) in [("mqtt_topic", &s.mqtt_topic), ("payload", &s.payload)] {
        if let Err(e) = Template::parse(t) {
            errs.push(format!("{key}.{field}: {e}"));
        }
    }
    if s.start_from_timestamp.is_some() && s.topic_pattern.is_some() {
        errs.push(format!(
            "{key}.start_from_timestamp: works with topics, not topic_pattern"
        ));
    }
    if s.qos > 2 {
        errs.push(format!("{key}.qos: must be 0, 1 or 2"));
    }
    if s.max_inflight == 0 {
        errs.push(format!("{key}.max_inflight: must be at least 1"));
    }
    errs
}

/// A running source.
pub struct KafkaSource {
    pub name: String,
    pub metrics: Arc<SourceMetrics>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop: CancellationToken,
}

struct Pending {
    topic: String,
    partition: i32,
    offset: i64,
    /// Resolves when the record was delivered; `None` once it was (or if it was skipped).
    done: Option<oneshot::Receiver<()>>,
    skipped: bool,
}

impl KafkaSource {
    pub fn start(
        name: &str,
        cfg: SourceConfig,
        conn: &Connector,
        broker: Weak<Broker>,
        rules: Option<Arc<RuleEngine>>,
    ) -> Result<Arc<KafkaSource>, String> {
        let key = format!("sources.kafka.{name}");
        let mut cc = client_config(&conn.config);
        cc.set(
            "group.id",
            cfg.group_id
                .clone()
                .unwrap_or_else(|| format!("ferry-source-{name}")),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            match cfg.offset_reset {
                OffsetReset::Latest => "latest",
                OffsetReset::Earliest => "earliest",
            },
        )
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000")
        .set("queued.max.messages.kbytes", "16384");
        let consumer: StreamConsumer = cc
            .create()
            .map_err(|e| format!("{key}: cannot create the consumer: {e}"))?;
        match cfg.start_from_timestamp {
            Some(ts) => {
                // Blocking lookups, once at start.
                let mut want = TopicPartitionList::new();
                for t in &cfg.topics {
                    let md = consumer
                        .fetch_metadata(Some(t), Duration::from_secs(10))
                        .map_err(|e| format!("{key}: metadata of {t}: {e}"))?;
                    for p in md.topics().iter().flat_map(|x| x.partitions()) {
                        want.add_partition_offset(t, p.id(), Offset::Offset(ts))
                            .map_err(|e| format!("{key}: {e}"))?;
                    }
                }
                let from = consumer
                    .offsets_for_times(want, Duration::from_secs(10))
                    .map_err(|e| format!("{key}: offsets for {ts}: {e}"))?;
                consumer
                    .assign(&from)
                    .map_err(|e| format!("{key}: assign: {e}"))?;
            }
            None => {
                let subs: Vec<String> = match &cfg.topic_pattern {
                    Some(p) => vec![if p.starts_with('^') {
                        p.clone()
                    } else {
                        format!("^{p}")
                    }],
                    None => cfg.topics.clone(),
                };
                let refs: Vec<&str> = subs.iter().map(String::as_str).collect();
                consumer
                    .subscribe(&refs)
                    .map_err(|e| format!("{key}: subscribe: {e}"))?;
            }
        }
        let t = |f: &str, s: &str| Template::parse(s).map_err(|e| format!("{key}.{f}: {e}"));
        let mapper = Mapper {
            topic: t("mqtt_topic", &cfg.mqtt_topic)?,
            payload: t("payload", &cfg.payload)?,
            publisher: Arc::new(ClientInfo::internal(&format!("$source:{name}"))),
            bridge: format!("$bridges/kafka:{name}"),
            cfg: cfg.clone(),
        };
        let metrics = Arc::new(SourceMetrics::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            consumer,
            mapper,
            broker,
            rules,
            metrics.clone(),
            stop.clone(),
        ));
        Ok(Arc::new(KafkaSource {
            name: name.to_owned(),
            metrics,
            task: Mutex::new(Some(task)),
            stop,
        }))
    }

    /// Stops reading, lets in-flight records finish (up to `drain_timeout`), commits.
    pub async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

struct Mapper {
    topic: Template,
    payload: Template,
    publisher: Arc<ClientInfo>,
    bridge: String,
    cfg: SourceConfig,
}

fn decode(b: Option<&[u8]>, enc: Encoding) -> Value {
    match b {
        None => Value::Null,
        Some(b) => match enc {
            Encoding::None => Value::from_bytes(b.to_vec()),
            Encoding::Base64 => Value::Str(base64::engine::general_purpose::STANDARD.encode(b)),
        },
    }
}

impl Mapper {
    /// The record as EMQX's Kafka source shows it.
    fn envelope(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> (Map, Vec<(String, String)>) {
        let mut headers = Map::new();
        let mut props = Vec::new();
        if let Some(h) = m.headers() {
            for x in h.iter() {
                let v = x
                    .value
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                headers.insert(x.key.to_owned(), Value::from(v.as_str()));
                props.push((x.key.to_owned(), v));
            }
        }
        let (ts, ts_type) = match m.timestamp() {
            rdkafka::Timestamp::CreateTime(t) => (Value::Int(t), "create"),
            rdkafka::Timestamp::LogAppendTime(t) => (Value::Int(t), "append"),
            rdkafka::Timestamp::NotAvailable => (Value::Null, "undefined"),
        };
        let env = Map::from_iter([
            ("headers".to_owned(), Value::Map(headers)),
            ("key".to_owned(), decode(m.key(), self.cfg.key_encoding)),
            ("offset".to_owned(), Value::Int(m.offset())),
            ("partition".to_owned(), Value::Int(i64::from(m.partition()))),
            ("topic".to_owned(), Value::from(m.topic())),
            ("ts".to_owned(), ts),
            ("ts_type".to_owned(), Value::from(ts_type)),
            (
                "value".to_owned(),
                decode(m.payload(), self.cfg.value_encoding),
            ),
        ]);
        (env, props)
    }

    fn message(&self, env: &Map, props: Vec<(String, String)>) -> Result<Message, String> {
        let topic = self.topic.render_strict(env, None).ok_or_else(|| {
            format!(
                "mqtt_topic {:?} has no value for this record",
                self.cfg.mqtt_topic
            )
        })?;
        ferry_mqtt::topic::validate_name(&topic)
            .map_err(|e| format!("mqtt topic {topic:?}: {e}"))?;
        let header = |h: &Option<String>| {
            h.as_ref().and_then(|h| {
                env.get("headers").and_then(|m| {
                    if let Value::Map(m) = m {
                        m.get(h).map(Value::to_text)
                    } else {
                        None
                    }
                })
            })
        };
        let qos = header(&self.cfg.qos_header)
            .and_then(|q| q.trim().parse::<u8>().ok())
            .unwrap_or(self.cfg.qos);
        let qos = QoS::from_u8(qos).ok_or(format!("qos {qos} is not 0, 1 or 2"))?;
        let retain =
            header(&self.cfg.retain_header).map_or(self.cfg.retain, |r| r.trim() == "true");
        let payload = match self.payload.render_value(env) {
            Value::Str(s) => Bytes::from(s),
            Value::Bin(b) => Bytes::from(b),
            Value::Null => Bytes::new(),
            other => Bytes::from(other.to_text()),
        };
        let mut msg = Message::new(topic, payload, qos, retain);
        msg.properties = Properties {
            user_properties: props,
            ..Default::default()
        };
        msg.publisher = Some(self.publisher.clone());
        Ok(msg)
    }
}

async fn run(
    consumer: StreamConsumer,
    mapper: Mapper,
    broker: Weak<Broker>,
    rules: Option<Arc<RuleEngine>>,
    metrics: Arc<SourceMetrics>,
    stop: CancellationToken,
) {
    let max = mapper.cfg.max_inflight;
    let mut pending: VecDeque<Pending> = VecDeque::new();
    // Next offset to commit per (topic, partition).
    let mut commit: HashMap<(String, i32), i64> = HashMap::new();
    let mut last_commit = Instant::now();
    let mut uncommitted = 0usize;
    let mut lag_at = Instant::now();
    let consumer = Arc::new(consumer);
    loop {
        // The first undelivered record, waited on outside the queue (the queue grows below).
        let mut front = pending.front_mut().and_then(|p| p.done.take());
        let mut front_done = false;
        tokio::select! {
            _ = stop.cancelled() => {
                if let (Some(rx), Some(p)) = (front.take(), pending.front_mut()) {
                    p.done = Some(rx);
                }
                break;
            }
            _ = async { if let Some(rx) = front.as_mut() { let _ = rx.await; } }, if front.is_some() => {
                front_done = true;
            }
            r = consumer.recv(), if pending.len() < max => match r {
                Err(e) => {
                    tracing::debug!("kafka source: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(m) => {
                    metrics.received.fetch_add(1, Ordering::Relaxed);
                    let (env, props) = mapper.envelope(&m);
                    let (topic, partition, offset) = (m.topic().to_owned(), m.partition(), m.offset());
                    drop(m);
                    if let Some(r) = &rules {
                        r.on_bridge(&mapper.bridge, &env);
                    }
                    let Some(b) = broker.upgrade() else { break };
                    match mapper.message(&env, props) {
                        Ok(mut msg) => {
                            let (c, rx) = Completion::new();
                            msg.completion = Some(c);
                            b.publish(msg);
                            pending.push_back(Pending { topic, partition, offset, done: Some(rx), skipped: false });
                        }
                        Err(e) => {
                            let n = metrics.failed.fetch_add(1, Ordering::Relaxed) + 1;
                            if n.is_power_of_two() {
                                tracing::warn!(failed_total = n, "kafka source record {topic}/{partition}@{offset} skipped: {e}");
                            }
                            pending.push_back(Pending { topic, partition, offset, done: None, skipped: true });
                        }
                    }
                }
            },
        }
        if !front_done && let (Some(rx), Some(p)) = (front.take(), pending.front_mut()) {
            p.done = Some(rx);
        }
        // Completed prefix: commit past it.
        while pending.front().is_some_and(|p| p.done.is_none()) {
            if let Some(p) = pending.pop_front() {
                settle(p, &mut commit, &metrics);
                uncommitted += 1;
            }
        }
        if uncommitted > 0
            && (uncommitted >= 100 || last_commit.elapsed() >= Duration::from_secs(1))
        {
            do_commit(&consumer, &commit, CommitMode::Async, &metrics);
            uncommitted = 0;
            last_commit = Instant::now();
        }
        if lag_at.elapsed() >= Duration::from_secs(5) {
            lag_at = Instant::now();
            let (c, m, positions) = (consumer.clone(), metrics.clone(), commit.clone());
            tokio::task::spawn_blocking(move || update_lag(&c, &positions, &m));
        }
    }
    // Drain: let what is in flight finish, then commit it.
    let deadline = tokio::time::Instant::now() + mapper.cfg.drain_timeout.0;
    while let Some(p) = pending.front_mut() {
        if let Some(rx) = p.done.as_mut() {
            if tokio::time::timeout_at(deadline, rx).await.is_err() {
                break;
            }
            p.done = None;
        }
        if let Some(p) = pending.pop_front() {
            settle(p, &mut commit, &metrics);
        }
    }
    if !pending.is_empty() {
        tracing::warn!(
            "kafka source stopped with {} records not delivered (they will be consumed again)",
            pending.len()
        );
    }
    let c = consumer.clone();
    let m = metrics.clone();
    let _ = tokio::task::spawn_blocking(move || {
        do_commit(&c, &commit, CommitMode::Sync, &m);
        c.unsubscribe();
    })
    .await;
}

fn settle(p: Pending, commit: &mut HashMap<(String, i32), i64>, metrics: &SourceMetrics) {
    if !p.skipped {
        metrics.delivered.fetch_add(1, Ordering::Relaxed);
    }
    commit.insert((p.topic, p.partition), p.offset + 1);
}

fn do_commit(
    consumer: &StreamConsumer,
    commit: &HashMap<(String, i32), i64>,
    mode: CommitMode,
    m: &SourceMetrics,
) {
    if commit.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for ((t, p), o) in commit {
        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
    }
    match consumer.commit(&tpl, mode) {
        Ok(()) => {
            m.committed.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => tracing::debug!("kafka source commit: {e}"),
    }
}

fn update_lag(
    consumer: &StreamConsumer,
    positions: &HashMap<(String, i32), i64>,
    m: &SourceMetrics,
) {
    let mut lag = BTreeMap::new();
    for ((t, p), next) in positions {
        if let Ok((_, high)) = consumer.fetch_watermarks(t, *p, Duration::from_secs(2)) {
            lag.insert(format!("{t}/{p}"), (high - next).max(0));
        }
    }
    *m.lag.lock().unwrap_or_else(|e| e.into_inner()) = lag;
}
