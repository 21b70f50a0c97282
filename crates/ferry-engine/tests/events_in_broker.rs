//! The events a broker fires for rules beyond publish/connect/subscribe, driven over real
//! TCP: `client_connack` (success and refusal), `client_check_authn_complete`,
//! `client_check_authz_complete` and `delivery_dropped` (No Local, queue full), each with
//! every column EMQX documents for it.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_broker::{ClientInfo, Hook, MqttConfig};
use ferry_engine::{Action, ActionEnv, RuleEngine, RuleRuntime};
use ferry_mqtt::{Disconnect, Packet, Properties, QoS, SubOptions, Subscribe, Version};
use ferry_rules::{Event, Map, Rule, Value};
use ferry_testkit::{RawClient, TestBroker, connect_packet, wait_until};

/// Keeps every output of the rule it belongs to.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Map>>>);

impl Action for Capture {
    fn name(&self) -> &str {
        "capture"
    }
    fn run(&self, out: &Map, _env: &mut ActionEnv<'_>) -> Result<(), String> {
        self.0.lock().unwrap().push(out.clone());
        Ok(())
    }
}

impl Capture {
    fn all(&self) -> Vec<Map> {
        self.0.lock().unwrap().clone()
    }

    async fn wait_for(&self, what: &str, pred: impl Fn(&Map) -> bool) -> Map {
        wait_until(what, Duration::from_secs(5), || {
            self.all().iter().any(&pred)
        })
        .await;
        self.all().into_iter().find(|m| pred(m)).unwrap()
    }
}

fn json(text: &str) -> Value {
    Value::from_json(text.as_bytes()).unwrap()
}

fn str_of<'a>(m: &'a Map, k: &str) -> &'a str {
    match m.get(k) {
        Some(Value::Str(s)) => s,
        other => panic!("{k} is {other:?} in {m:?}"),
    }
}

/// Every column EMQX documents for `ev` is in `m`, with the right `event` value.
fn assert_documented_columns(ev: Event, m: &Map) {
    for c in ev.columns() {
        assert!(m.contains_key(*c), "{} lacks {c}: {m:?}", ev.name());
    }
    assert_eq!(str_of(m, "event"), ev.event_field());
}

/// A broker whose engine selects `*` from each of `events`, one capture per event.
async fn broker_capturing(cfg: MqttConfig, events: &[Event]) -> (TestBroker, Vec<Capture>) {
    let sqls: Vec<String> = events
        .iter()
        .map(|ev| format!("SELECT * FROM \"$events/{}\"", ev.name()))
        .collect();
    broker_with_rules(cfg, &sqls).await
}

/// A broker whose engine runs each of `sqls`, one capture per rule.
async fn broker_with_rules(cfg: MqttConfig, sqls: &[String]) -> (TestBroker, Vec<Capture>) {
    let b = TestBroker::with_config(cfg).await;
    let mut rules = Vec::new();
    let mut caps = Vec::new();
    for (i, sql) in sqls.iter().enumerate() {
        let cap = Capture::default();
        let rt = RuleRuntime {
            name: format!("r{i}"),
            actions: vec![Arc::new(cap.clone())],
            metrics: Default::default(),
        };
        rules.push((Rule::compile(sql).unwrap(), rt));
        caps.push(cap);
    }
    let engine: Arc<dyn Hook> = Arc::new(RuleEngine::from_rules(rules));
    b.broker
        .install_hooks(vec![engine])
        .map_err(|_| "hooks")
        .unwrap();
    (b, caps)
}

