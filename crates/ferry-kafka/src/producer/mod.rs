//! Kafka producer actions.
//!
//! `KafkaAction::run` is called by the rule engine on the publishing client's task. It
//! renders the record and, never blocking:
//! - sync mode: hands the record to librdkafka with a oneshot in its delivery opaque and
//!   registers the receiver as a durable acknowledgement, so the publisher's PUBACK waits for
//!   Kafka's (a full librdkafka queue answers 0x97 at once; a failure or timeout 0x80);
//! - async mode: pushes it into a bounded in-memory queue (overflow policy counted as
//!   `dropped.queue_full`); a worker task moves records into librdkafka, waiting while its
//!   queue is full, and sends retryable failures again (up to `max_retries`, each when its
//!   `retry_backoff` is over, from a retry queue bounded like the queue and counted as
//!   `dropped.retry_queue_full`);
//! - disk mode (`buffer_mode = "disk"`, [`crate::disk`]): hands the encoded record to the
//!   action's buffer thread; the PUBACK waits for its group commit (fsync), not for Kafka.
//!
//! Every record ends in exactly one of: success, failed, dropped. Counters live in
//! [`ActionStats`].
//!
//! Per record the hot path renders once (from the input itself for a plain `SELECT *`:
//! [`Action::run_star`]) and, in memory modes, lends topic, key and value to librdkafka
//! (which copies them) rather than copying them twice.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ferry_broker::{DurableAck, NotDurable};
use ferry_engine::{Action, ActionEnv};
use ferry_mqtt::{QoS, reason};
use ferry_rules::{Bindings, Columns, Map, Template, Value};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{
    BufferMode, Compression, HeaderEncode, Overflow, PartitionStrategy, ProducerConfig, QueryMode,
    RequiredAcks,
};
use crate::connector::{Connector, client_config};
use crate::disk::{DiskHandle, Msg};
use crate::partition::java_partition;

mod counts;
mod queue;
mod reports;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_retry;

use counts::{PartitionCounts, refresh_counts};
use ferry_metrics::{ActionMetric, ActionStats, Registry};
use queue::{Queue, worker};
pub use reports::Reports;

/// A rendered record.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub timestamp: i64,
    pub headers: Vec<(String, Vec<u8>)>,
    pub partition: Option<i32>,
    /// When the MQTT message arrived (publish-to-Kafka-ack latency starts here).
    pub since: Instant,
}

/// Travels with a record through librdkafka and comes back in the delivery report.
pub struct Delivery {
    record: Record,
    ack: Option<ferry_broker::AckSender>,
    attempt: u32,
    /// Disk mode: the record's id in the action's buffer (its report goes back there).
    buffer_id: Option<u64>,
}

impl Delivery {
    /// A record read back from the disk buffer.
    pub(crate) fn buffered(record: Record, id: u64) -> Delivery {
        Delivery {
            record,
            ack: None,
            attempt: 0,
            buffer_id: Some(id),
        }
    }

    /// Hybrid mode: a record kept in memory.
    pub(crate) fn in_memory(record: Record) -> Delivery {
        Delivery {
            record,
            ack: None,
            attempt: 0,
            buffer_id: None,
        }
    }

    /// A memory-mode delivery coming back failed: topic, key and value (lent to
    /// librdkafka by [`KafkaAction::send`]) again from librdkafka's copy of the message.
    pub(crate) fn restore(&mut self, msg: &rdkafka::message::BorrowedMessage<'_>) {
        use rdkafka::Message as _;
        let rec = &mut self.record;
        if rec.topic.is_empty() {
            msg.topic().clone_into(&mut rec.topic);
        }
        if rec.value.is_empty() {
            rec.value = msg.payload().map(<[u8]>::to_vec).unwrap_or_default();
        }
        if let Some(k) = rec.key.as_mut()
            && k.is_empty()
        {
            *k = msg.key().map(<[u8]>::to_vec).unwrap_or_default();
        }
    }

    pub(crate) fn buffer_id(&self) -> Option<u64> {
        self.buffer_id
    }

    pub(crate) fn into_record(self) -> Record {
        self.record
    }
}

