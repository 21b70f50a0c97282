//! Limits that stop one client from hurting the others, over real TCP: banned client ids,
//! usernames and addresses; subscriptions per client; retained messages kept; a client over
//! its message rate is not read for a while (nothing dropped) while another keeps working.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ferry_broker::limits::{Banned, BannedConfig};
use ferry_broker::{BrokerMetric, MqttConfig};
use ferry_mqtt::{QoS, Version};
use ferry_testkit::{RawClient, TestBroker, connect_packet};

#[tokio::test]
async fn banned_clients_are_refused_with_0x8a_or_5() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    b.broker.set_banned(
        Banned::new(&BannedConfig {
            clientids: vec!["bad".into()],
            usernames: vec!["mallory".into()],
            addresses: vec![],
        })
        .unwrap(),
    );
    for (version, code) in [(Version::V5, 0x8A), (Version::V311, 5)] {
        let mut c = RawClient::open(b.addr, version).await?;
        assert_eq!(
            c.handshake(connect_packet(version, "bad", true))
                .await?
                .code,
            code
        );
        let mut c = RawClient::open(b.addr, version).await?;
        let mut p = connect_packet(version, "good", true);
        p.username = Some("mallory".into());
        assert_eq!(c.handshake(p).await?.code, code, "banned username");
    }
    let (_ok, _) = RawClient::connect(b.addr, Version::V5, "good", true).await?;
    // The whole loopback range.
    b.broker.set_banned(
        Banned::new(&BannedConfig {
            addresses: vec!["127.0.0.0/8".into()],
            ..BannedConfig::default()
        })
        .unwrap(),
    );
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    let ack = c
        .handshake(connect_packet(Version::V5, "any", true))
        .await?;
    assert_eq!(ack.code, 0x8A);
    assert_eq!(b.broker.metrics().get(BrokerMetric::RefusedBanned), 5);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn subscriptions_per_client_are_capped() -> anyhow::Result<()> {
    let b = TestBroker::with_config(MqttConfig {
        max_subscriptions: 2,
        ..MqttConfig::default()
    })
    .await;
    for (version, refused) in [(Version::V5, 0x97), (Version::V311, 0x80)] {
        let (mut c, _) = RawClient::connect(b.addr, version, "subs", true).await?;
        assert_eq!(c.subscribe("a", QoS::AtMostOnce).await?, vec![0]);
        assert_eq!(c.subscribe("b", QoS::AtLeastOnce).await?, vec![1]);
        assert_eq!(c.subscribe("c", QoS::AtMostOnce).await?, vec![refused]);
        // Replacing one it holds is not a new one.
        assert_eq!(c.subscribe("a", QoS::AtLeastOnce).await?, vec![1]);
        c.disconnect().await?;
    }
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn retained_messages_kept_are_capped_in_count_and_size() -> anyhow::Result<()> {
    let b = TestBroker::with_config(MqttConfig {
        max_retained_messages: 2,
        max_retained_payload_size: 10,
        ..MqttConfig::default()
    })
    .await;
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "pub", true).await?;
    for (i, (topic, payload)) in [
        ("r/1", "one"),
        ("r/2", "two"),
        ("r/3", "three"),
        ("r/1", "uno"),
    ]
    .into_iter()
    .enumerate()
    {
        p.publish(
            topic,
            payload.as_bytes(),
            QoS::AtLeastOnce,
            true,
            i as u16 + 1,
        )
        .await?;
        p.recv().await?;
    }
    p.publish("r/4", b"far too long a payload", QoS::AtLeastOnce, true, 9)
        .await?;
    p.recv().await?;
    let (mut s, _) = RawClient::connect(b.addr, Version::V5, "sub", true).await?;
    s.subscribe("r/#", QoS::AtMostOnce).await?;
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = s.recv_publish().await?;
        got.push((m.topic, String::from_utf8(m.payload.to_vec())?));
    }
    got.sort();
    assert_eq!(
        got,
        vec![("r/1".into(), "uno".into()), ("r/2".into(), "two".into())]
    );
    s.expect_silence(Duration::from_millis(200)).await?;
    let m = b.broker.metrics();
    assert_eq!(m.get(BrokerMetric::RetainedNotKeptCount), 1);
    assert_eq!(m.get(BrokerMetric::RetainedNotKeptSize), 1);
    b.stop().await;
    Ok(())
}

