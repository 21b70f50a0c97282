//! Actions: where rule outputs go. `Republish` lives here (`Console` in `console.rs`);
//! Kafka producer actions implement the same [`Action`] trait in their own crate.

use std::cell::Cell;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use ferry_broker::{Broker, ClientInfo, DurableAck, Message};
use ferry_mqtt::{Properties, QoS};
use ferry_rules::{Columns, CompileError, Map, Template, Value};

use crate::config::{BoolOrTemplate, IntOrTemplate, RepublishArgs};

/// What an action gets besides the output.
pub struct ActionEnv<'a> {
    pub rule: &'a str,
    /// The message that triggered the rule (none for events).
    pub msg: Option<&'a Arc<Message>>,
    /// The rule's input columns: templates fall back to them for paths not in the output.
    pub input: &'a dyn Columns,
    /// A durable action (Kafka in sync mode) adds here what the publisher's PUBACK must
    /// wait for.
    pub acks: &'a mut Vec<DurableAck>,
}

/// A destination for rule outputs. `run` is called on the publishing client's task: it must
/// not block (queue the work if it is slow) and must not panic.
pub trait Action: Send + Sync {
    fn name(&self) -> &str;
    fn run(&self, out: &Map, env: &mut ActionEnv<'_>) -> Result<(), String>;

    /// Runs on the output of a plain `SELECT *` rule, which is every column of
    /// `env.input`. An action that renders from [`ferry_rules::Bindings::Star`] need not
    /// have that output built (it is most of the cost of a message); the default builds it.
    fn run_star(&self, env: &mut ActionEnv<'_>) -> Result<(), String> {
        let out = env.input.all();
        self.run(&out, env)
    }
}

thread_local! {
    static REPUBLISH_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Republishes caught in a loop (a rule republishing to a topic it matches) stop here.
const MAX_REPUBLISH_DEPTH: u32 = 8;

enum QosSpec {
    Fixed(QoS),
    Template(Template),
}

enum RetainSpec {
    Fixed(bool),
    Template(Template),
}

/// Publishes the output as a new MQTT message through the broker.
pub struct Republish {
    name: String,
    broker: Weak<Broker>,
    publisher: Arc<ClientInfo>,
    topic: Template,
    payload: Template,
    qos: QosSpec,
    retain: RetainSpec,
    user_properties: Template,
}

impl Republish {
    pub fn new(
        rule: &str,
        args: &RepublishArgs,
        broker: Weak<Broker>,
    ) -> Result<Republish, (String, CompileError)> {
        let t = |field: &str, src: &str| Template::parse(src).map_err(|e| (field.to_owned(), e));
        Ok(Republish {
            name: format!("republish:{}", args.topic),
            broker,
            publisher: Arc::new(ClientInfo::internal(&format!("$rule:{rule}"))),
            topic: t("topic", &args.topic)?,
            payload: t("payload", &args.payload)?,
            qos: match &args.qos {
                IntOrTemplate::Int(q) => {
                    QosSpec::Fixed(u8::try_from(*q).ok().and_then(QoS::from_u8).ok_or_else(
                        || {
                            (
                                "qos".to_owned(),
                                CompileError::Invalid {
                                    what: "qos must be 0, 1 or 2".into(),
                                    line: 1,
                                    column: 1,
                                },
                            )
                        },
                    )?)
                }
                IntOrTemplate::Template(s) => QosSpec::Template(t("qos", s)?),
            },
            retain: match &args.retain {
                BoolOrTemplate::Bool(b) => RetainSpec::Fixed(*b),
                BoolOrTemplate::Template(s) => RetainSpec::Template(t("retain", s)?),
            },
            user_properties: t("user_properties", &args.user_properties)?,
        })
    }
}

impl Action for Republish {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&self, out: &Map, env: &mut ActionEnv<'_>) -> Result<(), String> {
        let broker = self.broker.upgrade().ok_or("the broker is gone")?;
        let input = Some(env.input);
        let topic = self.topic.render_with(out, input);
        ferry_mqtt::topic::validate_name(&topic)
            .map_err(|e| format!("republish topic {topic:?}: {e}"))?;
        let qos = match &self.qos {
            QosSpec::Fixed(q) => *q,
            QosSpec::Template(t) => {
                let v = t.render(out);
                v.trim()
                    .parse::<u8>()
                    .ok()
                    .and_then(QoS::from_u8)
                    .ok_or(format!("republish qos {v:?} is not 0, 1 or 2"))?
            }
        };
        let retain = match &self.retain {
            RetainSpec::Fixed(b) => *b,
            RetainSpec::Template(t) => matches!(t.render_with(out, input).trim(), "true" | "1"),
        };
        let payload = match self.payload.render_value_with(out, input) {
            Value::Bin(b) => Bytes::from(b),
            Value::Str(s) => Bytes::from(s),
            Value::Null => Bytes::new(),
            other => Bytes::from(other.to_text()),
        };
        let mut properties = Properties::default();
        if let Value::Map(m) = self.user_properties.render_value_with(out, input) {
            properties.user_properties = m.into_iter().map(|(k, v)| (k, v.to_text())).collect();
        }
        let depth = REPUBLISH_DEPTH.with(|d| {
            let v = d.get() + 1;
            d.set(v);
            v
        });
        let result = if depth > MAX_REPUBLISH_DEPTH {
            Err(format!(
                "republish to {topic:?} loops (depth {depth}); dropped"
            ))
        } else {
            let mut msg = Message::new(topic, payload, qos, retain);
            msg.properties = properties;
            msg.publisher = Some(self.publisher.clone());
            broker.publish(msg);
            Ok(())
        };
        REPUBLISH_DEPTH.with(|d| d.set(d.get() - 1));
        result
    }
}
