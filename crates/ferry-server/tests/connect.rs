//! CONNECT/CONNACK, client ids, takeover, keep alive, bad packets: over real TCP with the
//! raw client.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_broker::MqttConfig;
use ferry_mqtt::{Packet, QoS, Version, reason};
use ferry_testkit::{RawClient, TestBroker, connect_packet};

#[tokio::test]
async fn v5_connack_announces_limits_and_assigns_a_client_id() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    let ack = c.handshake(connect_packet(Version::V5, "", true)).await?;
    assert_eq!(ack.code, 0);
    let id = ack
        .properties
        .assigned_client_identifier
        .clone()
        .expect("assigned client id");
    assert!(!id.is_empty());
    assert_eq!(ack.properties.receive_maximum, Some(32));
    assert_eq!(ack.properties.topic_alias_maximum, Some(65535));
    assert_eq!(ack.properties.maximum_packet_size, Some(1024 * 1024));
    assert!(!ack.session_present);
    // A v5 client without a client id also gets one with clean start = 0.
    let mut c2 = RawClient::open(b.addr, Version::V5).await?;
    let ack2 = c2.handshake(connect_packet(Version::V5, "", false)).await?;
    assert_eq!(ack2.code, 0);
    assert_ne!(ack2.properties.assigned_client_identifier, Some(id));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn v311_empty_client_id_needs_clean_session() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut c = RawClient::open(b.addr, Version::V311).await?;
    assert_eq!(
        c.handshake(connect_packet(Version::V311, "", true))
            .await?
            .code,
        0
    );
    let mut c = RawClient::open(b.addr, Version::V311).await?;
    let ack = c
        .handshake(connect_packet(Version::V311, "", false))
        .await?;
    assert_eq!(ack.code, 0x02, "3.1.1 return code 2: identifier rejected");
    assert_eq!(c.expect_close().await?, None);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn mqtt_3_1_clients_are_served() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V31, "old-sub", true).await?;
    assert_eq!(sub.subscribe("legacy/#", QoS::AtLeastOnce).await?, vec![1]);
    let (mut publ, _) = RawClient::connect(b.addr, Version::V31, "old-pub", true).await?;
    publ.publish("legacy/x", b"v31", QoS::AtLeastOnce, false, 1)
        .await?;
    assert!(matches!(publ.recv().await?, Packet::PubAck(a) if a.packet_id == 1));
    assert_eq!(&sub.recv_publish().await?.payload[..], b"v31");
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn unsupported_protocol_level_gets_connack_0x01() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut c = RawClient::open(b.addr, Version::V311).await?;
    // CONNECT with protocol level 6.
    c.send_raw(b"\x10\x0d\x00\x04MQTT\x06\x02\x00\x3c\x00\x01a")
        .await?;
    match c.recv().await? {
        Packet::ConnAck(a) => assert_eq!(
            a.code, 0x01,
            "3.1.1 return code 1: unacceptable protocol version"
        ),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn enhanced_auth_is_refused_with_bad_authentication_method() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    let mut p = connect_packet(Version::V5, "auth", true);
    p.properties.authentication_method = Some("SCRAM-SHA-1".into());
    assert_eq!(
        c.handshake(p).await?.code,
        reason::BAD_AUTHENTICATION_METHOD
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn first_packet_must_be_connect() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut c = RawClient::open(b.addr, Version::V311).await?;
    c.send(&Packet::PingReq).await?;
    assert_eq!(c.expect_close().await?, None);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn second_connect_is_a_protocol_error() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut c, _) = RawClient::connect(b.addr, Version::V5, "twice", true).await?;
    c.send(&Packet::Connect(Box::new(connect_packet(
        Version::V5,
        "twice",
        true,
    ))))
    .await?;
    assert_eq!(c.expect_close().await?, Some(reason::PROTOCOL_ERROR));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn takeover_disconnects_the_old_connection_with_0x8e() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut old, _) = RawClient::connect(b.addr, Version::V5, "dup-id", false).await?;
    old.subscribe("t/x", QoS::AtLeastOnce).await?;
    let (mut new, ack) = RawClient::connect(b.addr, Version::V5, "dup-id", false).await?;
    assert!(
        ack.session_present,
        "the session survives a takeover with clean start 0"
    );
    assert_eq!(old.expect_close().await?, Some(reason::SESSION_TAKEN_OVER));
    // The subscription moved with the session.
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "pub", true).await?;
    p.publish("t/x", b"after takeover", QoS::AtMostOnce, false, 0)
        .await?;
    assert_eq!(&new.recv_publish().await?.payload[..], b"after takeover");
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn v3_takeover_closes_the_old_socket() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut old, _) = RawClient::connect(b.addr, Version::V311, "dup3", true).await?;
    let (_new, ack) = RawClient::connect(b.addr, Version::V311, "dup3", true).await?;
    assert!(!ack.session_present);
    assert_eq!(
        old.expect_close().await?,
        None,
        "3.1.1 has no DISCONNECT from the server"
    );
    b.stop().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn keep_alive_is_enforced_at_one_and_a_half_times() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    let mut p = connect_packet(Version::V5, "ka", true);
    p.keep_alive = 2;
    c.handshake(p).await?;
    let start = tokio::time::Instant::now();
    assert_eq!(c.expect_close().await?, Some(reason::KEEP_ALIVE_TIMEOUT));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(3),
        "closed after {waited:?}, before 1.5 x keep alive"
    );
    assert!(waited < Duration::from_secs(4), "closed after {waited:?}");
    b.stop().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn pings_keep_the_connection_alive() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut c = RawClient::open(b.addr, Version::V311).await?;
    let mut p = connect_packet(Version::V311, "pinger", true);
    p.keep_alive = 2;
    c.handshake(p).await?;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.send(&Packet::PingReq).await?;
        assert_eq!(c.recv().await?, Packet::PingResp);
    }
    b.stop().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn server_keep_alive_overrides_the_clients() -> anyhow::Result<()> {
    let b = TestBroker::with_config(MqttConfig {
        server_keepalive: Some(4),
        ..Default::default()
    })
    .await;
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    let mut p = connect_packet(Version::V5, "ska", true);
    p.keep_alive = 600;
    let ack = c.handshake(p).await?;
    assert_eq!(ack.properties.server_keep_alive, Some(4));
    let start = tokio::time::Instant::now();
    assert_eq!(c.expect_close().await?, Some(reason::KEEP_ALIVE_TIMEOUT));
    assert!(start.elapsed() >= Duration::from_secs(6) && start.elapsed() < Duration::from_secs(7));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn malformed_packet_closes_only_that_connection() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut good, _) = RawClient::connect(b.addr, Version::V5, "good", true).await?;
    good.subscribe("ok/#", QoS::AtMostOnce).await?;
    let (mut bad, _) = RawClient::connect(b.addr, Version::V5, "bad", true).await?;
    // PUBLISH with QoS 3.
    bad.send_raw(b"\x36\x03\x00\x01a").await?;
    assert_eq!(bad.expect_close().await?, Some(reason::MALFORMED_PACKET));
    let (mut bad2, _) = RawClient::connect(b.addr, Version::V5, "bad2", true).await?;
    // Property not allowed in PUBLISH.
    bad2.send_raw(b"\x30\x09\x00\x01a\x05\x11\x00\x00\x00\x01")
        .await?;
    assert_eq!(bad2.expect_close().await?, Some(reason::MALFORMED_PACKET));
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "pub", true).await?;
    p.publish("ok/1", b"still fine", QoS::AtMostOnce, false, 0)
        .await?;
    assert_eq!(&good.recv_publish().await?.payload[..], b"still fine");
    assert_eq!(
        b.broker
            .metrics()
            .get(ferry_broker::BrokerMetric::ProtocolErrors),
        2
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn oversize_packet_gets_0x95() -> anyhow::Result<()> {
    let b = TestBroker::with_config(MqttConfig {
        max_packet_size: 1024,
        ..Default::default()
    })
    .await;
    let (mut c, ack) = RawClient::connect(b.addr, Version::V5, "big", true).await?;
    assert_eq!(ack.properties.maximum_packet_size, Some(1024));
    c.publish("t", &[0u8; 2000], QoS::AtMostOnce, false, 0)
        .await?;
    assert_eq!(c.expect_close().await?, Some(reason::PACKET_TOO_LARGE));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn wildcard_in_topic_name_gets_0x90() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut c, _) = RawClient::connect(b.addr, Version::V5, "wild", true).await?;
    c.publish("a/+", b"x", QoS::AtMostOnce, false, 0).await?;
    assert_eq!(c.expect_close().await?, Some(reason::TOPIC_NAME_INVALID));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn retain_not_available_gets_0x9a() -> anyhow::Result<()> {
    let b = TestBroker::with_config(MqttConfig {
        retain_available: false,
        ..Default::default()
    })
    .await;
    let (mut c, ack) = RawClient::connect(b.addr, Version::V5, "r", true).await?;
    assert_eq!(ack.properties.retain_available, Some(0));
    c.publish("t", b"x", QoS::AtMostOnce, true, 0).await?;
    assert_eq!(c.expect_close().await?, Some(reason::RETAIN_NOT_SUPPORTED));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn shutdown_sends_server_shutting_down() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut c, _) = RawClient::connect(b.addr, Version::V5, "s", true).await?;
    let stop = tokio::spawn(b.stop());
    assert_eq!(c.expect_close().await?, Some(reason::SERVER_SHUTTING_DOWN));
    stop.await?;
    Ok(())
}

