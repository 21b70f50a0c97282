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
    let (child, mut lines) = spawn_binary(config);
    let addr = mqtt_addr(&next_line(&mut lines));
    (child, addr)
}

/// Like [`serve_binary`] with `[api] enable = true` (one listener): also returns the API's
/// address, read from the line after the listener's.
pub(crate) fn serve_binary_with_api(
    config: &std::path::Path,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::net::SocketAddr,
) {
    let (child, mut lines) = spawn_binary(config);
    let addr = mqtt_addr(&next_line(&mut lines));
    let line = next_line(&mut lines);
    let api = line
        .trim()
        .strip_prefix("ferry: api on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .parse()
        .unwrap();
    (child, addr, api)
}

type Lines = std::io::BufReader<std::process::ChildStdout>;

fn spawn_binary(config: &std::path::Path) -> (std::process::Child, Lines) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

fn next_line(lines: &mut Lines) -> String {
    use std::io::BufRead as _;
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    line
}

fn mqtt_addr(line: &str) -> std::net::SocketAddr {
    line.trim()
        .strip_prefix("ferry: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// `GET /metrics` of a Ferry API, as text (HTTP/1.0, so never chunked). Blocking: for
/// `wait_until` conditions.
pub(crate) fn scrape(api: std::net::SocketAddr) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(api).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The value of the series `series` (name and labels as exposed) in a scrape.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so a failing test
/// leaves no process behind.
pub(crate) struct Killed(pub(crate) std::process::Child);

impl Killed {
    /// `kill -9` now, and reap it.
    pub(crate) fn kill(mut self) -> std::io::Result<()> {
        self.0.kill()?;
        self.0.wait()?;
        Ok(())
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