pub struct KafkaAction {
    name: String,
    cfg: ProducerConfig,
    /// Replaced when librdkafka reports a fatal error (e.g. an idempotent producer whose
    /// sequence the cluster no longer knows, after the cluster lost its state).
    producer: RwLock<Arc<ThreadedProducer<Reports>>>,
    client_config: rdkafka::ClientConfig,
    stalled: Arc<std::sync::atomic::AtomicBool>,
    topic: Template,
    key: Template,
    value: Template,
    timestamp: Template,
    headers: Option<Template>,
    ext_headers: Vec<(Template, Template)>,
    partition: Option<Template>,
    counts: Arc<PartitionCounts>,
    round_robin: AtomicU64,
    queue: Arc<Queue>,
    /// Disk and hybrid modes: the hand-over to the buffer thread, and the thread.
    disk: Option<DiskHandle>,
    driver: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Disk mode: the last buffer I/O error, until a commit succeeds again.
    buffer_error: Mutex<Option<String>>,
    pub metrics: Arc<ActionStats>,
}

fn bytes_of(v: Value) -> Vec<u8> {
    match v {
        Value::Str(s) => s.into_bytes(),
        Value::Bin(b) => b,
        Value::Null => Vec::new(),
        other => other.to_text().into_bytes(),
    }
}

