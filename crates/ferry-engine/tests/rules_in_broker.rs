//! Rules attached to a running broker, driven over real TCP: republish, console, events,
//! FOREACH fan-out, loops, metrics.
#![allow(clippy::unwrap_used)]

use ferry_metrics::RuleMetric;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_broker::Hook;
use ferry_engine::{Console, RuleEngine, RuleRuntime, RulesConfig};
use ferry_mqtt::{Packet, QoS, Version};
use ferry_rules::Rule;
use ferry_testkit::{RawClient, TestBroker, wait_until};

fn rules(toml_text: &str) -> RulesConfig {
    #[derive(serde::Deserialize)]
    struct Wrap {
        rules: RulesConfig,
    }
    toml::from_str::<Wrap>(toml_text).unwrap().rules
}

async fn with_rules(toml_text: &str) -> (TestBroker, Arc<RuleEngine>) {
    let b = TestBroker::start().await;
    let engine = Arc::new(
        RuleEngine::build(&rules(toml_text), &b.broker, &HashMap::new(), &|_| false).unwrap(),
    );
    let hook: Arc<dyn Hook> = engine.clone();
    b.broker
        .install_hooks(vec![hook])
        .map_err(|_| "hooks")
        .unwrap();
    (b, engine)
}

fn metrics(e: &RuleEngine, name: &str) -> Arc<ferry_metrics::RuleStats> {
    e.metrics().into_iter().find(|(n, _)| n == name).unwrap().1
}

