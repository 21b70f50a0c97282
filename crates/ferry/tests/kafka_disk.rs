//! Kafka actions with `buffer_mode = "disk"`, against the Tansu test broker: templated
//! records end to end in order per key, every acknowledged message surviving a `kill -9`
//! of the real binary while Kafka is down, and the `when_full` policies counted by reason.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

mod common;

use common::{action_metrics as action, gateway_in};

use ferry_kafka::testing::{ConsumedRecord, TestKafka, read_records};
use ferry_mqtt::{Packet, QoS, Version};
use ferry_testkit::{RawClient, wait_until};

async fn read(bootstrap: &str, topic: &str, want: usize) -> Vec<ConsumedRecord> {
    let (b, t) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || read_records(&b, &t, want, Duration::from_secs(30)))
        .await
        .unwrap()
}

/// Publishes QoS 1 messages in windows of 10 (within the Receive Maximum); returns the PUBACK reason codes in order.
async fn publish_all(c: &mut RawClient, msgs: &[(String, String)]) -> anyhow::Result<Vec<u8>> {
    let mut codes = Vec::new();
    for (w, chunk) in msgs.chunks(10).enumerate() {
        for (i, (topic, payload)) in chunk.iter().enumerate() {
            let pid = (w * 10 + i) as u16 % 60_000 + 1;
            c.publish(topic, payload.as_bytes(), QoS::AtLeastOnce, false, pid)
                .await?;
        }
        for _ in chunk {
            match c.recv_within(Duration::from_secs(20)).await? {
                Some(Packet::PubAck(a)) => codes.push(a.code),
                other => anyhow::bail!("expected a PUBACK, got {other:?}"),
            }
        }
    }
    Ok(codes)
}

const TEMPLATED: &str = r#"
[listeners.tcp.default]
bind = "0.0.0.0:1883"
[connectors.kafka.k]
bootstrap_hosts = "127.0.0.1:9092"
[actions.kafka.disk]
connector = "k"
buffer_mode = "disk"
topic = "site-${payload.site}"
key = "${payload.dev}"
value = "${payload.n}"
[rules.r]
sql = 'SELECT payload FROM "fleet/#"'
actions = ["kafka:disk"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_mode_delivers_templated_records_in_order_per_key() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("site-a", 2);
    k.create_topic("site-b", 2);
    let data = tempfile::tempdir()?;
    let (g, addr) = gateway_in(TEMPLATED, &k.bootstrap, data.path()).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "pub", true).await?;
    let msgs: Vec<(String, String)> = (0..200)
        .map(|n| {
            let site = if n % 2 == 0 { "a" } else { "b" };
            (
                format!("fleet/{n}"),
                format!(r#"{{"site":"{site}","dev":"d{}","n":{n}}}"#, n % 10),
            )
        })
        .collect();
    let codes = publish_all(&mut c, &msgs).await?;
    assert!(codes.iter().all(|c| *c < 0x80), "{codes:?}");
    let mut all = read(&k.bootstrap, "site-a", 100).await;
    all.extend(read(&k.bootstrap, "site-b", 100).await);
    assert_eq!(all.len(), 200);
    let mut per_key: BTreeMap<Vec<u8>, Vec<u64>> = BTreeMap::new();
    for r in &all {
        let n: u64 = std::str::from_utf8(&r.value)?.parse()?;
        let key = r.key.clone().unwrap();
        assert_eq!(key, format!("d{}", n % 10).into_bytes(), "rendered key");
        per_key.entry(key).or_default().push(n);
    }
    assert_eq!(per_key.len(), 10);
    for (key, ns) in &per_key {
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "key {:?} out of order: {ns:?}",
            String::from_utf8_lossy(key)
        );
        assert_eq!(ns.len(), 20);
    }
    wait_until("buffer drained", Duration::from_secs(10), || {
        let m = action(&g, "disk");
        m["success"] == 200 && m["buffer.records"] == 0
    })
    .await;
    let m = action(&g, "disk");
    assert!(m["buffer.commits"] >= 1, "{m:?}");
    assert_eq!((m["failed"], m["dropped"], m["resent"]), (0, 0, 0), "{m:?}");
    assert!(data.path().join("buffer").join("disk").is_dir());
    g.stop().await;
    Ok(())
}

