//! Kafka consumer sources: Kafka records delivered to MQTT, at least once.
//!
//! A source consumes its topics in a consumer group and, for each record, renders the MQTT
//! topic, payload, QoS and retain flag from templates over the record's envelope
//! (`key, value, topic, partition, offset, ts, ts_type, headers`) and publishes it through the
//! broker with a delivery [`Completion`]. An offset is committed only when the record and
//! every record before it on its partition were delivered: each QoS 1/2 subscriber
//! acknowledged it (or its delivery was given up: dropped from a full queue, expired,
//! session gone) and QoS 0 subscribers had it queued. Records are tracked per partition
//! ([`inflight`]), so a record waiting on one partition holds back only that partition's
//! commits. At most `max_inflight` records (all partitions) wait for delivery; past that
//! the source pauses its partitions (librdkafka's prefetch is bounded too) and keeps
//! polling. When partitions are revoked (a rebalance) or the source stops, their in-flight
//! records get `drain_timeout` to finish before the last commit; what is still undelivered
//! then is left to the next owner (counted `released`).
//!
//! Must not: commit an offset before its record and every earlier one of its partition were
//! delivered, or block a runtime worker without handing it over (`block_in_place` in a
//! rebalance; the metadata and offset lookups of [`KafkaSource::start`] run on a blocking
//! thread).
//!
//! Records that cannot be mapped (a template with no value) are counted as failed and
//! skipped: they never stall the source.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use ferry_broker::{Broker, ClientInfo, Completion, DurableAck, Message};
use ferry_engine::RuleEngine;
use ferry_metrics::{Registry, SourceMetric, SourceStats};
use ferry_mqtt::{Properties, QoS};
use ferry_rules::{Map, Template, Value};
use rdkafka::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::Headers;
use rdkafka::statistics::Statistics;
use rdkafka::{Message as _, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Dur;

mod inflight;
#[cfg(test)]
mod tests;

use crate::connector::{Connector, client_config};
use inflight::{Inflight, Pending};

/// `[sources.kafka.NAME]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub connector: String,
    /// A disabled source consumes nothing.
    #[serde(
        default = "crate::config::yes",
        skip_serializing_if = "crate::config::is_true"
    )]
    pub enable: bool,
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
    /// When the source stops or a rebalance takes partitions away: how long their in-flight
    /// records may take to be delivered before the last commit (keep it well below Kafka's
    /// `max.poll.interval.ms`, 300 s, which bounds how long the group waits).
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
    if s.drain_timeout.0 >= Duration::from_secs(300) {
        errs.push(format!(
            "{key}.drain_timeout: must be below 300s (Kafka's max.poll.interval.ms: a rebalance \
             waits for it)"
        ));
    }
    errs
}

/// A running source.
pub struct KafkaSource {
    pub name: String,
    pub metrics: Arc<SourceStats>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop: CancellationToken,
}

