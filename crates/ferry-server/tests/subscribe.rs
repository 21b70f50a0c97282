//! SUBSCRIBE/UNSUBSCRIBE, wildcards, overlaps, options, shared subscriptions and retained
//! messages, over real TCP.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_broker::MqttConfig;
use ferry_mqtt::{Packet, Properties, QoS, SubOptions, Unsubscribe, Version, reason};
use ferry_testkit::{RawClient, TestBroker};

fn opts(qos: QoS) -> SubOptions {
    SubOptions {
        qos,
        ..Default::default()
    }
}

#[tokio::test]
async fn wildcards_and_dollar_topics() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut all, _) = RawClient::connect(b.addr, Version::V311, "all", true).await?;
    all.subscribe("#", QoS::AtMostOnce).await?;
    let (mut sys, _) = RawClient::connect(b.addr, Version::V311, "sys", true).await?;
    sys.subscribe("$SYS/#", QoS::AtMostOnce).await?;
    let (mut plus, _) = RawClient::connect(b.addr, Version::V311, "plus", true).await?;
    plus.subscribe("a/+/c", QoS::AtMostOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V311, "p", true).await?;
    p.publish("$SYS/uptime", b"1", QoS::AtMostOnce, false, 0)
        .await?;
    p.publish("a/b/c", b"2", QoS::AtMostOnce, false, 0).await?;
    p.publish("a/b/c/d", b"3", QoS::AtMostOnce, false, 0)
        .await?;
    assert_eq!(&sys.recv_publish().await?.payload[..], b"1");
    assert_eq!(
        &all.recv_publish().await?.payload[..],
        b"2",
        "# does not match $SYS"
    );
    assert_eq!(&all.recv_publish().await?.payload[..], b"3");
    assert_eq!(&plus.recv_publish().await?.payload[..], b"2");
    plus.expect_silence(Duration::from_millis(100)).await?;
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn invalid_filters_are_refused_per_entry() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut c5, _) = RawClient::connect(b.addr, Version::V5, "c5", true).await?;
    assert_eq!(
        c5.subscribe("a/#/b", QoS::AtMostOnce).await?,
        vec![reason::TOPIC_FILTER_INVALID]
    );
    assert_eq!(
        c5.subscribe("$share/g", QoS::AtMostOnce).await?,
        vec![reason::TOPIC_FILTER_INVALID]
    );
    let (mut c3, _) = RawClient::connect(b.addr, Version::V311, "c3", true).await?;
    assert_eq!(c3.subscribe("a+", QoS::AtLeastOnce).await?, vec![0x80]);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn unsubscribe_reports_missing_subscriptions() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut c, _) = RawClient::connect(b.addr, Version::V5, "u", true).await?;
    c.subscribe("u/1", QoS::AtMostOnce).await?;
    c.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: 5,
        filters: vec!["u/1".into(), "u/2".into()],
        properties: Properties::default(),
    }))
    .await?;
    match c.recv().await? {
        Packet::UnsubAck(a) => assert_eq!(
            a.codes,
            vec![reason::SUCCESS, reason::NO_SUBSCRIPTION_EXISTED]
        ),
        other => panic!("{other:?}"),
    }
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    p.publish("u/1", b"x", QoS::AtMostOnce, false, 0).await?;
    c.expect_silence(Duration::from_millis(100)).await?;
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn v3_overlapping_subscriptions_give_one_copy_at_the_highest_qos() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut s, _) = RawClient::connect(b.addr, Version::V311, "ov3", true).await?;
    s.subscribe("o/#", QoS::AtMostOnce).await?;
    s.subscribe("o/+", QoS::ExactlyOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V311, "p", true).await?;
    p.publish("o/x", b"x", QoS::ExactlyOnce, false, 1).await?;
    assert_eq!(s.recv_publish().await?.qos, QoS::ExactlyOnce);
    s.recv().await?; // PUBREL
    s.expect_silence(Duration::from_millis(100)).await?;
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn v5_overlapping_subscriptions_carry_every_subscription_identifier() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut s, _) = RawClient::connect(b.addr, Version::V5, "ov5", true).await?;
    s.subscribe_with("o/#", opts(QoS::AtMostOnce), Some(11))
        .await?;
    s.subscribe_with("o/+", opts(QoS::AtLeastOnce), Some(22))
        .await?;
    s.subscribe_with("o/x", opts(QoS::AtMostOnce), None).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    p.publish("o/x", b"x", QoS::AtLeastOnce, false, 1).await?;
    let m = s.recv_publish().await?;
    assert_eq!(m.qos, QoS::AtLeastOnce);
    let mut ids = m.properties.subscription_identifiers.clone();
    ids.sort();
    assert_eq!(ids, vec![11, 22]);
    s.expect_silence(Duration::from_millis(100)).await?;
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn no_local_skips_own_messages() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut c, _) = RawClient::connect(b.addr, Version::V5, "nl", true).await?;
    c.subscribe_with(
        "chat",
        SubOptions {
            no_local: true,
            ..opts(QoS::AtMostOnce)
        },
        None,
    )
    .await?;
    c.publish("chat", b"mine", QoS::AtMostOnce, false, 0)
        .await?;
    let (mut other, _) = RawClient::connect(b.addr, Version::V5, "other", true).await?;
    other
        .publish("chat", b"theirs", QoS::AtMostOnce, false, 0)
        .await?;
    assert_eq!(&c.recv_publish().await?.payload[..], b"theirs");
    // No Local on a shared subscription is a protocol error.
    c.send(&Packet::Subscribe(ferry_mqtt::Subscribe {
        packet_id: 2,
        filters: vec![(
            "$share/g/chat".into(),
            SubOptions {
                no_local: true,
                ..opts(QoS::AtMostOnce)
            },
        )],
        properties: Properties::default(),
    }))
    .await?;
    assert_eq!(c.expect_close().await?, Some(reason::PROTOCOL_ERROR));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn retained_messages_set_replace_clear() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut p, _) = RawClient::connect(b.addr, Version::V311, "p", true).await?;
    p.publish("r/a", b"one", QoS::AtLeastOnce, true, 1).await?;
    p.publish("r/a", b"two", QoS::AtLeastOnce, true, 2).await?;
    p.publish("r/b", b"b", QoS::AtMostOnce, true, 0).await?;
    p.recv().await?;
    p.recv().await?;
    let (mut s, _) = RawClient::connect(b.addr, Version::V311, "s", true).await?;
    s.subscribe("r/a", QoS::AtLeastOnce).await?;
    let m = s.recv_publish().await?;
    assert_eq!((&m.payload[..], m.retain), (&b"two"[..], true));
    // Live messages to an existing subscription are not flagged retained (3.1.1).
    p.publish("r/a", b"three", QoS::AtMostOnce, true, 0).await?;
    let m = s.recv_publish().await?;
    assert_eq!((&m.payload[..], m.retain), (&b"three"[..], false));
    // Empty payload clears.
    p.publish("r/a", b"", QoS::AtMostOnce, true, 0).await?;
    s.recv_publish().await?;
    crate_wait(&b, 1).await;
    let (mut s2, _) = RawClient::connect(b.addr, Version::V311, "s2", true).await?;
    s2.subscribe("r/+", QoS::AtMostOnce).await?;
    let m = s2.recv_publish().await?;
    assert_eq!(&m.payload[..], b"b");
    s2.expect_silence(Duration::from_millis(100)).await?;
    b.stop().await;
    Ok(())
}

