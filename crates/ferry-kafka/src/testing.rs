//! Kafka for tests: start the Tansu test broker on a free loopback port (or use the Kafka
//! named by `FERRY_TEST_KAFKA=host:port`), create topics, produce records and read them
//! back. Compiled only for tests (`#[cfg(test)]`, or the `testing` feature that the crates
//! whose tests use it enable in their dev-dependencies): it panics on purpose, so it is not
//! in the release binary.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

pub use crate::tail::ConsumedRecord;

const HOW_TO_INSTALL: &str = "the Kafka test broker (Tansu) is not installed: run ./scripts/test once \
(it installs .tools/bin/tansu), or set FERRY_TANSU=/path/to/tansu, or point FERRY_TEST_KAFKA=host:port \
at a running Kafka";

/// A Kafka for one test: a Tansu process this test owns, or an external cluster.
pub struct TestKafka {
    pub bootstrap: String,
    port: u16,
    child: Option<Child>,
    external: bool,
    /// With TLS: the stunnel in front of Tansu, and the directory of its certificate.
    tls: Option<(Child, TempDir)>,
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tansu_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FERRY_TANSU") {
        return Some(PathBuf::from(p));
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/tansu");
    if repo.exists() {
        return Some(repo);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join("tansu"))
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

impl TestKafka {
    /// Starts Tansu (or uses `FERRY_TEST_KAFKA`). Panics, saying how to install it, if it
    /// cannot: Kafka tests never skip.
    pub fn start() -> TestKafka {
        if let Ok(b) = std::env::var("FERRY_TEST_KAFKA") {
            return TestKafka {
                bootstrap: b,
                port: 0,
                child: None,
                external: true,
                tls: None,
            };
        }
        let port = free_port();
        let mut k = TestKafka {
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            child: None,
            external: false,
            tls: None,
        };
        k.spawn(port);
        k
    }

    /// Tansu behind a TLS terminator (stunnel) with a fresh self-signed certificate for
    /// 127.0.0.1: clients must use TLS and trust `ca_file()`. Always local.
    pub fn start_tls() -> TestKafka {
        let dir =
            std::env::temp_dir().join(format!("ferry-tls-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let ok = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "openssl could not make a test certificate (./scripts/test installs openssl)"
        );
        let (inner, outer) = (free_port(), free_port());
        let conf = dir.join("stunnel.conf");
        let text = format!(
            "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{outer}\nconnect = 127.0.0.1:{inner}\ncert = {}\nkey = {}\n",
            cert.display(),
            key.display()
        );
        std::fs::write(&conf, text).expect("stunnel config");
        let stunnel = Command::new("stunnel")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start stunnel ({e}); ./scripts/test installs it (Debian package stunnel4)"));
        let mut k = TestKafka {
            bootstrap: format!("127.0.0.1:{outer}"),
            port: inner,
            child: None,
            external: false,
            tls: Some((stunnel, TempDir(dir))),
        };
        k.spawn(outer);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", outer)).is_err() {
            assert!(Instant::now() < deadline, "stunnel did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        k
    }

    /// The CA file to trust for a TLS test broker.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|(_, d)| d.0.join("cert.pem"))
    }

    /// Starts Tansu on `self.port`, advertising port `advertised` (the TLS one if proxied).
    fn spawn(&mut self, advertised: u16) {
        let bin = tansu_binary().unwrap_or_else(|| panic!("{HOW_TO_INSTALL}"));
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let adv = format!("tcp://127.0.0.1:{advertised}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &adv,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {HOW_TO_INSTALL}", bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Tansu did not listen on port {} within 20 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the broker (its in-memory data is gone).
    pub fn stop(&mut self) {
        assert!(!self.external, "cannot stop an external Kafka");
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the broker (SIGSTOP): connections stay open and nothing answers, like a
    /// hanging Kafka. [`TestKafka::resume`] lets it go on.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Undoes [`TestKafka::pause`] (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        assert!(!self.external, "cannot signal an external Kafka");
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {sig} {}", c.id());
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let adv = self
            .bootstrap
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(self.port);
        self.spawn(adv);
    }

    /// Creates a topic and waits until its metadata shows it; returns its partition count
    /// (a broker that auto-created it first, from a producer's metadata request, may have
    /// given it another count).
    pub fn create_topic(&self, name: &str, partitions: i32) -> i32 {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .expect("admin client");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        // A runtime of its own on a thread of its own: callers may be inside a runtime.
        let res = std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(admin.create_topics([&topic], &opts))
            })
            .join()
        })
        .expect("create_topics thread")
        .expect("create_topics");
        for r in res {
            if let Err((t, e)) = r {
                assert!(
                    e == rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                    "create topic {t}: {e}"
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let md = admin
                .inner()
                .fetch_metadata(Some(name), Duration::from_secs(5));
            let n = md.ok().and_then(|m| {
                m.topics()
                    .first()
                    .map(|t| (t.error().is_none(), t.partitions().len()))
            });
            if let Some((true, n)) = n
                && n > 0
            {
                return n as i32;
            }
            assert!(Instant::now() < deadline, "topic {name} did not appear");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TestKafka {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some((mut c, _dir)) = self.tls.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads every partition of `topic` from the beginning until `want` records arrived or
/// `limit` passed. Blocking.
pub fn read_records(
    bootstrap: &str,
    topic: &str,
    want: usize,
    limit: Duration,
) -> Vec<ConsumedRecord> {
    let group = format!(
        "ferry-check-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = rdkafka::TopicPartitionList::new();
    if let Some(t) = md.topics().first() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), rdkafka::Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + limit;
    while out.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(ConsumedRecord::from(&m));
        }
    }
    out
}

/// A record to produce in tests.
#[derive(Debug, Clone, Default)]
pub struct TestRecord {
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
}

/// Produces records and waits until Kafka acknowledged them all.
pub fn produce(bootstrap: &str, topic: &str, records: &[TestRecord]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    for rec in records {
        let mut h = OwnedHeaders::new();
        for (k, v) in &rec.headers {
            h = h.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut r = BaseRecord::<str, str>::to(topic)
            .payload(rec.value.as_str())
            .headers(h);
        if let Some(k) = &rec.key {
            r = r.key(k.as_str());
        }
        let mut r = Some(r);
        while let Some(one) = r.take() {
            if let Err((_, back)) = p.send(one) {
                p.poll(Duration::from_millis(50));
                r = Some(back);
            }
        }
    }
    p.flush(Duration::from_secs(30))
        .expect("records acknowledged");
}

/// Per partition of `topic`: the offset `group` committed (`None`: nothing yet). Blocking.
pub fn committed(bootstrap: &str, group: &str, topic: &str) -> Vec<(i32, Option<i64>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in md
        .topics()
        .first()
        .map(|t| t.partitions())
        .unwrap_or_default()
    {
        tpl.add_partition(topic, p.id());
    }
    consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets")
        .elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => (e.partition(), Some(o)),
            _ => (e.partition(), None),
        })
        .collect()
}
