//! The control plane's side of the gateway: [`Control`] implements the API's `Admin` trait
//! over the broker, the rule engine and the Kafka objects, and applies runtime changes.
//!
//! Changes are serialized by one async mutex (`changes`): each builds a new overlay,
//! validates the whole effective config with the config file's own code, reconciles (only
//! the objects whose sections changed are rebuilt; the rule set is swapped atomically),
//! then persists the overlay. Readers never wait for a change: they read `view`, a
//! snapshot replaced after each change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ferry_api::admin::{
    Change, ClientView, NodeInfo, NodeState, ObjectKind, PublishRequest, PublishResult,
    RetainedView, SubscriptionView, TopicView,
};
use ferry_api::{Admin, ApiError};
use ferry_broker::Broker;
use ferry_engine::RuleEngine;
use ferry_kafka::source::KafkaSource;
use ferry_kafka::{Connector, Kafka, KafkaAction, SourceSink};
use serde_json::{Value, json};

use crate::Config;
use crate::monitor::Monitor;
use crate::overlay::{self, Kind, Overlay};

/// What readers see: the effective config and the running Kafka objects.
#[derive(Clone, Default)]
pub struct View {
    pub config: Arc<Config>,
    pub connectors: BTreeMap<String, Arc<Connector>>,
    pub actions: BTreeMap<String, Arc<KafkaAction>>,
    pub sources: BTreeMap<String, Arc<KafkaSource>>,
}

struct State {
    base: Config,
    overlay: Overlay,
    effective: Config,
    kafka: Kafka,
}

pub struct Control {
    pub broker: Arc<Broker>,
    pub rules: Arc<RuleEngine>,
    view: RwLock<View>,
    changes: tokio::sync::Mutex<State>,
    started: Instant,
    state: AtomicU8,
    pub(crate) monitor: Monitor,
    /// The built-in user database, if a `built_in_database` method uses it.
    users: std::sync::OnceLock<Arc<ferry_auth::users::UserDb>>,
}

const STARTING: u8 = 0;
const RUNNING: u8 = 1;
const DRAINING: u8 = 2;

fn kind_of(k: ObjectKind) -> Kind {
    match k {
        ObjectKind::Rule => Kind::Rule,
        ObjectKind::Connector => Kind::Connector,
        ObjectKind::Action => Kind::Action,
        ObjectKind::Source => Kind::Source,
    }
}

fn invalid(problems: Vec<String>) -> ApiError {
    ApiError::invalid(problems)
}

impl Control {
    /// Builds the Kafka objects and the rule engine from `base` plus the overlay in its data
    /// dir. Sources are started by [`Control::start_sources`] once the broker serves.
    pub fn new(base: Config, broker: Arc<Broker>) -> anyhow::Result<Arc<Control>> {
        let overlay = Overlay::load(&base.node.data_dir).map_err(|e| anyhow::anyhow!(e))?;
        let effective = overlay.apply_to(&base);
        let problems = effective.validate();
        if !problems.is_empty() {
            anyhow::bail!(
                "invalid configuration (the config file plus the API changes in {}):\n  {}",
                Overlay::path(&base.node.data_dir).display(),
                problems.join("\n  ")
            );
        }
        let kafka = Kafka::start_with_buffers(
            &effective.connectors,
            &effective.actions,
            broker.registry(),
            Some(base.node.data_dir.join("buffer")),
        )
        .map_err(|errs| anyhow::anyhow!("invalid Kafka configuration:\n  {}", errs.join("\n  ")))?;
        let configured = configured_actions(&effective);
        let rules = RuleEngine::build(&effective.rules, &broker, &kafka.named_actions(), &|n| {
            configured.iter().any(|x| x == n)
        })
        .map_err(|errs| {
            let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("invalid rules:\n  {}", list.join("\n  "))
        })?;
        let rules = Arc::new(rules);
        let view = View {
            config: Arc::new(effective.clone()),
            connectors: kafka.connectors.clone(),
            actions: kafka.actions.clone(),
            sources: BTreeMap::new(),
        };
        Ok(Arc::new(Control {
            monitor: Monitor::new(),
            broker,
            rules,
            view: RwLock::new(view),
            changes: tokio::sync::Mutex::new(State {
                base,
                overlay,
                effective,
                kafka,
            }),
            started: Instant::now(),
            state: AtomicU8::new(STARTING),
            users: std::sync::OnceLock::new(),
        }))
    }

