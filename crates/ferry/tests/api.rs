//! The HTTP API against a real gateway over real sockets: runtime configuration of the seed
//! scenario (connector, action, rule) with Kafka, restart persistence, the broker views,
//! publish, the rule tester, bad input per family of endpoints, and the OpenAPI document.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use ferry::{Config, Gateway};
use ferry_kafka::testing::{TestKafka, read_records};
use ferry_mqtt::{Packet, QoS, Version};
use ferry_testkit::RawClient;
use ferry_testkit::http::{Cred, Resp, call, login_changed};
use serde_json::{Value, json};

const PWD: &str = "s3cret-Pass";

struct Api {
    g: Gateway,
    api: SocketAddr,
    mqtt: SocketAddr,
    token: String,
}

fn config(dir: &std::path::Path, extra: &str) -> Config {
    let text = format!(
        "[node]\ndata_dir = {:?}\n[api]\nbind = \"127.0.0.1:0\"\n[listeners.tcp.default]\nbind = \"127.0.0.1:0\"\n{extra}",
        dir.join("data").display().to_string()
    );
    Config::parse(&text, "test").unwrap()
}

async fn start(dir: &std::path::Path, extra: &str) -> Api {
    let g = Gateway::start(&config(dir, extra)).await.unwrap();
    let api = g.api.unwrap();
    let mqtt = g.listeners[0].1;
    let token = login_changed(api, "admin", "public", PWD).await.unwrap();
    Api {
        g,
        api,
        mqtt,
        token,
    }
}

impl Api {
    async fn req(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let text = body.map(|b| b.to_string());
        call(
            self.api,
            method,
            path,
            Cred::Bearer(&self.token),
            text.as_deref(),
        )
        .await
        .unwrap()
    }

