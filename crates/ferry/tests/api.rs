//! The HTTP API against a real gateway over real sockets: runtime configuration of the seed
//! scenario (connector, action, rule, source) with Kafka, restart persistence, edits that
//! leave the rest running, dependencies, and changes that cannot be applied.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::api::*;
use ferry::Gateway;
use ferry_kafka::testing::TestKafka;
use ferry_mqtt::{Packet, QoS, Version};
use ferry_testkit::RawClient;
use ferry_testkit::http::{Cred, call};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_scenario_built_through_the_api_survives_a_restart() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("my-vehicles", 3);
    let dir = tempfile::tempdir()?;
    let a = start(dir.path(), "").await;

    // The "Test" button: a closed port is named, the real cluster answers 204.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let r = a
        .post(
            "/api/v5/connectors_probe",
            json!({"type": "kafka_producer", "name": "k", "bootstrap_hosts": closed.to_string()}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.message(), format!("connection refused: {closed}"));
    let connector = json!({"type": "kafka_producer", "name": "k", "bootstrap_hosts": k.bootstrap});
    let r = a.post("/api/v5/connectors_probe", connector.clone()).await;
    assert_eq!(r.status, 204, "{r:?}");

    let r = a.post("/api/v5/connectors", connector).await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = a
        .post(
            "/api/v5/actions",
            json!({"type": "kafka_producer", "name": "vehicles", "connector": "k",
                   "parameters": {"topic": "my-vehicles", "key": "${clientid}", "value": "${payload}"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = a
        .post(
            "/api/v5/rules",
            json!({"id": "tesla", "sql": "SELECT * FROM \"mqttx/simulate/#\"",
                   "actions": ["kafka_producer:vehicles"], "description": "seed 002"}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["from"], json!(["mqttx/simulate/#"]));

    publish_qos1(a.mqtt, "mqttx_1", "mqttx/simulate/tesla/mqttx_1", 100).await;
    assert_eq!(kafka_count(&k, "my-vehicles", 100).await, 100);
    let m = wait_metric(
        &a,
        "/api/v5/actions/kafka_producer:vehicles/metrics",
        "success",
        100,
    )
    .await;
    assert_eq!(m["metrics"]["matched"], 100, "{m}");
    assert_eq!(m["metrics"]["failed"], 0, "{m}");
    let r = a.get("/api/v5/rules/tesla/metrics").await;
    assert_eq!(r.body["metrics"]["matched"], 100, "{r:?}");
    assert_eq!(r.body["metrics"]["passed"], 100, "{r:?}");
    let prom = call(a.api, "GET", "/metrics", Cred::None, None).await?;
    assert_eq!(prom.status, 200);
    assert!(
        prom.content_type.starts_with("text/plain"),
        "{}",
        prom.content_type
    );
    assert_eq!(
        prom_value(
            &prom.text,
            "ferry_action_matched_total{action=\"vehicles\"}"
        ),
        Some(100.0),
        "{}",
        prom.text
    );
    assert_eq!(
        prom_value(
            &prom.text,
            "ferry_action_success_total{action=\"vehicles\"}"
        ),
        Some(100.0)
    );
    let seed_path = call(a.api, "GET", "/api/v5/prometheus/stats", Cred::None, None).await?;
    assert_eq!(seed_path.status, 200);
    assert!(seed_path.text.contains("ferry_action_success_total"));

    // Restart: the objects come back from the data dir and still work.
    a.g.stop().await;
    let b = start_again(dir.path()).await;
    let r = b.get("/api/v5/rules").await;
    assert_eq!(r.body["meta"]["count"], 1, "{r:?}");
    assert_eq!(r.body["data"][0]["id"], "tesla");
    let r = b.get("/api/v5/actions/kafka_producer:vehicles").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["topic"], "my-vehicles");
    let r = b.get("/api/v5/connectors/kafka_producer:k").await;
    assert_eq!(r.status, 200, "{r:?}");
    publish_qos1(b.mqtt, "mqttx_2", "mqttx/simulate/tesla/mqttx_2", 10).await;
    assert_eq!(kafka_count(&k, "my-vehicles", 110).await, 110);
    wait_metric(
        &b,
        "/api/v5/actions/kafka_producer:vehicles/metrics",
        "success",
        10,
    )
    .await;
    b.g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_one_rule_leaves_the_others_running_and_dependencies_are_guarded()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let a = start(
        dir.path(),
        "[connectors.kafka.k]\nbootstrap_hosts = \"127.0.0.1:9\"\n[actions.kafka.out]\nconnector = \"k\"\ntopic = \"t\"\n[rules.keep]\nsql = 'SELECT * FROM \"a/#\"'\nactions = [{ function = \"republish\", args = { topic = \"copied/${topic}\" } }]\n[rules.uses_kafka]\nsql = 'SELECT * FROM \"k/#\"'\nactions = [\"kafka:out\"]\n",
    )
    .await;
    let (mut sub, _) = RawClient::connect(a.mqtt, Version::V5, "sub", true).await?;
    sub.subscribe("copied/#", QoS::AtMostOnce).await?;
    let (mut p, _) = RawClient::connect(a.mqtt, Version::V5, "pub", true).await?;
    p.send(&Packet::Publish(ferry_testkit::publish_packet(
        "a/1",
        b"x",
        QoS::AtMostOnce,
        false,
        0,
    )))
    .await?;
    assert!(matches!(sub.recv().await?, Packet::Publish(m) if m.topic == "copied/a/1"));

    // A new rule and an edit of another one: "keep" goes on copying throughout.
    let r = a
        .post(
            "/api/v5/rules",
            json!({"id": "new", "sql": "SELECT * FROM \"b/#\""}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = a
        .put(
            "/api/v5/rules/new",
            json!({"sql": "SELECT * FROM \"c/#\"", "enable": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["enable"], false);
    assert_eq!(r.body["from"], json!(["c/#"]));
    let m = a.get("/api/v5/rules/keep/metrics").await;
    assert_eq!(
        m.body["metrics"]["matched"], 1,
        "keep's counters survive the swap: {m:?}"
    );
    p.send(&Packet::Publish(ferry_testkit::publish_packet(
        "a/2",
        b"y",
        QoS::AtMostOnce,
        false,
        0,
    )))
    .await?;
    assert!(matches!(sub.recv().await?, Packet::Publish(m) if m.topic == "copied/a/2"));

    // A SQL error names line and column, and nothing changes.
    let r = a
        .put("/api/v5/rules/keep", json!({"sql": "SELECT FROM \"a/#\""}))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), "BAD_REQUEST");
    assert!(
        r.message().contains("rules.keep.sql: line 1, column 8"),
        "{r:?}"
    );
    p.send(&Packet::Publish(ferry_testkit::publish_packet(
        "a/3",
        b"z",
        QoS::AtMostOnce,
        false,
        0,
    )))
    .await?;
    assert!(matches!(sub.recv().await?, Packet::Publish(m) if m.topic == "copied/a/3"));

    // Deleting what something uses: 409 naming the user, unless cascading.
    let r = a.delete("/api/v5/actions/kafka_producer:out").await;
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.message().contains("rules.uses_kafka"), "{r:?}");
    let r = a.delete("/api/v5/connectors/k").await;
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.message().contains("actions.kafka.out"), "{r:?}");
    let r = a.delete("/api/v5/connectors/k?cascade=true").await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(a.get("/api/v5/actions/out").await.status, 404);
    let r = a.get("/api/v5/rules/uses_kafka").await;
    assert_eq!(
        r.body["actions"],
        json!([]),
        "the rule lost the deleted action: {r:?}"
    );

    // Validation reports every problem with its key.
    let r = a
        .post(
            "/api/v5/actions",
            json!({"name": "bad", "connector": "nope", "topic": "${", "required_acks": "leader"}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    let problems: Vec<&str> = r.body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("actions.kafka.bad.connector")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("actions.kafka.bad.topic")),
        "{problems:?}"
    );
    let r = a
        .post(
            "/api/v5/rules",
            json!({"id": "keep", "sql": "SELECT 1 FROM \"x\""}),
        )
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    let r = a
        .post(
            "/api/v5/rules",
            json!({"id": "x", "sql": "SELECT * FROM \"x\"", "sqll": 1}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.message().contains("unknown field `sqll`"), "{r:?}");
    a.g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_created_through_the_api_delivers_and_can_be_disabled() -> anyhow::Result<()> {
    let k = TestKafka::start();
    k.create_topic("vehicle-commands", 1);
    let dir = tempfile::tempdir()?;
    let a = start(dir.path(), "").await;
    let r = a
        .post(
            "/api/v5/connectors",
            json!({"type": "kafka_consumer", "name": "local", "bootstrap_hosts": k.bootstrap}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let (mut car, _) = RawClient::connect(a.mqtt, Version::V5, "car-7", true).await?;
    car.subscribe("vehicles/car-7/commands", QoS::AtLeastOnce)
        .await?;
    let r = a
        .post(
            "/api/v5/sources",
            json!({"type": "kafka_consumer", "name": "commands", "connector": "local",
                   "parameters": {"topics": ["vehicle-commands"], "offset_reset": "earliest",
                                  "mqtt_topic": "vehicles/${key}/commands", "qos": 1, "payload": "${value}"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["type"], "kafka_consumer");
    let (b, rec) = (
        k.bootstrap.clone(),
        ferry_kafka::testing::TestRecord {
            key: Some("car-7".into()),
            value: "{\"cmd\":\"unlock\"}".into(),
            headers: Vec::new(),
        },
    );
    tokio::task::spawn_blocking(move || {
        ferry_kafka::testing::produce(&b, "vehicle-commands", &[rec])
    })
    .await?;
    let p = tokio::time::timeout(Duration::from_secs(30), car.recv_publish()).await??;
    assert_eq!(&p.payload[..], b"{\"cmd\":\"unlock\"}");
    car.send(&Packet::PubAck(ferry_mqtt::Ack::new(p.packet_id, 0)))
        .await?;
    let m = wait_metric(
        &a,
        "/api/v5/sources/kafka_consumer:commands/metrics",
        "delivered",
        1,
    )
    .await;
    assert_eq!(m["metrics"]["received"], 1, "{m}");
    assert!(m["metrics"]["lag"].is_u64(), "{m}");

    // Disabled: it stops consuming but stays configured; enabled again it resumes.
    assert_eq!(
        a.put(
            "/api/v5/sources/kafka_consumer:commands/enable/false",
            json!({})
        )
        .await
        .status,
        204
    );
    let r = a.get("/api/v5/sources/commands").await;
    assert_eq!(
        (r.body["enable"].as_bool(), r.body["status"].as_str()),
        (Some(false), Some("stopped")),
        "{r:?}"
    );
    assert_eq!(
        a.put(
            "/api/v5/sources/kafka_consumer:commands/enable/true",
            json!({})
        )
        .await
        .status,
        204
    );
    let r = a.get("/api/v5/sources/commands").await;
    assert_eq!(r.body["enable"], true, "{r:?}");
    a.g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_cannot_be_saved_is_undone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let a = start(dir.path(), "").await;
    // The overlay's directory cannot be created: a file stands where it would be.
    std::fs::write(dir.path().join("data").join("config"), b"not a directory")?;
    let r = a
        .post(
            "/api/v5/rules",
            json!({"id": "echo", "sql": "SELECT * FROM \"in/#\"",
            "actions": [{"function": "republish", "args": {"topic": "out"}}]}),
        )
        .await;
    assert_eq!(r.status, 500, "{r:?}");
    assert!(r.message().contains("cannot save the API changes"), "{r:?}");
    assert_eq!(a.get("/api/v5/rules/echo").await.status, 404);
    // And the rule does not run.
    let (mut sub, _) = RawClient::connect(a.mqtt, Version::V5, "sub", true).await?;
    sub.subscribe("out", QoS::AtMostOnce).await?;
    let (mut p, _) = RawClient::connect(a.mqtt, Version::V5, "pub", true).await?;
    p.send(&Packet::Publish(ferry_testkit::publish_packet(
        "in/1",
        b"x",
        QoS::AtMostOnce,
        false,
        0,
    )))
    .await?;
    sub.expect_silence(Duration::from_millis(300)).await?;
    a.g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlay_the_file_no_longer_fits_is_refused_at_start_naming_both() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let overlay = dir.path().join("data").join("config");
    std::fs::create_dir_all(&overlay)?;
    std::fs::write(
        overlay.join("overlay.json"),
        r#"{"actions": {"a": {"connector": "gone", "topic": "t"}}}"#,
    )?;
    let err = match Gateway::start(&config(dir.path(), "")).await {
        Ok(g) => {
            g.stop().await;
            anyhow::bail!("a gateway started with an action whose connector is missing");
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("overlay.json"), "{err}");
    assert!(err.contains("actions.kafka.a.connector"), "{err}");
    Ok(())
}
