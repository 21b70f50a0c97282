//! A Kafka connector: client settings shared by its actions, and a health check (a metadata
//! fetch) that keeps a status. An unreachable cluster at start is not fatal: the status says
//! so and the check keeps trying.

use std::sync::{Arc, Mutex};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use tokio_util::sync::CancellationToken;

use crate::config::{ConnectorConfig, SaslMechanism};

/// Connection state as EMQX reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorState {
    Connecting,
    Connected,
    Disconnected,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConnectorStatus {
    pub state: ConnectorState,
    pub last_error: Option<String>,
}

pub struct Connector {
    pub name: String,
    pub config: ConnectorConfig,
    status: Mutex<ConnectorStatus>,
}

/// Client settings common to every client of this connector.
pub(crate) fn client_config(c: &ConnectorConfig) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &c.bootstrap_hosts)
        .set("client.id", &c.client_id)
        .set(
            "socket.connection.setup.timeout.ms",
            c.connect_timeout.ms().max(1000).to_string(),
        )
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000")
        .set("log_level", "3");
    let protocol = match (c.ssl.enable, c.authentication.is_some()) {
        (false, false) => "plaintext",
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    cfg.set("security.protocol", protocol);
    if c.ssl.enable {
        if let Some(p) = &c.ssl.cacertfile {
            cfg.set("ssl.ca.location", p.display().to_string());
        }
        if let Some(p) = &c.ssl.certfile {
            cfg.set("ssl.certificate.location", p.display().to_string());
        }
        if let Some(p) = &c.ssl.keyfile {
            cfg.set("ssl.key.location", p.display().to_string());
        }
        let verify = c.ssl.verify.unwrap_or(true);
        cfg.set(
            "enable.ssl.certificate.verification",
            if verify { "true" } else { "false" },
        );
        cfg.set(
            "ssl.endpoint.identification.algorithm",
            if verify { "https" } else { "none" },
        );
    }
    if let Some(a) = &c.authentication {
        let mech = match a.mechanism {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        };
        cfg.set("sasl.mechanism", mech)
            .set("sasl.username", &a.username)
            .set("sasl.password", &a.password);
    }
    cfg
}

impl Connector {
    pub fn new(name: &str, config: ConnectorConfig) -> Arc<Connector> {
        Arc::new(Connector {
            name: name.to_owned(),
            config,
            status: Mutex::new(ConnectorStatus {
                state: ConnectorState::Connecting,
                last_error: None,
            }),
        })
    }

    pub fn status(&self) -> ConnectorStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, state: ConnectorState, err: Option<String>) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if s.state != state {
            match &err {
                Some(e) => tracing::warn!(connector = %self.name, "kafka {state:?}: {e}"),
                None => tracing::info!(connector = %self.name, "kafka {state:?}"),
            }
        }
        s.state = state;
        if err.is_some() {
            s.last_error = err;
        }
    }

    /// One health check: fetch the cluster metadata (blocking; run it off the runtime).
    pub fn check_now(&self) {
        let client: Result<BaseProducer, _> = client_config(&self.config).create();
        match client {
            Err(e) => self.set(ConnectorState::Disconnected, Some(e.to_string())),
            Ok(p) => match p
                .client()
                .fetch_metadata(None, self.config.connect_timeout.0)
            {
                Ok(md) if !md.brokers().is_empty() => self.set(ConnectorState::Connected, None),
                Ok(_) => self.set(
                    ConnectorState::Disconnected,
                    Some("no brokers in metadata".into()),
                ),
                Err(e) => self.set(ConnectorState::Disconnected, Some(e.to_string())),
            },
        }
    }

    /// Runs the health check every `health_check_interval` until cancelled.
    pub fn spawn_health_check(self: &Arc<Self>, cancel: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let c = me.clone();
                let _ = tokio::task::spawn_blocking(move || c.check_now()).await;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(me.config.health_check_interval.0) => {}
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthConfig, SslConfig};

    fn base() -> ConnectorConfig {
        toml_like("127.0.0.1:9092")
    }

    fn toml_like(hosts: &str) -> ConnectorConfig {
        ConnectorConfig {
            bootstrap_hosts: hosts.into(),
            client_id: "ferry".into(),
            connect_timeout: crate::config::Dur::parse("5s")
                .unwrap_or(crate::config::Dur(std::time::Duration::from_secs(5))),
            health_check_interval: crate::config::Dur(std::time::Duration::from_secs(15)),
            ssl: SslConfig::default(),
            authentication: None,
            enable: true,
        }
    }

    #[test]
    fn plaintext_by_default() {
        let c = client_config(&base());
        assert_eq!(c.get("security.protocol"), Some("plaintext"));
        assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:9092"));
    }

    #[test]
    fn tls_and_sasl_map_to_librdkafka_settings() {
        let mut cfg = base();
        cfg.ssl = SslConfig {
            enable: true,
            cacertfile: Some("/etc/ca.pem".into()),
            certfile: Some("/etc/c.pem".into()),
            keyfile: Some("/etc/k.pem".into()),
            verify: Some(false),
            server_name_indication: None,
        };
        cfg.authentication = Some(AuthConfig {
            mechanism: SaslMechanism::ScramSha512,
            username: "u".into(),
            password: "p".into(),
        });
        let c = client_config(&cfg);
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(c.get("ssl.certificate.location"), Some("/etc/c.pem"));
        assert_eq!(c.get("ssl.key.location"), Some("/etc/k.pem"));
        assert_eq!(c.get("enable.ssl.certificate.verification"), Some("false"));
        assert_eq!(c.get("ssl.endpoint.identification.algorithm"), Some("none"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.username"), Some("u"));
        cfg.ssl.enable = false;
        cfg.authentication = Some(AuthConfig {
            mechanism: SaslMechanism::Plain,
            username: "u".into(),
            password: "p".into(),
        });
        let c = client_config(&cfg);
        assert_eq!(
            (c.get("security.protocol"), c.get("sasl.mechanism")),
            (Some("sasl_plaintext"), Some("PLAIN"))
        );
    }

    #[test]
    fn status_starts_connecting_and_reports_an_unreachable_cluster() {
        let mut cfg = toml_like("127.0.0.1:1");
        cfg.connect_timeout = crate::config::Dur(std::time::Duration::from_millis(500));
        let c = Connector::new("x", cfg);
        assert_eq!(c.status().state, ConnectorState::Connecting);
        c.check_now();
        let s = c.status();
        assert_eq!(s.state, ConnectorState::Disconnected);
        assert!(s.last_error.is_some());
    }
}
