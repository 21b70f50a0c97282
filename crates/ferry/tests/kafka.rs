//! MQTT to Kafka through rules, against a real Kafka-compatible broker (Tansu, started by
//! each test on a free port; or FERRY_TEST_KAFKA). Publishes with an MQTT client over TCP,
//! reads Kafka with a Kafka consumer.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;

use common::gateway;
use ferry::{Config, Gateway};
use ferry_kafka::partition::java_partition;
use ferry_kafka::testing::{ConsumedRecord, TestKafka, read_records};
use ferry_mqtt::{Packet, QoS, Version, reason};
use ferry_testkit::{RawClient, wait_until};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn read(k: &TestKafka, topic: &str, want: usize) -> Vec<ConsumedRecord> {
    let (b, t) = (k.bootstrap.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || read_records(&b, &t, want, Duration::from_secs(30)))
        .await
        .unwrap()
}

/// The action's metrics as the API shows them (EMQX names).
fn action(g: &Gateway, name: &str) -> BTreeMap<String, u64> {
    g.kafka.actions[name].metrics.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vehicles_example_end_to_end() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("my-vehicles", 3);
    let (g, addr) = gateway(
        include_str!("../../../examples/vehicles.toml"),
        &k.bootstrap,
    )
    .await;
    let mut sent = Vec::new();
    for i in 0..6 {
        let id = format!("vehicle-{i}");
        let (mut c, _) = RawClient::connect(addr, Version::V5, &id, true).await?;
        let payload = format!(r#"{{"vin":"VIN{i}","speed":{},"soc":87}}"#, 30 + i);
        let mut p = ferry_testkit::publish_packet(
            &format!("mqttx/simulate/tesla/{id}"),
            payload.as_bytes(),
            QoS::AtLeastOnce,
            false,
            1,
        );
        p.properties.user_properties = vec![("fleet".into(), "north".into())];
        let before = now_ms();
        c.send(&Packet::Publish(p)).await?;
        match c.recv().await? {
            Packet::PubAck(a) => assert!(a.code < 0x80, "PUBACK {:#x}", a.code),
            other => panic!("{other:?}"),
        }
        sent.push((id, payload, before, now_ms()));
    }
    let recs = read(&k, "my-vehicles", 6).await;
    assert_eq!(recs.len(), 6, "{recs:?}");
    for (id, payload, before, after) in &sent {
        let r = recs
            .iter()
            .find(|r| r.key.as_deref() == Some(id.as_bytes()))
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&r.value)?,
            payload,
            "value is the vehicle JSON itself"
        );
        let ts = r.timestamp.unwrap();
        assert!(
            (*before..=*after).contains(&ts),
            "timestamp {ts} is the publish time ({before}..{after})"
        );
        assert_eq!(r.headers, vec![("fleet".to_string(), b"north".to_vec())]);
        assert_eq!(
            r.partition,
            java_partition(id.as_bytes(), 3),
            "murmur2 like the Java client"
        );
    }
    let m = action(&g, "vehicles");
    assert_eq!((m["matched"], m["success"], m["failed"]), (6, 6, 0));
    assert_eq!(m["latency.count"], 6);
    // The same numbers in the Prometheus text.
    let text = g.broker.registry().encode_prometheus(&[]);
    for want in [
        "ferry_action_matched_total{action=\"vehicles\"} 6",
        "ferry_action_success_total{action=\"vehicles\"} 6",
        "ferry_action_latency_seconds_count{action=\"vehicles\"} 6",
    ] {
        assert!(text.contains(want), "missing {want}:\n{text}");
    }
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_hum_example_end_to_end() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("temp_hum", 1);
    let (g, addr) = gateway(
        include_str!("../../../examples/temp-hum.toml"),
        &k.bootstrap,
    )
    .await;
    let (mut c, _) = RawClient::connect(addr, Version::V311, "sensor-1", true).await?;
    let before = now_ms();
    c.publish(
        "temp_hum/emqx",
        br#"{"temp": 23.5, "hum": 61}"#,
        QoS::AtLeastOnce,
        false,
        1,
    )
    .await?;
    assert!(matches!(c.recv().await?, Packet::PubAck(_)));
    let recs = read(&k, "temp_hum", 1).await;
    let r = &recs[0];
    assert_eq!(r.key.as_deref(), Some(&b"sensor-1"[..]));
    assert_eq!(
        std::str::from_utf8(&r.value)?,
        r#"{"temp": 23.5, "hum": 61}"#
    );
    assert!(r.timestamp.unwrap() >= before);
    assert_eq!(r.headers, vec![("source".to_string(), b"ferry".to_vec())]);
    assert_eq!(r.partition, 0);
    g.stop().await;
    Ok(())
}

