//! Session lifecycle: clean start, session expiry, will messages and will delay.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_mqtt::{Disconnect, Packet, Properties, QoS, Version, reason};
use ferry_testkit::{RawClient, TestBroker, connect_packet, wait_until, will};

#[tokio::test]
async fn clean_start_discards_the_old_session() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut s, _) = RawClient::connect(b.addr, Version::V311, "cs", false).await?;
    s.subscribe("cs/t", QoS::AtLeastOnce).await?;
    s.drop_connection().await;
    let (_s, ack) = RawClient::connect(b.addr, Version::V311, "cs", true).await?;
    assert!(!ack.session_present);
    assert_eq!(
        b.broker.subscription_count(),
        0,
        "the old subscriptions are gone"
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn v5_session_with_expiry_0_ends_at_disconnect() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut s, _) = RawClient::connect(b.addr, Version::V5, "e0", false).await?;
    s.subscribe("x", QoS::AtMostOnce).await?;
    s.disconnect().await?;
    let broker = b.broker.clone();
    wait_until("session removed", Duration::from_secs(5), || {
        broker.session_count() == 0
    })
    .await;
    let (_s, ack) = RawClient::connect(b.addr, Version::V5, "e0", false).await?;
    assert!(!ack.session_present);
    b.stop().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn session_expiry_interval_is_honoured() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut c = connect_packet(Version::V5, "exp", false);
    c.properties.session_expiry_interval = Some(30);
    let mut s = RawClient::open(b.addr, Version::V5).await?;
    s.handshake(c.clone()).await?;
    s.subscribe("x", QoS::AtMostOnce).await?;
    s.disconnect().await?;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let mut s = RawClient::open(b.addr, Version::V5).await?;
    assert!(
        s.handshake(c.clone()).await?.session_present,
        "still there after 20 s"
    );
    s.disconnect().await?;
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(b.broker.session_count(), 0);
    let mut s = RawClient::open(b.addr, Version::V5).await?;
    assert!(!s.handshake(c).await?.session_present, "expired after 30 s");
    b.stop().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn v3_persistent_sessions_expire_after_the_configured_interval() -> anyhow::Result<()> {
    let cfg = ferry_broker::MqttConfig {
        session_expiry_interval: 100,
        ..Default::default()
    };
    let b = TestBroker::with_config(cfg).await;
    let (mut s, _) = RawClient::connect(b.addr, Version::V311, "p3", false).await?;
    s.subscribe("x", QoS::AtMostOnce).await?;
    s.drop_connection().await;
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(b.broker.session_count(), 1);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(b.broker.session_count(), 0);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn disconnect_may_not_set_expiry_after_zero() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut s, _) = RawClient::connect(b.addr, Version::V5, "dz", true).await?;
    s.send(&Packet::Disconnect(Disconnect {
        code: 0,
        properties: Properties {
            session_expiry_interval: Some(60),
            ..Default::default()
        },
    }))
    .await?;
    assert_eq!(s.expect_close().await?, Some(reason::PROTOCOL_ERROR));
    b.stop().await;
    Ok(())
}

async fn watcher(b: &TestBroker, topic: &str) -> anyhow::Result<RawClient> {
    let (mut w, _) =
        RawClient::connect(b.addr, Version::V5, &format!("watch-{topic}"), true).await?;
    w.subscribe(topic, QoS::AtLeastOnce).await?;
    Ok(w)
}

#[tokio::test]
async fn will_is_published_when_the_connection_is_lost() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut w = watcher(&b, "will/lost").await?;
    let mut c = RawClient::open(b.addr, Version::V311).await?;
    let mut p = connect_packet(Version::V311, "dies", true);
    p.will = Some(will("will/lost", b"gone", QoS::AtLeastOnce, false));
    c.handshake(p).await?;
    c.drop_connection().await;
    let m = w.recv_publish().await?;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("will/lost", &b"gone"[..])
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn will_is_discarded_on_normal_disconnect_and_sent_with_0x04() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut w = watcher(&b, "will/+").await?;
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    let mut p = connect_packet(Version::V5, "polite", true);
    p.will = Some(will("will/polite", b"x", QoS::AtMostOnce, false));
    c.handshake(p).await?;
    c.disconnect().await?;
    w.expect_silence(Duration::from_millis(200)).await?;

    let mut c = RawClient::open(b.addr, Version::V5).await?;
    let mut p = connect_packet(Version::V5, "withwill", true);
    p.will = Some(will("will/asked", b"asked", QoS::AtMostOnce, false));
    c.handshake(p).await?;
    c.send(&Packet::Disconnect(Disconnect {
        code: reason::DISCONNECT_WITH_WILL,
        properties: Properties::default(),
    }))
    .await?;
    assert_eq!(&w.recv_publish().await?.payload[..], b"asked");
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn retained_will_is_retained() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut c = RawClient::open(b.addr, Version::V311).await?;
    let mut p = connect_packet(Version::V311, "rw", true);
    p.will = Some(will("status/rw", b"offline", QoS::AtLeastOnce, true));
    c.handshake(p).await?;
    c.drop_connection().await;
    let broker = b.broker.clone();
    wait_until("will retained", Duration::from_secs(5), || {
        broker.retained_count() == 1
    })
    .await;
    let mut w = watcher(&b, "status/#").await?;
    let m = w.recv_publish().await?;
    assert!(m.retain);
    assert_eq!(&m.payload[..], b"offline");
    b.stop().await;
    Ok(())
}

fn delayed_will_connect(id: &str, delay: u32, expiry: u32) -> ferry_mqtt::Connect {
    let mut p = connect_packet(Version::V5, id, false);
    p.properties.session_expiry_interval = Some(expiry);
    let mut w = will("will/delayed", id.as_bytes(), QoS::AtLeastOnce, false);
    w.properties.will_delay_interval = Some(delay);
    p.will = Some(w);
    p
}

#[tokio::test(start_paused = true)]
async fn will_delay_waits_then_publishes() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut w = watcher(&b, "will/delayed").await?;
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    c.handshake(delayed_will_connect("late", 4, 600)).await?;
    c.drop_connection().await;
    let start = tokio::time::Instant::now();
    let m = w.recv_publish().await?;
    assert_eq!(&m.payload[..], b"late");
    assert!(
        start.elapsed() >= Duration::from_secs(4),
        "published after {:?}",
        start.elapsed()
    );
    b.stop().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn will_delay_is_cut_short_by_session_expiry() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut w = watcher(&b, "will/delayed").await?;
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    c.handshake(delayed_will_connect("short", 100, 5)).await?;
    c.drop_connection().await;
    let start = tokio::time::Instant::now();
    w.recv_publish().await?;
    let e = start.elapsed();
    assert!(
        e >= Duration::from_secs(5) && e < Duration::from_secs(6),
        "published after {e:?}"
    );
    b.stop().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn reconnecting_within_the_will_delay_cancels_the_will() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut w = watcher(&b, "will/delayed").await?;
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    c.handshake(delayed_will_connect("back", 10, 600)).await?;
    c.drop_connection().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_c, ack) = RawClient::connect(b.addr, Version::V5, "back", false).await?;
    assert!(ack.session_present);
    w.expect_silence(Duration::from_secs(30)).await?;
    b.stop().await;
    Ok(())
}
