//! Observability against the real thing: Debian's `prometheus` scrapes a Ferry running the
//! seed scenario (examples/vehicles.toml plus a Kafka source, with the test Kafka), with the
//! shipped examples/observability/prometheus.yml pointed at the gateway's API, while MQTT and
//! Kafka traffic flows; every PromQL expression of examples/observability/grafana-dashboard.json
//! must then return data through Prometheus's HTTP API. The dashboard's structure is checked
//! too, and every family Ferry serves must be in docs/metrics.md.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferry::{Config, Gateway};
use ferry_kafka::testing::{TestKafka, TestRecord, produce};
use ferry_mqtt::{Packet, QoS, Version};
use ferry_testkit::RawClient;
use ferry_testkit::http::{Cred, call};
use serde_json::Value;

const DASHBOARD: &str = include_str!("../../../examples/observability/grafana-dashboard.json");
const PROMETHEUS_YML: &str = include_str!("../../../examples/observability/prometheus.yml");
const METRICS_MD: &str = include_str!("../../../docs/metrics.md");

/// What `$__rate_interval` and friends become: at a 1 s scrape, 15 s holds enough samples.
const RANGE: &str = "15s";

/// `prometheus` on PATH (or `FERRY_PROMETHEUS`); never skipped when missing.
fn prometheus_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FERRY_PROMETHEUS") {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`prometheus` is not installed (not on PATH). Run ./scripts/test, which installs \
                 Debian's prometheus package (apt-get install --no-install-recommends prometheus), \
                 or set FERRY_PROMETHEUS to its path"
            )
        })
}

/// A Prometheus process of this test; stopped (SIGTERM to its PID, then SIGKILL) on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    fn start(bin: &Path, dir: &Path, target: SocketAddr) -> Prometheus {
        // The shipped config, pointed at this gateway and scraping every second.
        let cfg = PROMETHEUS_YML
            .replace("127.0.0.1:18083", &target.to_string())
            .replace("5s", "1s");
        assert!(
            cfg.contains(&target.to_string()) && !cfg.contains("5s"),
            "examples/observability/prometheus.yml no longer has the 127.0.0.1:18083 target \
             and 5s intervals this test rewrites:\n{cfg}"
        );
        std::fs::write(dir.join("prometheus.yml"), cfg).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = dir.join("prometheus.log");
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("prometheus.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        Prometheus {
            child,
            addr,
            log: dir.join("prometheus.err"),
        }
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "prometheus exited ({status}):\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )),
            _ => None,
        }
    }

    /// An instant query; the `result` array (empty on any error, which is returned too).
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let r = call(self.addr, "GET", &path, Cred::None, None)
            .await
            .map_err(|e| e.to_string())?;
        if r.status != 200 || r.body["status"] != "success" {
            return Err(format!("{}: {}", r.status, r.text));
        }
        match &r.body["data"]["result"] {
            Value::Array(v) => Ok(v.clone()),
            other => Err(format!("unexpected result {other}")),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RFC 3986: everything but unreserved characters is %-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One query of one panel.
#[derive(Debug)]
struct PanelQuery {
    panel: String,
    ref_id: String,
    expr: String,
}

/// Every panel, rows' nested panels included.
fn all_panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// Checks the dashboard's structure and returns its queries with the template variables
/// replaced (`$__rate_interval`-style by [`RANGE`], the dashboard's own variables by `.*`).
fn dashboard_queries(text: &str) -> Vec<PanelQuery> {
    let d: Value = serde_json::from_str(text).expect("grafana-dashboard.json is JSON");
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(d["uid"].as_str().is_some_and(|t| !t.is_empty()));
    let schema = d["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let ds = vars
        .iter()
        .find(|v| v["name"] == "DS_PROMETHEUS")
        .expect("a DS_PROMETHEUS datasource variable");
    assert_eq!(
        (ds["type"].as_str(), ds["query"].as_str()),
        (Some("datasource"), Some("prometheus"))
    );
    let mut names: Vec<&str> = vars
        .iter()
        .filter(|v| v["type"] != "datasource")
        .map(|v| {
            assert_eq!(v["datasource"]["uid"], "${DS_PROMETHEUS}", "variable {v}");
            v["name"].as_str().unwrap()
        })
        .collect();
    // Longest first, so `$instance_x` would not be cut by `$instance`.
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));

    let panels = all_panels(&d);
    let mut ids = HashSet::new();
    let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
    let mut out = Vec::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or_default().to_owned();
        assert!(!title.is_empty(), "a panel without a title: {p}");
        let ty = p["type"].as_str().unwrap_or_default();
        assert!(!ty.is_empty(), "{title}: no type");
        let id = p["id"].as_u64().unwrap_or_else(|| panic!("{title}: no id"));
        assert!(ids.insert(id), "{title}: panel id {id} is not unique");
        let g = &p["gridPos"];
        let pos = ["x", "y", "w", "h"].map(|k| {
            g[k].as_u64()
                .unwrap_or_else(|| panic!("{title}: gridPos.{k} missing"))
        });
        assert!(
            pos[2] > 0 && pos[3] > 0 && pos[0] + pos[2] <= 24,
            "{title}: gridPos {g}"
        );
        for (other, b) in &boxes {
            let apart = pos[0] + pos[2] <= b[0]
                || b[0] + b[2] <= pos[0]
                || pos[1] + pos[3] <= b[1]
                || b[1] + b[3] <= pos[1];
            assert!(apart, "panels {title:?} and {other:?} overlap");
        }
        boxes.push((title.clone(), pos));
        if ty == "row" {
            continue;
        }
        assert_eq!(
            (
                p["datasource"]["type"].as_str(),
                p["datasource"]["uid"].as_str()
            ),
            (Some("prometheus"), Some("${DS_PROMETHEUS}")),
            "{title}: datasource"
        );
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title}: no targets"));
        assert!(!targets.is_empty(), "{title}: no targets");
        let mut refs = HashSet::new();
        for t in targets {
            let ref_id = t["refId"].as_str().unwrap_or_default().to_owned();
            assert!(
                refs.insert(ref_id.clone()),
                "{title}: refId {ref_id:?} repeated"
            );
            if !t["datasource"].is_null() {
                assert_eq!(t["datasource"], p["datasource"], "{title} {ref_id}");
            }
            let raw = t["expr"].as_str().unwrap_or_default();
            assert!(!raw.trim().is_empty(), "{title} {ref_id}: no expr");
            let mut expr = raw
                .replace("$__rate_interval", RANGE)
                .replace("${__rate_interval}", RANGE)
                .replace("$__interval", RANGE)
                .replace("$__range", RANGE);
            for n in &names {
                expr = expr
                    .replace(&format!("${{{n}}}"), ".*")
                    .replace(&format!("${n}"), ".*");
            }
            assert!(
                !expr.contains('$'),
                "{title} {ref_id}: unknown variable in {raw}"
            );
            out.push(PanelQuery {
                panel: title.clone(),
                ref_id,
                expr,
            });
        }
    }
    out
}

