//! ferry-sim: the simulator and the load generator.
//!
//! Owns: device scenarios ([`scenario`]), a small MQTT client ([`client`]), bench payloads
//! and the receiver-side tracking of loss, duplicates, order and latency ([`report`]), and
//! the runners behind `ferry simulate` and `ferry bench pub|sub|conn`.
//!
//! Must not: depend on the broker crates (it is a client like any other) or on Kafka (the
//! binary pairs it with `ferry-kafka` for `ferry bench kafka`).

pub mod client;
pub mod report;
pub mod scenario;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_mqtt::{QoS, Version};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::client::{Client, Options};
use crate::report::{Report, Tracker};
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
            tokio::time::sleep(Duration::from_secs(1)).await;
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

#[derive(Debug, Clone)]
pub struct PubOptions {
    pub addr: SocketAddr,
    pub clients: usize,
    /// Messages per second per client; 0 = as fast as the window allows.
    pub rate: f64,
    pub qos: QoS,
    pub size: usize,
    pub topic: String,
    pub count: u64,
    pub duration: Option<Duration>,
    pub inflight: usize,
    pub version: Version,
    pub client_id_prefix: String,
    /// Index of the first publisher (several bench processes can share a subscriber).
    pub first_index: u32,
}

/// What the publishing side reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PubReport {
    pub clients: usize,
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub rate_per_s: f64,
}