    /// Hands the API the built-in user database (the first one a chain opened: at start, or
    /// at the reload of `[authentication]` that added the method).
    pub fn set_user_db(&self, db: Arc<ferry_auth::users::UserDb>) {
        let _ = self.users.set(db);
    }

    /// The built-in user database, if a chain opened it (reloaded chains share it).
    pub fn user_db(&self) -> Option<Arc<ferry_auth::users::UserDb>> {
        self.users.get().cloned()
    }

    fn sink(&self) -> SourceSink {
        SourceSink {
            broker: Arc::downgrade(&self.broker),
            rules: Some(self.rules.clone()),
        }
    }

    pub async fn start_sources(&self) -> anyhow::Result<()> {
        let mut st = self.changes.lock().await;
        let sources = st.effective.sources.clone();
        st.kafka
            .reconcile_sources(&sources, &self.sink())
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.join("; ")))?;
        self.publish_view(&st);
        Ok(())
    }

    pub fn set_running(&self) {
        self.state.store(RUNNING, Ordering::Relaxed);
    }

    pub fn set_draining(&self) {
        self.state.store(DRAINING, Ordering::Relaxed);
    }

    pub fn view(&self) -> View {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn publish_view(&self, st: &State) {
        let v = View {
            config: Arc::new(st.effective.clone()),
            connectors: st.kafka.connectors.clone(),
            actions: st.kafka.actions.clone(),
            sources: st.kafka.sources.clone(),
        };
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = v;
    }

    /// Sources first (their in-flight records can still be acknowledged by subscribers).
    pub async fn stop_sources(&self) {
        let st = self.changes.lock().await;
        st.kafka.stop_sources().await;
    }

    pub async fn stop_kafka(&self, timeout: Duration) {
        let st = self.changes.lock().await;
        st.kafka.stop(timeout).await;
    }

    /// Applies one change; see the module doc.
    pub async fn change(&self, change: Change) -> Result<(), ApiError> {
        let mut st = self.changes.lock().await;
        let mut overlay = st.overlay.clone();
        let cur = &st.effective;
        match &change {
            Change::Put {
                kind,
                name,
                config,
                create,
            } => {
                let k = kind_of(*kind);
                check_name(name)?;
                let exists = overlay::section(cur, k, name).is_some();
                if *create && exists {
                    return Err(ApiError::Conflict(format!(
                        "{} {name:?} already exists",
                        kind.noun()
                    )));
                }
                if !*create && !exists {
                    return Err(not_found(*kind, name));
                }
                overlay
                    .set(k, name, Some(config.clone()))
                    .map_err(|e| invalid(vec![e]))?;
            }
            Change::Delete {
                kind,
                name,
                cascade,
            } => {
                let k = kind_of(*kind);
                if overlay::section(cur, k, name).is_none() {
                    return Err(not_found(*kind, name));
                }
                let deps = overlay::dependents(cur, k, name);
                if !deps.is_empty() && !*cascade {
                    let list: Vec<String> = deps.iter().map(|(k, n)| k.key(n)).collect();
                    return Err(ApiError::Conflict(format!(
                        "{} {name:?} is used by {}; delete those first or ask for cascade (?cascade=true)",
                        kind.noun(),
                        list.join(", ")
                    )));
                }
                cascade_delete(cur, &mut overlay, k, name)?;
            }
            Change::Enable { kind, name, enable } => {
                let k = kind_of(*kind);
                let Some(mut section) = overlay::section(cur, k, name) else {
                    return Err(not_found(*kind, name));
                };
                if let Value::Object(m) = &mut section {
                    m.insert("enable".into(), Value::Bool(*enable));
                }
                overlay
                    .set(k, name, Some(section))
                    .map_err(|e| invalid(vec![e]))?;
            }
        }
        let next = overlay.apply_to(&st.base);
        let problems = next.validate();
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let applied = match self.reconcile(&mut st, &next).await {
            Ok(()) => overlay
                .save(&st.base.node.data_dir)
                .map_err(|e| ApiError::Internal(format!("cannot save the API changes: {e}"))),
            Err(e) => Err(e),
        };
        if let Err(e) = applied {
            // All or nothing: bring back what ran before this change.
            let before = st.effective.clone();
            if let Err(back) = self.reconcile(&mut st, &before).await {
                tracing::error!("could not restore the config after a failed change: {back}");
            }
            self.publish_view(&st);
            return Err(e);
        }
        st.overlay = overlay;
        st.effective = next;
        self.publish_view(&st);
        Ok(())
    }

    async fn reconcile(&self, st: &mut State, next: &Config) -> Result<(), ApiError> {
        let retired = st
            .kafka
            .reconcile_producers(&next.connectors, &next.actions)
            .map_err(invalid)?;
        let configured = configured_actions(next);
        if let Err(errs) =
            self.rules
                .replace(&next.rules, &self.broker, &st.kafka.named_actions(), &|n| {
                    configured.iter().any(|x| x == n)
                })
        {
            // Validation passed, so this is not expected; put the producers back.
            let back = st
                .kafka
                .reconcile_producers(&st.effective.connectors, &st.effective.actions);
            if let Ok(r) = back {
                r.finish(Duration::from_secs(5));
            }
            retired.finish(Duration::from_secs(5));
            return Err(invalid(errs.iter().map(ToString::to_string).collect()));
        }
        retired.finish(Duration::from_secs(5));
        st.kafka
            .reconcile_sources(&next.sources, &self.sink())
            .await
            .map_err(|e| ApiError::Unavailable(e.join("; ")))
    }

    fn object_json(&self, view: &View, kind: ObjectKind, name: &str) -> Option<Value> {
        let k = kind_of(kind);
        let mut v = overlay::section(&view.config, k, name)?;
        let Value::Object(m) = &mut v else {
            return Some(v);
        };
        m.insert("name".into(), json!(name));
        let enable = m.get("enable").and_then(Value::as_bool).unwrap_or(true);
        m.insert("enable".into(), json!(enable));
        match kind {
            ObjectKind::Rule => {
                m.insert("id".into(), json!(name));
                let from = ferry_rules::Rule::compile(
                    m.get("sql").and_then(Value::as_str).unwrap_or_default(),
                )
                .map(|r| r.statement.from)
                .unwrap_or_default();
                m.insert("from".into(), json!(from));
            }
            ObjectKind::Connector | ObjectKind::Action | ObjectKind::Source => {
                let ty = if kind == ObjectKind::Source {
                    "kafka_consumer"
                } else {
                    "kafka_producer"
                };
                let (status, reason) = self.status(view, kind_of(kind), name);
                m.insert("type".into(), json!(ty));
                m.insert("status".into(), json!(status));
                m.insert("status_reason".into(), json!(reason));
            }
        }
        Some(v)
    }

    /// EMQX's `status` and `status_reason` of a configured connector, action or source: its
    /// connector's health while it runs, else why it does not.
    pub(crate) fn status(&self, view: &View, kind: Kind, name: &str) -> (String, Option<String>) {
        let cfg = &view.config;
        let (running, enable, connector) = match kind {
            Kind::Connector => (
                view.connectors.contains_key(name),
                cfg.connectors.kafka.get(name).is_none_or(|c| c.enable),
                name,
            ),
            Kind::Action => {
                let a = cfg.actions.kafka.get(name);
                (
                    view.actions.contains_key(name),
                    a.is_none_or(|a| a.enable),
                    a.map_or("", |a| a.connector.as_str()),
                )
            }
            Kind::Source => {
                let s = cfg.sources.kafka.get(name);
                (
                    view.sources.contains_key(name),
                    s.is_none_or(|s| s.enable),
                    s.map_or("", |s| s.connector.as_str()),
                )
            }
            Kind::Rule => return ("connected".into(), None),
        };
        match view.connectors.get(connector) {
            Some(c) if running => {
                let s = c.status();
                // A disk-buffered action whose buffer cannot write says so first.
                let buffer_error = match kind {
                    Kind::Action => view.actions.get(name).and_then(|a| a.buffer_error()),
                    _ => None,
                };
                (
                    format!("{:?}", s.state).to_ascii_lowercase(),
                    buffer_error.or(s.last_error),
                )
            }
            _ if !enable => ("stopped".into(), Some("disabled".into())),
            None => (
                "stopped".into(),
                Some(format!("connector {connector:?} is disabled")),
            ),
            Some(_) => ("stopped".into(), Some("not running".into())),
        }
    }

    fn metrics_json(&self, view: &View, kind: ObjectKind, name: &str) -> Option<Value> {
        let counters = match kind {
            ObjectKind::Rule => {
                view.config.rules.get(name)?;
                self.broker
                    .registry()
                    .find_rule(name)
                    .map(|m| m.json())
                    .unwrap_or_default()
            }
            ObjectKind::Action => {
                view.config.actions.kafka.get(name)?;
                self.broker
                    .registry()
                    .find_action(name)
                    .map(|m| m.json())
                    .unwrap_or_default()
            }
            ObjectKind::Source => {
                view.config.sources.kafka.get(name)?;
                let reg = self.broker.registry();
                let mut v = json!(reg.find_source(name).map(|m| m.json()).unwrap_or_default());
                if let (Value::Object(o), Some(s)) = (&mut v, reg.find_source(name)) {
                    o.insert("lag_by_partition".into(), json!(s.lag()));
                }
                return Some(self.with_rates(view, kind, name, v));
            }
            ObjectKind::Connector => {
                view.config.connectors.kafka.get(name)?;
                BTreeMap::new()
            }
        };
        Some(self.with_rates(view, kind, name, json!(counters)))
    }

    fn with_rates(&self, view: &View, kind: ObjectKind, name: &str, counters: Value) -> Value {
        let mut counters = counters;
        self.monitor.add_rates(kind, name, &mut counters);
        json!({
            "id": name,
            "metrics": counters,
            "node_metrics": [{"node": view.config.node.name, "metrics": counters}],
        })
    }
}