#[test]
fn dashboard_structure() {
    let qs = dashboard_queries(DASHBOARD);
    let d: Value = serde_json::from_str(DASHBOARD).unwrap();
    let titles: BTreeSet<&str> = all_panels(&d)
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    for row in [
        "Overview",
        "MQTT traffic",
        "Rules",
        "Kafka actions",
        "Kafka sources",
        "Process",
    ] {
        assert!(titles.contains(row), "no row {row:?}: {titles:?}");
    }
    assert!(qs.len() > 30, "{} queries", qs.len());
}

/// MQTT and Kafka traffic until `stop`: a QoS 1 publisher of the seed's telemetry topic
/// (with a retained message now and then), a subscriber to telemetry and commands, and
/// commands written to Kafka for the source.
async fn traffic(
    mqtt: SocketAddr,
    bootstrap: String,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    // Subscribed before anything is published, so SUBACKs do not meet PUBLISHes.
    let (mut c, _) = RawClient::connect(mqtt, Version::V5, "dash-sub", true)
        .await
        .unwrap();
    c.subscribe("mqttx/simulate/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    c.subscribe("vehicles/+/commands", QoS::AtLeastOnce)
        .await
        .unwrap();
    let s = stop.clone();
    let subscriber = tokio::spawn(async move {
        while !s.load(Ordering::Relaxed) {
            // `recv_publish` acknowledges; a timeout just checks `stop` again.
            let _ = tokio::time::timeout(Duration::from_millis(200), c.recv_publish()).await;
        }
    });
    let s = stop.clone();
    let publisher = tokio::spawn(async move {
        let (mut c, _) = RawClient::connect(mqtt, Version::V5, "mqttx_dash1", true)
            .await
            .unwrap();
        let mut i: u32 = 0;
        while !s.load(Ordering::Relaxed) {
            let payload = format!(
                r#"{{"vin":"mqttx_dash1","seq":{i},"speed":{}}}"#,
                40 + i % 50
            );
            let pid = (i % 60000 + 1) as u16;
            let retain = i.is_multiple_of(20);
            let p = ferry_testkit::publish_packet(
                "mqttx/simulate/tesla/mqttx_dash1",
                payload.as_bytes(),
                QoS::AtLeastOnce,
                retain,
                pid,
            );
            c.send(&Packet::Publish(p)).await.unwrap();
            match c.recv().await.unwrap() {
                Packet::PubAck(a) => assert!(a.code < 0x80, "PUBACK {:#x}", a.code),
                other => panic!("{other:?}"),
            }
            // QoS 0 too, to a topic nobody subscribes to (dropped: no_subscribers).
            c.publish("telemetry/unheard", b"{}", QoS::AtMostOnce, false, 0)
                .await
                .unwrap();
            i += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let commands = tokio::task::spawn_blocking(move || {
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let rec = TestRecord {
                key: Some("mqttx_dash1".into()),
                value: format!(r#"{{"cmd":"honk","n":{i}}}"#),
                headers: vec![],
            };
            produce(&bootstrap, "vehicle-commands", &[rec]);
            i += 1;
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    vec![subscriber, publisher, commands]
}

fn config(dir: &Path, bootstrap: &str) -> Config {
    let seed = include_str!("../../../examples/vehicles.toml")
        .replace("127.0.0.1:9092", bootstrap)
        .replace("0.0.0.0:1883", "127.0.0.1:0");
    let source = include_str!("../../../examples/vehicle-commands.toml");
    let source = &source[source.find("[sources.kafka.commands]").unwrap()..];
    let text = format!(
        "{seed}\n{source}\n[node]\ndata_dir = {:?}\n[api]\nbind = \"127.0.0.1:0\"\n",
        dir.join("data").display().to_string()
    );
    Config::parse(&text, "test").unwrap()
}

/// Family names (`# TYPE` lines) of a Prometheus text.
fn families(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grafana_panel_query_returns_data_from_real_prometheus() {
    let queries = dashboard_queries(DASHBOARD);
    let bin = prometheus_binary();
    let dir = tempfile::tempdir().unwrap();

    let k = TestKafka::start();
    k.create_topic("my-vehicles", 3);
    k.create_topic("vehicle-commands", 2);
    let g = Gateway::start(&config(dir.path(), &k.bootstrap))
        .await
        .unwrap();
    let api = g.api.unwrap();
    let mqtt = g.listeners[0].1;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = traffic(mqtt, k.bootstrap.clone(), stop.clone()).await;

    // Every family Ferry serves is in the generated reference.
    let text = call(api, "GET", "/metrics", Cred::None, None)
        .await
        .unwrap()
        .text;
    let served = families(&text);
    assert!(served.len() > 40, "{text}");
    let undocumented: Vec<&String> = served
        .iter()
        .filter(|f| !METRICS_MD.contains(&format!("| `{f}` |")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/metrics.md: {undocumented:?}; add them to crates/ferry-metrics/src/doc.rs \
         and run FERRY_BLESS=1 cargo test -p ferry-metrics docs"
    );

    let mut prom = Prometheus::start(&bin, dir.path(), api);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(e) = prom.exited() {
            panic!("{e}");
        }
        if let Ok(r) = prom.query(r#"up{job="ferry"} == 1"#).await
            && !r.is_empty()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never reported the Ferry target up: {:?}",
            prom.query("up").await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("prometheus at {} scrapes ferry at {api}", prom.addr);

    // Each query must return data; rate() needs two samples and the source a consumer group
    // join, so poll every query until all do or the deadline passes.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut pending: Vec<&PanelQuery> = queries.iter().collect();
    let mut last: Vec<String> = Vec::new();
    while !pending.is_empty() && Instant::now() < deadline {
        last.clear();
        let mut still = Vec::new();
        for q in pending {
            match prom.query(&q.expr).await {
                Ok(r) if !r.is_empty() => {}
                other => {
                    last.push(format!("{} [{}] {}: {other:?}", q.panel, q.ref_id, q.expr));
                    still.push(q);
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(
        pending.is_empty(),
        "{} of {} panel queries returned no data:\n{}",
        pending.len(),
        queries.len(),
        last.join("\n")
    );
    let panels: BTreeSet<&str> = queries.iter().map(|q| q.panel.as_str()).collect();
    eprintln!(
        "all {} queries of {} panels returned data",
        queries.len(),
        panels.len()
    );

    // Some of it must be more than zeros: the seed scenario flowed end to end.
    let delivered = prom
        .query(r#"ferry_action_success_total{action="vehicles"} > 0"#)
        .await
        .unwrap();
    assert!(!delivered.is_empty(), "no record reached Kafka");
    let sourced = prom
        .query(r#"ferry_source_delivered_total{source="commands"} > 0"#)
        .await
        .unwrap();
    assert!(!sourced.is_empty(), "no command delivered from Kafka");

    drop(prom);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    g.stop().await;
    drop(k);
}
