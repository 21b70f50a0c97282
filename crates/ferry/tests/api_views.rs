//! The HTTP API's views and checks against a real gateway: clients, subscriptions, topics,
//! retained messages, publish, the rule tester, bad input per family of endpoints, roles,
//! API keys and the OpenAPI document.
#![allow(clippy::unwrap_used)]

mod common;

use common::api::*;
use ferry::{Config, Gateway};
use ferry_mqtt::{Packet, QoS, Version};
use ferry_testkit::RawClient;
use ferry_testkit::http::{Cred, call, login_changed};
use serde_json::{Value, json};

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
