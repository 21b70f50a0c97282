//! ferry-engine: rules attached to the broker.
//!
//! Owns: [`RuleEngine`], a broker [`Hook`] that runs compiled rules on published messages
//! and client/session events, hands each output to the rule's actions, and counts into the
//! rule's handle of the broker's metrics registry (matched, passed, failed by reason,
//! actions total/success/failed; a plain `SELECT *` builds no output: its actions get
//! [`Action::run_star`] and render from the input); the
//! `republish` and `console` actions; the `[rules.NAME]` config.
//!
//! Must not: parse SQL itself (that is `ferry-rules`), touch sockets, or name Kafka (Kafka
//! actions come in as `Arc<dyn Action>` by name).

pub mod actions;
pub mod config;
mod console;
mod input;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;

use ferry_broker::{
    Authn, Authz, AuthzAction, Broker, ClientInfo, DeliveryDropReason, DropReason, DurableAck,
    Hook, Message,
};
use ferry_metrics::{RuleMetric, RuleStats};
use ferry_mqtt::{Properties, SubOptions};
use ferry_rules::{Columns, Event, Rule, RuleError, RuleSet};

pub use actions::{Action, ActionEnv, Republish};
pub use config::{ActionRef, InlineAction, RuleConfig, RulesConfig};
pub use console::Console;

/// A loaded rule: its name, actions and counters.
pub struct RuleRuntime {
    pub name: String,
    pub actions: Vec<Arc<dyn Action>>,
    /// The rule's handle in the broker's metrics registry (`Registry::rule`).
    pub metrics: Arc<RuleStats>,
}

/// A problem found while loading rules, naming the config key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct LoadError {
    pub key: String,
    pub message: String,
}

/// Compiles every rule and checks every action reference; returns all problems at once.
/// `named` resolves `"TYPE:NAME"` references (e.g. Kafka actions).
pub fn check_rules(rules: &RulesConfig, named: &dyn Fn(&str) -> bool) -> Vec<LoadError> {
    let mut errs = Vec::new();
    for (name, r) in rules {
        if let Err(e) = Rule::compile(&r.sql) {
            errs.push(LoadError {
                key: format!("rules.{name}.sql"),
                message: e.to_string(),
            });
        }
        for (i, a) in r.actions.iter().enumerate() {
            let key = format!("rules.{name}.actions[{i}]");
            match a {
                ActionRef::Named(n) if n == "console" => {}
                ActionRef::Named(n) if named(n) => {}
                ActionRef::Named(n) => errs.push(LoadError {
                    key,
                    message: format!("unknown action {n:?} (use \"console\", an inline republish, or \"kafka:NAME\" for a defined [actions.kafka.NAME])"),
                }),
                ActionRef::Inline(InlineAction::Republish(args)) => {
                    if let Err((field, e)) = Republish::new(name, args, Weak::new()) {
                        errs.push(LoadError { key: format!("{key}.args.{field}"), message: e.to_string() });
                    }
                }
                ActionRef::Inline(InlineAction::Console) => {}
            }
        }
    }
    errs
}

/// Runs rules on the broker's messages and events. The rule set is replaced atomically
/// ([`RuleEngine::replace`]): a message is evaluated entirely by the old set or the new one,
/// and nothing pauses while a new set is compiled.
pub struct RuleEngine {
    set: ArcSwap<RuleSet<RuleRuntime>>,
    /// What the current set listens to (a bit per `Event`, and [`TOPICS`] for topic
    /// filters), so a broker with no such rule pays one atomic load per publish or event,
    /// not a rule set lookup.
    wants: AtomicU64,
    node: String,
}

impl RuleEngine {
    /// Builds the engine from config. `named` gives the running actions referenced by name
    /// (`"kafka:NAME"`); a configured action that is not running (disabled) fails each
    /// output it gets. Disabled rules are loaded but never run.
    pub fn build(
        rules: &RulesConfig,
        broker: &Arc<Broker>,
        named: &HashMap<String, Arc<dyn Action>>,
        configured: &dyn Fn(&str) -> bool,
    ) -> Result<RuleEngine, Vec<LoadError>> {
        let set = compile_set(rules, broker, named, configured)?;
        Ok(RuleEngine {
            wants: AtomicU64::new(wants(&set)),
            set: ArcSwap::from_pointee(set),
            node: "ferry@127.0.0.1".into(),
        })
    }

