//! `[connectors.kafka.NAME]` and `[actions.kafka.NAME]`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A duration written as "500ms", "5s", "2m" or "1h" (one type for every section).
pub use ferry_broker::config::Dur;

fn dur(ms: u64) -> Dur {
    Dur(Duration::from_millis(ms))
}

/// A Kafka cluster to connect to (`[connectors.kafka.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// "host1:9092,host2:9092".
    pub bootstrap_hosts: String,
    #[serde(default = "default_client_id")]
    pub client_id: String,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    #[serde(default = "default_health_interval")]
    pub health_check_interval: Dur,
    #[serde(default)]
    pub ssl: SslConfig,
    pub authentication: Option<AuthConfig>,
    /// A disabled connector keeps its config but connects nothing; its actions and sources
    /// stay stopped.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enable: bool,
}

pub(crate) fn yes() -> bool {
    true
}

pub(crate) fn is_true(b: &bool) -> bool {
    *b
}

fn default_client_id() -> String {
    "ferry".into()
}
fn default_connect_timeout() -> Dur {
    dur(5_000)
}
fn default_health_interval() -> Dur {
    dur(15_000)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SslConfig {
    pub enable: bool,
    /// CA certificates (PEM) to verify the brokers with.
    pub cacertfile: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    /// Verify the brokers' certificates (default true).
    pub verify: Option<bool>,
    /// Refused with an explanation: librdkafka always sends each broker's advertised host
    /// name as SNI (kept so EMQX configs get a clear error instead of "unknown key").
    pub server_name_indication: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaslMechanism {
    Plain,
    #[serde(rename = "scram_sha_256")]
    ScramSha256,
    #[serde(rename = "scram_sha_512")]
    ScramSha512,
}

/// A producer action (`[actions.kafka.NAME]`), used by rules as `"kafka:NAME"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerConfig {
    /// Name of a `[connectors.kafka.NAME]`.
    pub connector: String,
    /// A disabled action is not started; rules that use it count it as failed.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enable: bool,
    /// Topic template, e.g. `my-vehicles` or `t-${payload.site}`.
    pub topic: String,
    #[serde(default = "default_key")]
    pub key: String,
    #[serde(default = "default_value")]
    pub value: String,
    /// Milliseconds since the epoch; falls back to now if it does not render to a number.
    #[serde(default = "default_timestamp")]
    pub timestamp: String,
    /// A template rendering an object, e.g. `${pub_props.'User-Property'}`: one header per key.
    pub headers: Option<String>,
    #[serde(default)]
    pub ext_headers: Vec<ExtHeader>,
    #[serde(default)]
    pub header_value_encode: HeaderEncode,
    #[serde(default)]
    pub partition_strategy: PartitionStrategy,
    /// Explicit partition template (overrides `partition_strategy`).
    pub partition: Option<String>,
    /// Use at most this many partitions of each topic (1 to 2147483647).
    pub partitions_limit: Option<u32>,
    #[serde(default = "default_refresh")]
    pub partition_count_refresh_interval: Dur,
    #[serde(default)]
    pub required_acks: RequiredAcks,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default = "default_linger")]
    pub linger: Dur,
    #[serde(default = "default_batch")]
    pub max_batch_bytes: u32,
    #[serde(default = "yes")]
    pub idempotence: bool,
    #[serde(default)]
    pub query_mode: QueryMode,
    /// Sync mode: how long a publisher waits for Kafka before it gets a failure.
    #[serde(default = "default_sync_timeout")]
    pub sync_timeout: Dur,
    /// Async mode: records held in memory waiting for Kafka; also the bound of the records
    /// waiting for a retry (past it a retry is dropped, `dropped.retry_queue_full`).
    #[serde(default = "default_queue")]
    pub max_queue_messages: usize,
    /// Async mode: which record goes when the queue is full.
    #[serde(default)]
    pub overflow: Overflow,
    /// Async mode: times a record is sent again after a retryable failure.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    #[serde(default = "default_backoff")]
    pub retry_backoff: Dur,
    /// Where records wait for Kafka: "memory" (the default: the sync/async behaviour above),
    /// "disk" (a crash-safe log in `[node] data_dir`/buffer/NAME; a QoS 1/2 PUBLISH is
    /// acknowledged once its record is fsynced) or "hybrid" (in memory while fewer than
    /// `buffer_memory_bytes` wait, acknowledged at once; past that on disk as in "disk"
    /// mode; a graceful stop writes what is in memory to disk).
    #[serde(default, skip_serializing_if = "is_default")]
    pub buffer_mode: BufferMode,
    /// Disk mode: bound on the bytes of records waiting for Kafka.
    #[serde(
        default = "default_buffer_max_bytes",
        skip_serializing_if = "is_default_buffer_max_bytes"
    )]
    pub buffer_max_bytes: u64,
    /// Disk mode: size of each segment file (also the largest record).
    #[serde(
        default = "default_segment_bytes",
        skip_serializing_if = "is_default_segment_bytes"
    )]
    pub segment_bytes: u64,
    /// Disk mode: what happens to a record when the buffer is full.
    #[serde(default, skip_serializing_if = "is_default")]
    pub when_full: WhenFull,
    /// Hybrid mode: bytes of records kept in memory (not yet delivered) before new records
    /// go to disk.
    #[serde(
        default = "default_buffer_memory_bytes",
        skip_serializing_if = "is_default_buffer_memory_bytes"
    )]
    pub buffer_memory_bytes: u64,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