const RESTART: &str = r#"
[listeners.tcp.default]
bind = "0.0.0.0:1883"
[connectors.kafka.k]
bootstrap_hosts = "127.0.0.1:9092"
connect_timeout = "1s"
[actions.kafka.disk]
connector = "k"
buffer_mode = "disk"
topic = "again"
value = "${payload}"
[rules.r]
sql = 'SELECT payload FROM "again/#"'
actions = ["kafka:disk"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_resends_the_buffer_and_counts_it() -> anyhow::Result<()> {
    let mut k = TestKafka::start();
    k.stop();
    let data = tempfile::tempdir()?;
    let (g, addr) = gateway_in(RESTART, &k.bootstrap, data.path()).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "pub", true).await?;
    let msgs: Vec<(String, String)> = (0..50)
        .map(|i| ("again/1".to_owned(), format!("m{i:02}")))
        .collect();
    let codes = publish_all(&mut c, &msgs).await?;
    assert!(codes.iter().all(|c| *c < 0x80), "{codes:?}");
    wait_until("gauges", Duration::from_secs(5), || {
        action(&g, "disk")["buffer.records"] == 50
    })
    .await;
    drop(c);
    g.stop().await;

    k.restart();
    k.create_topic("again", 1);
    let (g, _) = gateway_in(RESTART, &k.bootstrap, data.path()).await;
    let recs = read(&k.bootstrap, "again", 50).await;
    let values: Vec<String> = recs
        .iter()
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect();
    let want: Vec<String> = (0..50).map(|i| format!("m{i:02}")).collect();
    assert_eq!(values, want, "all of them, in order");
    wait_until("acknowledged", Duration::from_secs(10), || {
        let m = action(&g, "disk");
        m["success"] == 50 && m["buffer.records"] == 0
    })
    .await;
    let m = action(&g, "disk");
    assert_eq!(
        (
            m["buffer.recovered"],
            m["resent"],
            m["buffer.recovery_dropped"]
        ),
        (50, 50, 0),
        "{m:?}"
    );
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_kafka_does_not_hold_pubacks_in_disk_mode() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("again", 1);
    let data = tempfile::tempdir()?;
    let (g, addr) = gateway_in(RESTART, &k.bootstrap, data.path()).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "pub", true).await?;
    let batch = |from: usize, to: usize| -> Vec<(String, String)> {
        (from..to)
            .map(|i| ("again/1".to_owned(), format!("m{i:03}")))
            .collect()
    };
    let codes = publish_all(&mut c, &batch(0, 20)).await?;
    assert!(codes.iter().all(|c| *c < 0x80));
    assert_eq!(read(&k.bootstrap, "again", 20).await.len(), 20);

    k.pause(); // SIGSTOP: connections open, no answers
    let t = std::time::Instant::now();
    let codes = publish_all(&mut c, &batch(20, 220)).await?;
    assert!(codes.iter().all(|c| *c < 0x80), "{codes:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "PUBACKs do not wait for Kafka: {:?}",
        t.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(action(&g, "disk")["buffer.records"] > 0, "waiting on disk");
    k.resume();
    let recs = read(&k.bootstrap, "again", 220).await;
    let mut values: Vec<String> = recs
        .iter()
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 220, "every message after the hang");
    wait_until("buffer drained", Duration::from_secs(30), || {
        action(&g, "disk")["buffer.records"] == 0
    })
    .await;
    g.stop().await;
    Ok(())
}

