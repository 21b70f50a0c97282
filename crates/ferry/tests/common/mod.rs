//! Shared by the Kafka test files: a gateway from a config text, pointed at the test Kafka
//! and at a free loopback MQTT port.
#![allow(clippy::unwrap_used, dead_code)]

use ferry::{Config, Gateway};

/// `text` with Kafka at `bootstrap` and MQTT on a free loopback port.
pub(crate) fn config(text: &str, bootstrap: &str) -> Config {
    let text = text
        .replace("127.0.0.1:9092", bootstrap)
        .replace("0.0.0.0:1883", "127.0.0.1:0");
    let mut cfg = Config::parse(&text, "test").unwrap();
    // These tests do not use the API; with it off, no API changes and no MQTT persistence
    // nothing is written to the data dir, so it need not exist.
    cfg.api.enable = false;
    cfg.node.data_dir = std::env::temp_dir().join("ferry-test-no-data-dir");
    // Many of these gateways share that dir: MQTT state stays in memory.
    cfg.node.persistence = false;
    cfg
}

pub(crate) async fn gateway(text: &str, bootstrap: &str) -> (Gateway, std::net::SocketAddr) {
    let g = Gateway::start(&config(text, bootstrap)).await.unwrap();
    let addr = g.listeners[0].1;
    (g, addr)
}