    /// Compiles `rules` and swaps them in at once. A rule keeps its counters across the
    /// swap (they are the registry's, by name). On an error nothing changes.
    pub fn replace(
        &self,
        rules: &RulesConfig,
        broker: &Arc<Broker>,
        named: &HashMap<String, Arc<dyn Action>>,
        configured: &dyn Fn(&str) -> bool,
    ) -> Result<(), Vec<LoadError>> {
        let set = compile_set(rules, broker, named, configured)?;
        let w = wants(&set);
        self.set.store(Arc::new(set));
        self.wants.store(w, Ordering::Release);
        // Counters live in the registry by name: a deleted rule's go with it.
        let registry = broker.registry();
        for (name, _) in registry.rules() {
            if !rules.contains_key(&name) {
                registry.remove_rule(&name);
            }
        }
        Ok(())
    }

    /// An engine from already compiled rules (tests, embedding).
    pub fn from_rules(rules: Vec<(Rule, RuleRuntime)>) -> RuleEngine {
        let mut set = RuleSet::new();
        for (r, rt) in rules {
            set.add(r, rt);
        }
        RuleEngine {
            wants: AtomicU64::new(wants(&set)),
            set: ArcSwap::from_pointee(set),
            node: "ferry@127.0.0.1".into(),
        }
    }

    /// The counters of a loaded (enabled) rule.
    pub fn rule_metrics(&self, name: &str) -> Option<Arc<RuleStats>> {
        self.set
            .load()
            .rules()
            .find(|(_, rt)| rt.name == name)
            .map(|(_, rt)| rt.metrics.clone())
    }

    pub fn len(&self) -> usize {
        self.set.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.load().is_empty()
    }

    /// Every loaded rule's counters, by rule name (the same handles the registry holds).
    pub fn metrics(&self) -> Vec<(String, Arc<RuleStats>)> {
        self.set
            .load()
            .rules()
            .map(|(_, rt)| (rt.name.clone(), rt.metrics.clone()))
            .collect()
    }

    fn run(
        &self,
        rule: &Rule,
        rt: &RuleRuntime,
        input: &dyn Columns,
        msg: Option<&Arc<Message>>,
        acks: &mut Vec<DurableAck>,
    ) {
        let m = &rt.metrics;
        m.inc(RuleMetric::Matched);
        let mut report = ferry_rules::Report::default();
        // A plain `SELECT *`: its one output is the input's columns; actions render them
        // from the input (`Action::run_star`) instead of a map built per message.
        let star = rule.is_select_star();
        let result = if star {
            rule.check_star(input, &mut report).map(|()| Vec::new())
        } else {
            rule.apply_reporting(input, &mut report)
        };
        if report.payload_not_json {
            m.inc(RuleMetric::PayloadNotJson);
        }
        match result {
            Ok(outs) => {
                m.inc(RuleMetric::Passed);
                let mut env = ActionEnv {
                    rule: &rt.name,
                    msg,
                    input,
                    acks,
                };
                let act = |a: &Arc<dyn Action>, r: Result<(), String>| {
                    m.inc(RuleMetric::ActionsTotal);
                    match r {
                        Ok(()) => {
                            m.inc(RuleMetric::ActionsSuccess);
                        }
                        Err(e) => {
                            let n = m.inc(RuleMetric::ActionsFailed);
                            if n.is_power_of_two() {
                                tracing::warn!(rule = %rt.name, action = a.name(), failed_total = n, "action failed: {e}");
                            }
                        }
                    }
                };
                if star {
                    for a in &rt.actions {
                        let r = a.run_star(&mut env);
                        act(a, r);
                    }
                }
                for out in &outs {
                    for a in &rt.actions {
                        let r = a.run(out, &mut env);
                        act(a, r);
                    }
                }
            }
            Err(RuleError::NoResult) => {
                m.inc(RuleMetric::FailedNoResult);
            }
            Err(RuleError::Exception(e)) => {
                let n = m.inc(RuleMetric::FailedException);
                if n.is_power_of_two() {
                    tracing::warn!(rule = %rt.name, failed_total = n, "rule failed: {e}");
                }
            }
        }
    }

