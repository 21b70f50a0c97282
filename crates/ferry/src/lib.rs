//! ferry: wiring. Composes every crate's typed config into the config file and starts the
//! gateway from it. The binary (`main.rs`) adds the CLI, tracing subscriber and signals;
//! tests start the same gateway in-process through [`Gateway::start`].

pub mod config;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use ferry_broker::Broker;
use ferry_engine::RuleEngine;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// A running gateway: its broker, the addresses it listens on, and its tasks.
pub struct Gateway {
    pub broker: Arc<Broker>,
    pub rules: Arc<RuleEngine>,
    pub kafka: ferry_kafka::Kafka,
    /// (listener name, bound address), e.g. ("tcp.default", 127.0.0.1:1883).
    pub listeners: Vec<(String, SocketAddr)>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Gateway {
    /// Binds every listener and starts serving. Fails if any listener cannot bind.
    pub async fn start(cfg: &Config) -> anyhow::Result<Gateway> {
        let shutdown = CancellationToken::new();
        let broker = Broker::new(cfg.mqtt.clone());
        let mut kafka = ferry_kafka::Kafka::start(&cfg.connectors, &cfg.actions, broker.registry())
            .map_err(|errs| {
                anyhow::anyhow!("invalid Kafka configuration:\n  {}", errs.join("\n  "))
            })?;
        let rules =
            RuleEngine::build(&cfg.rules, &broker, &kafka.named_actions()).map_err(|errs| {
                let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("invalid rules:\n  {}", list.join("\n  "))
            })?;
        let rules = Arc::new(rules);
        if !rules.is_empty() {
            let hook: Arc<dyn ferry_broker::Hook> = rules.clone();
            let _ = broker.install_hooks(vec![hook]);
        }
        kafka
            .start_sources(&cfg.sources, &broker, Some(rules.clone()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut tasks = JoinSet::new();
        let mut listeners = Vec::new();
        for (name, l) in &cfg.listeners.tcp {
            let listener = tokio::net::TcpListener::bind(l.bind)
                .await
                .with_context(|| {
                    format!("listeners.tcp.{name}.bind: cannot listen on {}", l.bind)
                })?;
            let addr = listener.local_addr()?;
            listeners.push((format!("tcp.{name}"), addr));
            tasks.spawn(ferry_server::run(
                listener,
                broker.clone(),
                l.max_connections,
                shutdown.clone(),
            ));
        }
        Ok(Gateway {
            broker,
            rules,
            kafka,
            listeners,
            shutdown,
            tasks,
        })
    }

    /// Stops accepting, closes every connection (DISCONNECT 0x8B to MQTT 5 clients) and
    /// waits for the listeners to drain.
    pub async fn stop(mut self) {
        // Sources first: their in-flight records can still be acknowledged by subscribers.
        self.kafka.stop_sources().await;
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        // Connections are closed: nothing new reaches Kafka; let in-flight records land.
        self.kafka.stop(std::time::Duration::from_secs(5)).await;
    }
}