impl KafkaAction {
    /// Creates the producer (no connection is needed yet) and, in async mode, the worker.
    pub fn start(
        name: &str,
        cfg: ProducerConfig,
        conn: &Connector,
        registry: &Arc<Registry>,
        stop: CancellationToken,
        buffer_dir: Option<std::path::PathBuf>,
    ) -> Result<Arc<KafkaAction>, String> {
        let t = |field: &str, s: &str| {
            Template::parse(s).map_err(|e| format!("actions.kafka.{name}.{field}: {e}"))
        };
        let metrics = registry.action(name);
        let queue = Arc::new(Queue::new(
            cfg.max_queue_messages,
            cfg.overflow,
            cfg.retry_backoff.0,
            metrics.clone(),
        ));
        let mut cc = client_config(&conn.config);
        cc.set(
            "acks",
            match cfg.required_acks {
                RequiredAcks::All => "all",
                RequiredAcks::Leader => "1",
                RequiredAcks::None => "0",
            },
        )
        .set(
            "compression.type",
            match cfg.compression {
                Compression::None => "none",
                Compression::Gzip => "gzip",
                Compression::Snappy => "snappy",
                Compression::Lz4 => "lz4",
                Compression::Zstd => "zstd",
            },
        )
        .set("linger.ms", cfg.linger.ms().to_string())
        .set("batch.size", cfg.max_batch_bytes.to_string())
        .set(
            "enable.idempotence",
            if cfg.idempotence { "true" } else { "false" },
        )
        // Java-compatible placement of keyed records (murmur2); keyless ones spread randomly.
        .set("partitioner", "murmur2_random")
        .set("retry.backoff.ms", cfg.retry_backoff.ms().to_string())
        .set("queue.buffering.max.messages", "100000");
        let timeout = match cfg.query_mode {
            QueryMode::Sync => cfg.sync_timeout.ms(),
            QueryMode::Async => 30_000,
        };
        cc.set("message.timeout.ms", timeout.max(1).to_string());
        let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let disk = match (cfg.buffer_mode, buffer_dir) {
            (BufferMode::Memory, _) => None,
            (_, Some(dir)) => Some((DiskHandle::new(), dir)),
            (mode, None) => {
                return Err(format!(
                    "actions.kafka.{name}.buffer_mode: \"{}\" needs a data directory ([node] data_dir)",
                    mode.as_str()
                ));
            }
        };
        let reports = Reports::new(
            &cfg,
            name,
            &metrics,
            &queue,
            &stalled,
            disk.as_ref().map(|((h, _), _)| h),
        );
        let producer: ThreadedProducer<Reports> = cc
            .create_with_context(reports)
            .map_err(|e| format!("actions.kafka.{name}: cannot create the producer: {e}"))?;
        let producer = RwLock::new(Arc::new(producer));
        let action = Arc::new(KafkaAction {
            name: format!("kafka:{name}"),
            topic: t("topic", &cfg.topic)?,
            key: t("key", &cfg.key)?,
            value: t("value", &cfg.value)?,
            timestamp: t("timestamp", &cfg.timestamp)?,
            headers: cfg
                .headers
                .as_deref()
                .map(|h| t("headers", h))
                .transpose()?,
            ext_headers: cfg
                .ext_headers
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    Ok((
                        t(&format!("ext_headers[{i}].key"), &h.key)?,
                        t(&format!("ext_headers[{i}].value"), &h.value)?,
                    ))
                })
                .collect::<Result<_, String>>()?,
            partition: cfg
                .partition
                .as_deref()
                .map(|p| t("partition", p))
                .transpose()?,
            counts: Arc::new(PartitionCounts::new(metrics.clone())),
            round_robin: AtomicU64::new(0),
            queue,
            disk: disk.as_ref().map(|((h, _), _)| h.clone()),
            driver: Mutex::new(None),
            buffer_error: Mutex::new(None),
            metrics,
            producer,
            client_config: cc,
            stalled,
            cfg,
        });
        if let Some(((handle, rx), dir)) = disk {
            let thread = crate::disk::spawn(action.clone(), handle, rx, dir, stop.clone());
            *action.driver.lock().unwrap_or_else(|e| e.into_inner()) = thread;
        } else if action.cfg.query_mode == QueryMode::Async {
            tokio::spawn(worker(action.clone(), stop.clone()));
        }
        let needs_counts = action.partition.is_none()
            && (action.cfg.partitions_limit.is_some()
                || action.cfg.partition_strategy != PartitionStrategy::KeyHash);
        if needs_counts {
            tokio::spawn(refresh_counts(action.clone(), stop));
        }
        Ok(action)
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.cfg
    }

    /// Disk mode: the current disk buffer error (an I/O error not yet followed by a
    /// successful commit), for the action's status.
    pub fn buffer_error(&self) -> Option<String> {
        self.buffer_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_buffer_error(&self, e: Option<String>) {
        *self.buffer_error.lock().unwrap_or_else(|e| e.into_inner()) = e;
    }

    /// The configured name (without `kafka:`).
    pub fn short_name(&self) -> &str {
        self.name.strip_prefix("kafka:").unwrap_or(&self.name)
    }

    /// Renders one rule output into a record.
    pub fn render(
        &self,
        out: &Map,
        input: Option<&dyn Columns>,
        since: Instant,
    ) -> Result<Record, String> {
        self.render_in(Bindings::Output(out, input), since)
    }

    /// Renders a record from any [`Bindings`]: the value and timestamp templates see the
    /// output only, the others fall back to the rule's input.
    pub fn render_in(&self, b: Bindings<'_>, since: Instant) -> Result<Record, String> {
        let out_only = b.output_only();
        let topic = self.topic.render_strict_in(b).ok_or_else(|| {
            format!(
                "topic template {:?} has no value for this message",
                self.cfg.topic
            )
        })?;
        if topic.is_empty()
            || topic.len() > 249
            || !topic
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        {
            return Err(format!("invalid Kafka topic {topic:?} from template"));
        }
        let key = match self.key.render_value_in(b) {
            Value::Null => None,
            v => Some(bytes_of(v)),
        };
        let value = bytes_of(self.value.render_value_in(out_only));
        // `${timestamp}` is an integer already: no text and back.
        let timestamp = match self.timestamp.render_value_in(out_only) {
            Value::Int(ms) => Some(ms),
            Value::Str(s) => s.trim().parse::<i64>().ok(),
            other => other.to_text().trim().parse::<i64>().ok(),
        }
        .unwrap_or_else(ferry_broker::hook::now_ms);
        let mut headers = Vec::new();
        if let Some(h) = &self.headers {
            match h.render_value_in(b) {
                Value::Map(m) => {
                    for (k, v) in m {
                        let b = match (self.cfg.header_value_encode, v) {
                            (HeaderEncode::Json, v) => v.to_json().into_bytes(),
                            (HeaderEncode::None, v) => bytes_of(v),
                        };
                        headers.push((k, b));
                    }
                }
                Value::Null => {}
                other => {
                    return Err(format!(
                        "headers must render an object, got {}",
                        other.type_name()
                    ));
                }
            }
        }
        for (k, v) in &self.ext_headers {
            let value = match self.cfg.header_value_encode {
                HeaderEncode::Json => v.render_value_in(b).to_json().into_bytes(),
                HeaderEncode::None => bytes_of(v.render_value_in(b)),
            };
            headers.push((k.render_in(b), value));
        }
        let partition = self.choose_partition(&topic, key.as_deref(), b)?;
        Ok(Record {
            topic,
            key,
            value,
            timestamp,
            headers,
            partition,
            since,
        })
    }

    fn choose_partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        b: Bindings<'_>,
    ) -> Result<Option<i32>, String> {
        if let Some(p) = &self.partition {
            let s = p.render_in(b);
            return s
                .trim()
                .parse::<i32>()
                .map(Some)
                .map_err(|_| format!("partition {s:?} is not a number"));
        }
        if self.cfg.partitions_limit.is_none()
            && self.cfg.partition_strategy == PartitionStrategy::KeyHash
        {
            // librdkafka's murmur2_random is the Java partitioner: no count needed (and no
            // refresher runs to keep one).
            return Ok(None);
        }
        let Some(count) = self.counts.lookup(topic) else {
            // Unknown yet: librdkafka's murmur2_random places it (Java-compatible for keys).
            return Ok(None);
        };
        Ok(pick_partition(
            self.cfg.partition_strategy,
            count,
            self.cfg.partitions_limit,
            key,
            &self.round_robin,
        ))
    }

    /// The current producer, replaced first if librdkafka declared it dead.
    fn producer(&self) -> Arc<ThreadedProducer<Reports>> {
        let p = self
            .producer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let why = match p.client().fatal_error() {
            Some((code, why)) => format!("failed fatally ({code:?}: {why})"),
            None if self.stalled.swap(false, Ordering::Relaxed) => {
                "timed out while idempotent".to_owned()
            }
            None => return p,
        };
        let mut slot = self.producer.write().unwrap_or_else(|e| e.into_inner());
        if !Arc::ptr_eq(&slot, &p) {
            return slot.clone();
        }
        tracing::warn!(action = %self.name, "producer {why}; creating a new one");
        let reports = Reports::new(
            &self.cfg,
            &self.name,
            &self.metrics,
            &self.queue,
            &self.stalled,
            self.disk.as_ref(),
        );
        match self
            .client_config
            .create_with_context::<_, ThreadedProducer<Reports>>(reports)
        {
            Ok(fresh) => {
                let old = std::mem::replace(&mut *slot, Arc::new(fresh));
                // Destroying a producer waits for its outstanding records: not on this task.
                std::thread::spawn(move || drop(old));
                slot.clone()
            }
            Err(e) => {
                tracing::warn!(action = %self.name, "cannot recreate the producer: {e}");
                p
            }
        }
    }

    /// Hands a record to librdkafka. On a full local queue (or any refusal), gives the
    /// delivery back whole.
    ///
    /// librdkafka copies topic, key and value. In memory modes the record's own copies
    /// are lent to it and dropped here, on the sending thread: the delivery that rides
    /// along keeps the rest (timing, headers, partition, whether it had a key), and a
    /// failed delivery report rebuilds them from librdkafka's message
    /// ([`Delivery::restore`]) for a retry. Disk and hybrid modes keep the whole record
    /// with the delivery (their buffer thread stores or resends it).
    pub(crate) fn send(&self, mut d: Box<Delivery>) -> Result<(), (KafkaError, Box<Delivery>)> {
        let rec = &mut d.record;
        // None unless the record has some: librdkafka allocates a header list otherwise.
        let headers = (!rec.headers.is_empty()).then(|| {
            rec.headers.iter().fold(
                OwnedHeaders::new_with_capacity(rec.headers.len()),
                |h, (k, v)| {
                    h.insert(Header {
                        key: k,
                        value: Some(v),
                    })
                },
            )
        });
        let (topic, key, value) = if self.disk.is_some() {
            (rec.topic.clone(), rec.key.clone(), rec.value.clone())
        } else {
            let key = rec.key.as_mut().map(std::mem::take);
            (
                std::mem::take(&mut rec.topic),
                key,
                std::mem::take(&mut rec.value),
            )
        };
        let (ts, part) = (rec.timestamp, rec.partition);
        let mut br = BaseRecord::with_opaque_to(&topic, d)
            .payload(&value)
            .timestamp(ts);
        if let Some(h) = headers {
            br = br.headers(h);
        }
        if let Some(k) = &key {
            br = br.key(k);
        }
        if let Some(p) = part {
            br = br.partition(p);
        }
        self.metrics.counters.inc(ActionMetric::InflightSent);
        match self.producer().send(br) {
            Ok(()) => Ok(()),
            Err((e, br)) => {
                self.metrics.counters.inc(ActionMetric::InflightDone);
                let mut d = br.delivery_opaque;
                if self.disk.is_none() {
                    let rec = &mut d.record;
                    rec.topic = topic;
                    rec.value = value;
                    if let (Some(slot), Some(k)) = (rec.key.as_mut(), key) {
                        *slot = k;
                    }
                }
                Err((e, d))
            }
        }
    }

    /// Waits up to `timeout` for everything in flight to be delivered.
    pub fn flush(&self, timeout: Duration) {
        let _ = self.producer().flush(timeout);
    }

    #[cfg(test)]
    pub(crate) fn disk_handle(&self) -> Option<&DiskHandle> {
        self.disk.as_ref()
    }

    /// Takes back everything librdkafka holds (its delivery reports say so).
    pub(crate) fn purge(&self) {
        self.producer()
            .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
    }
}

