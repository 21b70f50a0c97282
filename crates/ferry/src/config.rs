//! The config file: every crate's typed section, composed. Strict: unknown keys and bad
//! values are errors naming the key; all problems are reported at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_auth::AuthenticationConfig;
use ferry_broker::MqttConfig;
use ferry_broker::acl::AuthorizationConfig;
use ferry_broker::limits::BannedConfig;
use ferry_engine::RulesConfig;
use ferry_kafka::config::Dur;
use ferry_kafka::{KafkaActions, KafkaConnectors, KafkaSources};
use ferry_server::{
    SslListenerConfig, TcpListenerConfig, WsListenerConfig, WssListenerConfig, config::check_common,
};
use serde::{Deserialize, Serialize};

/// The documented default config, shipped as `examples/ferry.toml`.
pub const EXAMPLE: &str = include_str!("../../../examples/ferry.toml");

fn is_empty_banned(b: &BannedConfig) -> bool {
    *b == BannedConfig::default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub log: LogConfig,
    pub node: NodeConfig,
    pub api: ApiConfig,
    pub listeners: Listeners,
    pub mqtt: MqttConfig,
    /// `[banned]`: client ids, usernames and address ranges refused at CONNECT.
    #[serde(skip_serializing_if = "is_empty_banned")]
    pub banned: BannedConfig,
    /// `[authentication]`: `allow_anonymous` and the ordered methods.
    pub authentication: AuthenticationConfig,
    /// `[authorization]`: the ACL.
    pub authorization: AuthorizationConfig,
    /// `[rules.NAME]`: rule SQL and actions.
    pub rules: RulesConfig,
    /// `[connectors.kafka.NAME]`: Kafka clusters.
    pub connectors: KafkaConnectors,
    /// `[actions.kafka.NAME]`: Kafka producer actions, used by rules as "kafka:NAME".
    pub actions: KafkaActions,
    /// `[sources.kafka.NAME]`: Kafka consumer sources delivering records to MQTT.
    pub sources: KafkaSources,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log: LogConfig::default(),
            node: NodeConfig::default(),
            api: ApiConfig::default(),
            listeners: Listeners {
                tcp: BTreeMap::from([("default".to_owned(), TcpListenerConfig::default())]),
                ssl: BTreeMap::new(),
                ws: BTreeMap::from([("default".to_owned(), WsListenerConfig::default())]),
                wss: BTreeMap::new(),
            },
            mqtt: MqttConfig::default(),
            banned: BannedConfig::default(),
            authentication: AuthenticationConfig::default(),
            authorization: AuthorizationConfig::default(),
            rules: RulesConfig::new(),
            connectors: KafkaConnectors::default(),
            actions: KafkaActions::default(),
            sources: KafkaSources::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// `[node]`: who this node is and where it keeps its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    pub name: String,
    /// Everything Ferry persists (API users and keys, API changes to the config, MQTT
    /// state in `state.redb`).
    pub data_dir: PathBuf,
    /// Keep persistent sessions (with their subscriptions, queues and inflight messages)
    /// and retained messages across restarts, in `data_dir/state.redb`. Off: in memory only.
    pub persistence: bool,
    /// How often changed MQTT state is committed to disk; a `kill -9` loses at most this
    /// much. "0ms" is the strictest setting: QoS 1/2 PUBLISH packets that change persistent
    /// state, QoS 2 PUBLISH and SUBSCRIBE packets of persistent sessions, and retained
    /// messages are acknowledged only after their commit.
    pub state_sync_interval: Dur,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "ferry@127.0.0.1".into(),
            data_dir: PathBuf::from("./data"),
            persistence: true,
            state_sync_interval: Dur(Duration::from_millis(100)),
        }
    }
}

/// `[api]`: the HTTP API listener and its logins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub enable: bool,
    pub bind: SocketAddr,
    pub default_username: String,
    pub default_password: String,
    pub token_ttl: Dur,
    pub max_login_failures: u32,
    pub login_lock_duration: Dur,
    pub bootstrap_file: Option<PathBuf>,
    pub max_body_bytes: usize,
    pub metrics_auth: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enable: true,
            bind: SocketAddr::from(([0, 0, 0, 0], 18083)),
            default_username: "admin".into(),
            default_password: "public".into(),
            token_ttl: Dur(Duration::from_secs(3600)),
            max_login_failures: 5,
            login_lock_duration: Dur(Duration::from_secs(300)),
            bootstrap_file: None,
            max_body_bytes: 1 << 20,
            metrics_auth: false,
        }
    }
}

