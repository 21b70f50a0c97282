//! Shared by the test files: a gateway from a config text, pointed at the test Kafka and at a
//! free loopback MQTT port; the real binary (`serve_binary`); the API tests' gateway (`api`).
#![allow(clippy::unwrap_used, dead_code)]

pub(crate) mod api;

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

/// Starts the real `ferry serve` on `config`; returns the child (the caller stops it) and
/// its MQTT address, read from its first stdout line.
pub(crate) fn serve_binary(
    config: &std::path::Path,
) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("ferry: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (child, addr)
}