    /// Runs the rules that select `FROM "$bridges/..."` on one record of that bridge.
    pub fn on_bridge(&self, bridge: &str, columns: &ferry_rules::Map) {
        let set = self.set.load();
        let mut rules = set.for_bridge(bridge).peekable();
        if rules.peek().is_some() {
            self.run_on_map(rules, columns.clone(), None);
        }
    }

    /// Runs `rules` on an input given as columns (events, bridge records). Nobody is
    /// acknowledged for these, so durable acknowledgements are not awaited.
    fn run_on_map<'r>(
        &'r self,
        rules: impl Iterator<Item = &'r (Rule, RuleRuntime)>,
        columns: ferry_rules::Map,
        msg: Option<&Arc<Message>>,
    ) {
        let input = ferry_rules::MapInput { columns };
        let mut acks = Vec::new();
        for (rule, rt) in rules {
            self.run(rule, rt, &input, msg, &mut acks);
        }
    }

    fn run_event(
        &self,
        ev: Event,
        columns: impl FnOnce() -> ferry_rules::Map,
        msg: Option<&Arc<Message>>,
    ) {
        if self.wants.load(Ordering::Acquire) & event_bit(ev) == 0 {
            return;
        }
        let set = self.set.load();
        if !set.wants_event(ev) {
            return;
        }
        self.run_on_map(set.for_event(ev), columns(), msg);
    }
}

impl Hook for RuleEngine {
    fn message_published(&self, msg: &Arc<Message>, acks: &mut Vec<DurableAck>) {
        if self.wants.load(Ordering::Acquire) & TOPICS == 0 {
            return;
        }
        let set = self.set.load();
        let rules = set.for_topic(&msg.topic);
        if rules.is_empty() {
            return;
        }
        let owned = input::MessageParts::new(msg, &self.node);
        let input = owned.input();
        for (rule, rt) in rules {
            self.run(rule, rt, &input, Some(msg), acks);
        }
    }

    fn client_connected(&self, c: &ClientInfo) {
        self.run_event(
            Event::ClientConnected,
            || input::connected(c, &self.node),
            None,
        );
    }

    fn client_disconnected(&self, c: &ClientInfo, reason: &str, props: &Properties) {
        self.run_event(
            Event::ClientDisconnected,
            || input::disconnected(c, reason, props, &self.node),
            None,
        );
    }

    fn session_subscribed(
        &self,
        c: &ClientInfo,
        filter: &str,
        opts: &SubOptions,
        props: &Properties,
    ) {
        self.run_event(
            Event::SessionSubscribed,
            || input::subscription(c, filter, Some(opts), props, &self.node),
            None,
        );
    }

    fn session_unsubscribed(&self, c: &ClientInfo, filter: &str, props: &Properties) {
        self.run_event(
            Event::SessionUnsubscribed,
            || input::subscription(c, filter, None, props, &self.node),
            None,
        );
    }

    fn message_delivered(&self, to: &ClientInfo, msg: &Arc<Message>) {
        self.run_event(
            Event::MessageDelivered,
            || input::message_event(Event::MessageDelivered, Some(to), msg, None, &self.node),
            Some(msg),
        );
    }

    fn message_acked(&self, to: &ClientInfo, msg: &Arc<Message>) {
        self.run_event(
            Event::MessageAcked,
            || input::message_event(Event::MessageAcked, Some(to), msg, None, &self.node),
            Some(msg),
        );
    }

    fn message_dropped(&self, msg: &Arc<Message>, reason: DropReason) {
        self.run_event(
            Event::MessageDropped,
            || {
                let why = Some(reason.as_str());
                input::message_event(Event::MessageDropped, None, msg, why, &self.node)
            },
            Some(msg),
        );
    }