const SYNC: &str = r#"
[listeners.tcp.default]
bind = "0.0.0.0:1883"
[connectors.kafka.k]
bootstrap_hosts = "127.0.0.1:9092"
health_check_interval = "200ms"
connect_timeout = "1s"
[actions.kafka.out]
connector = "k"
topic = "out"
value = "${payload}"
query_mode = "sync"
sync_timeout = "2s"
[rules.r]
sql = 'SELECT payload FROM "in/#"'
actions = ["kafka:out"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_acknowledged_means_in_kafka_and_kafka_down_means_failure() -> anyhow::Result<()>
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter("ferry_kafka=debug")
        .with_test_writer()
        .try_init();
    let mut k = TestKafka::start();
    k.create_topic("out", 1);
    let (g, addr) = gateway(SYNC, &k.bootstrap).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "p", true).await?;
    for i in 1..=20u16 {
        c.publish(
            "in/1",
            format!("m{i}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            i,
        )
        .await?;
    }
    for _ in 1..=20 {
        assert!(matches!(c.recv().await?, Packet::PubAck(a) if a.code < 0x80));
    }
    assert_eq!(
        read(&k, "out", 20).await.len(),
        20,
        "every acknowledged message is in Kafka"
    );
    let conn = g.kafka.connectors["k"].clone();
    wait_until("connector connected", Duration::from_secs(10), || {
        conn.status().state == ferry_kafka::ConnectorState::Connected
    })
    .await;

    k.stop();
    wait_until("connector disconnected", Duration::from_secs(15), || {
        conn.status().state == ferry_kafka::ConnectorState::Disconnected
    })
    .await;
    assert!(conn.status().last_error.is_some());
    c.publish("in/1", b"while down", QoS::AtLeastOnce, false, 100)
        .await?;
    match c.recv_within(Duration::from_secs(30)).await? {
        Some(Packet::PubAck(a)) => assert_eq!(
            a.code,
            reason::UNSPECIFIED_ERROR,
            "not acknowledged as success"
        ),
        other => panic!("{other:?}"),
    }
    k.restart();
    k.create_topic("out", 1);
    wait_until("connector back", Duration::from_secs(20), || {
        conn.status().state == ferry_kafka::ConnectorState::Connected
    })
    .await;
    let mut ok = 0;
    for i in 200..210u16 {
        c.publish(
            "in/1",
            format!("after{i}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            i,
        )
        .await?;
        if let Packet::PubAck(a) = c.recv().await?
            && a.code < 0x80
        {
            ok += 1;
        }
    }
    assert!(ok > 0, "publishing works again after Kafka is back");
    let recs = read(&k, "out", ok).await;
    let after: Vec<_> = recs
        .iter()
        .filter(|r| r.value.starts_with(b"after"))
        .collect();
    assert_eq!(
        after.len(),
        ok,
        "every message acknowledged after the restart is in Kafka"
    );
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_not_running_at_start_is_not_fatal() -> anyhow::Result<()> {
    let mut k = TestKafka::start();
    k.stop();
    let text = SYNC.replace("query_mode = \"sync\"", "query_mode = \"async\"");
    let (g, addr) = gateway(&text, &k.bootstrap).await;
    let conn = g.kafka.connectors["k"].clone();
    wait_until("connector disconnected", Duration::from_secs(15), || {
        conn.status().state == ferry_kafka::ConnectorState::Disconnected
    })
    .await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "p", true).await?;
    for i in 1..=5u16 {
        c.publish(
            "in/1",
            format!("early{i}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            i,
        )
        .await?;
        assert!(
            matches!(c.recv().await?, Packet::PubAck(a) if a.code < 0x80),
            "async mode acknowledges at once"
        );
    }
    k.restart();
    k.create_topic("out", 1);
    wait_until("connector connected", Duration::from_secs(20), || {
        conn.status().state == ferry_kafka::ConnectorState::Connected
    })
    .await;
    let recs = read(&k, "out", 5).await;
    assert_eq!(recs.len(), 5, "queued records arrive once Kafka is up");
    wait_until("all delivered", Duration::from_secs(10), || {
        action(&g, "out")["success"] == 5
    })
    .await;
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_queue_overflow_is_counted_exactly() -> anyhow::Result<()> {
    let mut k = TestKafka::start();
    k.stop();
    let text = SYNC
        .replace(
            "query_mode = \"sync\"",
            "query_mode = \"async\"\nmax_queue_messages = 5\nmax_retries = 0",
        )
        .replace(
            "sync_timeout = \"2s\"",
            "sync_timeout = \"2s\"\noverflow = \"drop_oldest\"",
        );
    let (g, addr) = gateway(&text, &k.bootstrap).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "p", true).await?;
    for i in 1..=300u16 {
        c.publish(
            "in/1",
            format!("x{i}").as_bytes(),
            QoS::AtMostOnce,
            false,
            0,
        )
        .await?;
    }
    c.send(&Packet::PingReq).await?;
    assert_eq!(c.recv().await?, Packet::PingResp);
    k.restart();
    k.create_topic("out", 1);
    wait_until("settled", Duration::from_secs(60), || {
        let m = action(&g, "out");
        m["queuing"] == 0 && m["inflight"] == 0 && m["matched"] == 300
    })
    .await;
    let m = action(&g, "out");
    assert_eq!(
        m["success"] + m["failed"] + m["dropped.queue_full"],
        300,
        "{m:?}"
    );
    let in_kafka = read(&k, "out", m["success"] as usize).await.len() as u64;
    assert_eq!(in_kafka, m["success"], "{m:?}");
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_record_fails_at_once() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("out", 1);
    let text = format!("{SYNC}\n[mqtt]\nmax_packet_size = 4194304\n");
    let (g, addr) = gateway(&text, &k.bootstrap).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "p", true).await?;
    c.publish(
        "in/1",
        &vec![b'x'; 2 * 1024 * 1024],
        QoS::AtLeastOnce,
        false,
        1,
    )
    .await?;
    match c.recv_within(Duration::from_secs(10)).await? {
        Some(Packet::PubAck(a)) => assert_eq!(a.code, reason::UNSPECIFIED_ERROR),
        other => panic!("{other:?}"),
    }
    let m = action(&g, "out");
    assert_eq!((m["failed"], m["success"]), (1, 0));
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templated_topics_partition_strategies_and_mappings() -> anyhow::Result<()> {
    let k = TestKafka::start();
    for t in ["t-a", "t-b", "rr", "fixed"] {
        k.create_topic(t, 3);
    }
    let text = r#"
[listeners.tcp.default]
bind = "0.0.0.0:1883"
[connectors.kafka.k]
bootstrap_hosts = "127.0.0.1:9092"
[actions.kafka.by_site]
connector = "k"
topic = "t-${payload.site}"
value = "${payload}"
query_mode = "sync"
[actions.kafka.rr]
connector = "k"
topic = "rr"
partition_strategy = "round_robin"
query_mode = "sync"
[actions.kafka.fixed]
connector = "k"
topic = "fixed"
partition = "${p}"
key = "${id}"
query_mode = "sync"
# one rule to several actions
[rules.sites]
sql = 'SELECT payload FROM "s/#"'
actions = ["kafka:by_site", "kafka:rr"]
# several rules to one action, and FOREACH giving several records per message
[rules.fan]
sql = 'FOREACH payload.items as it DO it.p as p, it.id as id FROM "f/#"'
actions = ["kafka:fixed"]
[rules.single]
sql = 'SELECT payload.p as p, clientid as id FROM "g/#"'
actions = ["kafka:fixed"]
"#;
    let (g, addr) = gateway(text, &k.bootstrap).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "p", true).await?;
    // Let the round-robin action learn the partition count first.
    let rr = g.kafka.actions["rr"].clone();
    wait_until("partition count", Duration::from_secs(10), || {
        let out = ferry_rules::Map::new();
        rr.render(&out, None, std::time::Instant::now())
            .is_ok_and(|r| r.partition.is_some())
    })
    .await;
    let mut pid = 0;
    let mut publish = async |c: &mut RawClient, topic: &str, payload: &str| {
        pid += 1;
        c.publish(topic, payload.as_bytes(), QoS::AtLeastOnce, false, pid)
            .await
            .unwrap();
        assert!(matches!(c.recv().await.unwrap(), Packet::PubAck(a) if a.code < 0x80));
    };
    for site in ["a", "b", "a"] {
        publish(&mut c, "s/1", &format!(r#"{{"site":"{site}"}}"#)).await;
    }
    publish(
        &mut c,
        "f/1",
        r#"{"items":[{"p":2,"id":"x"},{"p":0,"id":"y"}]}"#,
    )
    .await;
    publish(&mut c, "g/1", r#"{"p":1}"#).await;
    // An unrenderable topic is counted as failed, not retried forever.
    publish(&mut c, "s/1", r#"{"nosite":1}"#).await;

    assert_eq!(read(&k, "t-a", 2).await.len(), 2);
    assert_eq!(read(&k, "t-b", 1).await.len(), 1);
    let rr_parts: Vec<i32> = read(&k, "rr", 4)
        .await
        .iter()
        .map(|r| r.partition)
        .collect();
    let counts: Vec<usize> = (0..3)
        .map(|p| rr_parts.iter().filter(|x| **x == p).count())
        .collect();
    assert_eq!(rr_parts.len(), 4);
    assert!(
        counts.iter().all(|c| (1..=2).contains(c)),
        "round robin over 3 partitions: {rr_parts:?}"
    );
    let fixed = read(&k, "fixed", 3).await;
    let by_key = |k: &[u8]| {
        fixed
            .iter()
            .find(|r| r.key.as_deref() == Some(k))
            .map(|r| r.partition)
    };
    assert_eq!(
        (by_key(b"x"), by_key(b"y"), by_key(b"p")),
        (Some(2), Some(0), Some(1))
    );
    assert_eq!(action(&g, "by_site")["failed"], 1);
    g.stop().await;
    Ok(())
}

#[test]
fn bad_kafka_config_names_the_key() {
    let e = Config::parse(
        r#"
[connectors.kafka.k]
bootstrap_hosts = "nohostport"
[actions.kafka.a]
connector = "missing"
topic = "t-${"
required_acks = "leader"
[rules.r]
sql = 'SELECT * FROM "t"'
actions = ["kafka:nope"]
[sources.kafka.s]
connector = "k"
mqtt_topic = "x/${key"
qos = 3
max_inflight = 0
drain_timeout = "5m"
"#,
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    for want in [
        "connectors.kafka.k.bootstrap_hosts",
        "actions.kafka.a.connector: no [connectors.kafka.missing]",
        "actions.kafka.a.topic",
        "actions.kafka.a.required_acks: idempotence = true needs required_acks = \"all\"",
        "rules.r.actions[0]: unknown action \"kafka:nope\"",
        "sources.kafka.s: give either topics or topic_pattern",
        "sources.kafka.s.mqtt_topic",
        "sources.kafka.s.qos: must be 0, 1 or 2",
        "sources.kafka.s.max_inflight: must be at least 1",
        "sources.kafka.s.drain_timeout: must be below 300s",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_and_acks_setting_delivers() -> anyhow::Result<()> {
    let k = TestKafka::start();
    let mut text = String::from(
        "[listeners.tcp.default]\nbind = \"0.0.0.0:1883\"\n[connectors.kafka.k]\nbootstrap_hosts = \"127.0.0.1:9092\"\n",
    );
    let variants = [
        ("none", "all"),
        ("gzip", "all"),
        ("snappy", "all"),
        ("lz4", "all"),
        ("zstd", "all"),
    ];
    let mut actions = Vec::new();
    for (c, acks) in variants {
        k.create_topic(&format!("c-{c}"), 1);
        text += &format!(
            "[actions.kafka.{c}]\nconnector = \"k\"\ntopic = \"c-{c}\"\ncompression = \"{c}\"\nrequired_acks = \"{acks}\"\nvalue = \"${{payload}}\"\nquery_mode = \"sync\"\n"
        );
        actions.push(format!("\"kafka:{c}\""));
    }
    text += "[actions.kafka.leader]\nconnector = \"k\"\ntopic = \"c-none\"\nrequired_acks = \"leader\"\nidempotence = false\nvalue = \"${payload}\"\npartitions_limit = 1\n";
    actions.push("\"kafka:leader\"".into());
    text += &format!(
        "[rules.all]\nsql = 'SELECT payload FROM \"z/#\"'\nactions = [{}]\n",
        actions.join(", ")
    );
    let (g, addr) = gateway(&text, &k.bootstrap).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "z", true).await?;
    let payload = "compress me ".repeat(50);
    c.publish("z/1", payload.as_bytes(), QoS::AtLeastOnce, false, 1)
        .await?;
    assert!(matches!(c.recv().await?, Packet::PubAck(a) if a.code < 0x80));
    for (codec, _) in variants {
        let want = if codec == "none" { 2 } else { 1 };
        let recs = read(&k, &format!("c-{codec}"), want).await;
        assert_eq!(recs.len(), want, "{codec}");
        assert!(
            recs.iter().all(|r| r.value == payload.as_bytes()),
            "{codec}"
        );
    }
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connector_produces_and_a_wrong_ca_is_refused() -> anyhow::Result<()> {
    let k = TestKafka::start_tls();
    let ca = k.ca_file().unwrap();
    let text = SYNC.replace(
        "connect_timeout = \"1s\"",
        &format!(
            "connect_timeout = \"1s\"\nssl = {{ enable = true, cacertfile = \"{}\" }}",
            ca.display()
        ),
    );
    let (g, addr) = gateway(&text, &k.bootstrap).await;
    let conn = g.kafka.connectors["k"].clone();
    wait_until("connected over TLS", Duration::from_secs(20), || {
        conn.status().state == ferry_kafka::ConnectorState::Connected
    })
    .await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "p", true).await?;
    c.publish("in/1", b"over tls", QoS::AtLeastOnce, false, 1)
        .await?;
    match c.recv_within(Duration::from_secs(20)).await? {
        Some(Packet::PubAck(a)) => assert!(
            a.code < 0x80,
            "acknowledged by Kafka over TLS: {:#x}",
            a.code
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(action(&g, "out")["success"], 1);
    g.stop().await;

    // The same broker with a CA that did not sign its certificate: no connection.
    let other = TestKafka::start_tls();
    let text = SYNC.replace(
        "connect_timeout = \"1s\"",
        &format!(
            "connect_timeout = \"1s\"\nssl = {{ enable = true, cacertfile = \"{}\" }}",
            other.ca_file().unwrap().display()
        ),
    );
    let (g, _) = gateway(&text, &k.bootstrap).await;
    let conn = g.kafka.connectors["k"].clone();
    wait_until("refused", Duration::from_secs(20), || {
        conn.status().state == ferry_kafka::ConnectorState::Disconnected
    })
    .await;
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_kafka_reports_what_reached_kafka() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("bench-k", 1);
    let text = r#"
[listeners.tcp.default]
bind = "0.0.0.0:1883"
[connectors.kafka.k]
bootstrap_hosts = "127.0.0.1:9092"
[actions.kafka.a]
connector = "k"
topic = "bench-k"
key = "${clientid}"
value = "${payload}"
query_mode = "sync"
[rules.r]
sql = 'SELECT * FROM "t/#"'
actions = ["kafka:a"]
"#;
    let (g, addr) = gateway(text, &k.bootstrap).await;
    let port = addr.port().to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "bench", "kafka", "-p", &port, "-q", "1", "-n", "200", "-c", "2", "-t", "t/%i",
        ])
        .args([
            "--bootstrap",
            &k.bootstrap,
            "--kafka-topic",
            "bench-k",
            "--drain",
            "20s",
        ])
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(r["publish"]["sent"], 400, "{r}");
    assert_eq!(
        (
            r["kafka"]["unique"].as_u64(),
            r["kafka"]["lost"].as_u64(),
            r["kafka"]["duplicates"].as_u64()
        ),
        (Some(400), Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(r["kafka"]["out_of_order"], 0, "per-key order kept: {r}");
    g.stop().await;
    Ok(())
}