fn not_found(kind: ObjectKind, name: &str) -> ApiError {
    ApiError::NotFound(format!("no {} named {name:?}", kind.noun()))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "name {name:?}: use 1 to 128 letters, digits, '_' or '-'"
        )))
    }
}

/// Deletes `(kind, name)` and, recursively, whatever uses it; rules that use a deleted
/// action lose that action reference.
fn cascade_delete(cur: &Config, o: &mut Overlay, kind: Kind, name: &str) -> Result<(), ApiError> {
    for (k, n) in overlay::dependents(cur, kind, name) {
        if k == Kind::Rule {
            let mut rule = cur.rules[&n].clone();
            rule.actions.retain(|a| !overlay::uses_action(a, name));
            let v = serde_json::to_value(rule).map_err(|e| ApiError::Internal(e.to_string()))?;
            o.set(k, &n, Some(v)).map_err(|e| invalid(vec![e]))?;
        } else {
            cascade_delete(cur, o, k, &n)?;
        }
    }
    o.set(kind, name, None).map_err(|e| invalid(vec![e]))
}

/// Every configured Kafka action name a rule may use, running or not.
fn configured_actions(cfg: &Config) -> Vec<String> {
    ferry_kafka::action_names(&cfg.actions)
}

#[async_trait::async_trait]
impl Admin for Control {
    async fn mqtt_users(&self) -> Result<Vec<ferry_api::admin::MqttUser>, ApiError> {
        crate::mqtt_users::list(self.users.get()).await
    }

