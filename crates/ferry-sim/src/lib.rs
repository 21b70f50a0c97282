//! ferry-sim: the simulator and the load generator.
//!
//! Owns: device scenarios ([`scenario`]), a small MQTT client ([`client`]), bench payloads
//! and the receiver-side tracking of loss, duplicates, order and latency ([`report`]), and
//! the runners behind `ferry simulate` and `ferry bench pub|sub|conn` ([`bench`], [`conn`]),
//! over TCP or TLS ([`tls`]).
//!
//! Must not: depend on the broker crates (it is a client like any other) or on Kafka (the
//! binary pairs it with `ferry-kafka` for `ferry bench kafka`).

pub mod bench;
pub mod client;
pub mod conn;
pub mod report;
pub mod scenario;
pub mod tls;

pub use bench::{PubOptions, PubReport, SubOptions, bench_pub, bench_sub};
pub use conn::{ConnOptions, bench_conn};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_mqtt::{QoS, Version};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::client::{Client, Options};
use crate::scenario::{Device, Scenario};

/// Counters shared by the clients of a run, printed as progress.
#[derive(Debug, Default)]
pub struct Stats {
    pub connected: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub errors: AtomicU64,
}

impl Stats {
    pub fn line(&self, rate: f64) -> String {
        format!(
            "connected={} sent={} acked={} errors={} rate={rate:.0}/s",
            self.connected.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed),
            self.acked.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed)
        )
    }
}

/// Prints progress to stderr once a second until `stop` is set.
pub fn spawn_progress(stats: Arc<Stats>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0;
        while !stop.load(Ordering::Relaxed) {
            // Looks at `stop` every 50 ms, so a finished run exits at once.
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
            let sent = stats.sent.load(Ordering::Relaxed);
            eprintln!("{}", stats.line((sent - last) as f64));
            last = sent;
        }
    })
}

/// Expands `%c` (client id) and `%i` (index) in a topic or id pattern.
pub fn expand(pattern: &str, client_id: &str, index: usize) -> String {
    pattern
        .replace("%c", client_id)
        .replace("%i", &index.to_string())
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub addr: SocketAddr,
    pub scenario: Scenario,
    pub count: usize,
    pub interval: Duration,
    pub topic: String,
    pub client_id_prefix: String,
    pub qos: QoS,
    pub version: Version,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Stop each device after this many messages (None: until stopped).
    pub limit: Option<u64>,
    pub tls: Option<tls::TlsClient>,
}

/// Runs the simulated devices until `stop` is set (or each sent `limit` messages).
/// Devices reconnect with exponential backoff when the broker goes away.
pub async fn simulate(o: SimOptions, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let mut tasks = Vec::new();
    for i in 0..o.count {
        let o = o.clone();
        let stats = stats.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move { device(o, i, stats, stop).await }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn device(o: SimOptions, index: usize, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let client_id = format!("{}{index}", o.client_id_prefix);
    let topic = expand(&o.topic, &client_id, index);
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let mut dev = Device::new(o.scenario, index, &mut rng);
    let opts = Options {
        username: o.username.clone(),
        password: o.password.clone(),
        tls: o.tls.clone(),
        ..Options::new(o.addr, client_id.clone(), o.version)
    };
    let mut backoff = Duration::from_millis(100);
    let mut sent = 0u64;
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) && o.limit.is_none_or(|l| sent < l) {
        let mut c = match Client::connect(&opts).await {
            Ok(c) => c,
            Err(_) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        stats.connected.fetch_add(1, Ordering::Relaxed);
        let mut ticker = tokio::time::interval(o.interval);
        let result: Result<(), client::ClientError> = async {
            while !stop.load(Ordering::Relaxed) && o.limit.is_none_or(|l| sent < l) {
                ticker.tick().await;
                let now = Instant::now();
                let dt = now.duration_since(last).as_secs_f64().clamp(0.001, 60.0);
                last = now;
                let now_ms = report::now_us() / 1000;
                let payload = dev.tick(dt, now_ms, &mut rng).to_string();
                c.publish(&topic, Bytes::from(payload), o.qos, false, &[])?;
                c.flush().await?;
                sent += 1;
                stats.sent.fetch_add(1, Ordering::Relaxed);
                if o.qos != QoS::AtMostOnce {
                    while c.next_completion(Duration::from_secs(10)).await?.is_none() {}
                    stats.acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        }
        .await;
        stats.connected.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                let _ = c.disconnect().await;
            }
            Err(_) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
            }
        }
    }
}
