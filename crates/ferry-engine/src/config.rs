//! `[rules.NAME]`: rule SQL, its actions, and whether it is enabled.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One rule (`[rules.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// EMQX rule SQL, e.g. `SELECT payload FROM "mqttx/simulate/#"`.
    pub sql: String,
    /// Where outputs go: `"console"`, `"kafka:NAME"` (an `[actions.kafka.NAME]`), or an
    /// inline `{ function = "republish", args = { topic = "...", ... } }`.
    #[serde(default)]
    pub actions: Vec<ActionRef>,
    #[serde(default = "yes")]
    pub enable: bool,
    #[serde(default)]
    pub description: String,
}

fn yes() -> bool {
    true
}

pub type RulesConfig = BTreeMap<String, RuleConfig>;

/// A reference to an action from a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ActionRef {
    /// `"console"` or `"TYPE:NAME"`.
    Named(String),
    Inline(InlineAction),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    tag = "function",
    content = "args",
    rename_all = "lowercase"
)]
pub enum InlineAction {
    Republish(RepublishArgs),
    Console,
}

/// Republish a rule output as a new MQTT message (EMQX's republish action).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepublishArgs {
    /// Topic template, e.g. `alerts/${clientid}`.
    pub topic: String,
    /// Payload template; default `${payload}`.
    #[serde(default = "default_payload")]
    pub payload: String,
    /// 0, 1, 2, or a template such as `${qos}`.
    #[serde(default)]
    pub qos: IntOrTemplate,
    /// true/false, or a template such as `${flags.retain}`.
    #[serde(default)]
    pub retain: BoolOrTemplate,
    /// Template rendering a map of user properties; default `${pub_props.'User-Property'}`.
    #[serde(default = "default_user_properties")]
    pub user_properties: String,
}

fn default_payload() -> String {
    "${payload}".into()
}

fn default_user_properties() -> String {
    "${pub_props.'User-Property'}".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrTemplate {
    Int(i64),
    Template(String),
}

impl Default for IntOrTemplate {
    fn default() -> Self {
        IntOrTemplate::Int(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BoolOrTemplate {
    Bool(bool),
    Template(String),
}

impl Default for BoolOrTemplate {
    fn default() -> Self {
        BoolOrTemplate::Bool(false)
    }
}