    fn delivery_dropped(&self, to: &ClientInfo, msg: &Arc<Message>, reason: DeliveryDropReason) {
        self.run_event(
            Event::DeliveryDropped,
            || {
                let why = Some(reason.as_str());
                input::message_event(Event::DeliveryDropped, Some(to), msg, why, &self.node)
            },
            Some(msg),
        );
    }

    fn wants_message_dropped(&self) -> bool {
        self.wants.load(Ordering::Acquire) & event_bit(Event::MessageDropped) != 0
    }

    fn client_connack(&self, c: &ClientInfo, reason_code: u8) {
        self.run_event(
            Event::ClientConnack,
            || input::connack(c, reason_code, &self.node),
            None,
        );
    }

    fn client_check_authn_complete(&self, c: &ClientInfo, authn: &Authn) {
        self.run_event(
            Event::ClientCheckAuthnComplete,
            || input::authn_complete(c, authn, &self.node),
            None,
        );
    }

    fn client_check_authz_complete(
        &self,
        c: &ClientInfo,
        action: AuthzAction,
        topic: &str,
        authz: &Authz,
    ) {
        self.run_event(
            Event::ClientCheckAuthzComplete,
            || input::authz_complete(c, action, topic, authz, &self.node),
            None,
        );
    }
}

/// The `RuleEngine::wants` bit of rules selecting FROM topic filters.
const TOPICS: u64 = 1 << 63;

fn event_bit(e: Event) -> u64 {
    1 << (e as u64)
}

fn wants(set: &RuleSet<RuleRuntime>) -> u64 {
    let events = Event::ALL
        .iter()
        .filter(|e| set.wants_event(**e))
        .fold(0, |w, e| w | event_bit(*e));
    if set.has_topic_rules() {
        events | TOPICS
    } else {
        events
    }
}

/// Compiles a rule set; each rule counts into its handle of the broker's registry.
fn compile_set(
    rules: &RulesConfig,
    broker: &Arc<Broker>,
    named: &HashMap<String, Arc<dyn Action>>,
    configured: &dyn Fn(&str) -> bool,
) -> Result<RuleSet<RuleRuntime>, Vec<LoadError>> {
    let errs = check_rules(rules, &|n| named.contains_key(n) || configured(n));
    if !errs.is_empty() {
        return Err(errs);
    }
    let mut set = RuleSet::new();
    for (name, r) in rules {
        if !r.enable {
            continue;
        }
        let rule = Rule::compile(&r.sql).map_err(|e| {
            vec![LoadError {
                key: format!("rules.{name}.sql"),
                message: e.to_string(),
            }]
        })?;
        let mut acts: Vec<Arc<dyn Action>> = Vec::new();
        for a in &r.actions {
            acts.push(match a {
                ActionRef::Named(n) if n == "console" => Arc::new(Console::stdout()),
                ActionRef::Named(n) => match named.get(n) {
                    Some(a) => a.clone(),
                    None => Arc::new(Stopped(n.clone())),
                },
                ActionRef::Inline(InlineAction::Console) => Arc::new(Console::stdout()),
                ActionRef::Inline(InlineAction::Republish(args)) => Arc::new(
                    Republish::new(name, args, Arc::downgrade(broker)).map_err(|(f, e)| {
                        vec![LoadError {
                            key: format!("rules.{name}.actions.args.{f}"),
                            message: e.to_string(),
                        }]
                    })?,
                ),
            });
        }
        set.add(
            rule,
            RuleRuntime {
                name: name.clone(),
                actions: acts,
                metrics: broker.registry().rule(name),
            },
        );
    }
    Ok(set)
}

/// A configured action that is not running (disabled, or its connector is): every output
/// sent to it fails, and is counted as a failed action of the rule.
struct Stopped(String);

impl Action for Stopped {
    fn name(&self) -> &str {
        &self.0
    }

    fn run(&self, _out: &ferry_rules::Map, _env: &mut ActionEnv<'_>) -> Result<(), String> {
        Err(format!("action {} is disabled", self.0))
    }
}
