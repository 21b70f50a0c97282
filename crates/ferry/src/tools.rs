//! `ferry simulate`, `ferry pub`, `ferry sub` and `ferry bench`: the client-side tools.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Args, Subcommand};
use ferry_mqtt::{Packet, QoS, Version};
use ferry_sim::client::{Client, Options};
use ferry_sim::scenario::Scenario;
use ferry_sim::tls::{TlsClient, TlsSettings};
use ferry_sim::{ConnOptions, PubOptions, SimOptions, Stats, SubOptions};

/// Where the broker is (mosquitto-style `-h`/`-p`).
#[derive(Args, Debug, Clone)]
pub(crate) struct Target {
    /// Broker host.
    #[arg(short = 'h', long = "host", default_value = "127.0.0.1")]
    host: String,
    /// Broker port.
    #[arg(short = 'p', long = "port", default_value_t = 1883)]
    port: u16,
    /// MQTT version: 3.1.1 or 5.
    #[arg(short = 'V', long = "mqtt-version", default_value = "5", value_parser = parse_version)]
    version: Version,
    /// TLS: the CA certificate(s) (PEM) the broker's certificate must chain to.
    #[arg(long)]
    cafile: Option<std::path::PathBuf>,
    /// TLS without checking the broker's certificate (test set-ups only).
    #[arg(long)]
    insecure: bool,
    /// TLS: the name the broker's certificate must carry (default: the host).
    #[arg(long)]
    tls_server_name: Option<String>,
    /// TLS: resume sessions instead of a full handshake per connection.
    #[arg(long)]
    tls_resume: bool,
}

impl Target {
    fn addr(&self) -> anyhow::Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {}", self.host))?
            .next()
            .context("no address")
    }

    /// TLS when `--cafile` or `--insecure` is given (as mosquitto_pub does).
    fn tls(&self) -> anyhow::Result<Option<TlsClient>> {
        if self.cafile.is_none() && !self.insecure {
            return Ok(None);
        }
        let s = TlsSettings {
            cafile: self.cafile.clone(),
            insecure: self.insecure,
            server_name: self
                .tls_server_name
                .clone()
                .unwrap_or_else(|| self.host.clone()),
            resume: self.tls_resume,
        };
        Ok(Some(TlsClient::new(&s)?))
    }
}

fn parse_version(s: &str) -> Result<Version, String> {
    match s {
        "3.1" | "31" | "mqttv31" => Ok(Version::V31),
        "3.1.1" | "311" | "mqttv311" => Ok(Version::V311),
        "5" | "5.0" | "mqttv5" => Ok(Version::V5),
        other => Err(format!("unknown MQTT version {other:?} (3.1, 3.1.1, 5)")),
    }
}