/// The partition `strategy` picks among the first `min(count, limit)` partitions. Total: a
/// count or limit out of range (config validation refuses a limit above `i32::MAX`, but
/// this runs on the publishing task and must not panic) is clamped to `1..=i32::MAX`.
fn pick_partition(
    strategy: PartitionStrategy,
    count: i32,
    limit: Option<u32>,
    key: Option<&[u8]>,
    round_robin: &AtomicU64,
) -> Option<i32> {
    let limit = limit.map_or(i32::MAX, |l| i32::try_from(l).unwrap_or(i32::MAX));
    let n = count.min(limit).max(1);
    match strategy {
        PartitionStrategy::KeyHash => key.map(|k| java_partition(k, n)),
        PartitionStrategy::Random => Some(rand::random_range(0..n)),
        PartitionStrategy::RoundRobin => {
            let i = round_robin.fetch_add(1, Ordering::Relaxed) % n as u64;
            Some(i32::try_from(i).unwrap_or(0))
        }
    }
}

impl Action for KafkaAction {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&self, out: &Map, env: &mut ActionEnv<'_>) -> Result<(), String> {
        let input = env.input;
        self.run_in(Bindings::Output(out, Some(input)), env)
    }

    fn run_star(&self, env: &mut ActionEnv<'_>) -> Result<(), String> {
        let input = env.input;
        self.run_in(Bindings::Star(input), env)
    }
}