const FULL: &str = r#"
[listeners.tcp.default]
bind = "0.0.0.0:1883"
[connectors.kafka.k]
bootstrap_hosts = "127.0.0.1:9092"
connect_timeout = "1s"
[actions.kafka.newest]
connector = "k"
topic = "t"
value = "${payload}"
buffer_mode = "disk"
buffer_max_bytes = 65536
segment_bytes = 16384
when_full = "drop_newest"
[actions.kafka.oldest]
connector = "k"
topic = "t"
value = "${payload}"
buffer_mode = "disk"
buffer_max_bytes = 65536
segment_bytes = 16384
when_full = "drop_oldest"
[rules.newest]
sql = 'SELECT payload FROM "newest/#"'
actions = ["kafka:newest"]
[rules.oldest]
sql = 'SELECT payload FROM "oldest/#"'
actions = ["kafka:oldest"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_buffer_applies_when_full_and_counts_by_reason() -> anyhow::Result<()> {
    // Nothing listens on the connector's port: everything stays in the buffers.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.to_string()
    };
    let data = tempfile::tempdir()?;
    let (g, addr) = gateway_in(FULL, &dead, data.path()).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "pub", true).await?;
    let body = "x".repeat(1000);
    const N: usize = 150;
    let mut results = BTreeMap::new();
    for name in ["newest", "oldest"] {
        let msgs: Vec<(String, String)> = (0..N)
            .map(|i| (format!("{name}/1"), format!("{i:04}{body}")))
            .collect();
        results.insert(name, publish_all(&mut c, &msgs).await?);
    }
    // Each record takes about 1,060 bytes: about 60 fit in 64 KiB. The gauges are
    // refreshed every 200 ms. Records handed to librdkafka (up to half the buffer) stay
    // in flight until Kafka answers or they time out.
    let n = N as u64;
    wait_until("gauges settle", Duration::from_secs(5), || {
        let new = action(&g, "newest");
        let old = action(&g, "oldest");
        new["buffer.records"] + new["dropped.buffer_full_newest"] == n
            && old["buffer.records"] + old["dropped.buffer_full_oldest"] + old["inflight"] == n
    })
    .await;
    let m = action(&g, "newest");
    assert!(
        results["newest"].iter().all(|c| *c < 0x80),
        "drop_newest acknowledges"
    );
    let stored = m["buffer.records"];
    assert!((40..=64).contains(&stored), "{m:?}");
    assert_eq!(m["dropped.buffer_full_newest"], N as u64 - stored, "{m:?}");
    assert_eq!(m["dropped"], m["dropped.buffer_full_newest"]);

    let m = action(&g, "oldest");
    assert!(
        results["oldest"].iter().all(|c| *c < 0x80),
        "drop_oldest acknowledges"
    );
    let stored = m["buffer.records"];
    assert!((40..=64).contains(&stored), "{m:?}");
    // The oldest records were already with librdkafka when they were dropped from disk:
    // they count once they are delivered (success) or given up (dropped).
    assert_eq!(
        m["dropped.buffer_full_oldest"] + m["inflight"],
        N as u64 - stored,
        "{m:?}"
    );
    assert_eq!(m["dropped.buffer_full_newest"], 0);

    g.stop().await;
    Ok(())
}