#[tokio::test]
async fn republish_with_where_and_templates() -> anyhow::Result<()> {
    let (b, engine) = with_rules(
        r#"
        [rules.hot]
        sql = 'SELECT payload.temp as temp, clientid FROM "sensors/#" WHERE temp > 25'
        actions = [{ function = "republish", args = { topic = "alerts/${clientid}", payload = '{"t": ${temp}}', qos = 1 } }]
        "#,
    )
    .await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "watcher", true).await?;
    sub.subscribe("alerts/#", QoS::AtLeastOnce).await?;
    let (mut dev, _) = RawClient::connect(b.addr, Version::V5, "dev-7", true).await?;
    for (i, t) in [20, 30, 26].into_iter().enumerate() {
        dev.publish(
            "sensors/room1",
            format!("{{\"temp\": {t}}}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            i as u16 + 1,
        )
        .await?;
        dev.recv().await?;
    }
    dev.publish("sensors/room1", b"not json", QoS::AtMostOnce, false, 0)
        .await?;
    for want in ["{\"t\": 30}", "{\"t\": 26}"] {
        let m = sub.recv_publish().await?;
        assert_eq!(
            (m.topic.as_str(), std::str::from_utf8(&m.payload)?, m.qos),
            ("alerts/dev-7", want, QoS::AtLeastOnce)
        );
    }
    wait_until("metrics", Duration::from_secs(5), || {
        metrics(&engine, "hot").get(RuleMetric::Matched) == 4
    })
    .await;
    let m = metrics(&engine, "hot");
    assert_eq!(
        (
            m.get(RuleMetric::Passed),
            m.get(RuleMetric::FailedNoResult),
            m.get(RuleMetric::ActionsSuccess),
            m.get(RuleMetric::PayloadNotJson)
        ),
        (2, 2, 2, 1),
        "{m:?}"
    );
    // The engine counts into the broker's registry: the same numbers in JSON and Prometheus.
    let json = b.broker.registry().find_rule("hot").unwrap().json();
    assert_eq!((json["matched"], json["passed"], json["failed"]), (4, 2, 2));
    let text = b.broker.registry().encode_prometheus(&[]);
    assert!(
        text.contains("ferry_rule_matched_total{rule=\"hot\"} 4"),
        "{text}"
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn user_properties_and_defaults_pass_through_republish() -> anyhow::Result<()> {
    let (b, _engine) = with_rules(
        r#"
        [rules.copy]
        sql = 'SELECT * FROM "in/#"'
        actions = [{ function = "republish", args = { topic = "out/${topic}", retain = "${flags.retain}" } }]
        "#,
    )
    .await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "s", true).await?;
    sub.subscribe("out/#", QoS::AtMostOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    let mut m = ferry_testkit::publish_packet("in/x", b"raw-bytes", QoS::AtMostOnce, false, 0);
    m.properties.user_properties = vec![("k".into(), "v".into())];
    p.send(&Packet::Publish(m)).await?;
    let got = sub.recv_publish().await?;
    assert_eq!(got.topic, "out/in/x");
    assert_eq!(
        &got.payload[..],
        b"raw-bytes",
        "default payload is the original payload"
    );
    assert_eq!(
        got.properties.user_properties,
        vec![("k".to_string(), "v".to_string())]
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn foreach_republishes_one_message_per_element() -> anyhow::Result<()> {
    let (b, _engine) = with_rules(
        r#"
        [rules.split]
        sql = 'FOREACH payload.sensors as s DO s.name as name, s.v as v INCASE s.v > 0 FROM "batch/#"'
        actions = [{ function = "republish", args = { topic = "one/${name}", payload = "${v}" } }]
        "#,
    )
    .await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "s", true).await?;
    sub.subscribe("one/#", QoS::AtMostOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    p.publish(
        "batch/1",
        br#"{"sensors": [{"name": "a", "v": 1}, {"name": "b", "v": 0}, {"name": "c", "v": 3}]}"#,
        QoS::AtMostOnce,
        false,
        0,
    )
    .await?;
    let a = sub.recv_publish().await?;
    let c = sub.recv_publish().await?;
    assert_eq!((a.topic.as_str(), &a.payload[..]), ("one/a", &b"1"[..]));
    assert_eq!((c.topic.as_str(), &c.payload[..]), ("one/c", &b"3"[..]));
    sub.expect_silence(Duration::from_millis(200)).await?;
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn client_and_session_events_trigger_rules() -> anyhow::Result<()> {
    let (b, _engine) = with_rules(
        r#"
        [rules.conn]
        sql = 'SELECT clientid, event, proto_ver FROM "$events/client_connected", "$events/client_disconnected"'
        actions = [{ function = "republish", args = { topic = "ev/${event}", payload = "${clientid}:${proto_ver}" } }]
        [rules.subs]
        sql = 'SELECT clientid, topic as t FROM "$events/session_subscribed" WHERE t =~ "cmd/#"'
        actions = [{ function = "republish", args = { topic = "ev/sub", payload = "${clientid}>${t}" } }]
        "#,
    )
    .await;
    let (mut watch, _) = RawClient::connect(b.addr, Version::V5, "watch", true).await?;
    watch.subscribe("ev/#", QoS::AtMostOnce).await?;
    let (mut dev, _) = RawClient::connect(b.addr, Version::V311, "dev-1", true).await?;
    let m = watch.recv_publish().await?;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("ev/client.connected", &b"dev-1:4"[..])
    );
    dev.subscribe("cmd/dev-1", QoS::AtLeastOnce).await?;
    dev.subscribe("other", QoS::AtLeastOnce).await?;
    let m = watch.recv_publish().await?;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("ev/sub", &b"dev-1>cmd/dev-1"[..])
    );
    dev.disconnect().await?;
    let m = watch.recv_publish().await?;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("ev/client.disconnected", &b"dev-1:4"[..])
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn message_delivered_acked_and_dropped_events() -> anyhow::Result<()> {
    let (b, _engine) = with_rules(
        r#"
        [rules.msg]
        sql = 'SELECT event, clientid, reason FROM "$events/message_acked", "$events/message_dropped"'
        actions = [{ function = "republish", args = { topic = "audit", payload = "${event}|${clientid}|${reason}" } }]
        "#,
    )
    .await;
    let (mut audit, _) = RawClient::connect(b.addr, Version::V5, "audit", true).await?;
    audit.subscribe("audit", QoS::AtMostOnce).await?;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "sub", true).await?;
    sub.subscribe("data", QoS::AtLeastOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "pub", true).await?;
    p.publish("data", b"x", QoS::AtLeastOnce, false, 1).await?;
    sub.recv_publish().await?; // sends PUBACK
    let m = audit.recv_publish().await?;
    // message.acked has no `reason`: EMQX renders a missing binding as "undefined".
    assert_eq!(&m.payload[..], b"message.acked|sub|undefined");
    p.publish("nobody-listens", b"x", QoS::AtMostOnce, false, 0)
        .await?;
    let m = audit.recv_publish().await?;
    assert_eq!(&m.payload[..], b"message.dropped|pub|no_subscribers");
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_republish_loop_is_cut_and_counted() -> anyhow::Result<()> {
    let (b, engine) = with_rules(
        r#"
        [rules.loop]
        sql = 'SELECT * FROM "loop/#"'
        actions = [{ function = "republish", args = { topic = "loop/again" } }]
        "#,
    )
    .await;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    p.publish("loop/start", b"x", QoS::AtLeastOnce, false, 1)
        .await?;
    assert!(
        matches!(p.recv().await?, Packet::PubAck(_)),
        "the publisher is not stuck"
    );
    let m = metrics(&engine, "loop");
    assert_eq!(m.get(RuleMetric::ActionsFailed), 1, "{m:?}");
    assert_eq!(m.get(RuleMetric::ActionsSuccess), 8, "{m:?}");
    b.stop().await;
    Ok(())
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn console_action_prints_each_output() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let buf = Buf::default();
    let rule = Rule::compile("SELECT clientid, payload.n as n FROM \"c/#\"").unwrap();
    let rt = RuleRuntime {
        name: "dbg".into(),
        actions: vec![Arc::new(Console::to(Box::new(buf.clone())))],
        metrics: Default::default(),
    };
    let engine: Arc<dyn Hook> = Arc::new(RuleEngine::from_rules(vec![(rule, rt)]));
    b.broker
        .install_hooks(vec![engine])
        .map_err(|_| "hooks")
        .unwrap();
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p1", true).await?;
    p.publish("c/1", br#"{"n": 5}"#, QoS::AtLeastOnce, false, 1)
        .await?;
    p.recv().await?;
    // The console writes on a thread of its own: wait for the line.
    let want = "[rule action] dbg\n\tAction Data: {\"clientid\":\"p1\",\"n\":5}\n";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = String::from_utf8(buf.0.lock().unwrap().clone())?;
        if text.len() >= want.len() || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(text, want);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn disabled_rules_do_not_run() -> anyhow::Result<()> {
    let (b, engine) = with_rules(
        r#"
        [rules.off]
        sql = 'SELECT * FROM "t/#"'
        enable = false
        "#,
    )
    .await;
    assert!(engine.is_empty());
    b.stop().await;
    Ok(())
}
