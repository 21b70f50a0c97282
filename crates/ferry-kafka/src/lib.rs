//! ferry-kafka: Kafka data integration, MQTT to Kafka.
//!
//! Owns: connectors (`[connectors.kafka.NAME]`: client settings, TLS, SASL, health check and
//! status), producer actions (`[actions.kafka.NAME]`: templates, partitioning, sync/async
//! delivery, bounded queue, retries, metrics; the disk-buffered mode in [`disk`], whose
//! buffer directory the binary passes in), Java-compatible murmur2 partitioning, consumer
//! sources ([`source`]), [`tail`] for the CLI, and [`Kafka`], the set of them built from
//! config. The Tansu test broker and helpers (`testing`, which panic) exist only for tests:
//! the `testing` feature, turned on by dev-dependencies.
//!
//! Must not: be named by any crate but the binary (only this crate uses rdkafka); block the
//! task that calls an action; keep anything unbounded (queues, caches, in-flight records).

pub mod config;
pub mod connector;
pub mod disk;
pub mod partition;
pub mod producer;
pub mod source;
pub mod tail;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ferry_engine::Action;
use tokio_util::sync::CancellationToken;

pub use config::{KafkaActions, KafkaConnectors, ProducerConfig};
pub use connector::{Connector, ConnectorState, ConnectorStatus};
pub use producer::KafkaAction;

/// The running connectors, producer actions and consumer sources, reconciled against the
/// config: an object whose section did not change keeps running untouched.
pub struct Kafka {
    pub connectors: BTreeMap<String, Arc<Connector>>,
    pub actions: BTreeMap<String, Arc<KafkaAction>>,
    pub sources: BTreeMap<String, Arc<source::KafkaSource>>,
    /// The config and connector each running source was started with.
    source_cfgs: BTreeMap<String, (source::SourceConfig, Arc<Connector>)>,
    /// One child of `stop` per running connector and action, cancelled when it is retired.
    tokens: HashMap<(Kind, String), CancellationToken>,
    stop: CancellationToken,
    /// Where actions and sources count (`Registry::action(NAME)`, `Registry::source(NAME)`).
    registry: Arc<ferry_metrics::Registry>,
    /// Disk-buffered actions keep their buffer in `ROOT/NAME` (`[node] data_dir`/buffer).
    buffer_root: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Connector,
    Action,
}

/// `[sources.kafka.NAME]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSources {
    pub kafka: BTreeMap<String, source::SourceConfig>,
}

/// Where sources deliver: the broker, and the rule engine for `FROM "$bridges/kafka:NAME"`.
#[derive(Clone)]
pub struct SourceSink {
    pub broker: std::sync::Weak<ferry_broker::Broker>,
    pub rules: Option<Arc<ferry_engine::RuleEngine>>,
}

impl Kafka {
    /// No connectors, actions or sources yet.
    pub fn new(registry: Arc<ferry_metrics::Registry>) -> Kafka {
        Kafka {
            connectors: BTreeMap::new(),
            actions: BTreeMap::new(),
            sources: BTreeMap::new(),
            source_cfgs: BTreeMap::new(),
            tokens: HashMap::new(),
            stop: CancellationToken::new(),
            registry,
            buffer_root: None,
        }
    }

    /// Builds connectors and actions and starts their background tasks (needs a Tokio
    /// runtime). Unreachable clusters are not an error: connectors report their status.
    /// Each action counts into its handle of `registry` (`Registry::action(NAME)`).
    pub fn start(
        connectors: &KafkaConnectors,
        actions: &KafkaActions,
        registry: &Arc<ferry_metrics::Registry>,
    ) -> Result<Kafka, Vec<String>> {
        Kafka::start_with_buffers(connectors, actions, registry, None)
    }

    /// [`Kafka::start`], with the directory under which actions with `buffer_mode = "disk"`
    /// keep their buffers (`ROOT/NAME`; the binary passes `[node] data_dir`/buffer). Without
    /// it such actions are refused.
    pub fn start_with_buffers(
        connectors: &KafkaConnectors,
        actions: &KafkaActions,
        registry: &Arc<ferry_metrics::Registry>,
        buffer_root: Option<std::path::PathBuf>,
    ) -> Result<Kafka, Vec<String>> {
        let mut k = Kafka::new(registry.clone());
        k.buffer_root = buffer_root;
        let retired = k.reconcile_producers(connectors, actions)?;
        debug_assert!(retired.is_empty());
        Ok(k)
    }