/// One client floods at many times its message rate; it is not read faster than the rate
/// (nothing is dropped: TCP holds the rest), and another client's round trip is not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_message_rate_is_slowed_while_another_works() -> anyhow::Result<()> {
    const RATE: u64 = 200;
    const SENT: usize = 1000;
    let b = TestBroker::with_config(MqttConfig {
        client_message_rate: RATE,
        max_queued_messages: 10_000,
        ..MqttConfig::default()
    })
    .await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "sub", true).await?;
    sub.subscribe("flood", QoS::AtMostOnce).await?;
    let (mut flood, _) = RawClient::connect(b.addr, Version::V5, "flood", true).await?;
    let start = Instant::now();
    let flooding = tokio::spawn(async move {
        for _ in 0..SENT {
            flood
                .publish("flood", b"x", QoS::AtMostOnce, false, 0)
                .await?;
        }
        anyhow::Ok(flood)
    });
    // The other client works meanwhile: QoS 1 round trips answered.
    let (mut other, _) = RawClient::connect(b.addr, Version::V5, "other", true).await?;
    for i in 1..=5 {
        other
            .publish("elsewhere", b"y", QoS::AtLeastOnce, false, i)
            .await?;
        other.recv().await?;
    }
    // Count what the subscriber gets for a while: never more than the rate allows.
    let mut got = 0u64;
    let until = Instant::now() + Duration::from_millis(1500);
    while let Ok(Ok(_)) = tokio::time::timeout_at(until.into(), sub.recv_publish()).await {
        got += 1;
        let allowed = RATE + (start.elapsed().as_secs_f64() * RATE as f64) as u64 + RATE / 4;
        assert!(
            got <= allowed,
            "{got} delivered after {:?}",
            start.elapsed()
        );
    }
    assert!(got >= RATE, "the rate is served: {got}");
    assert!(b.broker.metrics().get(BrokerMetric::Throttled) > 0);
    // Nothing is dropped: the rest arrives as the rate allows.
    let _flood = flooding.await??;
    while got < SENT as u64 {
        tokio::time::timeout(Duration::from_secs(10), sub.recv_publish()).await??;
        got += 1;
    }
    b.stop().await;
    Ok(())
}

/// A listener accepts at most `max_conn_rate` new connections a second; the rest wait in
/// the backlog and are served in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_accepts_at_most_its_connection_rate() -> anyhow::Result<()> {
    let broker = ferry_broker::Broker::new(MqttConfig::default());
    let cfg = ferry_server::config::TcpListenerConfig {
        max_conn_rate: 20,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(ferry_server::serve(
        listener,
        ferry_server::Endpoint::tcp("limited", &cfg),
        broker.clone(),
        stop.clone(),
    ));
    let start = Instant::now();
    let mut clients = Vec::new();
    for i in 0..40 {
        let (c, _) = RawClient::connect(addr, Version::V5, &format!("c{i}"), true).await?;
        clients.push(c);
    }
    // 20 at once (a second's worth), then 20 more at 20 a second.
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(700), "{took:?}");
    assert!(broker.metrics().get(BrokerMetric::ConnRateLimited) >= 15);
    stop.cancel();
    serving.await?;
    Ok(())
}

/// Keep alive does not apply while a client is throttled (it is not read, so its PINGREQs
/// would not be seen): a burst that takes longer than its keep alive to be read is served
/// in full, and keep alive applies again once it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_client_is_not_timed_out_by_keep_alive() -> anyhow::Result<()> {
    const RATE: u64 = 4;
    const SENT: u16 = 12;
    let b = TestBroker::with_config(MqttConfig {
        client_message_rate: RATE,
        ..MqttConfig::default()
    })
    .await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "sub", true).await?;
    sub.subscribe("burst", QoS::AtMostOnce).await?;
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    // Keep alive 1 s: closed after 1.5 s without a packet read.
    let mut connect = connect_packet(Version::V5, "burst", true);
    connect.keep_alive = 1;
    c.handshake(connect).await?;
    let start = Instant::now();
    for _ in 0..SENT {
        c.publish("burst", b"x", QoS::AtMostOnce, false, 0).await?;
    }
    // At 4 a second the burst is read over ~2 s, longer than the keep alive.
    for _ in 0..SENT {
        tokio::time::timeout(Duration::from_secs(10), sub.recv_publish()).await??;
    }
    assert!(start.elapsed() > Duration::from_millis(1500));
    // Then keep alive applies again.
    assert_eq!(
        c.expect_close().await?,
        Some(ferry_mqtt::reason::KEEP_ALIVE_TIMEOUT)
    );
    b.stop().await;
    Ok(())
}