impl KafkaAction {
    fn run_in(&self, b: Bindings<'_>, env: &mut ActionEnv<'_>) -> Result<(), String> {
        let m = &self.metrics;
        m.counters.inc(ActionMetric::Matched);
        let since = env
            .msg
            .map_or_else(Instant::now, |msg| msg.received_at.into_std());
        let record = match self.render_in(b, since) {
            Ok(r) => r,
            Err(e) => {
                m.counters.inc(ActionMetric::Failed);
                return Err(e);
            }
        };
        if let Some(disk) = &self.disk {
            // Backpressure: a full buffer holds the publisher (whatever the QoS) until the
            // record is stored.
            let holds = disk.pressing();
            let wants_ack = holds
                || (!disk.in_memory() && env.msg.is_some_and(|msg| msg.qos != QoS::AtMostOnce));
            let received_ms = env
                .msg
                .map_or_else(ferry_broker::hook::now_ms, |msg| msg.timestamp);
            let (tx, rx) = DurableAck::channel();
            let rx = if holds { rx.holding() } else { rx };
            return match disk.append(record, received_ms, wants_ack.then_some(tx)) {
                Ok(()) => {
                    if wants_ack {
                        env.acks.push(rx);
                    }
                    Ok(())
                }
                Err(ack) => {
                    m.counters.inc(ActionMetric::RefusedBufferBusy);
                    if let Some(ack) = ack {
                        let _ = ack.send(Err(NotDurable {
                            code: reason::QUOTA_EXCEEDED,
                            why: "kafka action: disk buffer busy".into(),
                        }));
                        env.acks.push(rx);
                    }
                    Err("disk buffer busy".into())
                }
            };
        }
        match self.cfg.query_mode {
            QueryMode::Async => {
                self.queue.push(Box::new(Delivery {
                    record,
                    ack: None,
                    attempt: 0,
                    buffer_id: None,
                }));
                Ok(())
            }
            QueryMode::Sync => {
                let wants_ack = env.msg.is_some_and(|msg| msg.qos != QoS::AtMostOnce);
                let (tx, rx) = DurableAck::channel();
                let d = Box::new(Delivery {
                    record,
                    ack: wants_ack.then_some(tx),
                    attempt: 0,
                    buffer_id: None,
                });
                match self.send(d) {
                    Ok(()) => {
                        if wants_ack {
                            env.acks.push(rx);
                        }
                        Ok(())
                    }
                    Err((e, mut d)) => {
                        let full = e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull);
                        if full {
                            m.counters.inc(ActionMetric::DroppedQueueFull);
                        } else {
                            m.counters.inc(ActionMetric::Failed);
                        }
                        let code = if full {
                            reason::QUOTA_EXCEEDED
                        } else {
                            reason::UNSPECIFIED_ERROR
                        };
                        if let Some(ack) = d.ack.take() {
                            let _ = ack.send(Err(NotDurable {
                                code,
                                why: format!("kafka: {e}"),
                            }));
                            env.acks.push(rx);
                        }
                        Err(format!("kafka: {e}"))
                    }
                }
            }
        }
    }
}