    /// Brings connectors and actions in line with `connectors` and `actions`: starts what is
    /// new or changed (an action is rebuilt when its connector changed), and returns what
    /// it replaced or removed, to retire with [`Retired::finish`]. On an error nothing
    /// changed.
    pub fn reconcile_producers(
        &mut self,
        connectors: &KafkaConnectors,
        actions: &KafkaActions,
    ) -> Result<Retired, Vec<String>> {
        let errs = config::validate(connectors, actions);
        if !errs.is_empty() {
            return Err(errs);
        }
        let mut conns = BTreeMap::new();
        let mut tokens = HashMap::new();
        let mut kept = std::collections::HashSet::new();
        for (name, c) in connectors.kafka.iter().filter(|(_, c)| c.enable) {
            let key = (Kind::Connector, name.clone());
            match (self.connectors.get(name), self.tokens.get(&key)) {
                (Some(old), Some(t)) if old.config == *c => {
                    conns.insert(name.clone(), old.clone());
                    tokens.insert(key.clone(), t.clone());
                    kept.insert(key);
                }
                _ => {
                    let token = self.stop.child_token();
                    let conn = Connector::new(name, c.clone());
                    conn.spawn_health_check(token.clone());
                    conns.insert(name.clone(), conn);
                    tokens.insert(key, token);
                }
            }
        }
        let mut acts = BTreeMap::new();
        for (name, a) in actions.kafka.iter().filter(|(_, a)| a.enable) {
            let Some(conn) = conns.get(&a.connector) else {
                continue; // its connector is disabled
            };
            let key = (Kind::Action, name.clone());
            let same_conn = self
                .connectors
                .get(&a.connector)
                .is_some_and(|c| Arc::ptr_eq(c, conn));
            match (self.actions.get(name), self.tokens.get(&key)) {
                (Some(old), Some(t)) if same_conn && old.config() == a => {
                    acts.insert(name.clone(), old.clone());
                    tokens.insert(key.clone(), t.clone());
                    kept.insert(key);
                }
                _ => {
                    let token = self.stop.child_token();
                    let dir = self.buffer_root.as_ref().map(|r| r.join(name));
                    match KafkaAction::start(
                        name,
                        a.clone(),
                        conn,
                        &self.registry,
                        token.clone(),
                        dir,
                    ) {
                        Ok(action) => {
                            acts.insert(name.clone(), action);
                            tokens.insert(key, token);
                        }
                        Err(e) => {
                            // Undo: stop everything this call created.
                            for (k, t) in &tokens {
                                if !kept.contains(k) {
                                    t.cancel();
                                }
                            }
                            token.cancel();
                            return Err(vec![e]);
                        }
                    }
                }
            }
        }
        let mut retired = Retired::default();
        for (k, t) in &self.tokens {
            if !kept.contains(k) {
                retired.tokens.push(t.clone());
                if k.0 == Kind::Action
                    && let Some(a) = self.actions.get(&k.1)
                {
                    retired.actions.push(a.clone());
                }
            }
        }
        for name in self.actions.keys() {
            if !actions.kafka.contains_key(name) {
                self.registry.remove_action(name);
            }
        }
        self.connectors = conns;
        self.actions = acts;
        self.tokens = tokens;
        Ok(retired)
    }