#[tokio::test]
async fn max_keepalive_caps_v5_and_refuses_v3_asking_for_more() -> anyhow::Result<()> {
    let b = TestBroker::with_config(MqttConfig {
        max_keepalive: 60,
        max_session_expiry_interval: 100,
        ..MqttConfig::default()
    })
    .await;
    for (asked, told) in [(100, Some(60)), (0, Some(60)), (30, None), (60, None)] {
        let mut c = RawClient::open(b.addr, Version::V5).await?;
        let mut p = connect_packet(Version::V5, &format!("v5-{asked}"), true);
        p.keep_alive = asked;
        let ack = c.handshake(p).await?;
        assert_eq!(
            (ack.code, ack.properties.server_keep_alive),
            (0, told),
            "{asked}"
        );
    }
    for (asked, code) in [(100, 0x02), (61, 0x02), (60, 0), (0, 0)] {
        let mut c = RawClient::open(b.addr, Version::V311).await?;
        let mut p = connect_packet(Version::V311, &format!("v3-{asked}"), true);
        p.keep_alive = asked;
        let ack = c.handshake(p).await?;
        assert_eq!(ack.code, code, "3.1.1 keep alive {asked}");
    }
    // Session expiry above the cap: granted the cap, and told so.
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    let mut p = connect_packet(Version::V5, "long", false);
    p.properties.session_expiry_interval = Some(1000);
    let ack = c.handshake(p).await?;
    assert_eq!(ack.properties.session_expiry_interval, Some(100));
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    let mut p = connect_packet(Version::V5, "short", false);
    p.properties.session_expiry_interval = Some(50);
    let ack = c.handshake(p).await?;
    assert_eq!(
        ack.properties.session_expiry_interval, None,
        "not capped: not told"
    );
    b.stop().await;
    Ok(())
}