    async fn mqtt_user_add(
        &self,
        u: ferry_api::admin::MqttUserNew,
    ) -> Result<ferry_api::admin::MqttUser, ApiError> {
        crate::mqtt_users::add(self.users.get(), u).await
    }

    async fn mqtt_user_update(
        &self,
        id: &str,
        c: ferry_api::admin::MqttUserUpdate,
    ) -> Result<ferry_api::admin::MqttUser, ApiError> {
        crate::mqtt_users::update(self.users.get(), id, c).await
    }

    async fn mqtt_user_delete(&self, id: &str) -> Result<(), ApiError> {
        crate::mqtt_users::delete(self.users.get(), id).await
    }

    fn state(&self) -> NodeState {
        match self.state.load(Ordering::Relaxed) {
            STARTING => NodeState::Starting,
            RUNNING => NodeState::Running,
            _ => NodeState::Draining,
        }
    }

    fn node(&self) -> NodeInfo {
        let view = self.view();
        let stats = crate::monitor::stats(&self.broker);
        NodeInfo {
            node: view.config.node.name.clone(),
            node_status: if self.state() == NodeState::Running {
                "running".into()
            } else {
                "stopped".into()
            },
            version: env!("CARGO_PKG_VERSION").into(),
            uptime: self.started.elapsed().as_millis() as u64,
            connections: stats.get("connections.count").copied().unwrap_or(0),
            live_connections: stats.get("live_connections.count").copied().unwrap_or(0),
            memory_used: crate::monitor::resident_bytes(),
            process_available: 2,
            role: "core".into(),
            sys_path: view.config.node.data_dir.display().to_string(),
            edition: "Opensource".into(),
        }
    }

