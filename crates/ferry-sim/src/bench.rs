//! `ferry bench pub` and `ferry bench sub`: publishers of bench payloads (with
//! publish-to-acknowledgement latency at QoS 1/2) and subscribers that track loss,
//! duplicates, order and latency, alone, as a shared subscription group or as a fan-out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferry_mqtt::{QoS, Version};

use crate::client::{self, Client, Options};
use crate::report::{self, Histogram, Percentiles, Report, Tracker};
use crate::tls::TlsClient;
use crate::{Stats, expand};

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
    pub tls: Option<TlsClient>,
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
    /// QoS 1/2: from the moment a PUBLISH was handed to the socket (flat out: the batch it
    /// went out in) to its PUBACK (QoS 1) or PUBCOMP (QoS 2). None at QoS 0.
    pub ack_latency_us: Option<Percentiles>,
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
            let mut h = Histogram::default();
            if let Err(e) = publisher(&o, idx, &stats, start, &mut h).await {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("publisher {idx}: {e}");
            }
            h
        }));
    }
    let mut latency = Histogram::default();
    for t in tasks {
        if let Ok(h) = t.await {
            latency.merge(&h);
        }
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
        ack_latency_us: (o.qos != QoS::AtMostOnce).then(|| latency.percentiles()),
    }
}

/// Send times of the publishes in flight, by packet id. Ids are given out one after the
/// other and at most `inflight` are outstanding, so a ring of twice that never collides.
struct SendTimes {
    at: Vec<i64>,
    mask: usize,
}

impl SendTimes {
    fn new(inflight: usize) -> SendTimes {
        let n = (inflight.max(1) * 2).next_power_of_two().min(1 << 16);
        SendTimes {
            at: vec![0; n],
            mask: n - 1,
        }
    }

    fn sent(&mut self, id: u16, us: i64) {
        self.at[usize::from(id) & self.mask] = us;
    }

    fn acked(&self, id: u16, now: i64, h: &mut Histogram) {
        let t = self.at[usize::from(id) & self.mask];
        h.record(now.saturating_sub(t).max(0) as u64);
    }
}

async fn publisher(
    o: &PubOptions,
    idx: u32,
    stats: &Stats,
    start: Instant,
    latency: &mut Histogram,
) -> Result<(), client::ClientError> {
    let client_id = format!("{}{idx}", o.client_id_prefix);
    let topic = expand(&o.topic, &client_id, idx as usize);
    let opts = Options {
        tls: o.tls.clone(),
        ..Options::new(o.addr, client_id, o.version)
    };
    let mut c = Client::connect(&opts).await?;
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let mut inflight = 0usize;
    let mut times = SendTimes::new(o.inflight);
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
            inflight -= take_acks(&mut c, stats, &times, latency).await?;
            sent_us = report::now_us();
            continue;
        }
        if let Some(p) = period {
            if next > Instant::now() {
                c.flush().await?;
                inflight -= acks_until(&mut c, stats, &times, latency, next).await?;
            }
            next += p;
            sent_us = report::now_us();
        }
        seq += 1;
        payload.clear();
        report::write_payload(&mut payload, idx, seq, sent_us, o.size);
        let id = c.publish_bytes(&topic, o.qos, &payload)?;
        stats.sent.fetch_add(1, Ordering::Relaxed);
        if o.qos != QoS::AtMostOnce {
            inflight += 1;
            times.sent(id, sent_us);
        }
        // Batch writes when running flat out; send each one when paced.
        if period.is_some() || seq.is_multiple_of(64) {
            c.flush().await?;
            sent_us = report::now_us();
        }
    }
    while inflight > 0 {
        inflight -= take_acks(&mut c, stats, &times, latency).await?;
    }
    c.flush().await?;
    c.disconnect().await
}

/// Paced: takes acknowledgements as they arrive until `until` (the next send time), so
/// each is timed when it arrives, not when the window next fills. Returns how many.
async fn acks_until(
    c: &mut Client,
    stats: &Stats,
    times: &SendTimes,
    latency: &mut Histogram,
    until: Instant,
) -> Result<usize, client::ClientError> {
    let sleep = tokio::time::sleep_until(until.into());
    tokio::pin!(sleep);
    let mut taken = 0;
    loop {
        tokio::select! {
            _ = &mut sleep => return Ok(taken),
            // Cancel safe: a read that has not completed has taken nothing.
            r = c.fill() => r?,
        }
        taken += take_read(c, stats, times, latency).await?;
    }
}

/// Takes the acknowledgements already read, timed now, and sends what is queued (PUBRELs
/// answering PUBRECs, publishes). Returns how many.
async fn take_read(
    c: &mut Client,
    stats: &Stats,
    times: &SendTimes,
    latency: &mut Histogram,
) -> Result<usize, client::ClientError> {
    let now = report::now_us();
    let n = c.take_completions_with(|id| times.acked(id, now, latency))?;
    c.flush().await?;
    stats.acked.fetch_add(n, Ordering::Relaxed);
    Ok(n as usize)
}

/// Sends what is queued, then waits for acknowledgements: every one that arrived in the
/// same read (at least one) is taken at once.
async fn take_acks(
    c: &mut Client,
    stats: &Stats,
    times: &SendTimes,
    latency: &mut Histogram,
) -> Result<usize, client::ClientError> {
    loop {
        let n = take_read(c, stats, times, latency).await?;
        if n > 0 {
            return Ok(n);
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
    /// Stop once this many messages arrived (in all; with `each`, per subscriber).
    pub expect: Option<u64>,
    /// Every subscriber is to receive every message (a fan-out): loss and duplicates are
    /// counted per subscriber. Otherwise the subscribers share the messages (a shared
    /// subscription group, or one subscriber) and a copy seen twice is a duplicate.
    pub each: bool,
    /// Stop after this long without a message (once one arrived).
    pub idle: Duration,
    pub duration: Option<Duration>,
    pub client_id_prefix: String,
    pub tls: Option<TlsClient>,
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
        let opts = Options {
            tls: o.tls.clone(),
            ..Options::new(o.addr, format!("{}{i}", o.client_id_prefix), o.version)
        };
        match Client::connect(&opts).await {
            Ok(mut c) => {
                if c.subscribe(&o.filter, o.qos)
                    .await
                    .is_ok_and(|code| code < 0x80)
                {
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
    let subscribers = trackers.len() as u64;
    let expect_all = o.expect.map(|e| if o.each { e * subscribers } else { e });
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let n = received.load(Ordering::Relaxed);
        stats.acked.store(n, Ordering::Relaxed);
        let last = last_ms.load(Ordering::Relaxed);
        let idle =
            last > 0 && start.elapsed().as_millis() as u64 >= last - 1 + o.idle.as_millis() as u64;
        if expect_all.is_some_and(|e| n >= e)
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
    for (i, t) in trackers.into_iter().enumerate() {
        let t = std::mem::take(&mut *t.lock().unwrap_or_else(|e| e.into_inner()));
        if o.each {
            all.merge_as_subscriber(t, i as u32);
        } else {
            all.merge(t);
        }
    }
    // Subscribers that never got their subscription count as having lost everything.
    let sent = match (o.expect, o.each) {
        (Some(e), true) => e * o.clients as u64,
        (Some(e), false) => e,
        (None, _) => all.inferred_sent(),
    };
    all.report(sent, elapsed)
}
