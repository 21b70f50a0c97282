//! The one handle the API has on a running Ferry. The `ferry` crate implements [`Admin`];
//! this crate only calls it. Types here are the API's JSON shapes (EMQX v5 field names).
//!
//! Configurable objects (rules, connectors, actions, sources) travel as JSON objects in the
//! config file's own shape: the implementation validates them with the config file's code,
//! so the API and the file can never disagree on what is valid.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;

/// Whether the node serves traffic (`GET /status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Starting,
    Running,
    Draining,
}

/// `GET /api/v5/nodes` entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    pub node: String,
    pub node_status: String,
    pub version: String,
    /// Milliseconds since the node started.
    pub uptime: u64,
    pub connections: u64,
    pub live_connections: u64,
    pub memory_used: u64,
    pub process_available: u64,
    pub role: String,
    pub sys_path: String,
    pub edition: String,
}

/// A connected or persistent-session client (`GET /api/v5/clients`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    pub clientid: String,
    pub username: Option<String>,
    pub ip_address: String,
    pub port: u16,
    pub proto_name: String,
    pub proto_ver: u8,
    pub keepalive: u16,
    pub clean_start: bool,
    pub expiry_interval: u32,
    pub connected: bool,
    /// RFC 3339.
    pub connected_at: String,
    pub created_at: String,
    pub node: String,
    pub subscriptions_cnt: u64,
    pub subscriptions_max: String,
    pub inflight_cnt: u64,
    pub inflight_max: u64,
    pub mqueue_len: u64,
    pub mqueue_max: u64,
    pub mqueue_dropped: u64,
    pub recv_msg: u64,
    pub send_msg: u64,
    pub recv_pkt: u64,
    pub send_pkt: u64,
    pub recv_oct: u64,
    pub send_oct: u64,
}

/// A subscription (`GET /api/v5/subscriptions`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionView {
    pub clientid: String,
    pub topic: String,
    pub qos: u8,
    pub nl: u8,
    pub rap: u8,
    pub rh: u8,
    pub node: String,
    /// Shared subscription group, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_group: Option<String>,
}

/// A routed topic filter (`GET /api/v5/topics`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopicView {
    pub topic: String,
    pub node: String,
}

/// A retained message (`GET /api/v5/mqtt/retainer/messages`); the payload only when read
/// one by one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetainedView {
    pub topic: String,
    pub msgid: String,
    pub qos: u8,
    pub from_clientid: String,
    pub from_username: String,
    pub publish_at: String,
    /// Base64 of the payload (read one message to get it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// `POST /api/v5/publish`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    pub topic: String,
    #[serde(default)]
    pub payload: String,
    /// `plain` (default) or `base64`.
    #[serde(default = "plain")]
    pub payload_encoding: String,
    #[serde(default)]
    pub qos: u8,
    #[serde(default)]
    pub retain: bool,
    #[serde(default)]
    pub clientid: Option<String>,
    /// MQTT 5 properties: `payload_format_indicator`, `message_expiry_interval`,
    /// `response_topic`, `correlation_data`, `content_type`, `user_properties`.
    #[serde(default)]
    pub properties: PublishProperties,
}

fn plain() -> String {
    "plain".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishProperties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<String>,
    pub content_type: Option<String>,
    #[serde(default)]
    pub user_properties: BTreeMap<String, String>,
}

/// What a publish did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublishResult {
    pub id: String,
    /// MQTT 5 reason code: 16 (No matching subscribers) when nobody took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The kinds of configurable objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Rule,
    Connector,
    Action,
    Source,
}

impl ObjectKind {
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Rule => "rule",
            ObjectKind::Connector => "connector",
            ObjectKind::Action => "action",
            ObjectKind::Source => "source",
        }
    }
}

/// One change to the runtime configuration. Changes are validated as a whole config,
/// applied all or nothing, serialized, and persisted.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Create (`create = true`: 409 if it exists) or replace an object. `config` is the
    /// config file's section for it, as JSON.
    Put {
        kind: ObjectKind,
        name: String,
        config: Value,
        create: bool,
    },
    /// Delete an object. Without `cascade`, deleting something another object uses is 409.
    Delete {
        kind: ObjectKind,
        name: String,
        cascade: bool,
    },
    /// Enable or disable an object.
    Enable {
        kind: ObjectKind,
        name: String,
        enable: bool,
    },
}

