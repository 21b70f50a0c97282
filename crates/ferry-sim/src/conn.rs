//! `ferry bench conn`: opens many MQTT connections (TCP or TLS, CONNECT and CONNACK each),
//! from several connectors at once, reports the connect rate and the time each connect took,
//! then holds them idle (for the broker's memory per connection) and closes them.
//!
//! A run of many connections needs as many open files: the soft limit is raised towards the
//! hard one first (it is inherited by nothing else).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_mqtt::Version;

use crate::Stats;
use crate::client::{Client, Options};
use crate::report::Histogram;
use crate::tls::TlsClient;

#[derive(Debug, Clone)]
pub struct ConnOptions {
    pub addr: SocketAddr,
    pub count: usize,
    /// Connections per second in all (0: as fast as the connectors go).
    pub rate: f64,
    /// Connects in progress at once.
    pub concurrency: usize,
    /// How long to hold the connections once all are open.
    pub hold: Duration,
    pub version: Version,
    pub client_id_prefix: String,
    pub tls: Option<TlsClient>,
    /// Written (the report so far, JSON) once every connect was tried, before the hold.
    pub ready_file: Option<PathBuf>,
}

/// Raises the soft limit of open files to fit `wanted` (at most to the hard limit).
/// Returns the soft limit in force.
pub fn raise_open_files(wanted: u64) -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let current = l.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return current;
    }
    let target = l.maximum.map_or(wanted, |m| m.min(wanted));
    let mut new = l;
    new.current = Some(target);
    match setrlimit(Resource::Nofile, new) {
        Ok(()) => target,
        Err(_) => current,
    }
}

/// Opens `count` connections and holds them for `hold`; returns the JSON report.
pub async fn bench_conn(o: ConnOptions, stats: Arc<Stats>) -> serde_json::Value {
    let open_files = raise_open_files(o.count as u64 + 64);
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let period = (o.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / o.rate));
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency.clamp(1, o.count.max(1)) {
        let (o, next, stats) = (o.clone(), next.clone(), stats.clone());
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            let mut h = Histogram::default();
            let mut tls = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= o.count {
                    break;
                }
                if let Some(p) = period {
                    let due = start + p.mul_f64(i as f64);
                    if due > Instant::now() {
                        tokio::time::sleep_until(due.into()).await;
                    }
                }
                let opts = Options {
                    keep_alive: 0,
                    tls: o.tls.clone(),
                    ..Options::new(o.addr, format!("{}{i}", o.client_id_prefix), o.version)
                };
                let t0 = Instant::now();
                match Client::connect(&opts).await {
                    Ok(c) => {
                        h.record(t0.elapsed().as_micros() as u64);
                        stats.connected.fetch_add(1, Ordering::Relaxed);
                        tls = tls.or_else(|| c.tls_info());
                        held.push(c);
                    }
                    Err(e) => {
                        if stats.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("connect {i}: {e}");
                        }
                    }
                }
            }
            (held, h, tls)
        }));
    }
    let mut held = Vec::with_capacity(o.count);
    let mut latency = Histogram::default();
    let mut tls = None;
    for t in tasks {
        if let Ok((c, h, t)) = t.await {
            held.extend(c);
            latency.merge(&h);
            tls = tls.or(t);
        }
    }
    let connect_s = start.elapsed().as_secs_f64();
    let connected = held.len();
    let report = serde_json::json!({
        "requested": o.count,
        "connected": connected,
        "errors": stats.errors.load(Ordering::Relaxed),
        "concurrency": o.concurrency,
        "open_files_limit": open_files,
        "tls": tls.map(|(v, s)| serde_json::json!({"version": v, "suite": s})),
        "connect_seconds": connect_s,
        "connects_per_s": connected as f64 / connect_s.max(1e-9),
        "connect_latency_us": latency.percentiles(),
    });
    if let Some(f) = &o.ready_file {
        // Written aside and renamed: whoever polls for the file reads it whole.
        let tmp = f.with_extension("tmp");
        if let Err(e) =
            std::fs::write(&tmp, report.to_string()).and_then(|()| std::fs::rename(&tmp, f))
        {
            eprintln!("writing {}: {e}", f.display());
        }
    }
    tokio::time::sleep(o.hold).await;
    for c in held {
        let _ = c.disconnect().await;
    }
    report
}