impl ApiConfig {
    /// The API crate's settings from this section.
    pub fn settings(&self) -> ferry_api::ApiSettings {
        ferry_api::ApiSettings {
            max_body_bytes: self.max_body_bytes,
            metrics_auth: self.metrics_auth,
            auth: ferry_api::auth::AuthSettings {
                default_username: self.default_username.clone(),
                default_password: self.default_password.clone(),
                token_ttl: self.token_ttl.0,
                max_login_failures: self.max_login_failures,
                lock_duration: self.login_lock_duration.0,
                bootstrap_file: self.bootstrap_file.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Listeners {
    /// `[listeners.tcp.NAME]`: plain MQTT (default port 1883).
    pub tcp: BTreeMap<String, TcpListenerConfig>,
    /// `[listeners.ssl.NAME]`: MQTT over TLS (default port 8883).
    pub ssl: BTreeMap<String, SslListenerConfig>,
    /// `[listeners.ws.NAME]`: MQTT over WebSocket (default port 8083).
    pub ws: BTreeMap<String, WsListenerConfig>,
    /// `[listeners.wss.NAME]`: MQTT over WebSocket over TLS (default port 8084).
    pub wss: BTreeMap<String, WssListenerConfig>,
}

impl Listeners {
    /// Every problem with the listeners, each naming its key (and the file for TLS files).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.tcp.is_empty() && self.ssl.is_empty() && self.ws.is_empty() && self.wss.is_empty() {
            problems.push("listeners: at least one listener is needed".into());
        }
        for (name, l) in &self.tcp {
            problems.extend(check_common(
                &format!("listeners.tcp.{name}"),
                &l.common(),
                None,
            ));
        }
        for (name, l) in &self.ws {
            let key = format!("listeners.ws.{name}");
            problems.extend(check_common(&key, &l.common(), Some(&l.ws())));
        }
        for (name, l) in &self.ssl {
            let key = format!("listeners.ssl.{name}");
            problems.extend(check_common(&key, &l.common(), None));
            if let Err(e) = ferry_server::tls::server_config(&l.tls()) {
                problems.push(format!("{key}.{e}"));
            }
        }
        for (name, l) in &self.wss {
            let key = format!("listeners.wss.{name}");
            problems.extend(check_common(&key, &l.common(), Some(&l.ws())));
            if let Err(e) = ferry_server::tls::server_config(&l.tls()) {
                problems.push(format!("{key}.{e}"));
            }
        }
        problems
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: invalid configuration:\n  {}", .problems.join("\n  "))]
    Invalid { path: String, problems: Vec<String> },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?;
        Config::parse(&text, &p)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.into(),
            message: e.to_string(),
        })?;
        let problems = cfg.validate();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                path: origin.into(),
                problems,
            })
        }
    }

    /// Every problem with this config, each naming its key; empty if it is valid.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = self.mqtt.validate();
        problems.extend(self.banned.validate());
        if self.node.data_dir.as_os_str().is_empty() {
            problems.push("node.data_dir: must not be empty".into());
        }
        if self.node.state_sync_interval.0 > Duration::from_secs(60) {
            problems.push("node.state_sync_interval: must be at most 60s".into());
        }
        if self.api.default_username.is_empty() {
            problems.push("api.default_username: must not be empty".into());
        }
        if self.api.token_ttl.0 < Duration::from_secs(1) {
            problems.push("api.token_ttl: must be at least 1s".into());
        }
        if self.api.max_body_bytes < 1024 {
            problems.push("api.max_body_bytes: must be at least 1024".into());
        }
        if let Some(p) = &self.api.bootstrap_file
            && !p.exists()
        {
            problems.push(format!(
                "api.bootstrap_file: {} does not exist",
                p.display()
            ));
        }
        problems.extend(self.listeners.validate());
        if let Err(p) = self.authorization.compile() {
            problems.extend(p);
        }
        problems.extend(ferry_auth::config::validate(&self.authentication));
        problems.extend(ferry_kafka::config::validate(
            &self.connectors,
            &self.actions,
        ));
        for (name, s) in &self.sources.kafka {
            problems.extend(ferry_kafka::source::validate(name, s, &self.connectors));
        }
        let named = ferry_kafka::action_names(&self.actions);
        problems.extend(
            ferry_engine::check_rules(&self.rules, &|n| named.iter().any(|x| x == n))
                .into_iter()
                .map(|e| e.to_string()),
        );
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            problems.push(format!(
                "log.level: {:?} is not a valid log filter",
                self.log.level
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_loads_and_equals_the_defaults() {
        let cfg = Config::parse(EXAMPLE, "example").unwrap();
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn shipped_rules_example_loads() {
        let cfg =
            Config::parse(include_str!("../../../examples/rules.toml"), "rules.toml").unwrap();
        assert_eq!(cfg.rules.len(), 3);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::parse("[mqtt]\nmax_packet_sise = 10\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_packet_sise"), "{e}");
        let e = Config::parse("[listeners.tcp.default]\nbind = \"nope\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bind"), "{e}");
    }

    #[test]
    fn rules_are_compiled_at_load_and_errors_name_the_rule() {
        let cfg = Config::parse(
            "[rules.ok]\nsql = 'SELECT payload FROM \"t/#\"'\nactions = [\"console\", { function = \"republish\", args = { topic = \"out/${clientid}\" } }]\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(cfg.rules.len(), 1);
        let e = Config::parse(
            "[rules.bad]\nsql = 'SELECT FROM \"t\"'\nactions = [\"kafka:nope\", { function = \"republish\", args = { topic = \"${\" } }]\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("rules.bad.sql: line 1, column 8: expected an expression, found 'FROM'"),
            "{e}"
        );
        assert!(
            e.contains("rules.bad.actions[0]: unknown action \"kafka:nope\""),
            "{e}"
        );
        assert!(e.contains("rules.bad.actions[1].args.topic"), "{e}");
    }

    #[test]
    fn limit_errors_name_their_keys() {
        let e = Config::parse(
            "[mqtt]\nmax_keepalive = 60\nserver_keepalive = 90\n[banned]\naddresses = [\"10.0.0.0/8\", \"10.0.0.0/40\"]\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("mqtt.server_keepalive: 90 is above mqtt.max_keepalive (60)"),
            "{e}"
        );
        assert!(e.contains("banned.addresses[1]: \"10.0.0.0/40\""), "{e}");
        let ok = Config::parse("[banned]\nclientids = [\"x\"]\n", "t.toml").unwrap();
        assert_eq!(ok.banned.clientids, vec!["x".to_owned()]);
    }

    #[test]
    fn persistence_keys_parse_and_errors_name_them() {
        let cfg = Config::parse(
            "[node]\npersistence = false\nstate_sync_interval = \"0ms\"\n",
            "t.toml",
        )
        .unwrap();
        assert!(!cfg.node.persistence);
        assert_eq!(cfg.node.state_sync_interval.0, Duration::ZERO);
        let e = Config::parse("[node]\nstate_sync_interval = \"soon\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("state_sync_interval"), "{e}");
        let e = Config::parse("[node]\nstate_sync_interval = \"2m\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("node.state_sync_interval: must be at most 60s"),
            "{e}"
        );
        let e = Config::parse("[node]\npersistence = \"yes\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("persistence"), "{e}");
    }

    #[test]
    fn authentication_and_authorization_errors_name_their_keys() {
        let e = Config::parse(
            r#"
[[authentication.methods]]
mechanism = "jwt"
public_key = "/nonexistent/key.pem"
[[authentication.methods]]
mechanism = "http"
url = "ftp://auth.example/"
[[authentication.methods]]
mechanism = "http"
url = "https://auth.example/"
cacertfile = "/nonexistent/ca.pem"
[[authorization.rules]]
permission = "deny"
ipaddr = "10.0.0.0/40"
topics = ["a/#/b"]
[[authorization.rules]]
permission = "allow"
topics = ["x"]
"#,
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "authentication.methods[0].public_key: /nonexistent/key.pem",
            "authentication.methods[1].url",
            "authentication.methods[2].cacertfile: cannot read /nonexistent/ca.pem",
            "authorization.rules[0].ipaddr",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
        let e = Config::parse(
            "[[authentication.methods]]\nmechanism = \"ldap\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ldap"), "{e}");
        let e = Config::parse("[authorization]\ndeny_action = \"shout\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("deny_action") || e.contains("shout"), "{e}");
    }

    #[test]
    fn all_bad_values_are_reported_at_once() {
        let e = Config::parse("[mqtt]\nreceive_maximum = 0\nmax_inflight = 0\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mqtt.receive_maximum") && e.contains("mqtt.max_inflight"),
            "{e}"
        );
    }

    #[test]
    fn listener_errors_name_the_listener_key_and_file() {
        let e = Config::parse(
            "[listeners.ssl.edge]\ncertfile = \"/nonexistent/cert.pem\"\nkeyfile = \"/nonexistent/key.pem\"\n\
             [listeners.ws.w]\npath = \"mqtt\"\nmax_connections = 0\n\
             [listeners.wss.s]\nverify = \"verify_peer\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("listeners.ssl.edge.certfile: cannot read /nonexistent/cert.pem:"),
            "{e}"
        );
        assert!(
            e.contains("listeners.ws.w.path: \"mqtt\" must start with \"/\""),
            "{e}"
        );
        assert!(
            e.contains("listeners.ws.w.max_connections: must be at least 1"),
            "{e}"
        );
        assert!(e.contains("listeners.wss.s.certfile: required"), "{e}");
        let e = Config::parse("[listeners.ssl.x]\nverify = \"sometimes\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("verify_none") && e.contains("verify_peer"),
            "{e}"
        );
        let e = Config::parse("[listeners.tcp.x]\npath = \"/mqtt\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `path`"), "{e}");
        let cfg = Config::parse(
            "[listeners.tcp.lb]\nbind = \"127.0.0.1:0\"\nproxy_protocol = true\n",
            "t.toml",
        )
        .unwrap();
        assert!(
            cfg.listeners.ws.is_empty(),
            "declaring a listener replaces the defaults"
        );
        assert_eq!(
            cfg.listeners.tcp["lb"].common().proxy,
            Some(Duration::from_secs(3))
        );
    }
}