async fn crate_wait(b: &TestBroker, n: usize) {
    let broker = b.broker.clone();
    ferry_testkit::wait_until("retained count", Duration::from_secs(5), || {
        broker.retained_count() == n
    })
    .await;
}

#[tokio::test]
async fn retain_handling_and_retain_as_published() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    p.publish("rh", b"kept", QoS::AtLeastOnce, true, 1).await?;
    p.recv().await?;
    let (mut s, _) = RawClient::connect(b.addr, Version::V5, "s", true).await?;
    // 2: never send retained.
    s.subscribe_with(
        "rh",
        SubOptions {
            retain_handling: 2,
            ..opts(QoS::AtMostOnce)
        },
        None,
    )
    .await?;
    s.expect_silence(Duration::from_millis(100)).await?;
    // 1: only for a new subscription (this one exists now).
    s.subscribe_with(
        "rh",
        SubOptions {
            retain_handling: 1,
            ..opts(QoS::AtMostOnce)
        },
        None,
    )
    .await?;
    s.expect_silence(Duration::from_millis(100)).await?;
    // 0: always.
    s.subscribe_with(
        "rh",
        SubOptions {
            retain_handling: 0,
            ..opts(QoS::AtMostOnce)
        },
        None,
    )
    .await?;
    assert!(s.recv_publish().await?.retain);
    // 1 on a new subscription sends it.
    let (mut s2, _) = RawClient::connect(b.addr, Version::V5, "s2", true).await?;
    s2.subscribe_with(
        "rh",
        SubOptions {
            retain_handling: 1,
            ..opts(QoS::AtMostOnce)
        },
        None,
    )
    .await?;
    assert!(s2.recv_publish().await?.retain);

    // Retain As Published keeps the flag on live messages.
    let (mut rap, _) = RawClient::connect(b.addr, Version::V5, "rap", true).await?;
    rap.subscribe_with(
        "live",
        SubOptions {
            retain_as_published: true,
            ..opts(QoS::AtMostOnce)
        },
        None,
    )
    .await?;
    let (mut norap, _) = RawClient::connect(b.addr, Version::V5, "norap", true).await?;
    norap.subscribe("live", QoS::AtMostOnce).await?;
    p.publish("live", b"x", QoS::AtMostOnce, true, 0).await?;
    assert!(rap.recv_publish().await?.retain);
    assert!(!norap.recv_publish().await?.retain);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn shared_subscriptions_round_robin_over_members() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut members = Vec::new();
    for i in 0..3 {
        let (mut m, _) = RawClient::connect(b.addr, Version::V5, &format!("m{i}"), true).await?;
        assert_eq!(
            m.subscribe("$share/g/jobs/#", QoS::AtLeastOnce).await?,
            vec![1]
        );
        members.push(m);
    }
    let (mut plain, _) = RawClient::connect(b.addr, Version::V5, "plain", true).await?;
    plain.subscribe("jobs/#", QoS::AtMostOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    for i in 0..6u8 {
        p.publish("jobs/x", &[i], QoS::AtLeastOnce, false, u16::from(i) + 1)
            .await?;
    }
    for m in &mut members {
        let a = m.recv_publish().await?.payload[0];
        let b2 = m.recv_publish().await?.payload[0];
        assert_eq!(
            b2,
            a + 3,
            "round robin gives each member every third message"
        );
        m.expect_silence(Duration::from_millis(50)).await?;
    }
    for i in 0..6u8 {
        assert_eq!(
            plain.recv_publish().await?.payload[0],
            i,
            "non-shared subscribers get every message"
        );
    }
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn shared_messages_go_to_another_member_when_one_leaves() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut lazy = RawClient::open(b.addr, Version::V5).await?;
    let mut c = ferry_testkit::connect_packet(Version::V5, "lazy", true);
    c.properties.receive_maximum = Some(1);
    lazy.handshake(c).await?;
    lazy.subscribe("$share/g/work", QoS::AtLeastOnce).await?;
    let (mut busy, _) = RawClient::connect(b.addr, Version::V5, "busy", true).await?;
    busy.subscribe("$share/g/work", QoS::AtLeastOnce).await?;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    for i in 0..4u8 {
        p.publish("work", &[i], QoS::AtLeastOnce, false, u16::from(i) + 1)
            .await?;
        p.recv().await?;
    }
    // lazy receives its first message and never acknowledges it.
    let first = match lazy.recv().await? {
        Packet::Publish(m) => m.payload[0],
        other => panic!("{other:?}"),
    };
    lazy.drop_connection().await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(busy.recv_publish().await?.payload[0]);
    }
    got.sort();
    assert_eq!(
        got,
        vec![0, 1, 2, 3],
        "busy got its own and lazy's messages (lazy had {first})"
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn shared_subscriptions_can_be_disabled() -> anyhow::Result<()> {
    let b = TestBroker::with_config(MqttConfig {
        shared_subscription: false,
        ..Default::default()
    })
    .await;
    let (mut c, ack) = RawClient::connect(b.addr, Version::V5, "c", true).await?;
    assert_eq!(ack.properties.shared_subscription_available, Some(0));
    assert_eq!(
        c.subscribe("$share/g/t", QoS::AtMostOnce).await?,
        vec![reason::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED]
    );
    b.stop().await;
    Ok(())
}