impl KafkaSource {
    /// Creates the consumer, subscribes (or, with `start_from_timestamp`, looks the
    /// offsets up and assigns them: blocking calls, made on a blocking thread) and starts
    /// the source's task.
    pub async fn start(
        name: &str,
        cfg: SourceConfig,
        conn: &Connector,
        broker: Weak<Broker>,
        rules: Option<Arc<RuleEngine>>,
        registry: &Arc<Registry>,
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
        .set("queued.max.messages.kbytes", "16384")
        .set("statistics.interval.ms", "5000");
        let metrics = registry.source(name);
        let ctx = SourceContext {
            inflight: Default::default(),
            metrics: metrics.clone(),
            drain: cfg.drain_timeout.0,
            reassigned: AtomicBool::new(false),
        };
        let consumer: StreamConsumer<SourceContext> = cc
            .create_with_context(ctx)
            .map_err(|e| format!("{key}: cannot create the consumer: {e}"))?;
        let consumer = {
            let (k, cfg) = (key.clone(), cfg.clone());
            tokio::task::spawn_blocking(move || {
                position(&consumer, &cfg, &k)?;
                Ok::<_, String>(consumer)
            })
            .await
            .map_err(|e| format!("{key}: starting the consumer: {e}"))??
        };
        let t = |f: &str, s: &str| Template::parse(s).map_err(|e| format!("{key}.{f}: {e}"));
        let mapper = Mapper {
            topic: t("mqtt_topic", &cfg.mqtt_topic)?,
            payload: t("payload", &cfg.payload)?,
            publisher: Arc::new(ClientInfo::internal(&format!("$source:{name}"))),
            bridge: format!("$bridges/kafka:{name}"),
            cfg: cfg.clone(),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(consumer, mapper, broker, rules, stop.clone()));
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

/// Subscribes the consumer to its topics, or assigns it the offsets of
/// `start_from_timestamp` (blocking metadata and offset lookups: not on a runtime worker).
fn position(
    consumer: &StreamConsumer<SourceContext>,
    cfg: &SourceConfig,
    key: &str,
) -> Result<(), String> {
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
    Ok(())
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

/// The consumer's context: drains and commits partitions before they are revoked.
struct SourceContext {
    inflight: Arc<Mutex<Inflight>>,
    metrics: Arc<SourceStats>,
    drain: Duration,
    /// Set when partitions were assigned, so a paused source pauses them too.
    reassigned: AtomicBool,
}

impl ClientContext for SourceContext {
    /// Consumer lag per partition, from librdkafka's statistics (high watermark of the last
    /// fetch) against the next offset this source will commit.
    fn stats(&self, s: Statistics) {
        let lag: BTreeMap<String, i64> = {
            let st = self.lock();
            s.topics
                .iter()
                .flat_map(|(t, topic)| topic.partitions.values().map(move |p| (t, p)))
                .filter(|(_, p)| p.partition >= 0 && p.desired && p.hi_offset >= 0)
                .filter_map(|(t, p)| {
                    let next = st
                        .commit
                        .get(&(t.clone(), p.partition))
                        .copied()
                        .unwrap_or(p.committed_offset);
                    (next >= 0)
                        .then(|| (format!("{t}/{}", p.partition), (p.hi_offset - next).max(0)))
                })
                .collect()
        };
        self.metrics.set_lag(lag);
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            self.release(consumer, tpl);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = r {
            self.reassigned.store(true, Ordering::Relaxed);
        }
    }
}

impl SourceContext {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inflight> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Partitions are being taken away (another member joined, or the source stops): wait up
    /// to `drain_timeout` for their in-flight records, commit what was delivered, and forget
    /// the rest (the next owner reads it again).
    fn release(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let revoked: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let waiting = self.lock().undelivered(&revoked);
        if waiting > 0 {
            self.metrics
                .counters
                .set(SourceMetric::Draining, waiting as u64);
            let deadline = Instant::now() + self.drain;
            let wait = || {
                while self.lock().undelivered(&revoked) > 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            };
            // The rebalance callback runs inside `recv` on a runtime worker: hand the worker
            // over while blocking. A one-thread runtime cannot deliver meanwhile: no wait.
            match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
                Ok(_) => {}
                Err(_) => wait(),
            }
            self.metrics.counters.set(SourceMetric::Draining, 0);
        }
        let (offsets, stuck) = self.lock().release(&revoked, &self.metrics);
        if !stuck.is_empty() {
            tracing::warn!(
                "kafka source: partitions revoked with records not delivered within drain_timeout \
                 (the next owner delivers them again): {stuck:?}"
            );
        }
        do_commit(consumer, &offsets, CommitMode::Sync, &self.metrics);
    }
}

async fn run(
    consumer: StreamConsumer<SourceContext>,
    mapper: Mapper,
    broker: Weak<Broker>,
    rules: Option<Arc<RuleEngine>>,
    stop: CancellationToken,
) {
    let max = mapper.cfg.max_inflight;
    let ctx = consumer.context().clone();
    let metrics = ctx.metrics.clone();
    let signal = Arc::new(Notify::new());
    let mut last_commit = Instant::now();
    let mut uncommitted = 0usize;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut paused = false;
    let mut full = false;
    let mut closer = Closer(Some(Arc::new(consumer)));
    let Some(consumer) = closer.0.clone() else {
        return;
    };
    loop {
        // Too much in flight: pause the partitions but keep polling, so rebalances are served.
        if full && (!paused || ctx.reassigned.swap(false, Ordering::Relaxed)) {
            if let Ok(a) = consumer.assignment() {
                let _ = consumer.pause(&a);
            }
            paused = true;
        } else if !full && paused {
            if let Ok(a) = consumer.assignment() {
                let _ = consumer.resume(&a);
            }
            paused = false;
        }
        let mut read = None;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = signal.notified() => {}
            _ = tick.tick() => {}
            r = consumer.recv() => match r {
                Err(e) => {
                    tracing::debug!("kafka source: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(m) => {
                    metrics.counters.inc(SourceMetric::Received);
                    let read_at = Instant::now();
                    let (env, props) = mapper.envelope(&m);
                    let (topic, partition, offset) = (m.topic().to_owned(), m.partition(), m.offset());
                    drop(m);
                    if let Some(r) = &rules {
                        r.on_bridge(&mapper.bridge, &env);
                    }
                    let Some(b) = broker.upgrade() else { break };
                    let completion = match mapper.message(&env, props) {
                        Ok(mut msg) => {
                            let c = Completion::new(signal.clone());
                            msg.completion = Some(c.clone());
                            // A subscriber whose queue is full holds the source as it holds a
                            // client (mqtt.queue_full = backpressure, ADR 0010), so a slow
                            // subscriber slows the source instead of losing its records.
                            let mut acks = Vec::new();
                            let _ = b.publish_checked(msg, &mut acks);
                            drop(b);
                            for hold in acks.into_iter().filter(DurableAck::holds) {
                                tokio::select! {
                                    _ = stop.cancelled() => {}
                                    _ = hold => {}
                                }
                            }
                            Some(c)
                        }
                        Err(e) => {
                            let n = metrics.counters.inc(SourceMetric::Failed);
                            if n.is_power_of_two() {
                                tracing::warn!(failed_total = n, "kafka source record {topic}/{partition}@{offset} skipped: {e}");
                            }
                            None
                        }
                    };
                    read = Some(((topic, partition), Pending { offset, read_at, completion }));
                }
            },
        }
        // One lock per turn: queue what was read, settle the delivered prefix, and commit
        // past it every 100 records or every second.
        let offsets = {
            let mut st = ctx.lock();
            if let Some((tp, p)) = read {
                st.push(tp, p);
            }
            uncommitted += st.settle_prefix(&metrics);
            full = st.len() >= max;
            (uncommitted > 0
                && (uncommitted >= 100 || last_commit.elapsed() >= Duration::from_secs(1)))
            .then(|| st.commit.clone())
        };
        if let Some(offsets) = offsets {
            do_commit(&*consumer, &offsets, CommitMode::Async, &metrics);
            uncommitted = 0;
            last_commit = Instant::now();
        }
    }
    // Drain: let what is in flight finish, then commit it.
    let deadline = tokio::time::Instant::now() + mapper.cfg.drain_timeout.0;
    loop {
        let empty = {
            let mut st = ctx.lock();
            st.settle_prefix(&metrics);
            st.len() == 0
        };
        if empty
            || tokio::time::timeout_at(deadline, signal.notified())
                .await
                .is_err()
        {
            break;
        }
    }
    let offsets = {
        let mut st = ctx.lock();
        let left = st.clear();
        if left > 0 {
            tracing::warn!(
                "kafka source stopped with {left} records not delivered (they will be consumed again)"
            );
            metrics.counters.add(SourceMetric::Released, left as u64);
        }
        st.commit.clone()
    };
    drop(consumer);
    if let Some(c) = closer.0.take() {
        let done = close_off_thread(c, move |c| {
            do_commit(c, &offsets, CommitMode::Sync, &metrics);
            c.unsubscribe();
        });
        if tokio::time::timeout(CLOSE_WAIT, done).await.is_err() {
            tracing::warn!("kafka source: Kafka did not answer the last commit and close in time");
        }
    }
}

/// How long stopping a source waits for its last commit and for leaving the group.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Closing a group consumer waits for Kafka, forever if Kafka is gone, so it happens on a
/// thread of its own: `stop` waits for it up to [`CLOSE_WAIT`], a cancelled source not at all.
fn close_off_thread(
    c: Arc<StreamConsumer<SourceContext>>,
    last: impl FnOnce(&StreamConsumer<SourceContext>) + Send + 'static,
) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("kafka-close".into())
        .spawn(move || {
            last(&c);
            drop(c);
            let _ = tx.send(());
        });
    if let Err(e) = spawned {
        tracing::warn!("kafka source: cannot start the closing thread: {e}");
    }
    rx
}

/// Owns the consumer; if the source task is dropped without stopping, closes it off-thread.
struct Closer(Option<Arc<StreamConsumer<SourceContext>>>);

impl Drop for Closer {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            drop(close_off_thread(c, |_| {}));
        }
    }
}

fn do_commit<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    commit: &HashMap<(String, i32), i64>,
    mode: CommitMode,
    m: &SourceStats,
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
            m.counters.inc(SourceMetric::Commits);
        }
        Err(e) => tracing::debug!("kafka source commit: {e}"),
    }
}