fn parse_qos(s: &str) -> Result<QoS, String> {
    s.parse::<u8>()
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("QoS must be 0, 1 or 2, not {s:?}"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    ferry_kafka::config::Dur::parse(s).map(|d| d.0)
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub(crate) struct SimulateArgs {
    #[command(flatten)]
    target: Target,
    /// tesla, temp_hum or smart_home.
    #[arg(long, default_value = "tesla")]
    scenario: Scenario,
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Time between two messages of one device ("1s", "200ms").
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// Topic; %c is the client id, %i the index. Default per scenario.
    #[arg(long)]
    topic: Option<String>,
    #[arg(long, default_value = "mqttx_")]
    client_id_prefix: String,
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    #[arg(short = 'u', long)]
    username: Option<String>,
    #[arg(short = 'P', long)]
    password: Option<String>,
    /// Stop after this many messages per device.
    #[arg(long)]
    limit: Option<u64>,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

pub(crate) async fn simulate(a: SimulateArgs) -> anyhow::Result<()> {
    let topic = a.topic.unwrap_or_else(|| {
        match a.scenario {
            Scenario::Tesla => "mqttx/simulate/tesla/%c",
            Scenario::TempHum => "temp_hum/emqx",
            Scenario::SmartHome => "mqttx/simulate/smart_home/%c",
        }
        .to_owned()
    });
    let o = SimOptions {
        addr: a.target.addr()?,
        scenario: a.scenario,
        count: a.count,
        interval: a.interval,
        topic,
        client_id_prefix: a.client_id_prefix,
        qos: a.qos,
        version: a.target.version,
        username: a.username,
        password: a.password,
        limit: a.limit,
        tls: a.target.tls()?,
    };
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let progress = ferry_sim::spawn_progress(stats.clone(), stop.clone());
    let s2 = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        s2.store(true, Ordering::Relaxed);
    });
    ferry_sim::simulate(o, stats.clone(), stop.clone()).await;
    stop.store(true, Ordering::Relaxed);
    let _ = progress.await;
    eprintln!("done: {}", stats.line(0.0));
    Ok(())
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub(crate) struct PubArgs {
    #[command(flatten)]
    target: Target,
    #[arg(short = 't', long)]
    topic: String,
    #[arg(short = 'm', long)]
    message: String,
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    #[arg(short = 'r', long)]
    retain: bool,
    #[arg(short = 'i', long, default_value = "")]
    id: String,
    /// MQTT 5 user property, "key=value" (repeatable).
    #[arg(long = "user-property")]
    user_property: Vec<String>,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

fn options(t: &Target, id: &str) -> anyhow::Result<Options> {
    let client_id = if id.is_empty() {
        format!("ferry-cli-{}", std::process::id())
    } else {
        id.to_owned()
    };
    Ok(Options {
        tls: t.tls()?,
        ..Options::new(t.addr()?, client_id, t.version)
    })
}

pub(crate) async fn publish(a: PubArgs) -> anyhow::Result<()> {
    let mut c = Client::connect(&options(&a.target, &a.id)?).await?;
    let props: Vec<(String, String)> = a
        .user_property
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .context("user properties are key=value")
        })
        .collect::<anyhow::Result<_>>()?;
    c.publish(&a.topic, Bytes::from(a.message), a.qos, a.retain, &props)?;
    c.flush().await?;
    if a.qos != QoS::AtMostOnce {
        let ack = loop {
            if let Some(ack) = c.next_completion(Duration::from_secs(10)).await? {
                break ack;
            }
        };
        anyhow::ensure!(
            ack.code < 0x80,
            "refused with reason code {:#04x}",
            ack.code
        );
    }
    c.disconnect().await?;
    Ok(())
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    target: Target,
    #[arg(short = 't', long, required = true)]
    topic: Vec<String>,
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    /// Print the topic before each payload.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Exit after this many messages.
    #[arg(short = 'C', long)]
    count: Option<u64>,
    #[arg(short = 'i', long, default_value = "")]
    id: String,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

pub(crate) async fn subscribe(a: SubArgs) -> anyhow::Result<()> {
    let mut c = Client::connect(&options(&a.target, &a.id)?).await?;
    for t in &a.topic {
        let code = c.subscribe(t, a.qos).await?;
        anyhow::ensure!(code < 0x80, "subscription to {t} refused ({code:#04x})");
    }
    let mut n = 0;
    while a.count.is_none_or(|c| n < c) {
        match c.recv().await? {
            Packet::Publish(p) => {
                let text = String::from_utf8_lossy(&p.payload);
                if a.verbose {
                    println!("{} {text}", p.topic);
                } else {
                    println!("{text}");
                }
                if !p.properties.user_properties.is_empty() && a.verbose {
                    for (k, v) in &p.properties.user_properties {
                        println!("  user-property {k}={v}");
                    }
                }
                c.ack(&p)?;
                c.flush().await?;
                n += 1;
            }
            other => {
                c.handle_control(&other)?;
                c.flush().await?;
            }
        }
    }
    c.disconnect().await?;
    Ok(())
}

#[derive(Subcommand, Debug)]
pub(crate) enum BenchCommand {
    /// Publish bench payloads (sequence and send time inside) from many clients.
    Pub(BenchPub),
    /// Subscribe and report loss, duplicates, order and latency.
    Sub(BenchSub),
    /// Open many connections and report the connect rate.
    Conn(BenchConn),
    /// Publish over MQTT and consume the Kafka topic the rules write to: loss, duplicates,
    /// per-key order and publish-to-Kafka latency. Rules must keep the payload as the
    /// record value (e.g. value = "${payload}") and key records by client id. The latency
    /// runs from the publisher's send (its time is in the payload) to this tool's consumer
    /// receiving the record: Ferry's routing and the action's batching (linger), Kafka's
    /// append, and the consumer's fetch (at most --fetch-wait while a fetch waits for data).
    /// Publish-to-PUBACK (in sync mode: to Kafka's acknowledgement) is in "publish".
    Kafka(BenchKafka),
}

#[derive(Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub(crate) struct BenchPub {
    #[command(flatten)]
    target: Target,
    #[arg(short = 'c', long, default_value_t = 1)]
    clients: usize,
    /// Messages per second per client (0: as fast as possible).
    #[arg(short = 'R', long, default_value_t = 0.0)]
    rate: f64,
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    /// Payload size in bytes.
    #[arg(short = 's', long, default_value_t = 100)]
    size: usize,
    /// Topic; %i is the client index.
    #[arg(short = 't', long, default_value = "bench/%i")]
    topic: String,
    /// Messages per client.
    #[arg(short = 'n', long, default_value_t = 10_000)]
    count: u64,
    /// Stop after this long instead ("30s").
    #[arg(short = 'd', long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Unacknowledged QoS 1/2 messages per client.
    #[arg(long, default_value_t = 32)]
    inflight: usize,
    #[arg(long, default_value = "bench-pub-")]
    client_id_prefix: String,
    /// Write the JSON report here too.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub(crate) struct BenchSub {
    #[command(flatten)]
    target: Target,
    #[arg(short = 'c', long, default_value_t = 1)]
    clients: usize,
    #[arg(short = 't', long, default_value = "bench/#")]
    topic: String,
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    /// Messages the publishers send in all (for exact loss); else inferred from sequences.
    #[arg(long)]
    expect: Option<u64>,
    /// Every subscriber is to receive every message (a fan-out): `--expect` is per
    /// subscriber, loss and duplicates are counted per subscriber. Without it the subscribers
    /// share the messages (e.g. `-t '$share/g/bench/#'`).
    #[arg(long)]
    each: bool,
    /// Stop after this long without messages.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    idle: Duration,
    #[arg(short = 'd', long, value_parser = parse_duration)]
    duration: Option<Duration>,
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    /// Create this file once every subscriber is subscribed.
    #[arg(long)]
    ready_file: Option<std::path::PathBuf>,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub(crate) struct BenchConn {
    #[command(flatten)]
    target: Target,
    #[arg(short = 'c', long, default_value_t = 1000)]
    count: usize,
    /// Connections per second in all (0: as fast as possible).
    #[arg(short = 'R', long, default_value_t = 0.0)]
    rate: f64,
    /// Connects in progress at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// How long to hold them open (idle) once all are open.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    hold: Duration,
    #[arg(long, default_value = "bench-conn-")]
    client_id_prefix: String,
    /// Write the report here as soon as every connect was tried (before the hold), so a
    /// harness can measure the broker while the connections are held.
    #[arg(long)]
    ready_file: Option<std::path::PathBuf>,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub(crate) struct BenchKafka {
    #[command(flatten)]
    publish: BenchPub,
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// The Kafka topic the rules write to.
    #[arg(long)]
    kafka_topic: String,
    /// How long to wait for the last records after publishing.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    drain: Duration,
    /// The consumer's longest fetch wait (librdkafka's fetch.wait.max.ms, 500ms by
    /// default): short, so the latency measures the pipeline rather than the fetch.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    fetch_wait: Duration,
}

fn emit(report: &impl serde::Serialize, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    println!("{text}");
    if let Some(f) = file {
        std::fs::write(f, &text).with_context(|| format!("writing {}", f.display()))?;
    }
    Ok(())
}

fn pub_options(a: &BenchPub) -> anyhow::Result<PubOptions> {
    Ok(PubOptions {
        addr: a.target.addr()?,
        clients: a.clients,
        rate: a.rate,
        qos: a.qos,
        size: a.size,
        topic: a.topic.clone(),
        count: if a.duration.is_some() {
            u64::MAX
        } else {
            a.count
        },
        duration: a.duration,
        inflight: a.inflight.max(1),
        version: a.target.version,
        client_id_prefix: a.client_id_prefix.clone(),
        first_index: 0,
        tls: a.target.tls()?,
    })
}

pub(crate) async fn bench(cmd: BenchCommand) -> anyhow::Result<()> {
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let progress = ferry_sim::spawn_progress(stats.clone(), stop.clone());
    let result = match cmd {
        BenchCommand::Pub(a) => {
            let r = ferry_sim::bench_pub(pub_options(&a)?, stats.clone()).await;
            emit(&r, a.report.as_deref())
        }
        BenchCommand::Sub(a) => {
            let o = SubOptions {
                addr: a.target.addr()?,
                clients: a.clients,
                filter: a.topic,
                qos: a.qos,
                version: a.target.version,
                expect: a.expect,
                each: a.each,
                idle: a.idle,
                duration: a.duration,
                client_id_prefix: format!("bench-sub-{}-", std::process::id()),
                tls: a.target.tls()?,
            };
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            if let Some(f) = a.ready_file.clone() {
                // Written once every subscriber has its SUBACK (or failed), so a harness
                // starts the publishers only then.
                tokio::spawn(async move {
                    if ready_rx.await.is_ok()
                        && let Err(e) = std::fs::write(&f, b"ready\n")
                    {
                        eprintln!("writing {}: {e}", f.display());
                    }
                });
            }
            let r = ferry_sim::bench_sub(o, stats.clone(), Some(ready_tx)).await;
            emit(&r, a.report.as_deref())
        }
        BenchCommand::Conn(a) => {
            let o = ConnOptions {
                addr: a.target.addr()?,
                count: a.count,
                rate: a.rate,
                concurrency: a.concurrency,
                hold: a.hold,
                version: a.target.version,
                client_id_prefix: a.client_id_prefix,
                tls: a.target.tls()?,
                ready_file: a.ready_file,
            };
            let r = ferry_sim::bench_conn(o, stats.clone()).await;
            emit(&r, None)
        }
        BenchCommand::Kafka(a) => bench_kafka(a, stats.clone()).await,
    };
    stop.store(true, Ordering::Relaxed);
    let _ = progress.await;
    result
}

async fn bench_kafka(a: BenchKafka, stats: Arc<Stats>) -> anyhow::Result<()> {
    let tracker = Arc::new(std::sync::Mutex::new(ferry_sim::report::Tracker::default()));
    let done = Arc::new(AtomicBool::new(false));
    let (bootstrap, topic, fetch_wait) = (a.bootstrap.clone(), a.kafka_topic.clone(), a.fetch_wait);
    let (t2, d2) = (tracker.clone(), done.clone());
    let consumer = std::thread::spawn(move || {
        ferry_kafka::tail::tail(
            &bootstrap,
            &topic,
            false,
            Some(fetch_wait),
            |r| {
                t2.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(&r.value, ferry_sim::report::now_us())
            },
            || d2.load(Ordering::Relaxed),
        )
    });
    // Let the consumer settle at the end of the topic before publishing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = Instant::now();
    let pr = ferry_sim::bench_pub(pub_options(&a.publish)?, stats).await;
    let deadline = Instant::now() + a.drain;
    while Instant::now() < deadline
        && tracker.lock().unwrap_or_else(|e| e.into_inner()).received() < pr.sent
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done.store(true, Ordering::Relaxed);
    consumer
        .join()
        .map_err(|_| anyhow::anyhow!("consumer thread panicked"))?
        .map_err(|e| anyhow::anyhow!(e))?;
    let r = tracker
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .report(pr.sent, start.elapsed().as_secs_f64());
    emit(
        &serde_json::json!({"publish": pr, "kafka": r}),
        a.publish.report.as_deref(),
    )
}