pub(crate) const DEFAULT_BUFFER_MAX_BYTES: u64 = 256 << 20;
pub(crate) const DEFAULT_SEGMENT_BYTES: u64 = 8 << 20;
fn default_buffer_max_bytes() -> u64 {
    DEFAULT_BUFFER_MAX_BYTES
}
fn is_default_buffer_max_bytes(v: &u64) -> bool {
    *v == DEFAULT_BUFFER_MAX_BYTES
}
pub(crate) const DEFAULT_BUFFER_MEMORY_BYTES: u64 = 16 << 20;
fn default_buffer_memory_bytes() -> u64 {
    DEFAULT_BUFFER_MEMORY_BYTES
}
fn is_default_buffer_memory_bytes(v: &u64) -> bool {
    *v == DEFAULT_BUFFER_MEMORY_BYTES
}
fn default_segment_bytes() -> u64 {
    DEFAULT_SEGMENT_BYTES
}
fn is_default_segment_bytes(v: &u64) -> bool {
    *v == DEFAULT_SEGMENT_BYTES
}

/// `buffer_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BufferMode {
    #[default]
    Memory,
    Disk,
    Hybrid,
}

impl BufferMode {
    /// Has a disk buffer (disk or hybrid).
    pub fn on_disk(self) -> bool {
        self != BufferMode::Memory
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BufferMode::Memory => "memory",
            BufferMode::Disk => "disk",
            BufferMode::Hybrid => "hybrid",
        }
    }
}

/// `when_full` (disk mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Make room by dropping the oldest records (counted); the new one is acknowledged.
    #[default]
    DropOldest,
    /// Do not store the new record (counted); the publisher still gets its PUBACK.
    DropNewest,
    /// Hold the record, and its publisher's PUBACK, until acknowledgements from Kafka free
    /// room (a publisher stops at its Receive Maximum); past 20,000 held records the PUBLISH
    /// is refused with 0x97 (MQTT 3.x: the connection closes). Nothing is dropped.
    Backpressure,
}