const BACKPRESSURE: &str = r#"
[listeners.tcp.default]
bind = "0.0.0.0:1883"
[connectors.kafka.k]
bootstrap_hosts = "127.0.0.1:9092"
connect_timeout = "1s"
[actions.kafka.bp]
connector = "k"
topic = "bp"
value = "${payload}"
buffer_mode = "disk"
buffer_max_bytes = 65536
segment_bytes = 16384
when_full = "backpressure"
retry_backoff = "200ms"
[rules.bp]
sql = 'SELECT payload FROM "bp/#"'
actions = ["kafka:bp"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_holds_pubacks_until_kafka_frees_room() -> anyhow::Result<()> {
    let mut k = TestKafka::start();
    k.stop();
    let data = tempfile::tempdir()?;
    let (g, addr) = gateway_in(BACKPRESSURE, &k.bootstrap, data.path()).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "pub", true).await?;
    let body = "x".repeat(1000);
    // About 1,060 bytes a record: 60 fit in 64 KiB, 62 at most.
    let first: Vec<(String, String)> = (0..60)
        .map(|i| ("bp/1".to_owned(), format!("{i:04}{body}")))
        .collect();
    let codes = publish_all(&mut c, &first).await?;
    assert!(codes.iter().all(|c| *c < 0x80), "{codes:?}");
    for i in 60..70u16 {
        c.publish(
            "bp/1",
            format!("{i:04}{body}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            i + 1,
        )
        .await?;
    }
    let mut acked = 0;
    // Until 2 s of silence (a timeout is an error).
    while let Ok(Some(p)) = c.recv_within(Duration::from_secs(2)).await {
        match p {
            Packet::PubAck(a) if a.code < 0x80 => acked += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(
        acked < 10,
        "the buffer is full: PUBACKs wait ({acked} of 10 came)"
    );
    // Held in the buffer: every unacknowledged one, or (once the buffer presses back) the
    // first, the connection handling nothing more it read until that one is stored.
    wait_until("held records", Duration::from_secs(5), || {
        (1..=10 - acked).contains(&action(&g, "bp")["buffer.held"])
    })
    .await;
    let held0 = action(&g, "bp")["buffer.held"];
    let m = action(&g, "bp");
    assert_eq!((m["dropped"], m["refused.buffer_full"]), (0, 0), "{m:?}");

    // A QoS 0 flood from another device while the buffer is full: its connection is not
    // read past the first read that brought a message in, so few of its messages are held
    // (TCP holds the rest), and none is lost.
    let (mut q, _) = RawClient::connect(addr, Version::V5, "flood", true).await?;
    for i in 0..100 {
        q.publish(
            "bp/0",
            format!("q{i:03}{body}").as_bytes(),
            QoS::AtMostOnce,
            false,
            0,
        )
        .await?;
    }
    wait_until("the flood is held", Duration::from_secs(5), || {
        action(&g, "bp")["buffer.held"] > held0
    })
    .await;
    // What Ferry would read of the flood, it reads at once; give it a moment (the gauges
    // refresh every 200 ms).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let held = action(&g, "bp")["buffer.held"];
    assert!(held <= held0 + 30, "{held} held: the flood was read");

    // Kafka comes back: the buffer drains, the held records go in, their PUBACKs come.
    k.restart();
    k.create_topic("bp", 1);
    while acked < 10 {
        match c.recv_within(Duration::from_secs(60)).await? {
            Some(Packet::PubAck(a)) if a.code < 0x80 => acked += 1,
            other => panic!("after Kafka is back: {other:?}"),
        }
    }
    let recs = read(&k.bootstrap, "bp", 170).await;
    let (flood, qos1): (Vec<_>, Vec<_>) = recs.iter().partition(|r| r.value[0] == b'q');
    let unique = |recs: Vec<&ConsumedRecord>, skip: usize| {
        let mut ns: Vec<usize> = recs
            .iter()
            .map(|r| {
                std::str::from_utf8(&r.value[skip..4])
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        ns.sort_unstable();
        ns.dedup();
        ns
    };
    assert_eq!(
        unique(qos1, 0),
        (0..70).collect::<Vec<_>>(),
        "every QoS 1 message is in Kafka"
    );
    assert_eq!(
        unique(flood, 1),
        (0..100).collect::<Vec<_>>(),
        "every QoS 0 message too"
    );
    wait_until("held released", Duration::from_secs(5), || {
        action(&g, "bp")["buffer.held"] == 0
    })
    .await;
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_kafka_down_loses_no_acknowledged_message() -> anyhow::Result<()> {
    let mut k = TestKafka::start();
    k.stop();
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[node]
data_dir = {data:?}
[api]
enable = false
[listeners.tcp.default]
bind = "127.0.0.1:0"
[connectors.kafka.k]
bootstrap_hosts = "{bootstrap}"
connect_timeout = "1s"
[actions.kafka.out]
connector = "k"
buffer_mode = "disk"
topic = "crash"
key = "${{payload.dev}}"
value = "${{payload.n}}"
[rules.r]
sql = 'SELECT payload FROM "crash/#"'
actions = ["kafka:out"]
"#,
            data = dir.path().join("data").display().to_string(),
            bootstrap = k.bootstrap,
        ),
    )?;
    let (child, addr) = common::serve_binary(&config);
    let ferry = common::Killed(child); // also on a failed assertion
    let (mut c, _) = RawClient::connect(addr, Version::V5, "pub", true).await?;
    const N: usize = 500;
    let msgs: Vec<(String, String)> = (0..N)
        .map(|n| {
            (
                "crash/1".to_owned(),
                format!(r#"{{"dev":"d{}","n":{n}}}"#, n % 7),
            )
        })
        .collect();
    let codes = publish_all(&mut c, &msgs).await?;
    let acked: Vec<usize> = (0..N).filter(|i| codes[*i] < 0x80).collect();
    assert_eq!(acked.len(), N, "every PUBLISH is acknowledged once on disk");
    ferry.kill()?; // SIGKILL
    drop(c);

    k.restart();
    k.create_topic("crash", 3);
    let ferry = common::Killed(common::serve_binary(&config).0);
    let recs = read(&k.bootstrap, "crash", N).await;
    ferry.kill()?;
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    let mut per_key: BTreeMap<Vec<u8>, Vec<usize>> = BTreeMap::new();
    for r in &recs {
        let n: usize = std::str::from_utf8(&r.value)?.parse()?;
        *seen.entry(n).or_default() += 1;
        per_key.entry(r.key.clone().unwrap()).or_default().push(n);
    }
    let missing: Vec<usize> = acked
        .iter()
        .copied()
        .filter(|n| !seen.contains_key(n))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in Kafka: {missing:?}"
    );
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    eprintln!("{} records in Kafka, {duplicates} duplicates", recs.len());
    for (key, ns) in &per_key {
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "key {:?} out of order: {ns:?}",
            String::from_utf8_lossy(key)
        );
    }
    Ok(())
}
