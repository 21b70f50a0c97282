//! PUBLISH flows at every QoS, inflight, redelivery, flow control, aliases, expiry and
//! property pass-through, over real TCP.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use ferry_broker::MqttConfig;
use ferry_mqtt::{Ack, Packet, Properties, QoS, Version, reason};
use ferry_testkit::{RawClient, TestBroker, connect_packet, publish_packet};

#[tokio::test]
async fn qos2_both_directions_with_full_handshake() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "s", true).await?;
    sub.subscribe("q2/#", QoS::ExactlyOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    p.publish("q2/a", b"once", QoS::ExactlyOnce, false, 9)
        .await?;
    assert!(matches!(p.recv().await?, Packet::PubRec(a) if a.packet_id == 9 && a.code == 0));
    // A resend before PUBREL is acknowledged again but not routed twice.
    p.publish("q2/a", b"once", QoS::ExactlyOnce, false, 9)
        .await?;
    assert!(matches!(p.recv().await?, Packet::PubRec(a) if a.packet_id == 9));
    p.send(&Packet::PubRel(Ack::new(9, 0))).await?;
    assert!(matches!(p.recv().await?, Packet::PubComp(a) if a.packet_id == 9 && a.code == 0));
    // Unknown PUBREL gets 0x92.
    p.send(&Packet::PubRel(Ack::new(77, 0))).await?;
    assert!(
        matches!(p.recv().await?, Packet::PubComp(a) if a.packet_id == 77 && a.code == reason::PACKET_IDENTIFIER_NOT_FOUND)
    );

    let m = match sub.recv().await? {
        Packet::Publish(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!((m.qos, &m.payload[..]), (QoS::ExactlyOnce, &b"once"[..]));
    sub.send(&Packet::PubRec(Ack::new(m.packet_id, 0))).await?;
    assert!(matches!(sub.recv().await?, Packet::PubRel(a) if a.packet_id == m.packet_id));
    sub.send(&Packet::PubComp(Ack::new(m.packet_id, 0))).await?;
    sub.expect_silence(Duration::from_millis(200)).await?;
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn qos_is_downgraded_to_the_subscription() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut s0, _) = RawClient::connect(b.addr, Version::V311, "s0", true).await?;
    s0.subscribe("d", QoS::AtMostOnce).await?;
    let (mut s1, _) = RawClient::connect(b.addr, Version::V311, "s1", true).await?;
    s1.subscribe("d", QoS::AtLeastOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V311, "p", true).await?;
    p.publish("d", b"x", QoS::ExactlyOnce, false, 1).await?;
    assert_eq!(s0.recv_publish().await?.qos, QoS::AtMostOnce);
    assert_eq!(s1.recv_publish().await?.qos, QoS::AtLeastOnce);
    // A QoS 0 publish is never upgraded.
    p.publish("d", b"y", QoS::AtMostOnce, false, 0).await?;
    assert_eq!(s1.recv_publish().await?.qos, QoS::AtMostOnce);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn puback_says_no_matching_subscribers_in_v5() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    p.publish("nobody/here", b"x", QoS::AtLeastOnce, false, 3)
        .await?;
    assert!(
        matches!(p.recv().await?, Packet::PubAck(a) if a.code == reason::NO_MATCHING_SUBSCRIBERS)
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn unacknowledged_messages_are_redelivered_with_dup_on_reconnect() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut s, _) = RawClient::connect(b.addr, Version::V311, "redeliver", false).await?;
    s.subscribe("r/#", QoS::ExactlyOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V311, "p", true).await?;
    p.publish("r/1", b"q1", QoS::AtLeastOnce, false, 1).await?;
    p.publish("r/2", b"q2", QoS::ExactlyOnce, false, 2).await?;
    p.publish("r/3", b"q2-released", QoS::ExactlyOnce, false, 3)
        .await?;
    let mut first = Vec::new();
    for _ in 0..3 {
        match s.recv().await? {
            Packet::Publish(m) => first.push(m),
            other => panic!("{other:?}"),
        }
    }
    // Acknowledge only the PUBREC of the third: it must come back as PUBREL.
    s.send(&Packet::PubRec(Ack::new(first[2].packet_id, 0)))
        .await?;
    assert!(matches!(s.recv().await?, Packet::PubRel(_)));
    s.drop_connection().await;

    let (mut s, ack) = RawClient::connect(b.addr, Version::V311, "redeliver", false).await?;
    assert!(ack.session_present);
    for m in &first[..2] {
        match s.recv().await? {
            Packet::Publish(again) => {
                assert!(again.dup, "redelivery sets DUP");
                assert_eq!((again.packet_id, &again.payload), (m.packet_id, &m.payload));
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(s.recv().await?, Packet::PubRel(a) if a.packet_id == first[2].packet_id));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn offline_messages_are_queued_and_bounded() -> anyhow::Result<()> {
    let b = TestBroker::with_config(MqttConfig {
        max_queued_messages: 5,
        ..Default::default()
    })
    .await;
    let mut c = connect_packet(Version::V5, "offline", false);
    c.properties.session_expiry_interval = Some(300);
    let mut s = RawClient::open(b.addr, Version::V5).await?;
    s.handshake(c.clone()).await?;
    s.subscribe("o", QoS::AtLeastOnce).await?;
    s.disconnect().await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    for i in 0..8u8 {
        p.publish("o", &[i], QoS::AtLeastOnce, false, u16::from(i) + 1)
            .await?;
        assert!(matches!(p.recv().await?, Packet::PubAck(_)));
    }
    assert_eq!(
        b.broker
            .metrics()
            .get(ferry_broker::BrokerMetric::DroppedQueueFull),
        3
    );
    let mut s = RawClient::open(b.addr, Version::V5).await?;
    assert!(s.handshake(c).await?.session_present);
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(s.recv_publish().await?.payload[0]);
    }
    assert_eq!(got, vec![3, 4, 5, 6, 7], "the oldest were dropped");
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn outbound_inflight_window_follows_client_receive_maximum() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut s = RawClient::open(b.addr, Version::V5).await?;
    let mut c = connect_packet(Version::V5, "slow", true);
    c.properties.receive_maximum = Some(2);
    s.handshake(c).await?;
    s.subscribe("w", QoS::AtLeastOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    for i in 0..5u8 {
        p.publish("w", &[i], QoS::AtLeastOnce, false, u16::from(i) + 1)
            .await?;
    }
    let mut ids = Vec::new();
    for _ in 0..2 {
        match s.recv().await? {
            Packet::Publish(m) => ids.push(m.packet_id),
            other => panic!("{other:?}"),
        }
    }
    s.expect_silence(Duration::from_millis(300)).await?;
    s.send(&Packet::PubAck(Ack::new(ids[0], 0))).await?;
    match s.recv().await? {
        Packet::Publish(m) => assert_eq!(m.payload[0], 2),
        other => panic!("{other:?}"),
    }
    s.expect_silence(Duration::from_millis(200)).await?;
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn exceeding_our_receive_maximum_gets_0x93() -> anyhow::Result<()> {
    let b = TestBroker::with_config(MqttConfig {
        receive_maximum: 2,
        ..Default::default()
    })
    .await;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "greedy", true).await?;
    for i in 1..=3u16 {
        p.publish("x", b"x", QoS::ExactlyOnce, false, i).await?;
    }
    assert_eq!(
        p.expect_close().await?,
        Some(reason::RECEIVE_MAXIMUM_EXCEEDED)
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn messages_larger_than_the_clients_maximum_are_not_sent() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut s = RawClient::open(b.addr, Version::V5).await?;
    let mut c = connect_packet(Version::V5, "tiny", true);
    c.properties.maximum_packet_size = Some(100);
    s.handshake(c).await?;
    s.subscribe("m", QoS::AtLeastOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    p.publish("m", &[7u8; 500], QoS::AtLeastOnce, false, 1)
        .await?;
    p.publish("m", b"small", QoS::AtLeastOnce, false, 2).await?;
    assert_eq!(&s.recv_publish().await?.payload[..], b"small");
    assert_eq!(
        b.broker
            .metrics()
            .get(ferry_broker::BrokerMetric::DroppedTooLarge),
        1
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn inbound_topic_aliases() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut s, _) = RawClient::connect(b.addr, Version::V5, "s", true).await?;
    s.subscribe("alias/topic", QoS::AtMostOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    let mut m = publish_packet("alias/topic", b"1", QoS::AtMostOnce, false, 0);
    m.properties.topic_alias = Some(3);
    p.send(&Packet::Publish(m.clone())).await?;
    m.topic.clear();
    m.payload = Bytes::from_static(b"2");
    p.send(&Packet::Publish(m.clone())).await?;
    for want in [b"1", b"2"] {
        let got = s.recv_publish().await?;
        assert_eq!(
            (got.topic.as_str(), &got.payload[..]),
            ("alias/topic", &want[..])
        );
        assert_eq!(
            got.properties.topic_alias, None,
            "our alias map is not the subscriber's"
        );
    }
    // Unknown alias with an empty topic: protocol error.
    m.properties.topic_alias = Some(4);
    p.send(&Packet::Publish(m.clone())).await?;
    assert_eq!(p.expect_close().await?, Some(reason::PROTOCOL_ERROR));
    // Alias 0 or above our maximum: 0x94.
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p2", true).await?;
    let mut m = publish_packet("alias/topic", b"1", QoS::AtMostOnce, false, 0);
    m.properties.topic_alias = Some(0);
    p.send(&Packet::Publish(m)).await?;
    assert_eq!(p.expect_close().await?, Some(reason::TOPIC_ALIAS_INVALID));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn outbound_topic_aliases_when_the_client_allows() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut s = RawClient::open(b.addr, Version::V5).await?;
    let mut c = connect_packet(Version::V5, "aliased", true);
    c.properties.topic_alias_maximum = Some(1);
    s.handshake(c).await?;
    s.subscribe("al/#", QoS::AtMostOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    p.publish("al/one", b"a", QoS::AtMostOnce, false, 0).await?;
    p.publish("al/one", b"b", QoS::AtMostOnce, false, 0).await?;
    p.publish("al/two", b"c", QoS::AtMostOnce, false, 0).await?;
    let m1 = s.recv_publish().await?;
    assert_eq!(
        (m1.topic.as_str(), m1.properties.topic_alias),
        ("al/one", Some(1))
    );
    let m2 = s.recv_publish().await?;
    assert_eq!(
        (m2.topic.as_str(), m2.properties.topic_alias),
        ("", Some(1))
    );
    let m3 = s.recv_publish().await?;
    assert_eq!(
        (m3.topic.as_str(), m3.properties.topic_alias),
        ("al/two", None),
        "only one alias allowed"
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn v5_properties_pass_through() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut s, _) = RawClient::connect(b.addr, Version::V5, "s", true).await?;
    s.subscribe("props", QoS::AtLeastOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    let mut m = publish_packet("props", b"{}", QoS::AtLeastOnce, false, 1);
    m.properties = Properties {
        payload_format_indicator: Some(1),
        content_type: Some("application/json".into()),
        response_topic: Some("reply/here".into()),
        correlation_data: Some(Bytes::from_static(b"corr-1")),
        user_properties: vec![("k".into(), "v".into()), ("k".into(), "v2".into())],
        ..Default::default()
    };
    p.send(&Packet::Publish(m.clone())).await?;
    let got = s.recv_publish().await?;
    assert_eq!(got.properties, m.properties);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn v5_message_to_v3_subscriber_drops_properties() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut s, _) = RawClient::connect(b.addr, Version::V311, "s3", true).await?;
    s.subscribe("mix", QoS::AtLeastOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p5", true).await?;
    let mut m = publish_packet("mix", b"hello", QoS::AtLeastOnce, false, 1);
    m.properties.user_properties = vec![("k".into(), "v".into())];
    p.send(&Packet::Publish(m)).await?;
    let got = s.recv_publish().await?;
    assert_eq!(&got.payload[..], b"hello");
    b.stop().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn message_expiry_is_reduced_by_the_time_waited() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut c = connect_packet(Version::V5, "exp", false);
    c.properties.session_expiry_interval = Some(3600);
    let mut s = RawClient::open(b.addr, Version::V5).await?;
    s.handshake(c.clone()).await?;
    s.subscribe("e", QoS::AtLeastOnce).await?;
    s.disconnect().await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    let mut m = publish_packet("e", b"short", QoS::AtLeastOnce, false, 1);
    m.properties.message_expiry_interval = Some(5);
    p.send(&Packet::Publish(m.clone())).await?;
    let mut m2 = m.clone();
    m2.payload = Bytes::from_static(b"long");
    m2.packet_id = 2;
    m2.properties.message_expiry_interval = Some(100);
    p.send(&Packet::Publish(m2)).await?;
    p.recv().await?;
    p.recv().await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut s = RawClient::open(b.addr, Version::V5).await?;
    s.handshake(c).await?;
    let got = s.recv_publish().await?;
    assert_eq!(
        &got.payload[..],
        b"long",
        "the expired message was not delivered"
    );
    let left = got.properties.message_expiry_interval.unwrap();
    assert!((89..=90).contains(&left), "expiry forwarded as {left}");
    assert_eq!(
        b.broker
            .metrics()
            .get(ferry_broker::BrokerMetric::DroppedExpired),
        1
    );
    b.stop().await;
    Ok(())
}
