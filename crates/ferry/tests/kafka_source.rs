//! Kafka to MQTT: consumer sources against the Tansu test broker, delivered to MQTT
//! subscribers over TCP; offsets committed only after delivery (with persistence, a record
//! durably queued for an offline persistent session counts as delivered).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

mod common;

use common::gateway;
use ferry::Gateway;
use ferry_kafka::testing::{TestKafka, TestRecord, committed, produce};
use ferry_mqtt::{Ack, Packet, QoS, Version};
use ferry_testkit::{RawClient, connect_packet, wait_until};

/// (key, value, headers)
type Rec = (Option<String>, String, Vec<(String, String)>);

async fn produce_async(k: &TestKafka, topic: &str, records: Vec<Rec>) {
    let (b, t) = (k.bootstrap.clone(), topic.to_owned());
    let recs: Vec<TestRecord> = records
        .into_iter()
        .map(|(key, value, headers)| TestRecord {
            key,
            value,
            headers,
        })
        .collect();
    tokio::task::spawn_blocking(move || produce(&b, &t, &recs))
        .await
        .unwrap();
}

/// A gateway with an MQTT listener and the `local` Kafka connector, plus `sections`.
async fn source_gateway(sections: &str, bootstrap: &str) -> (Gateway, std::net::SocketAddr) {
    let text = format!(
        "[listeners.tcp.default]\nbind = \"0.0.0.0:1883\"\n\
         [connectors.kafka.local]\nbootstrap_hosts = \"127.0.0.1:9092\"\n{sections}"
    );
    gateway(&text, bootstrap).await
}

