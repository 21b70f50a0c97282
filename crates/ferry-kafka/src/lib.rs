//! ferry-kafka: Kafka data integration, MQTT to Kafka.
//!
//! Owns: connectors (`[connectors.kafka.NAME]`: client settings, TLS, SASL, health check and
//! status), producer actions (`[actions.kafka.NAME]`: templates, partitioning, sync/async
//! delivery, bounded queue, retries, metrics), Java-compatible murmur2 partitioning, and
//! [`Kafka`], the set of them built from config.
//!
//! Must not: be named by any crate but the binary (only this crate uses rdkafka); block the
//! task that calls an action.

pub mod config;
pub mod connector;
pub mod partition;
pub mod producer;
pub mod source;
pub mod testing;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ferry_engine::Action;
use tokio_util::sync::CancellationToken;

pub use config::{KafkaActions, KafkaConnectors, ProducerConfig};
pub use connector::{Connector, ConnectorState, ConnectorStatus};
pub use producer::KafkaAction;

/// Every connector and producer action from the config.
pub struct Kafka {
    pub connectors: BTreeMap<String, Arc<Connector>>,
    pub actions: BTreeMap<String, Arc<KafkaAction>>,
    pub sources: BTreeMap<String, Arc<source::KafkaSource>>,
    stop: CancellationToken,
}

/// `[sources.kafka.NAME]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSources {
    pub kafka: BTreeMap<String, source::SourceConfig>,
}

impl Kafka {
    /// Builds connectors and actions and starts their background tasks (needs a Tokio
    /// runtime). Unreachable clusters are not an error: connectors report their status.
    /// Each action counts into its handle of `registry` (`Registry::action(NAME)`).
    pub fn start(
        connectors: &KafkaConnectors,
        actions: &KafkaActions,
        registry: &Arc<ferry_metrics::Registry>,
    ) -> Result<Kafka, Vec<String>> {
        let errs = config::validate(connectors, actions);
        if !errs.is_empty() {
            return Err(errs);
        }
        let stop = CancellationToken::new();
        let mut cs = BTreeMap::new();
        for (name, c) in &connectors.kafka {
            let conn = Connector::new(name, c.clone());
            conn.spawn_health_check(stop.clone());
            cs.insert(name.clone(), conn);
        }
        let mut acts = BTreeMap::new();
        for (name, a) in &actions.kafka {
            let Some(conn) = cs.get(&a.connector) else {
                continue;
            };
            let action = KafkaAction::start(name, a.clone(), conn, registry, stop.clone())
                .map_err(|e| vec![e])?;
            acts.insert(name.clone(), action);
        }
        Ok(Kafka {
            connectors: cs,
            actions: acts,
            sources: BTreeMap::new(),
            stop,
        })
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
    /// `FROM "$bridges/kafka:NAME"`); each counts into its handle of `broker.registry()`.
    pub fn start_sources(
        &mut self,
        sources: &KafkaSources,
        broker: &Arc<ferry_broker::Broker>,
        rules: Option<Arc<ferry_engine::RuleEngine>>,
    ) -> Result<(), String> {
        for (name, cfg) in &sources.kafka {
            let conn = self
                .connectors
                .get(&cfg.connector)
                .ok_or(format!("sources.kafka.{name}.connector: unknown"))?;
            let s = source::KafkaSource::start(
                name,
                cfg.clone(),
                conn,
                Arc::downgrade(broker),
                rules.clone(),
                broker.registry(),
            )?;
            self.sources.insert(name.clone(), s);
        }
        Ok(())
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
                a.flush(timeout);
            }
        })
        .await;
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