    /// Brings the sources in line with `sources`: a source whose section or connector
    /// changed is stopped (draining its in-flight records) before its successor starts, so
    /// the two never compete in one consumer group. Sources whose section did not change
    /// keep running.
    pub async fn reconcile_sources(
        &mut self,
        sources: &KafkaSources,
        sink: &SourceSink,
    ) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        for (name, s) in &sources.kafka {
            errs.extend(source::validate(name, s, &self.connector_configs()));
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        let wanted: BTreeMap<&String, &source::SourceConfig> = sources
            .kafka
            .iter()
            .filter(|(_, s)| s.enable && self.connectors.contains_key(&s.connector))
            .collect();
        let stale: Vec<String> = self
            .sources
            .keys()
            .filter(|name| {
                let keep = wanted
                    .get(name)
                    .zip(self.source_cfgs.get(*name))
                    .is_some_and(|(cfg, (old, conn))| {
                        old == *cfg
                            && self
                                .connectors
                                .get(&cfg.connector)
                                .is_some_and(|c| Arc::ptr_eq(c, conn))
                    });
                !keep
            })
            .cloned()
            .collect();
        for name in stale {
            if let Some(s) = self.sources.remove(&name) {
                s.stop().await;
            }
            self.source_cfgs.remove(&name);
            if !sources.kafka.contains_key(&name) {
                self.registry.remove_source(&name);
            }
        }
        for (name, cfg) in wanted {
            if self.sources.contains_key(name) {
                continue;
            }
            let Some(conn) = self.connectors.get(&cfg.connector) else {
                continue;
            };
            match source::KafkaSource::start(
                name,
                cfg.clone(),
                conn,
                sink.broker.clone(),
                sink.rules.clone(),
                &self.registry,
            )
            .await
            {
                Ok(s) => {
                    self.sources.insert(name.clone(), s);
                    self.source_cfgs
                        .insert(name.clone(), (cfg.clone(), conn.clone()));
                }
                Err(e) => errs.push(e),
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    fn connector_configs(&self) -> KafkaConnectors {
        KafkaConnectors {
            kafka: self
                .connectors
                .iter()
                .map(|(n, c)| (n.clone(), c.config.clone()))
                .collect(),
        }
    }

    /// The actions by the names rules use: `kafka:NAME` (and `kafka_producer:NAME`).
    pub fn named_actions(&self) -> HashMap<String, Arc<dyn Action>> {
        let mut m: HashMap<String, Arc<dyn Action>> = HashMap::new();
        for (name, a) in &self.actions {
            m.insert(format!("kafka:{name}"), a.clone());
            m.insert(format!("kafka_producer:{name}"), a.clone());
        }
        m
    }

    /// Starts the consumer sources, delivering into `broker` (and to rules selecting
    /// `FROM "$bridges/kafka:NAME"`).
    pub async fn start_sources(
        &mut self,
        sources: &KafkaSources,
        broker: &Arc<ferry_broker::Broker>,
        rules: Option<Arc<ferry_engine::RuleEngine>>,
    ) -> Result<(), String> {
        let sink = SourceSink {
            broker: Arc::downgrade(broker),
            rules,
        };
        self.reconcile_sources(sources, &sink)
            .await
            .map_err(|e| e.join("; "))
    }

    /// Stops the sources: each drains its in-flight records (up to its `drain_timeout`) and
    /// commits what was delivered. Call while MQTT connections are still up.
    pub async fn stop_sources(&self) {
        for s in self.sources.values() {
            s.stop().await;
        }
    }

    /// Stops background tasks and waits up to `timeout` for in-flight records.
    pub async fn stop(&self, timeout: Duration) {
        self.stop.cancel();
        let actions: Vec<Arc<KafkaAction>> = self.actions.values().cloned().collect();
        let _ = tokio::task::spawn_blocking(move || {
            for a in actions {
                a.drain(timeout);
            }
        })
        .await;
    }
}

/// Connectors and actions replaced or removed by a reconcile.
#[derive(Default)]
#[must_use = "retire them with finish()"]
pub struct Retired {
    tokens: Vec<CancellationToken>,
    actions: Vec<Arc<KafkaAction>>,
}

impl Retired {
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Stops their background tasks and lets the retired actions' in-flight records land
    /// (up to `timeout`) on a blocking thread, without holding up the caller.
    pub fn finish(self, timeout: Duration) {
        for t in &self.tokens {
            t.cancel();
        }
        if !self.actions.is_empty() {
            let actions = self.actions;
            tokio::task::spawn_blocking(move || {
                for a in actions {
                    a.drain(timeout);
                }
            });
        }
    }
}

/// Names usable in rules' `actions` for the configured Kafka actions.
pub fn action_names(actions: &KafkaActions) -> Vec<String> {
    actions
        .kafka
        .keys()
        .flat_map(|n| [format!("kafka:{n}"), format!("kafka_producer:{n}")])
        .collect()
}

#[cfg(test)]
mod tests {
    /// The test helpers (`testing`, which panics on purpose) are not built into the
    /// binary: no normal dependency turns the `testing` feature on; only dev-dependencies.
    #[test]
    fn the_binary_is_built_without_the_test_helpers() {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
        let tree = |edges: &str| {
            let out = std::process::Command::new(env!("CARGO"))
                .args(["tree", "--offline", "--manifest-path", manifest])
                .args([
                    "-p",
                    "ferry",
                    "-e",
                    edges,
                    "-i",
                    "ferry-kafka",
                    "-f",
                    "{p} [{f}]",
                ])
                .output()
                .expect("cargo tree runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines().next().unwrap_or_default().to_owned()
        };
        let normal = tree("normal");
        assert!(
            normal.starts_with("ferry-kafka") && !normal.contains("testing"),
            "{normal}"
        );
        // The tests of the binary crate do use them.
        assert!(tree("normal,dev").contains("testing"));
    }
}