#[tokio::test]
async fn connack_and_authn_fire_on_every_connect_including_refusals() -> anyhow::Result<()> {
    let cfg = MqttConfig {
        max_clientid_len: 10,
        ..MqttConfig::default()
    };
    let (b, caps) = broker_capturing(
        cfg,
        &[Event::ClientConnack, Event::ClientCheckAuthnComplete],
    )
    .await;
    let (connack, authn) = (&caps[0], &caps[1]);
    let mut c = connect_packet(Version::V5, "dev-1", false);
    c.username = Some("alice".into());
    c.keep_alive = 30;
    c.properties.session_expiry_interval = Some(120);
    let mut dev = RawClient::open(b.addr, Version::V5).await?;
    assert_eq!(dev.handshake(c).await?.code, 0);

    let m = connack
        .wait_for("connack", |m| str_of(m, "clientid") == "dev-1")
        .await;
    assert_documented_columns(Event::ClientConnack, &m);
    assert_eq!(str_of(&m, "reason_code"), "success");
    assert_eq!(str_of(&m, "username"), "alice");
    assert_eq!(str_of(&m, "proto_name"), "MQTT");
    assert_eq!(m["proto_ver"], Value::Int(5));
    assert_eq!(m["keepalive"], Value::Int(30));
    assert_eq!(m["clean_start"], Value::Bool(false));
    assert_eq!(m["expiry_interval"], Value::Int(120));
    assert!(str_of(&m, "peername").starts_with("127.0.0.1:"));
    assert_eq!(str_of(&m, "sockname"), b.addr.to_string());
    assert!(matches!(m["connected_at"], Value::Int(t) if t > 0));
    // EMQX's `conn_props`: the CONNECT's properties under their names.
    assert_eq!(
        m["conn_props"],
        json(r#"{"Session-Expiry-Interval": 120, "User-Property": {}}"#)
    );
    assert_eq!(str_of(&m, "node"), "ferry@127.0.0.1");

    let m = authn
        .wait_for("authn", |m| str_of(m, "clientid") == "dev-1")
        .await;
    assert_documented_columns(Event::ClientCheckAuthnComplete, &m);
    assert_eq!(str_of(&m, "reason_code"), "success");
    assert_eq!(m["is_anonymous"], Value::Bool(true));
    assert_eq!(m["is_superuser"], Value::Bool(false));

    // A refused CONNECT gets its CONNACK event too, with EMQX's reason name.
    let mut bad = RawClient::open(b.addr, Version::V311).await?;
    let ack = bad
        .handshake(connect_packet(Version::V311, "much-too-long-id", true))
        .await?;
    assert_ne!(ack.code, 0);
    let m = connack
        .wait_for("refused connack", |m| {
            str_of(m, "clientid") == "much-too-long-id"
        })
        .await;
    assert_documented_columns(Event::ClientConnack, &m);
    assert_eq!(str_of(&m, "reason_code"), "client_identifier_not_valid");
    assert_eq!(m["proto_ver"], Value::Int(4));
    assert_eq!(m["username"], Value::Null);
    assert_eq!(m["conn_props"], json(r#"{"User-Property": {}}"#));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn authz_fires_on_publish_and_subscribe_with_the_default_source() -> anyhow::Result<()> {
    let (b, caps) =
        broker_capturing(MqttConfig::default(), &[Event::ClientCheckAuthzComplete]).await;
    let (mut dev, _) = RawClient::connect(b.addr, Version::V5, "dev-2", true).await?;
    dev.subscribe("cmd/#", QoS::AtLeastOnce).await?;
    dev.publish("up/1", b"x", QoS::AtMostOnce, false, 0).await?;
    let sub = caps[0]
        .wait_for("subscribe", |m| str_of(m, "action") == "subscribe")
        .await;
    assert_documented_columns(Event::ClientCheckAuthzComplete, &sub);
    assert_eq!(
        (
            str_of(&sub, "clientid"),
            str_of(&sub, "topic"),
            str_of(&sub, "result"),
            str_of(&sub, "authz_source"),
            str_of(&sub, "peerhost"),
        ),
        ("dev-2", "cmd/#", "allow", "default", "127.0.0.1")
    );
    let publ = caps[0]
        .wait_for("publish", |m| str_of(m, "action") == "publish")
        .await;
    assert_documented_columns(Event::ClientCheckAuthzComplete, &publ);
    assert_eq!(
        (str_of(&publ, "topic"), str_of(&publ, "result")),
        ("up/1", "allow")
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn delivery_dropped_for_no_local_and_a_full_queue() -> anyhow::Result<()> {
    let cfg = MqttConfig {
        max_queued_messages: 1,
        ..MqttConfig::default()
    };
    let (b, caps) = broker_capturing(cfg, &[Event::DeliveryDropped]).await;
    let dropped = &caps[0];

    // No Local: a client's own message is not delivered back to it.
    let (mut dev, _) = RawClient::connect(b.addr, Version::V5, "dev-3", true).await?;
    let opts = SubOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        ..Default::default()
    };
    dev.subscribe_with("echo/#", opts, None).await?;
    let mut p = ferry_testkit::publish_packet("echo/1", b"{\"n\":1}", QoS::AtLeastOnce, true, 1);
    p.properties.user_properties = vec![("k".into(), "v".into())];
    dev.send(&ferry_mqtt::Packet::Publish(p)).await?;
    let m = dropped
        .wait_for("no_local", |m| str_of(m, "reason") == "no_local")
        .await;
    assert_documented_columns(Event::DeliveryDropped, &m);
    assert_eq!(
        (
            str_of(&m, "clientid"),
            str_of(&m, "from_clientid"),
            str_of(&m, "topic"),
            str_of(&m, "payload"),
        ),
        ("dev-3", "dev-3", "echo/1", "{\"n\":1}")
    );
    assert_eq!(m["qos"], Value::Int(1));
    let Value::Map(flags) = &m["flags"] else {
        panic!("flags {m:?}")
    };
    assert_eq!(flags["retain"], Value::Bool(true));
    assert_eq!(flags["dup"], Value::Bool(false));
    let Value::Map(props) = &m["pub_props"] else {
        panic!("pub_props {m:?}")
    };
    assert_eq!(
        props["User-Property"],
        Value::Map(Map::from_iter([("k".to_owned(), Value::from("v"))]))
    );
    assert!(str_of(&m, "peername").starts_with("127.0.0.1:"));
    assert!(matches!(m["publish_received_at"], Value::Int(t) if t > 0));

    // Queue full: an offline session keeps one message; the older one is dropped.
    let mut c = connect_packet(Version::V5, "off", false);
    c.properties.session_expiry_interval = Some(300);
    let mut off = RawClient::open(b.addr, Version::V5).await?;
    off.handshake(c).await?;
    off.subscribe("q", QoS::AtLeastOnce).await?;
    off.disconnect().await?;
    wait_until("offline", Duration::from_secs(5), || {
        b.broker
            .clients()
            .iter()
            .any(|c| &*c.client.client_id == "off" && !c.connected)
    })
    .await;
    for (i, body) in [&b"first"[..], b"second"].into_iter().enumerate() {
        dev.publish("q", body, QoS::AtLeastOnce, false, 10 + i as u16)
            .await?;
        dev.recv().await?;
    }
    let m = dropped
        .wait_for("queue_full", |m| str_of(m, "reason") == "queue_full")
        .await;
    assert_documented_columns(Event::DeliveryDropped, &m);
    assert_eq!(
        (
            str_of(&m, "clientid"),
            str_of(&m, "from_clientid"),
            str_of(&m, "payload")
        ),
        ("off", "dev-3", "first")
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn every_event_has_the_columns_emqx_documents() -> anyhow::Result<()> {
    let events = [
        Event::ClientConnected,
        Event::ClientDisconnected,
        Event::SessionSubscribed,
        Event::SessionUnsubscribed,
        Event::MessageDelivered,
        Event::MessageAcked,
        Event::MessageDropped,
    ];
    let (b, caps) = broker_capturing(MqttConfig::default(), &events).await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "sub", true).await?;
    sub.subscribe("d", QoS::AtLeastOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "pub", true).await?;
    p.publish("d", b"x", QoS::AtLeastOnce, false, 1).await?;
    sub.recv_publish().await?;
    p.publish("nobody", b"x", QoS::AtMostOnce, false, 0).await?;
    sub.send(&ferry_mqtt::Packet::Unsubscribe(ferry_mqtt::Unsubscribe {
        packet_id: 7,
        filters: vec!["d".into()],
        properties: Default::default(),
    }))
    .await?;
    sub.recv().await?;
    sub.disconnect().await?;
    for (ev, cap) in events.iter().zip(&caps) {
        let m = cap.wait_for(ev.name(), |_| true).await;
        assert_documented_columns(*ev, &m);
        if matches!(ev, Event::MessageDelivered | Event::MessageAcked) {
            assert!(str_of(&m, "peername").starts_with("127.0.0.1:"), "{m:?}");
            assert_eq!(str_of(&m, "from_clientid"), "pub");
        }
    }
    b.stop().await;
    Ok(())
}

/// Refuses the username "eve" with "bad username or password"; no opinion on others.
#[derive(Debug)]
struct RefuseEve;

impl ferry_broker::Authenticator for RefuseEve {
    fn authenticate<'a>(
        &'a self,
        client: &'a ClientInfo,
        _password: Option<&'a [u8]>,
    ) -> ferry_broker::AuthnFuture<'a> {
        let decision = if client.username.as_deref() == Some("eve") {
            ferry_broker::AuthnDecision::Deny(0x86)
        } else {
            ferry_broker::AuthnDecision::Ignore
        };
        Box::pin(async move {
            ferry_broker::AuthnOutcome {
                decision,
                source: "test",
            }
        })
    }
    fn is_empty(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn authn_and_authz_events_report_the_real_results_and_sources() -> anyhow::Result<()> {
    use ferry_broker::acl::{AclRuleConfig, ActionSel, AuthorizationConfig, Permission};
    let (b, caps) = broker_capturing(
        MqttConfig::default(),
        &[
            Event::ClientCheckAuthnComplete,
            Event::ClientCheckAuthzComplete,
        ],
    )
    .await;
    b.broker.set_authentication(ferry_broker::Authentication {
        allow_anonymous: true,
        chain: Some(Arc::new(RefuseEve)),
    });
    let acl = AuthorizationConfig {
        rules: vec![AclRuleConfig {
            permission: Permission::Deny,
            username: None,
            clientid: None,
            ipaddr: None,
            action: ActionSel::Subscribe,
            qos: None,
            retain: None,
            topics: vec!["secret/#".into()],
        }],
        ..AuthorizationConfig::default()
    };
    b.broker
        .set_acl(acl.compile().map_err(|e| anyhow::anyhow!("{e:?}"))?);
    let mut c = connect_packet(Version::V5, "eve-1", true);
    c.username = Some("eve".into());
    let mut eve = RawClient::open(b.addr, Version::V5).await?;
    assert_eq!(eve.handshake(c).await?.code, 0x86);
    let m = caps[0]
        .wait_for("authn refused", |m| str_of(m, "clientid") == "eve-1")
        .await;
    assert_eq!(str_of(&m, "reason_code"), "bad_username_or_password");
    assert_eq!(m["is_anonymous"], Value::Bool(false));

    let (mut dev, _) = RawClient::connect(b.addr, Version::V5, "dev-3", true).await?;
    assert_eq!(
        dev.subscribe("secret/x", QoS::AtMostOnce).await?,
        vec![0x87]
    );
    assert_eq!(
        dev.subscribe("secret/x", QoS::AtMostOnce).await?,
        vec![0x87]
    );
    assert_eq!(dev.subscribe("open/x", QoS::AtMostOnce).await?, vec![0]);
    let authz = &caps[1];
    wait_until("three authz events", Duration::from_secs(5), || {
        authz.all().len() >= 3
    })
    .await;
    let seen: Vec<(String, String, String)> = authz
        .all()
        .iter()
        .map(|m| {
            (
                str_of(m, "topic").to_owned(),
                str_of(m, "result").to_owned(),
                str_of(m, "authz_source").to_owned(),
            )
        })
        .collect();
    let want = |t: &str, r: &str, s: &str| (t.to_owned(), r.to_owned(), s.to_owned());
    assert_eq!(
        seen,
        vec![
            want("secret/x", "deny", "file"),
            want("secret/x", "deny", "cache"),
            want("open/x", "allow", "default"),
        ]
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn connect_disconnect_subscribe_and_unsubscribe_properties_are_reported() -> anyhow::Result<()>
{
    let events = [
        Event::ClientConnected,
        Event::ClientConnack,
        Event::ClientDisconnected,
        Event::SessionSubscribed,
        Event::SessionUnsubscribed,
    ];
    let (b, caps) = broker_capturing(MqttConfig::default(), &events).await;
    let mut c = connect_packet(Version::V5, "props", true);
    c.properties.session_expiry_interval = Some(60);
    c.properties.receive_maximum = Some(10);
    c.properties.maximum_packet_size = Some(4096);
    c.properties.user_properties = vec![("region".into(), "eu".into())];
    let mut dev = RawClient::open(b.addr, Version::V5).await?;
    assert_eq!(dev.handshake(c).await?.code, 0);
    let conn_props = json(
        r#"{"Session-Expiry-Interval": 60, "Receive-Maximum": 10, "Maximum-Packet-Size": 4096,
            "User-Property": {"region": "eu"},
            "User-Property-Pairs": [{"key": "region", "value": "eu"}]}"#,
    );
    for cap in &caps[..2] {
        let m = cap
            .wait_for("connect", |m| str_of(m, "clientid") == "props")
            .await;
        assert_eq!(m["conn_props"], conn_props, "{m:?}");
    }
    // EMQX's client attributes: Ferry configures none, so an empty map.
    let m = caps[0].wait_for("connected", |_| true).await;
    assert_documented_columns(Event::ClientConnected, &m);
    assert_eq!(m["client_attrs"], Value::Map(Map::new()));

    let sub_props = Properties {
        subscription_identifiers: vec![7],
        user_properties: vec![("why".into(), "telemetry".into())],
        ..Default::default()
    };
    let opts = SubOptions {
        qos: QoS::AtLeastOnce,
        ..Default::default()
    };
    dev.send(&Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![("s/#".into(), opts)],
        properties: sub_props,
    }))
    .await?;
    dev.recv().await?;
    let m = caps[3].wait_for("subscribed", |_| true).await;
    assert_documented_columns(Event::SessionSubscribed, &m);
    assert_eq!(
        m["sub_props"],
        json(
            r#"{"Subscription-Identifier": 7, "User-Property": {"why": "telemetry"},
                "User-Property-Pairs": [{"key": "why", "value": "telemetry"}]}"#
        )
    );

    dev.send(&Packet::Unsubscribe(ferry_mqtt::Unsubscribe {
        packet_id: 2,
        filters: vec!["s/#".into()],
        properties: Properties {
            user_properties: vec![("why".into(), "done".into())],
            ..Default::default()
        },
    }))
    .await?;
    dev.recv().await?;
    let m = caps[4].wait_for("unsubscribed", |_| true).await;
    assert_documented_columns(Event::SessionUnsubscribed, &m);
    assert_eq!(
        m["unsub_props"],
        json(
            r#"{"User-Property": {"why": "done"},
                "User-Property-Pairs": [{"key": "why", "value": "done"}]}"#
        )
    );

    dev.send(&Packet::Disconnect(Disconnect {
        code: 0,
        properties: Properties {
            reason_string: Some("maintenance".into()),
            user_properties: vec![("k".into(), "v".into())],
            ..Default::default()
        },
    }))
    .await?;
    let m = caps[2].wait_for("disconnected", |_| true).await;
    assert_documented_columns(Event::ClientDisconnected, &m);
    assert_eq!(str_of(&m, "reason"), "normal");
    assert_eq!(
        m["disconn_props"],
        json(
            r#"{"Reason-String": "maintenance", "User-Property": {"k": "v"},
                "User-Property-Pairs": [{"key": "k", "value": "v"}]}"#
        )
    );

    // Without properties (MQTT 3.1.1 has none) the maps have only EMQX's empty
    // `User-Property`.
    let (mut old, _) = RawClient::connect(b.addr, Version::V311, "old", true).await?;
    old.subscribe("o", QoS::AtMostOnce).await?;
    old.disconnect().await?;
    let m = caps[0]
        .wait_for("old", |m| str_of(m, "clientid") == "old")
        .await;
    assert_eq!(m["conn_props"], json(r#"{"User-Property": {}}"#));
    let m = caps[3]
        .wait_for("old sub", |m| str_of(m, "clientid") == "old")
        .await;
    assert_eq!(m["sub_props"], json(r#"{"User-Property": {}}"#));
    let m = caps[2]
        .wait_for("old gone", |m| str_of(m, "clientid") == "old")
        .await;
    assert_eq!(m["disconn_props"], json(r#"{"User-Property": {}}"#));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_dup_flag_of_a_publish_reaches_message_events() -> anyhow::Result<()> {
    let sqls = [
        "SELECT flags, topic FROM \"dup/#\"".to_owned(),
        "SELECT * FROM \"$events/message_delivered\"".to_owned(),
    ];
    let (b, caps) = broker_with_rules(MqttConfig::default(), &sqls).await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "dup-sub", true).await?;
    sub.subscribe("dup/#", QoS::AtLeastOnce).await?;
    let (mut dev, _) = RawClient::connect(b.addr, Version::V5, "dup-pub", true).await?;
    let mut p = ferry_testkit::publish_packet("dup/1", b"again", QoS::AtLeastOnce, false, 5);
    p.dup = true;
    dev.send(&Packet::Publish(p)).await?;
    dev.publish("dup/2", b"first", QoS::AtLeastOnce, false, 6)
        .await?;
    for (cap, what) in caps.iter().zip(["publish", "delivered"]) {
        let flags = |topic: &str| {
            let m = cap.all().into_iter().find(|m| str_of(m, "topic") == topic);
            m.map(|m| m["flags"].clone())
        };
        wait_until(what, Duration::from_secs(5), || {
            flags("dup/1").is_some() && flags("dup/2").is_some()
        })
        .await;
        let (dup, first) = (flags("dup/1").unwrap(), flags("dup/2").unwrap());
        assert_eq!(dup, json(r#"{"retain": false, "dup": true}"#), "{what}");
        assert_eq!(first, json(r#"{"retain": false, "dup": false}"#), "{what}");
    }
    // A PUBLISH without properties: EMQX's `pub_props` still has an empty `User-Property`.
    let m = caps[1]
        .wait_for("delivered dup/2", |m| str_of(m, "topic") == "dup/2")
        .await;
    assert_eq!(m["pub_props"], json(r#"{"User-Property": {}}"#));
    // The broker's own DUP flags stay its own: the first delivery is not a resend.
    assert!(!sub.recv_publish().await?.dup);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_unsupported_protocol_level_fires_client_connack() -> anyhow::Result<()> {
    let (b, caps) = broker_capturing(MqttConfig::default(), &[Event::ClientConnack]).await;
    // A 3.1.1 CONNECT with protocol level 6: EMQX reads the rest and refuses it with
    // `unsupported_protocol_version`, telling `client.connack` what it read.
    let mut c = connect_packet(Version::V311, "level-6", true);
    c.username = Some("bob".into());
    c.keep_alive = 42;
    let mut bytes = bytes::BytesMut::new();
    ferry_mqtt::encode(&Packet::Connect(Box::new(c)), Version::V311, &mut bytes)?;
    assert_eq!(&bytes[4..9], b"MQTT\x04");
    bytes[8] = 6;
    let mut dev = RawClient::open(b.addr, Version::V311).await?;
    dev.send_raw(&bytes).await?;
    match dev.recv().await? {
        Packet::ConnAck(a) => assert_eq!(a.code, 1, "3.1.1's unacceptable protocol version"),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    let m = caps[0]
        .wait_for("connack", |m| str_of(m, "clientid") == "level-6")
        .await;
    assert_documented_columns(Event::ClientConnack, &m);
    assert_eq!(str_of(&m, "reason_code"), "unsupported_protocol_version");
    assert_eq!(m["proto_ver"], Value::Int(6));
    assert_eq!(str_of(&m, "proto_name"), "MQTT");
    assert_eq!(str_of(&m, "username"), "bob");
    assert_eq!(m["keepalive"], Value::Int(42));
    assert!(str_of(&m, "peername").starts_with("127.0.0.1:"));
    assert_eq!(str_of(&m, "sockname"), b.addr.to_string());

    // Not a CONNECT that can be read: no event, as in EMQX (a frame error).
    let mut junk = RawClient::open(b.addr, Version::V311).await?;
    junk.send_raw(b"\x10\x06\x00\x04MQTT").await?;
    let _ = junk.recv_within(Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(caps[0].all().len(), 1, "{:?}", caps[0].all());
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn dropped_qos2_publishes_fire_message_dropped_with_emqx_reasons() -> anyhow::Result<()> {
    let cfg = MqttConfig {
        receive_maximum: 1,
        ..MqttConfig::default()
    };
    let (b, caps) = broker_capturing(cfg, &[Event::MessageDropped]).await;
    let dropped = &caps[0];
    let (mut dev, _) = RawClient::connect(b.addr, Version::V5, "q2", true).await?;
    let mut first = ferry_testkit::publish_packet("q2/a", b"one", QoS::ExactlyOnce, false, 1);
    first.properties.user_properties = vec![("n".into(), "1".into())];
    dev.send(&Packet::Publish(first.clone())).await?;
    assert!(matches!(dev.recv().await?, Packet::PubRec(a) if a.packet_id == 1));
    // No subscriber: the first one is dropped while routing, as EMQX does.
    dropped
        .wait_for("no_subscribers", |m| {
            str_of(m, "reason") == "no_subscribers"
        })
        .await;

    // A resend while PUBREL is awaited is acknowledged again but not routed again.
    first.dup = true;
    dev.send(&Packet::Publish(first)).await?;
    assert!(matches!(dev.recv().await?, Packet::PubRec(a) if a.packet_id == 1));
    let m = dropped
        .wait_for("inuse", |m| {
            str_of(m, "reason") == "packet_identifier_inuse"
        })
        .await;
    assert_documented_columns(Event::MessageDropped, &m);
    assert_eq!(
        (
            str_of(&m, "clientid"),
            str_of(&m, "topic"),
            str_of(&m, "payload")
        ),
        ("q2", "q2/a", "one")
    );
    assert_eq!(m["qos"], Value::Int(2));
    assert_eq!(m["flags"], json(r#"{"retain": false, "dup": true}"#));
    assert_eq!(
        m["pub_props"],
        json(
            r#"{"User-Property": {"n": "1"}, "User-Property-Pairs": [{"key": "n", "value": "1"}]}"#
        )
    );

    // A second QoS 2 message beyond the receive maximum of 1 is dropped, and the client
    // disconnected.
    dev.publish("q2/b", b"two", QoS::ExactlyOnce, false, 2)
        .await?;
    assert_eq!(dev.expect_close().await?, Some(0x93));
    let m = dropped
        .wait_for("receive max", |m| {
            str_of(m, "reason") == "receive_maximum_exceeded"
        })
        .await;
    assert_documented_columns(Event::MessageDropped, &m);
    assert_eq!(
        (str_of(&m, "topic"), str_of(&m, "payload")),
        ("q2/b", "two")
    );
    assert!(str_of(&m, "peername").starts_with("127.0.0.1:"));
    b.stop().await;
    Ok(())
}