fn default_key() -> String {
    "${clientid}".into()
}
fn default_value() -> String {
    "${.}".into()
}
fn default_timestamp() -> String {
    "${publish_received_at}".into()
}
fn default_refresh() -> Dur {
    dur(60_000)
}
fn default_linger() -> Dur {
    dur(5)
}
fn default_batch() -> u32 {
    896 * 1024
}
fn default_sync_timeout() -> Dur {
    dur(5_000)
}
fn default_queue() -> usize {
    100_000
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> Dur {
    dur(500)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtHeader {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HeaderEncode {
    #[default]
    None,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PartitionStrategy {
    #[default]
    KeyHash,
    Random,
    RoundRobin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RequiredAcks {
    #[default]
    All,
    Leader,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QueryMode {
    Sync,
    #[default]
    Async,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    #[default]
    DropOldest,
    DropNewest,
}

/// `[connectors.kafka]` and `[actions.kafka]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConnectors {
    pub kafka: BTreeMap<String, ConnectorConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaActions {
    pub kafka: BTreeMap<String, ProducerConfig>,
}

/// Every problem in the Kafka sections, each naming its key.
pub fn validate(connectors: &KafkaConnectors, actions: &KafkaActions) -> Vec<String> {
    let mut errs = Vec::new();
    for (name, c) in &connectors.kafka {
        let key = format!("connectors.kafka.{name}");
        if c.bootstrap_hosts.split(',').any(|h| {
            h.trim()
                .rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        }) {
            errs.push(format!(
                "{key}.bootstrap_hosts: expected \"host:port[,host:port...]\", got {:?}",
                c.bootstrap_hosts
            ));
        }
        if c.ssl.server_name_indication.is_some() {
            errs.push(format!(
                "{key}.ssl.server_name_indication: not supported: the Kafka client always sends each broker's advertised host name"
            ));
        }
        if c.ssl.certfile.is_some() != c.ssl.keyfile.is_some() {
            errs.push(format!("{key}.ssl: certfile and keyfile go together"));
        }
        for (k, p) in [
            ("cacertfile", &c.ssl.cacertfile),
            ("certfile", &c.ssl.certfile),
            ("keyfile", &c.ssl.keyfile),
        ] {
            if let Some(p) = p
                && !p.exists()
            {
                errs.push(format!("{key}.ssl.{k}: {} does not exist", p.display()));
            }
        }
    }
    for (name, a) in &actions.kafka {
        let key = format!("actions.kafka.{name}");
        if !connectors.kafka.contains_key(&a.connector) {
            errs.push(format!(
                "{key}.connector: no [connectors.kafka.{}]",
                a.connector
            ));
        }
        for (field, t) in [
            ("topic", Some(&a.topic)),
            ("key", Some(&a.key)),
            ("value", Some(&a.value)),
            ("timestamp", Some(&a.timestamp)),
            ("headers", a.headers.as_ref()),
            ("partition", a.partition.as_ref()),
        ] {
            if let Some(t) = t
                && let Err(e) = ferry_rules::Template::parse(t)
            {
                errs.push(format!("{key}.{field}: {e}"));
            }
        }
        for (i, h) in a.ext_headers.iter().enumerate() {
            for (field, t) in [("key", &h.key), ("value", &h.value)] {
                if let Err(e) = ferry_rules::Template::parse(t) {
                    errs.push(format!("{key}.ext_headers[{i}].{field}: {e}"));
                }
            }
        }
        if a.idempotence && a.required_acks != RequiredAcks::All {
            errs.push(format!(
                "{key}.required_acks: idempotence = true needs required_acks = \"all\""
            ));
        }
        if a.max_queue_messages == 0 {
            errs.push(format!("{key}.max_queue_messages: must be at least 1"));
        }
        if a.buffer_mode.on_disk() {
            if a.query_mode == QueryMode::Sync {
                errs.push(format!(
                    "{key}.buffer_mode: \"{}\" acknowledges once the record is buffered; it needs query_mode = \"async\" (sync waits for Kafka)",
                    a.buffer_mode.as_str()
                ));
            }
            if a.buffer_mode == BufferMode::Hybrid && a.buffer_memory_bytes == 0 {
                errs.push(format!(
                    "{key}.buffer_memory_bytes: must be at least 1 (0 is buffer_mode = \"disk\")"
                ));
            }
            if !(4096..=1 << 30).contains(&a.segment_bytes) {
                errs.push(format!(
                    "{key}.segment_bytes: must be between 4096 and 1073741824 (got {})",
                    a.segment_bytes
                ));
            }
            if a.buffer_max_bytes < a.segment_bytes {
                errs.push(format!(
                    "{key}.buffer_max_bytes: must be at least segment_bytes ({}), got {}",
                    a.segment_bytes, a.buffer_max_bytes
                ));
            }
        }
        match a.partitions_limit {
            Some(0) => errs.push(format!("{key}.partitions_limit: must be at least 1")),
            Some(l) if i32::try_from(l).is_err() => errs.push(format!(
                "{key}.partitions_limit: must be at most {} (Kafka's partition numbers are i32), got {l}",
                i32::MAX
            )),
            _ => {}
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_mechanisms_use_emqx_names() {
        #[derive(Deserialize)]
        struct W {
            a: AuthConfig,
        }
        for (name, want) in [
            ("plain", SaslMechanism::Plain),
            ("scram_sha_256", SaslMechanism::ScramSha256),
            ("scram_sha_512", SaslMechanism::ScramSha512),
        ] {
            let w: W = toml::from_str(&format!(
                "a = {{ mechanism = \"{name}\", username = \"u\", password = \"p\" }}"
            ))
            .unwrap();
            assert_eq!(w.a.mechanism, want);
        }
        assert!(
            toml::from_str::<W>(
                "a = { mechanism = \"scram_sha256\", username = \"u\", password = \"p\" }"
            )
            .is_err()
        );
    }

    fn producer(extra: &str) -> Result<ProducerConfig, toml::de::Error> {
        toml::from_str(&format!("connector = \"c\"\ntopic = \"t\"\n{extra}"))
    }

    #[test]
    fn buffer_settings_default_to_memory_and_are_checked() {
        let p = producer("").unwrap();
        assert_eq!(p.buffer_mode, BufferMode::Memory);
        assert_eq!(p.when_full, WhenFull::DropOldest);
        assert_eq!((p.buffer_max_bytes, p.segment_bytes), (256 << 20, 8 << 20));
        // Defaults are not printed, so existing configs print as before.
        let printed = toml::to_string(&p).unwrap();
        assert!(!printed.contains("buffer"), "{printed}");
        let p = producer(
            "buffer_mode = \"disk\"\nwhen_full = \"backpressure\"\nbuffer_max_bytes = 1048576\nsegment_bytes = 65536",
        )
        .unwrap();
        assert_eq!(
            (
                p.buffer_mode,
                p.when_full,
                p.buffer_max_bytes,
                p.segment_bytes
            ),
            (BufferMode::Disk, WhenFull::Backpressure, 1 << 20, 1 << 16)
        );
        let p = producer("buffer_mode = \"hybrid\"\nbuffer_memory_bytes = 4096").unwrap();
        assert_eq!(
            (p.buffer_mode, p.buffer_memory_bytes),
            (BufferMode::Hybrid, 4096)
        );
        assert_eq!(producer("").unwrap().buffer_memory_bytes, 16 << 20);
        let err = producer("buffer_mode = \"tape\"").unwrap_err().to_string();
        assert!(err.contains("buffer_mode"), "{err}");
        let err = producer("when_full = \"block\"").unwrap_err().to_string();
        assert!(err.contains("when_full"), "{err}");
        let mut actions = KafkaActions::default();
        let mut bad = producer(
            "buffer_mode = \"disk\"\nquery_mode = \"sync\"\nbuffer_max_bytes = 100\nsegment_bytes = 1000",
        )
        .unwrap();
        bad.enable = true;
        actions.kafka.insert("a".into(), bad);
        let mut conns = KafkaConnectors::default();
        conns.kafka.insert(
            "c".into(),
            toml::from_str("bootstrap_hosts = \"h:9092\"").unwrap(),
        );
        let errs = validate(&conns, &actions).join("\n");
        for key in [
            "actions.kafka.a.buffer_mode",
            "actions.kafka.a.segment_bytes",
            "actions.kafka.a.buffer_max_bytes",
        ] {
            assert!(errs.contains(key), "{key} in {errs}");
        }
    }

    #[test]
    fn partitions_limit_above_i32_max_is_refused_naming_the_key() {
        let mut conns = KafkaConnectors::default();
        conns.kafka.insert(
            "c".into(),
            toml::from_str("bootstrap_hosts = \"h:9092\"").unwrap(),
        );
        let check = |limit: &str| {
            let mut actions = KafkaActions::default();
            let mut a = producer(&format!("partitions_limit = {limit}")).unwrap();
            a.enable = true;
            actions.kafka.insert("a".into(), a);
            validate(&conns, &actions).join("\n")
        };
        let errs = check("2147483648");
        assert!(
            errs.contains("actions.kafka.a.partitions_limit") && errs.contains("2147483647"),
            "{errs}"
        );
        assert!(check("4294967295").contains("actions.kafka.a.partitions_limit"));
        assert!(check("0").contains("actions.kafka.a.partitions_limit"));
        assert_eq!(check("2147483647"), "");
        assert_eq!(check("3"), "");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(Dur::parse("500ms").unwrap().ms(), 500);
        assert_eq!(Dur::parse("5s").unwrap().ms(), 5000);
        assert_eq!(Dur::parse("2m").unwrap().ms(), 120_000);
        assert!(Dur::parse("5").is_err());
        for text in ["0s", "250ms", "5s", "2m", "1h", "90s"] {
            let d = Dur::parse(text).unwrap();
            let printed = toml::Value::try_from(d).unwrap();
            assert_eq!(Dur::parse(printed.as_str().unwrap()).unwrap(), d, "{text}");
        }
        assert_eq!(
            toml::Value::try_from(Dur::parse("120s").unwrap())
                .unwrap()
                .as_str(),
            Some("2m")
        );
        assert!(Dur::parse("soon").is_err());
    }
}