/// Publishes bench payloads; each client sends sequences 1..=count (or until the duration).
pub async fn bench_pub(o: PubOptions, stats: Arc<Stats>) -> PubReport {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..o.clients {
        let o = o.clone();
        let stats = stats.clone();
        tasks.push(tokio::spawn(async move {
            let idx = o.first_index + i as u32;
            if let Err(e) = publisher(&o, idx, &stats, start).await {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("publisher {idx}: {e}");
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let sent = stats.sent.load(Ordering::Relaxed);
    PubReport {
        clients: o.clients,
        sent,
        acked: stats.acked.load(Ordering::Relaxed),
        errors: stats.errors.load(Ordering::Relaxed),
        elapsed_s: elapsed,
        rate_per_s: sent as f64 / elapsed.max(1e-9),
    }
}

async fn publisher(
    o: &PubOptions,
    idx: u32,
    stats: &Stats,
    start: Instant,
) -> Result<(), client::ClientError> {
    let client_id = format!("{}{idx}", o.client_id_prefix);
    let topic = expand(&o.topic, &client_id, idx as usize);
    let mut c = Client::connect(&Options::new(o.addr, client_id, o.version)).await?;
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let mut inflight = 0usize;
    let period = (o.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / o.rate));
    let mut next = Instant::now();
    let mut seq = 0u64;
    let done = |seq: u64| seq >= o.count || o.duration.is_some_and(|d| start.elapsed() >= d);
    // Payloads are written into one reused buffer; flat out, the send time is read once per
    // batch (the batch goes out in one write anyway).
    let mut payload = Vec::with_capacity(o.size.max(64));
    let mut sent_us = report::now_us();
    while !done(seq) {
        if o.qos != QoS::AtMostOnce && inflight >= o.inflight {
            inflight -= take_acks(&mut c, stats).await?;
            sent_us = report::now_us();
            continue;
        }
        if let Some(p) = period {
            let now = Instant::now();
            if next > now {
                c.flush().await?;
                tokio::time::sleep(next - now).await;
            }
            next += p;
            sent_us = report::now_us();
        }
        seq += 1;
        payload.clear();
        report::write_payload(&mut payload, idx, seq, sent_us, o.size);
        c.publish_bytes(&topic, o.qos, &payload)?;
        stats.sent.fetch_add(1, Ordering::Relaxed);
        if o.qos != QoS::AtMostOnce {
            inflight += 1;
        }
        // Batch writes when running flat out; send each one when paced.
        if period.is_some() || seq.is_multiple_of(64) {
            c.flush().await?;
            sent_us = report::now_us();
        }
    }
    while inflight > 0 {
        inflight -= take_acks(&mut c, stats).await?;
    }
    c.flush().await?;
    c.disconnect().await
}

/// Sends what is queued, then waits for acknowledgements: every one that arrived in the
/// same read (at least one) is taken at once.
async fn take_acks(c: &mut Client, stats: &Stats) -> Result<usize, client::ClientError> {
    loop {
        let n = c.take_completions()?;
        // Publishes still queued, and PUBRELs answering PUBRECs.
        c.flush().await?;
        if n > 0 {
            stats.acked.fetch_add(n, Ordering::Relaxed);
            return Ok(n as usize);
        }
        tokio::time::timeout(Duration::from_secs(30), c.fill())
            .await
            .map_err(|_| client::ClientError::Timeout)??;
    }
}

#[derive(Debug, Clone)]
pub struct SubOptions {
    pub addr: SocketAddr,
    pub clients: usize,
    pub filter: String,
    pub qos: QoS,
    pub version: Version,
    /// Stop once this many messages arrived (in all).
    pub expect: Option<u64>,
    /// Stop after this long without a message (once one arrived).
    pub idle: Duration,
    pub duration: Option<Duration>,
    pub client_id_prefix: String,
}

/// Subscribes and tracks bench payloads. `sent`: what the publishers sent, if known;
/// otherwise it is inferred from the highest sequence seen per publisher.
pub async fn bench_sub(
    o: SubOptions,
    stats: Arc<Stats>,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> Report {
    let received = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut clients = Vec::new();
    for i in 0..o.clients {
        let opts = Options::new(o.addr, format!("{}{i}", o.client_id_prefix), o.version);
        match Client::connect(&opts).await {
            Ok(mut c) => {
                if c.subscribe(&o.filter, o.qos).await.is_ok() {
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                    clients.push(c);
                } else {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if let Some(r) = ready {
        let _ = r.send(());
    }
    // Milliseconds since `start` of the last message (0: none yet).
    let last_ms = Arc::new(AtomicU64::new(0));
    let mut trackers = Vec::new();
    let mut tasks = Vec::new();
    for mut c in clients {
        let tracker = Arc::new(std::sync::Mutex::new(Tracker::default()));
        trackers.push(tracker.clone());
        let (received, last_ms) = (received.clone(), last_ms.clone());
        // No timer per message: the task reads until it is aborted at the end. Per read:
        // one clock reading, one lock of the tracker, one write of the acknowledgements.
        // What arrived with the SUBACK is taken first.
        tasks.push(tokio::spawn(async move {
            let mut now = report::now_us();
            loop {
                let n = {
                    let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
                    match c.take_publishes(|payload| t.record(payload, now)) {
                        Ok(n) => n,
                        Err(_) => return,
                    }
                };
                if n > 0 {
                    received.fetch_add(n, Ordering::Relaxed);
                    last_ms.store(start.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
                }
                if c.flush().await.is_err() || c.fill().await.is_err() {
                    return;
                }
                now = report::now_us();
            }
        }));
    }
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let n = received.load(Ordering::Relaxed);
        stats.acked.store(n, Ordering::Relaxed);
        let last = last_ms.load(Ordering::Relaxed);
        let idle =
            last > 0 && start.elapsed().as_millis() as u64 >= last - 1 + o.idle.as_millis() as u64;
        if o.expect.is_some_and(|e| n >= e)
            || idle
            || o.duration.is_some_and(|d| start.elapsed() >= d)
        {
            break;
        }
    }
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut all = Tracker::default();
    for t in trackers {
        let t = std::mem::take(&mut *t.lock().unwrap_or_else(|e| e.into_inner()));
        all.merge(t);
    }
    let sent = o.expect.unwrap_or_else(|| all.inferred_sent());
    all.report(sent, elapsed)
}

/// Opens `count` connections at up to `rate` per second and holds them for `hold`.
pub async fn bench_conn(
    addr: SocketAddr,
    count: usize,
    rate: f64,
    hold: Duration,
    version: Version,
    stats: Arc<Stats>,
) -> serde_json::Value {
    let start = Instant::now();
    let mut held = Vec::with_capacity(count);
    let period = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
    for i in 0..count {
        if let Some(p) = period {
            let due = start + p * i as u32;
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let opts = Options {
            keep_alive: 0,
            ..Options::new(addr, format!("bench-conn-{i}"), version)
        };
        match Client::connect(&opts).await {
            Ok(c) => {
                stats.connected.fetch_add(1, Ordering::Relaxed);
                held.push(c);
            }
            Err(_) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let connect_s = start.elapsed().as_secs_f64();
    tokio::time::sleep(hold).await;
    let connected = held.len();
    for c in held {
        let _ = c.disconnect().await;
    }
    serde_json::json!({
        "requested": count,
        "connected": connected,
        "errors": stats.errors.load(Ordering::Relaxed),
        "connect_seconds": connect_s,
        "connects_per_s": connected as f64 / connect_s.max(1e-9),
    })
}