    fn stats(&self) -> BTreeMap<String, u64> {
        crate::monitor::stats(&self.broker)
    }

    fn metrics(&self) -> BTreeMap<String, u64> {
        crate::monitor::counters(&self.broker, &self.view())
    }

    fn monitor(&self, latest: Option<u64>) -> Vec<BTreeMap<String, Value>> {
        self.monitor.samples(latest)
    }

    fn monitor_current(&self) -> BTreeMap<String, Value> {
        self.monitor.current(&self.broker, &self.view())
    }

    fn prometheus(&self) -> String {
        crate::monitor::prometheus(self)
    }

    fn clients(&self) -> Vec<ClientView> {
        crate::views::clients(self)
    }

    fn client(&self, clientid: &str) -> Option<ClientView> {
        crate::views::client(self, clientid)
    }

    fn kick(&self, clientid: &str) -> bool {
        crate::views::kick(self, clientid)
    }

    fn subscriptions(&self) -> Vec<SubscriptionView> {
        crate::views::subscriptions(self)
    }

    fn topics(&self) -> Vec<TopicView> {
        crate::views::topics(self)
    }

    fn retained(&self, filter: &str) -> Result<Vec<RetainedView>, ApiError> {
        crate::views::retained(self, filter)
    }

    fn retained_get(&self, topic: &str) -> Option<RetainedView> {
        crate::views::retained_get(self, topic)
    }

    fn retained_delete(&self, topic: &str) -> bool {
        crate::views::retained_delete(self, topic)
    }

    fn retained_clear(&self) -> usize {
        crate::views::retained_clear(self)
    }

    fn publish(&self, req: PublishRequest) -> Result<PublishResult, ApiError> {
        crate::views::publish(self, req)
    }

    fn objects(&self, kind: ObjectKind) -> Vec<Value> {
        let view = self.view();
        overlay::names(&view.config, kind_of(kind))
            .iter()
            .filter_map(|n| self.object_json(&view, kind, n))
            .collect()
    }

    fn object(&self, kind: ObjectKind, name: &str) -> Option<Value> {
        self.object_json(&self.view(), kind, name)
    }

    fn object_metrics(&self, kind: ObjectKind, name: &str) -> Option<Value> {
        self.metrics_json(&self.view(), kind, name)
    }

    fn reset_metrics(&self, kind: ObjectKind, name: &str) -> bool {
        let view = self.view();
        let reg = self.broker.registry();
        match kind {
            ObjectKind::Rule => {
                if let Some(m) = reg.find_rule(name) {
                    m.reset();
                }
                view.config.rules.contains_key(name)
            }
            ObjectKind::Action => {
                if let Some(m) = reg.find_action(name) {
                    m.reset();
                }
                view.config.actions.kafka.contains_key(name)
            }
            ObjectKind::Source => {
                if let Some(m) = reg.find_source(name) {
                    m.reset();
                }
                view.config.sources.kafka.contains_key(name)
            }
            ObjectKind::Connector => view.config.connectors.kafka.contains_key(name),
        }
    }

    async fn apply(&self, change: Change) -> Result<(), ApiError> {
        self.change(change).await
    }

    async fn probe_connector(&self, config: Value) -> Result<(), ApiError> {
        crate::views::probe_connector(config).await
    }

    fn rule_test(&self, sql: &str, context: Value) -> Result<Value, ApiError> {
        crate::views::rule_test(sql, context)
    }

    fn rule_events(&self) -> Value {
        crate::views::rule_events()
    }

    fn effective_config(&self) -> Value {
        serde_json::to_value(&*self.view().config).unwrap_or_default()
    }
}
