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

/// [`gateway`] with its data (disk buffers, MQTT state) in `data`.
pub(crate) async fn gateway_in(
    text: &str,
    bootstrap: &str,
    data: &std::path::Path,
) -> (Gateway, std::net::SocketAddr) {
    let mut cfg = config(text, bootstrap);
    cfg.node.data_dir = data.to_owned();
    let g = Gateway::start(&cfg).await.unwrap();
    let addr = g.listeners[0].1;
    (g, addr)
}

/// A Kafka action's metrics, as the API shows them.
pub(crate) fn action_metrics(g: &Gateway, name: &str) -> std::collections::BTreeMap<String, u64> {
    g.control.view().actions[name].metrics.json()
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
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.arg("serve").arg("--config").arg(config);
    cmd.stderr(std::process::Stdio::null());
    let (child, mqtt, _) = serve_command(cmd, false);
    (child, mqtt)
}

/// Starts `cmd` (which runs `ferry serve`, maybe through a wrapper that execs it) with its
/// stdout piped; returns the child, its MQTT address and (`with_api`) its API address, read
/// from the lines it prints at start.
pub(crate) fn serve_command(
    mut cmd: std::process::Command,
    with_api: bool,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    Option<std::net::SocketAddr>,
) {
    use std::io::{BufRead as _, BufReader};
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut read = |prefix: &str| {
        line.clear();
        out.read_line(&mut line).unwrap();
        line.trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix:?}, got {line:?}"))
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mqtt = read("ferry: listening on ");
    let api = with_api.then(|| read("ferry: api on "));
    (child, mqtt, api)
}

/// Like [`serve_binary`] with `[api] enable = true` (one listener): also returns the API's
/// address.
pub(crate) fn serve_binary_with_api(
    config: &std::path::Path,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::net::SocketAddr,
) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.arg("serve").arg("--config").arg(config);
    cmd.stderr(std::process::Stdio::null());
    let (child, mqtt, api) = serve_command(cmd, true);
    (child, mqtt, api.unwrap())
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

/// A self-signed P-256 certificate for localhost (its own CA for mosquitto's --cafile).
pub(crate) fn make_cert(dir: &std::path::Path, name: &str) -> anyhow::Result<()> {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args([
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