    async fn get(&self, path: &str) -> Resp {
        self.req("GET", path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.req("POST", path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Resp {
        self.req("PUT", path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", path, None).await
    }
}

/// Publishes `n` QoS 1 messages from `client` and waits for each PUBACK.
async fn publish_qos1(addr: SocketAddr, client: &str, topic: &str, n: usize) {
    let (mut c, _) = RawClient::connect(addr, Version::V5, client, true)
        .await
        .unwrap();
    for i in 0..n {
        let payload = format!(r#"{{"vin":"{client}","seq":{i},"speed":{}}}"#, 40 + i % 50);
        let pid = (i % 60000 + 1) as u16;
        let p =
            ferry_testkit::publish_packet(topic, payload.as_bytes(), QoS::AtLeastOnce, false, pid);
        c.send(&Packet::Publish(p)).await.unwrap();
        match c.recv().await.unwrap() {
            Packet::PubAck(a) => assert!(a.code < 0x80, "PUBACK {:#x}", a.code),
            other => panic!("{other:?}"),
        }
    }
}

async fn kafka_count(k: &TestKafka, topic: &str, want: usize) -> usize {
    let (b, t) = (k.bootstrap.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || read_records(&b, &t, want, Duration::from_secs(30)))
        .await
        .unwrap()
        .len()
}

fn prom_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

async fn wait_metric(a: &Api, path: &str, key: &str, want: u64) -> Value {
    for _ in 0..200 {
        let r = a.get(path).await;
        if r.body["metrics"][key].as_u64() == Some(want) {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{path}: {key} never reached {want}: {:?}",
        a.get(path).await
    );
}

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

/// The admin password was changed before the restart: log in with the new one.
async fn start_again(dir: &std::path::Path) -> Api {
    let g = Gateway::start(&config(dir, "")).await.unwrap();
    let api = g.api.unwrap();
    let mqtt = g.listeners[0].1;
    let token = login_changed(api, "admin", PWD, PWD).await.unwrap();
    Api {
        g,
        api,
        mqtt,
        token,
    }
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
async fn clients_subscriptions_topics_retained_and_publish() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let a = start(dir.path(), "").await;
    let (mut sub, _) = RawClient::connect(a.mqtt, Version::V5, "car-1", true).await?;
    sub.subscribe("cmd/car-1/#", QoS::AtLeastOnce).await?;
    let r = a.get("/api/v5/clients?like_clientid=car").await;
    assert_eq!(r.body["meta"]["count"], 1, "{r:?}");
    let c = &r.body["data"][0];
    assert_eq!(c["clientid"], "car-1");
    assert_eq!(c["proto_ver"], 5);
    assert_eq!(c["connected"], true);
    assert_eq!(c["subscriptions_cnt"], 1);
    let r = a
        .get("/api/v5/subscriptions?match_topic=cmd/car-1/lock")
        .await;
    assert_eq!(r.body["data"][0]["topic"], "cmd/car-1/#", "{r:?}");
    let r = a.get("/api/v5/topics").await;
    assert_eq!(r.body["data"][0]["topic"], "cmd/car-1/#", "{r:?}");

    // Publish through the API, with a user property and a retained copy.
    let r = a
        .post("/api/v5/publish", json!({"topic": "cmd/car-1/lock", "payload": "bG9jaw==", "payload_encoding": "base64", "qos": 1, "retain": true, "properties": {"user_properties": {"by": "api"}}}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    match sub.recv().await? {
        Packet::Publish(m) => {
            assert_eq!(&m.payload[..], b"lock");
            assert_eq!(
                m.properties.user_properties,
                vec![("by".to_owned(), "api".to_owned())]
            );
        }
        other => panic!("{other:?}"),
    }
    let r = a.get("/api/v5/mqtt/retainer/messages").await;
    assert_eq!(r.body["data"][0]["topic"], "cmd/car-1/lock", "{r:?}");
    let r = a
        .get("/api/v5/mqtt/retainer/message/cmd%2Fcar-1%2Flock")
        .await;
    assert_eq!(r.body["payload"], "bG9jaw==", "{r:?}");
    assert_eq!(
        a.delete("/api/v5/mqtt/retainer/message/cmd%2Fcar-1%2Flock")
            .await
            .status,
        204
    );
    assert_eq!(
        a.get("/api/v5/mqtt/retainer/message/cmd%2Fcar-1%2Flock")
            .await
            .status,
        404
    );
    let r = a
        .post(
            "/api/v5/publish/bulk",
            json!([{"topic": "x", "payload": "1"}, {"topic": "y", "payload": "2"}]),
        )
        .await;
    assert_eq!(r.body[0]["reason_code"], 16, "nobody subscribed: {r:?}");

    // Kick: the MQTT 5 client hears 0x98 and its session is gone.
    assert_eq!(a.delete("/api/v5/clients/car-1").await.status, 204);
    match sub.recv().await? {
        Packet::Disconnect(d) => assert_eq!(d.code, 0x98),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.get("/api/v5/clients/car-1").await.status, 404);
    assert_eq!(a.delete("/api/v5/clients/car-1").await.status, 404);

    // Node, stats, metrics, monitor.
    let r = call(a.api, "GET", "/status", Cred::None, None).await?;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("is started"), "{r:?}");
    let r = a.get("/api/v5/stats?aggregate=true").await;
    assert!(r.body["connections.count"].is_u64(), "{r:?}");
    let r = a.get("/api/v5/metrics?aggregate=true").await;
    assert!(r.body["messages.received"].as_u64().unwrap() >= 3, "{r:?}");
    let r = a.get("/api/v5/monitor").await;
    assert!(
        !r.body.as_array().unwrap().is_empty(),
        "a sample is taken at start: {r:?}"
    );
    let r = a.get("/api/v5/monitor_current").await;
    assert!(r.body["received_msg_rate"].is_number(), "{r:?}");
    let r = a.get("/api/v5/nodes").await;
    assert_eq!(r.body[0]["node"], "ferry@127.0.0.1", "{r:?}");
    a.g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_tester_answers_output_412_or_400() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let a = start(dir.path(), "").await;
    let ctx = json!({"event_type": "message_publish", "topic": "t/1", "payload": "{\"temp\": 30}", "clientid": "c1", "qos": 1});
    let r = a.post("/api/v5/rule_test", json!({"sql": "SELECT payload.temp AS t, clientid FROM \"t/#\" WHERE payload.temp > 25", "context": ctx})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({"t": 30, "clientid": "c1"}));
    let r = a
        .post(
            "/api/v5/rule_test",
            json!({"sql": "SELECT * FROM \"t/#\" WHERE payload.temp > 35", "context": ctx}),
        )
        .await;
    assert_eq!(r.status, 412, "{r:?}");
    let r = a
        .post(
            "/api/v5/rule_test",
            json!({"sql": "SELECT * FROM \"other/#\"", "context": ctx}),
        )
        .await;
    assert_eq!(r.status, 412, "{r:?}");
    let r = a
        .post(
            "/api/v5/rule_test",
            json!({"sql": "SELECT\n  FROM \"t\"", "context": ctx}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.message().contains("line 2, column 3"), "{r:?}");
    let r = a.get("/api/v5/rule_events").await;
    let events: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(events.contains(&"$events/client_connected"), "{events:?}");
    a.g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_code_and_message_with_the_right_status() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let a = start(dir.path(), "").await;
    let raw = |m: &'static str, p: &'static str, b: &'static str| {
        let (api, t) = (a.api, a.token.clone());
        async move { call(api, m, p, Cred::Bearer(&t), Some(b)).await.unwrap() }
    };
    for (method, path) in [
        ("POST", "/api/v5/rules"),
        ("POST", "/api/v5/connectors"),
        ("POST", "/api/v5/actions"),
        ("POST", "/api/v5/sources"),
        ("POST", "/api/v5/publish"),
        ("POST", "/api/v5/rule_test"),
        ("POST", "/api/v5/connectors_probe"),
    ] {
        let r = raw(method, path, "{not json").await;
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert_eq!(r.code(), "BAD_REQUEST", "{path}: {r:?}");
        assert!(!r.message().is_empty());
    }
    let big = format!(
        "{{\"topic\":\"t\",\"payload\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    let r = call(
        a.api,
        "POST",
        "/api/v5/publish",
        Cred::Bearer(&a.token),
        Some(&big),
    )
    .await?;
    assert_eq!(r.status, 413, "{}", r.text.len());
    let r = call(a.api, "GET", "/api/v5/clients", Cred::None, None).await?;
    assert_eq!(r.status, 401);
    assert!(
        r.message().contains("Bearer") && r.message().contains("Basic"),
        "{r:?}"
    );
    for (path, status) in [
        ("/api/v5/clients?page=0", 400),
        ("/api/v5/clients?limit=100000", 400),
        ("/api/v5/clients?conn_state=sleeping", 400),
        ("/api/v5/subscriptions?qos=7", 400),
        ("/api/v5/mqtt/retainer/messages?topic=a/%23/b", 400),
        ("/api/v5/clients/nobody", 404),
        ("/api/v5/rules/nope", 404),
        ("/api/v5/actions/kafka_producer:nope/metrics", 404),
        ("/api/v5/sources/nope", 404),
        ("/api/v5/connectors/mysql:x", 400),
        ("/api/v5/no/such/thing", 404),
    ] {
        let r = a.get(path).await;
        assert_eq!(r.status, status, "{path}: {r:?}");
        assert!(!r.code().is_empty(), "{path}: {r:?}");
    }
    for body in [
        json!({"topic": "a/+", "payload": "x"}),
        json!({"topic": "a", "qos": 3}),
        json!({"topic": "a", "payload": "!!", "payload_encoding": "base64"}),
        json!({"topic": "a", "payload_encoding": "hex"}),
    ] {
        let r = a.post("/api/v5/publish", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
    }
    let r = a
        .post(
            "/api/v5/connectors",
            json!({"type": "kafka_producer", "name": "c", "bootstrap_hosts": "nohost"}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.message().contains("connectors.kafka.c.bootstrap_hosts"),
        "{r:?}"
    );
    let r = a.post("/api/v5/sources", json!({"type": "kafka_consumer", "name": "s", "connector": "none", "mqtt_topic": "x", "qos": 5})).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.body["problems"].as_array().unwrap().len() >= 2,
        "every problem at once: {r:?}"
    );
    let r = a.put("/api/v5/actions/nope/enable/maybe", json!({})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = a
        .post(
            "/api/v5/rules",
            json!({"id": "bad name!", "sql": "SELECT * FROM \"t\""}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    // The broker is unharmed.
    let (mut c, _) = RawClient::connect(a.mqtt, Version::V5, "still-fine", true).await?;
    c.subscribe("x", QoS::AtMostOnce).await?;
    a.g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_and_tests_rules_but_changes_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let a = start(dir.path(), "").await;
    let r = a
        .post("/api/v5/users", json!({"username": "watcher", "password": "View-0nly!", "role": "viewer", "description": "ops"}))
        .await;
    assert!(r.status == 200 || r.status == 201, "{r:?}");
    let t = login_changed(a.api, "watcher", "View-0nly!", "View-0nly!").await?;
    let as_viewer = |m: &'static str, p: &'static str, b: Option<Value>| {
        let (api, t) = (a.api, t.clone());
        async move {
            let text = b.map(|b| b.to_string());
            call(api, m, p, Cred::Bearer(&t), text.as_deref())
                .await
                .unwrap()
        }
    };
    assert_eq!(as_viewer("GET", "/api/v5/rules", None).await.status, 200);
    assert_eq!(as_viewer("GET", "/api/v5/clients", None).await.status, 200);
    let r = as_viewer(
        "POST",
        "/api/v5/rule_test",
        Some(json!({"sql": "SELECT 1 AS one FROM \"t\"", "context": {"topic": "t"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    for (m, p, b) in [
        (
            "POST",
            "/api/v5/rules",
            Some(json!({"id": "x", "sql": "SELECT * FROM \"t\""})),
        ),
        ("POST", "/api/v5/publish", Some(json!({"topic": "t"}))),
        ("DELETE", "/api/v5/clients/x", None),
        ("DELETE", "/api/v5/mqtt/retainer/messages", None),
        (
            "POST",
            "/api/v5/connectors_probe",
            Some(json!({"bootstrap_hosts": "127.0.0.1:9"})),
        ),
    ] {
        let r = as_viewer(m, p, b).await;
        assert_eq!(r.status, 403, "{m} {p}: {r:?}");
        assert_eq!(r.code(), "FORBIDDEN");
    }
    a.g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_from_the_bootstrap_file_drives_the_api() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "# scripts\nci-bot:Ci-Secret-123\n")?;
    let cfg = format!("[api]\nbootstrap_file = {:?}\n", keys.display().to_string());
    // The [api] section of `config` comes first; give the bootstrap file through a patch.
    let mut c = config(dir.path(), "");
    c.api.bootstrap_file = Config::parse(&cfg, "t")?.api.bootstrap_file;
    c.api.metrics_auth = true;
    let g = Gateway::start(&c).await?;
    let api = g.api.unwrap();
    let r = call(
        api,
        "POST",
        "/api/v5/rules",
        Cred::Basic("ci-bot", "Ci-Secret-123"),
        Some(&json!({"id": "r", "sql": "SELECT * FROM \"t\""}).to_string()),
    )
    .await?;
    assert_eq!(r.status, 201, "{r:?}");
    let r = call(
        api,
        "GET",
        "/api/v5/rules/r",
        Cred::Basic("ci-bot", "wrong"),
        None,
    )
    .await?;
    assert_eq!(r.status, 401, "{r:?}");
    // With metrics_auth, Prometheus must authenticate too.
    let r = call(api, "GET", "/metrics", Cred::None, None).await?;
    assert_eq!(r.status, 401, "{r:?}");
    let key = Cred::Basic("ci-bot", "Ci-Secret-123");
    let r = call(api, "GET", "/metrics", key, None).await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.text.contains("ferry_rule_matched_total{rule=\"r\"} 0"),
        "{}",
        r.text
    );
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid_and_lists_every_route() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let a = start(dir.path(), "").await;
    let r = call(a.api, "GET", "/api-docs/swagger.json", Cred::None, None).await?;
    assert_eq!(r.status, 200);
    let doc = &r.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/status",
        "/metrics",
        "/api/v5/prometheus/stats",
        "/api/v5/login",
        "/api/v5/logout",
        "/api/v5/users",
        "/api/v5/users/{username}/change_pwd",
        "/api/v5/api_key",
        "/api/v5/nodes",
        "/api/v5/stats",
        "/api/v5/metrics",
        "/api/v5/monitor",
        "/api/v5/monitor_current",
        "/api/v5/clients",
        "/api/v5/clients/{clientid}",
        "/api/v5/clients/{clientid}/subscriptions",
        "/api/v5/subscriptions",
        "/api/v5/topics",
        "/api/v5/mqtt/retainer/messages",
        "/api/v5/mqtt/retainer/message/{topic}",
        "/api/v5/publish",
        "/api/v5/publish/bulk",
        "/api/v5/rules",
        "/api/v5/rules/{id}",
        "/api/v5/rules/{id}/metrics",
        "/api/v5/rule_test",
        "/api/v5/rule_events",
        "/api/v5/connectors",
        "/api/v5/connectors/{id}",
        "/api/v5/connectors_probe",
        "/api/v5/actions",
        "/api/v5/actions/{id}",
        "/api/v5/actions/{id}/metrics",
        "/api/v5/sources",
        "/api/v5/sources/{id}",
        "/api/v5/sources/{id}/metrics",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    // Every operation has responses, and every $ref resolves.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
    for (p, item) in paths {
        for (m, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{m} {p} has no responses"
            );
        }
    }
    // Every route the server answers is documented: an undocumented path would 404 here.
    for p in paths.keys() {
        let concrete = p
            .replace("{clientid}", "x")
            .replace("{id}", "x")
            .replace("{topic}", "x")
            .replace("{username}", "admin")
            .replace("{node}", "x")
            .replace("{name}", "x")
            .replace("{enable}", "true");
        let r = a.get(&concrete).await;
        assert!(
            r.status != 404 || !r.message().starts_with("no such path"),
            "{p} is documented but not routed"
        );
    }
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