/// The source's metrics as the API shows them.
fn source(g: &Gateway, name: &str) -> BTreeMap<String, u64> {
    g.control.view().sources[name].metrics.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vehicle_commands_example_delivers_keyed_records_at_qos1() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("vehicle-commands", 2);
    let (g, addr) = gateway(
        include_str!("../../../examples/vehicle-commands.toml"),
        &k.bootstrap,
    )
    .await;
    let (mut car, _) = RawClient::connect(addr, Version::V5, "veh-7", true).await?;
    car.subscribe("vehicles/veh-7/commands", QoS::AtLeastOnce)
        .await?;
    produce_async(
        &k,
        "vehicle-commands",
        vec![
            (
                Some("veh-7".into()),
                r#"{"cmd":"unlock"}"#.into(),
                vec![("source".into(), "app".into())],
            ),
            (Some("veh-9".into()), r#"{"cmd":"honk"}"#.into(), vec![]),
            (Some("veh-7".into()), r#"{"cmd":"lock"}"#.into(), vec![]),
        ],
    )
    .await;
    let m1 = car.recv_publish().await?;
    assert_eq!(
        (m1.topic.as_str(), &m1.payload[..], m1.qos),
        (
            "vehicles/veh-7/commands",
            &br#"{"cmd":"unlock"}"#[..],
            QoS::AtLeastOnce
        )
    );
    assert_eq!(
        m1.properties.user_properties,
        vec![("source".to_string(), "app".to_string())],
        "headers become user properties"
    );
    assert_eq!(&car.recv_publish().await?.payload[..], br#"{"cmd":"lock"}"#);
    wait_until("delivered", Duration::from_secs(10), || {
        source(&g, "commands")["delivered"] == 3
    })
    .await;
    g.stop().await;
    Ok(())
}

const MAPPING: &str = r#"
[sources.kafka.env]
connector = "local"
topics = ["map-in"]
offset_reset = "earliest"
mqtt_topic = "out/${topic}/${partition}/${headers.kind}/${value.site}"
qos = 0
qos_header = "qos"
retain_header = "retain"
payload = "${.}"
value_encoding = "none"
[sources.kafka.b64]
connector = "local"
topics = ["map-in"]
group_id = "b64-group"
offset_reset = "earliest"
mqtt_topic = "b64/${key}"
payload = "${value}"
value_encoding = "base64"
key_encoding = "none"
[rules.from_kafka]
sql = 'SELECT value.site as site, key FROM "$bridges/kafka:env" WHERE value.site = "north"'
actions = [{ function = "republish", args = { topic = "rule/${site}", payload = "${key}" } }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_templates_headers_encodings_rules_and_skips() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("map-in", 1);
    let (g, addr) = source_gateway(MAPPING, &k.bootstrap).await;
    let (mut s, _) = RawClient::connect(addr, Version::V5, "s", true).await?;
    for f in ["out/#", "b64/#", "rule/#"] {
        s.subscribe(f, QoS::ExactlyOnce).await?;
    }
    produce_async(
        &k,
        "map-in",
        vec![
            (
                Some("k1".into()),
                r#"{"site":"north"}"#.into(),
                vec![
                    ("kind".into(), "cmd".into()),
                    ("qos".into(), "2".into()),
                    ("retain".into(), "true".into()),
                ],
            ),
            // No "kind" header: the env source cannot render its topic; counted and skipped.
            (Some("k2".into()), r#"{"site":"south"}"#.into(), vec![]),
        ],
    )
    .await;
    let mut got = HashMap::new();
    for _ in 0..4 {
        let m = s.recv_publish().await?;
        got.insert(m.topic.clone(), m);
    }
    let env = &got["out/map-in/0/cmd/north"];
    assert_eq!(env.qos, QoS::ExactlyOnce, "QoS from the qos header");
    let j: serde_json::Value = serde_json::from_slice(&env.payload)?;
    assert_eq!(
        (
            j["key"].as_str(),
            j["offset"].as_i64(),
            j["partition"].as_i64(),
            j["topic"].as_str()
        ),
        (Some("k1"), Some(0), Some(0), Some("map-in"))
    );
    assert_eq!(j["headers"]["kind"], "cmd");
    assert_eq!(j["ts_type"], "create");
    assert_eq!(j["value"], r#"{"site":"north"}"#);
    assert_eq!(
        &got["b64/k1"].payload[..],
        b"eyJzaXRlIjoibm9ydGgifQ==",
        "base64 value encoding"
    );
    assert!(got.contains_key("b64/k2"));
    assert_eq!(
        &got["rule/north"].payload[..],
        b"k1",
        "rules can select FROM the source"
    );
    let skipped = g.control.view().sources["env"].metrics.clone();
    wait_until("skip counted", Duration::from_secs(10), || {
        skipped.json()["failed"] == 1 && skipped.json()["received"] == 2
    })
    .await;
    // The skipped record did not stall the source: a later one is delivered.
    produce_async(
        &k,
        "map-in",
        vec![(
            Some("k3".into()),
            r#"{"site":"east"}"#.into(),
            vec![("kind".into(), "x".into())],
        )],
    )
    .await;
    let m = s.recv_publish().await?;
    assert!(
        m.topic == "out/map-in/0/x/east" || m.topic == "b64/k3",
        "{}",
        m.topic
    );
    g.stop().await;
    Ok(())
}

const RESTART: &str = r#"
[sources.kafka.cmds]
connector = "local"
topics = ["backlog"]
offset_reset = "earliest"
mqtt_topic = "cmd/${key}"
qos = 1
max_inflight = 5
drain_timeout = "1s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_backlog_loses_nothing() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("backlog", 1);
    let (g1, addr1) = source_gateway(RESTART, &k.bootstrap).await;
    let mut c = RawClient::open(addr1, Version::V5).await?;
    let mut p = connect_packet(Version::V5, "dev", true);
    p.properties.receive_maximum = Some(3);
    c.handshake(p).await?;
    c.subscribe("cmd/#", QoS::AtLeastOnce).await?;
    let records: Vec<_> = (0..40)
        .map(|i| (Some("dev".to_string()), format!("m{i}"), vec![]))
        .collect();
    produce_async(&k, "backlog", records).await;
    let mut seen: Vec<String> = Vec::new();
    // Acknowledge the first 15, then stop acknowledging (the device hangs).
    while seen.len() < 15 {
        if let Packet::Publish(m) = c.recv().await? {
            seen.push(String::from_utf8(m.payload.to_vec())?);
            c.send(&Packet::PubAck(Ack::new(m.packet_id, 0))).await?;
        }
    }
    let mut unacked = 0;
    while let Ok(Some(Packet::Publish(m))) = c.recv_within(Duration::from_millis(500)).await {
        seen.push(String::from_utf8(m.payload.to_vec())?);
        unacked += 1;
    }
    assert!(unacked <= 3, "receive maximum holds the rest back");
    let m = g1.control.view().sources["cmds"].metrics.json();
    assert!(m["inflight"] <= 5, "{m:?}");
    assert!(
        m["received"] < 40,
        "the source stopped reading while its records were not delivered: {m:?}"
    );
    let m1 = g1.control.view().sources["cmds"].metrics.clone();
    wait_until("consumer lag measured", Duration::from_secs(20), || {
        m1.lag().get("backlog/0") == Some(&25)
    })
    .await;
    g1.stop().await;
    drop(c);

    let (g2, addr2) = source_gateway(RESTART, &k.bootstrap).await;
    let (mut c, _) = RawClient::connect(addr2, Version::V5, "dev", true).await?;
    c.subscribe("cmd/#", QoS::AtLeastOnce).await?;
    let mut after = Vec::new();
    while !(0..40).all(|i| seen.contains(&format!("m{i}")) || after.contains(&format!("m{i}"))) {
        let m = c.recv_publish().await?;
        after.push(String::from_utf8(m.payload.to_vec())?);
    }
    let dups = after.iter().filter(|v| seen.contains(v)).count();
    assert!(
        dups <= 5 + 3,
        "duplicates only of what was in flight: {dups}"
    );
    let m = g2.control.view().sources["cmds"].metrics.json();
    assert_eq!(m["failed"], 0);
    g2.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_can_start_from_a_timestamp() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("history", 1);
    produce_async(
        &k,
        "history",
        vec![(Some("a".into()), "old".into(), vec![])],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let from = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(50)).await;
    produce_async(
        &k,
        "history",
        vec![
            (Some("a".into()), "new1".into(), vec![]),
            (Some("a".into()), "new2".into(), vec![]),
        ],
    )
    .await;
    let text = format!(
        "[sources.kafka.h]\nconnector = \"local\"\ntopics = [\"history\"]\nstart_from_timestamp = {from}\nmqtt_topic = \"h/${{key}}\"\n"
    );
    let (g, addr) = source_gateway(&text, &k.bootstrap).await;
    let (mut s, _) = RawClient::connect(addr, Version::V5, "s", true).await?;
    s.subscribe("h/#", QoS::AtLeastOnce).await?;
    // The subscriber may connect after the first records went out: count what the source read.
    let m = g.control.view().sources["h"].metrics.clone();
    wait_until("read", Duration::from_secs(15), || {
        m.json()["received"] >= 2
    })
    .await;
    assert_eq!(
        m.json()["received"],
        2,
        "the record before the timestamp was skipped"
    );
    g.stop().await;
    Ok(())
}

const GROUP: &str = r#"
[sources.kafka.cmds]
connector = "local"
topics = ["shared-cmds"]
group_id = "two-members"
offset_reset = "earliest"
mqtt_topic = "cmd/${key}"
qos = 1
drain_timeout = "60s"
"#;

fn batch(tag: &str) -> Vec<Rec> {
    (0..20)
        .map(|i| (Some(format!("dev{i}")), format!("{tag}{i}"), vec![]))
        .collect()
}

/// Two Ferry nodes share one consumer group. The first holds 20 records that its device has
/// not acknowledged when the second joins: the first must wait for those deliveries and
/// commit them before giving partitions away, so the second node redelivers none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_drains_in_flight_records_before_releasing_partitions() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("shared-cmds", 2);
    let (g1, addr1) = source_gateway(GROUP, &k.bootstrap).await;
    let (mut c1, _) = RawClient::connect(addr1, Version::V5, "dev-a", true).await?;
    c1.subscribe("cmd/#", QoS::AtLeastOnce).await?;
    produce_async(&k, "shared-cmds", batch("a")).await;
    let mut held = Vec::new();
    while held.len() < 20 {
        if let Packet::Publish(m) = c1.recv().await? {
            held.push(m.packet_id);
        }
    }
    assert_eq!(source(&g1, "cmds")["inflight"], 20);

    let (g2, addr2) = source_gateway(GROUP, &k.bootstrap).await;
    let (mut c2, _) = RawClient::connect(addr2, Version::V5, "dev-b", true).await?;
    c2.subscribe("cmd/#", QoS::AtLeastOnce).await?;
    wait_until(
        "the first node drains before releasing",
        Duration::from_secs(60),
        || source(&g1, "cmds")["draining"] == 20,
    )
    .await;
    for id in held {
        c1.send(&Packet::PubAck(Ack::new(id, 0))).await?;
    }
    wait_until("drained", Duration::from_secs(10), || {
        source(&g1, "cmds")["draining"] == 0
    })
    .await;
    let m1 = source(&g1, "cmds");
    assert_eq!((m1["delivered"], m1["released"]), (20, 0), "{m1:?}");

    // New records go to whichever node owns their partition now; nothing from before comes back.
    produce_async(&k, "shared-cmds", batch("b")).await;
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let readers: Vec<_> = [(1, c1), (2, c2)]
        .into_iter()
        .map(|(node, mut c)| {
            let got = got.clone();
            tokio::spawn(async move {
                while let Ok(m) = c.recv_publish().await {
                    let v = String::from_utf8_lossy(&m.payload).into_owned();
                    got.lock().unwrap().push((node, v));
                }
            })
        })
        .collect();
    wait_until("20 records", Duration::from_secs(30), || {
        got.lock().unwrap().len() >= 20
    })
    .await;
    readers.iter().for_each(|r| r.abort());
    let got = got.lock().unwrap().clone();
    let mut all: Vec<&str> = got.iter().map(|(_, v)| v.as_str()).collect();
    all.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    want.sort();
    assert_eq!(all, want, "each new record once, no old record again");
    assert!(
        got.iter().any(|(node, _)| *node == 2),
        "the second node owns a partition"
    );
    g2.stop().await;
    g1.stop().await;
    Ok(())
}

const PATTERN: &str = r#"
[sources.kafka.pat]
connector = "local"
topic_pattern = "pat-.*"
mqtt_topic = "p/${topic}"
qos = 0
"#;

/// `topic_pattern` consumes every matching topic and no other; the default `offset_reset`
/// (latest) skips what was written before the source joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_pattern_reads_matching_topics_from_the_latest_offset() -> anyhow::Result<()> {
    let k = TestKafka::start();
    for t in ["pat-a", "pat-b", "other-c"] {
        k.create_topic(t, 1);
    }
    produce_async(&k, "pat-a", vec![(None, "old".into(), vec![])]).await;
    let (g, addr) = source_gateway(PATTERN, &k.bootstrap).await;
    let (mut s, _) = RawClient::connect(addr, Version::V5, "s", true).await?;
    s.subscribe("p/#", QoS::AtMostOnce).await?;
    let mut got: Vec<(String, String)> = Vec::new();
    // Until the group has its assignment, new records are skipped too: keep writing.
    for round in 0..60 {
        for t in ["pat-a", "pat-b", "other-c"] {
            produce_async(&k, t, vec![(None, format!("new{round}"), vec![])]).await;
        }
        while let Ok(Some(Packet::Publish(m))) = s.recv_within(Duration::from_millis(500)).await {
            got.push((m.topic.clone(), String::from_utf8(m.payload.to_vec())?));
        }
        if ["p/pat-a", "p/pat-b"]
            .iter()
            .all(|t| got.iter().any(|(x, _)| x == t))
        {
            break;
        }
    }
    assert!(
        ["p/pat-a", "p/pat-b"]
            .iter()
            .all(|t| got.iter().any(|(x, _)| x == t)),
        "both matching topics are read: {got:?}"
    );
    assert!(
        got.iter().all(|(t, v)| t != "p/other-c" && v != "old"),
        "{got:?}"
    );
    g.stop().await;
    Ok(())
}

const DURABLE: &str = r#"
[listeners.tcp.default]
bind = "0.0.0.0:1883"
[connectors.kafka.local]
bootstrap_hosts = "127.0.0.1:9092"
[sources.kafka.cmds]
connector = "local"
topics = ["durable"]
offset_reset = "earliest"
mqtt_topic = "cmd/${key}"
qos = 1
max_inflight = 5
drain_timeout = "1s"
"#;

/// MQTT 5, clean start false, session expiry 300 s.
async fn persistent_device(addr: std::net::SocketAddr) -> anyhow::Result<(RawClient, bool)> {
    let mut c = RawClient::open(addr, Version::V5).await?;
    let mut p = connect_packet(Version::V5, "dev", false);
    p.properties.session_expiry_interval = Some(300);
    let ack = c.handshake(p).await?;
    anyhow::ensure!(ack.code == 0, "CONNACK {:#x}", ack.code);
    Ok((c, ack.session_present))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_persistence_an_offline_persistent_session_does_not_hold_back_the_source()
-> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("durable", 1);
    let dir = tempfile::tempdir()?;
    let mut cfg = common::config(DURABLE, &k.bootstrap);
    cfg.node.persistence = true;
    cfg.node.data_dir = dir.path().join("data");
    let g = Gateway::start(&cfg).await?;
    let (mut dev, _) = persistent_device(g.listeners[0].1).await?;
    dev.subscribe("cmd/#", QoS::AtLeastOnce).await?;
    dev.disconnect().await?;
    wait_until("dev offline", Duration::from_secs(10), || {
        g.broker.client("dev").is_some_and(|c| !c.connected)
    })
    .await;
    // Four times max_inflight: without persistence the source would stop after 5 records
    // and wait for the device.
    let records: Vec<_> = (0..20)
        .map(|i| (Some("dev".to_string()), format!("m{i}"), vec![]))
        .collect();
    produce_async(&k, "durable", records).await;
    wait_until(
        "every record durably queued",
        Duration::from_secs(30),
        || source(&g, "cmds")["delivered"] == 20,
    )
    .await;
    assert!(g.broker.registry().json()["state.durably_queued"] >= 20);
    // ...and the offsets moved past them while the device is still offline.
    let stats = g.control.view().sources["cmds"].metrics.clone();
    wait_until(
        "offsets committed past every record",
        Duration::from_secs(20),
        || stats.lag().get("durable/0") == Some(&0),
    )
    .await;
    g.stop().await;

    // A restart: the device gets all of them from the store (the source, whose offsets
    // were committed, has nothing to read again).
    let g = Gateway::start(&cfg).await?;
    let (mut dev, present) = persistent_device(g.listeners[0].1).await?;
    assert!(present);
    for i in 0..20 {
        let m = dev.recv_publish().await?;
        assert_eq!(&m.payload[..], format!("m{i}").as_bytes());
    }
    dev.expect_silence(Duration::from_millis(500)).await?;
    assert_eq!(source(&g, "cmds")["received"], 0, "nothing re-read");
    dev.disconnect().await?;
    g.stop().await;
    Ok(())
}

const PER_PARTITION: &str = r#"
[sources.kafka.pp]
connector = "local"
topics = ["pp-in"]
group_id = "pp-group"
offset_reset = "earliest"
mqtt_topic = "pp/${partition}"
payload = "${value}@${offset}"
qos = 1
"#;

/// (value, offset) of a record delivered as `VALUE@OFFSET`.
fn value_at(payload: &[u8]) -> (String, i64) {
    let text = String::from_utf8_lossy(payload);
    let (v, o) = text.rsplit_once('@').unwrap_or((&text, "-1"));
    (v.to_owned(), o.parse().unwrap_or(-1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_not_delivered_on_one_partition_does_not_hold_back_commits_on_another()
-> anyhow::Result<()> {
    let k = TestKafka::start();
    assert_eq!(k.create_topic("pp-in", 2), 2);
    let (g, addr) = source_gateway(PER_PARTITION, &k.bootstrap).await;
    // Partition 0's records go to a subscriber that never acknowledges them...
    let (mut stuck, _) = RawClient::connect(addr, Version::V5, "stuck", true).await?;
    stuck.subscribe("pp/0", QoS::AtLeastOnce).await?;
    // ...partition 1's to one that does (and notes what it got).
    let (mut fine, _) = RawClient::connect(addr, Version::V5, "fine", true).await?;
    fine.subscribe("pp/1", QoS::AtLeastOnce).await?;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, i64)>::new()));
    let seen2 = seen.clone();
    let reader = tokio::spawn(async move {
        while let Ok(p) = fine.recv_publish().await {
            seen2.lock().unwrap().push(value_at(&p.payload));
        }
    });
    // The same keys twice: each key's records land on the same partition both times.
    let batch = |tag: &str| -> Vec<Rec> {
        (0..10)
            .map(|i| (Some(format!("k{i}")), format!("{tag}{i}"), vec![]))
            .collect()
    };
    produce_async(&k, "pp-in", batch("a")).await;
    // Partition 0's first record was read and waits for a PUBACK that never comes.
    let stuck_at = match stuck.recv().await? {
        Packet::Publish(p) => value_at(&p.payload).1,
        other => anyhow::bail!("expected PUBLISH, got {other:?}"),
    };
    // Records of partition 1 read after it are delivered and committed all the same.
    produce_async(&k, "pp-in", batch("b")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (offsets, last) = loop {
        let (a, b, last) = {
            let seen = seen.lock().unwrap();
            let n = |tag: &str| seen.iter().filter(|(v, _)| v.starts_with(tag)).count();
            (n("a"), n("b"), seen.iter().map(|(_, o)| *o).max())
        };
        let b2 = k.bootstrap.clone();
        let offsets =
            tokio::task::spawn_blocking(move || committed(&b2, "pp-group", "pp-in")).await?;
        let at1 = offsets.iter().find(|(p, _)| *p == 1).and_then(|x| x.1);
        let done = a > 0 && b == a && at1.is_some() && at1 == last.map(|o| o + 1);
        if done || tokio::time::Instant::now() > deadline {
            break (offsets, last);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let at = |n: i32| offsets.iter().find(|(p, _)| *p == n).and_then(|x| x.1);
    assert_eq!(
        at(1),
        last.map(|o| o + 1),
        "partition 1 committed past the last record its subscriber got: {offsets:?}, {:?}",
        seen.lock().unwrap()
    );
    assert!(
        at(0).is_none_or(|o| o <= stuck_at),
        "partition 0 is held back by its undelivered record at {stuck_at}: {offsets:?}"
    );
    drop(stuck);
    g.stop().await;
    reader.abort();
    Ok(())
}

const BURST: &str = r#"
[mqtt]
max_queued_messages = 20
[sources.kafka.burst]
connector = "local"
topics = ["burst"]
offset_reset = "earliest"
mqtt_topic = "burst/${key}"
qos = 0
"#;

/// A QoS 0 source much faster than its subscriber: the subscriber's full queue holds the
/// source (`mqtt.queue_full = "backpressure"`), so nothing is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_slows_the_source_instead_of_losing_records() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("burst", 1);
    let (g, addr) = source_gateway(BURST, &k.bootstrap).await;
    let (mut c, _) = RawClient::connect(addr, Version::V5, "slow", true).await?;
    c.subscribe("burst/#", QoS::AtMostOnce).await?;
    const N: usize = 2_000;
    let body = "x".repeat(500);
    let records: Vec<_> = (0..N)
        .map(|i| (Some("k".to_string()), format!("{i:05}{body}"), vec![]))
        .collect();
    produce_async(&k, "burst", records).await;
    for i in 0..N {
        let m = c.recv_publish().await?;
        assert_eq!(
            &m.payload[..5],
            format!("{i:05}").as_bytes(),
            "in order, none lost"
        );
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let m = g.broker.metrics();
    assert_eq!(m.get(ferry_broker::BrokerMetric::DroppedQueueFull), 0);
    assert!(
        m.get(ferry_broker::BrokerMetric::PublishersHeld) > 0,
        "the source was held back"
    );
    g.stop().await;
    Ok(())
}