/// Everything the API reads or changes.
#[async_trait::async_trait]
pub trait Admin: Send + Sync + 'static {
    fn state(&self) -> NodeState;
    fn node(&self) -> NodeInfo;
    /// Gauges, EMQX names (`connections.count`, `sessions.count`, `topics.count`, ...).
    fn stats(&self) -> BTreeMap<String, u64>;
    /// Counters, EMQX names (`messages.received`, `messages.dropped`, ...).
    fn metrics(&self) -> BTreeMap<String, u64>;
    /// Samples over the last `latest` seconds (all kept, if None), oldest first.
    fn monitor(&self, latest: Option<u64>) -> Vec<BTreeMap<String, Value>>;
    /// Rates now and the current gauges.
    fn monitor_current(&self) -> BTreeMap<String, Value>;
    /// The Prometheus text exposition.
    fn prometheus(&self) -> String;

    fn clients(&self) -> Vec<ClientView>;
    fn client(&self, clientid: &str) -> Option<ClientView>;
    /// Disconnects the client (DISCONNECT 0x98 to MQTT 5) and discards its session.
    fn kick(&self, clientid: &str) -> bool;
    fn subscriptions(&self) -> Vec<SubscriptionView>;
    fn topics(&self) -> Vec<TopicView>;
    /// Retained messages whose topics match `filter` (all with `#`), without payloads.
    fn retained(&self, filter: &str) -> Result<Vec<RetainedView>, ApiError>;
    fn retained_get(&self, topic: &str) -> Option<RetainedView>;
    fn retained_delete(&self, topic: &str) -> bool;
    fn retained_clear(&self) -> usize;
    fn publish(&self, req: PublishRequest) -> Result<PublishResult, ApiError>;

    /// Every object of `kind`: its config (file shape) plus `name`, `type`, `enable`,
    /// `status`, `status_reason` and `metrics` where they apply.
    fn objects(&self, kind: ObjectKind) -> Vec<Value>;
    fn object(&self, kind: ObjectKind, name: &str) -> Option<Value>;
    /// Counters of one object (EMQX's metrics shape).
    fn object_metrics(&self, kind: ObjectKind, name: &str) -> Option<Value>;
    fn reset_metrics(&self, kind: ObjectKind, name: &str) -> bool;
    /// Applies one change (see [`Change`]).
    async fn apply(&self, change: Change) -> Result<(), ApiError>;
    /// Checks that a connector config reaches its cluster, within a few seconds.
    async fn probe_connector(&self, config: Value) -> Result<(), ApiError>;

    /// `POST /rule_test`: the output, 412 when FROM or WHERE does not match, 400 on a
    /// SQL error (with line and column).
    fn rule_test(&self, sql: &str, context: Value) -> Result<Value, ApiError>;
    /// The events a rule can select and their columns (`GET /rule_events`).
    fn rule_events(&self) -> Value;
    /// The effective config (file + API overlay) as JSON.
    fn effective_config(&self) -> Value;

    /// The MQTT clients' built-in user database, by user id (404 when no
    /// `built_in_database` authentication method is configured).
    async fn mqtt_users(&self) -> Result<Vec<MqttUser>, ApiError> {
        Err(no_user_db())
    }
    /// Adds a user (409 if it exists).
    async fn mqtt_user_add(&self, _user: MqttUserNew) -> Result<MqttUser, ApiError> {
        Err(no_user_db())
    }
    /// Changes a user's password and/or superuser flag (404 if it does not exist).
    async fn mqtt_user_update(
        &self,
        _user_id: &str,
        _change: MqttUserUpdate,
    ) -> Result<MqttUser, ApiError> {
        Err(no_user_db())
    }
    async fn mqtt_user_delete(&self, _user_id: &str) -> Result<(), ApiError> {
        Err(no_user_db())
    }
}

fn no_user_db() -> ApiError {
    ApiError::not_found("the built_in_database authentication method is not configured")
}

/// A user of the MQTT clients' built-in database (EMQX's shape; the hash is never shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MqttUser {
    pub user_id: String,
    pub is_superuser: bool,
}

/// `POST .../users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttUserNew {
    pub user_id: String,
    pub password: String,
    #[serde(default)]
    pub is_superuser: bool,
}

/// `PUT .../users/{user_id}`: what to change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttUserUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_superuser: Option<bool>,
}
