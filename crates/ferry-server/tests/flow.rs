//! Flow control (`mqtt.queue_full`, ADR 0010): a subscriber that reads slowly holds a fast
//! publisher back through TCP instead of losing its messages; one that stops reading holds
//! publishers for at most `queue_full_wait`, then loses its oldest messages (counted) while
//! the others keep flowing, and is disconnected after `slow_subscriber_timeout`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::BytesMut;
use ferry_broker::config::{Dur, QueueFull};
use ferry_broker::{BrokerMetric, MqttConfig};
use ferry_mqtt::{Packet, QoS, Version, reason};
use ferry_testkit::{RawClient, TestBroker, publish_packet};

/// `n` QoS 0 PUBLISH packets on `topic`, payload = the sequence number padded to `size`
/// bytes, in one buffer.
fn burst(topic: &str, n: u32, size: usize, version: Version) -> BytesMut {
    let mut buf = BytesMut::new();
    for i in 0..n {
        let payload = format!("{i:08}{:size$}", "", size = size.saturating_sub(8));
        let p = publish_packet(topic, payload.as_bytes(), QoS::AtMostOnce, false, 0);
        ferry_mqtt::encode(&Packet::Publish(p), version, &mut buf).unwrap();
    }
    buf
}

/// Reads `n` PUBLISH packets and checks they are 0..n in order; pauses every `every`
/// messages for `pause` (a slow reader).
async fn read_all(c: &mut RawClient, n: u32, every: u32, pause: Duration) {
    for i in 0..n {
        let p = c.recv_publish().await.unwrap();
        assert_eq!(
            &p.payload[..8],
            format!("{i:08}").as_bytes(),
            "message {i} in order"
        );
        if every > 0 && i % every == every - 1 {
            tokio::time::sleep(pause).await;
        }
    }
}

#[tokio::test]
async fn a_slow_subscriber_holds_a_fast_publisher_back_without_loss() {
    let cfg = MqttConfig {
        max_queued_messages: 100,
        ..MqttConfig::default()
    };
    assert_eq!(cfg.queue_full, QueueFull::Backpressure, "the default");
    let b = TestBroker::with_config(cfg).await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "sub", true)
        .await
        .unwrap();
    sub.subscribe("flow/t", QoS::AtMostOnce).await.unwrap();
    let (mut publisher, _) = RawClient::connect(b.addr, Version::V5, "pub", true)
        .await
        .unwrap();
    const N: u32 = 20_000;
    let bytes = burst("flow/t", N, 100, Version::V5);
    // Written as fast as TCP takes it.
    let writer = tokio::spawn(async move {
        publisher.send_raw(&bytes).await.unwrap();
        publisher
    });
    read_all(&mut sub, N, 1000, Duration::from_millis(20)).await;
    let m = b.broker.metrics();
    assert_eq!(m.get(BrokerMetric::DroppedQueueFull), 0, "nothing dropped");
    assert!(
        m.get(BrokerMetric::PublishersHeld) > 0,
        "the publisher was held back"
    );
    let _publisher = writer.await.unwrap();
    b.stop().await;
}

#[tokio::test]
async fn a_qos1_publisher_is_acknowledged_once_its_message_is_queued() {
    let cfg = MqttConfig {
        max_queued_messages: 2,
        ..MqttConfig::default()
    };
    let b = TestBroker::with_config(cfg).await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "sub", true)
        .await
        .unwrap();
    sub.subscribe("flow/q", QoS::AtLeastOnce).await.unwrap();
    let (mut publisher, _) = RawClient::connect(b.addr, Version::V5, "pub", true)
        .await
        .unwrap();
    // The subscriber's inflight window (32) and queue (2) take 34; the 35th is held.
    for i in 1..=35u16 {
        publisher
            .publish("flow/q", b"x", QoS::AtLeastOnce, false, i)
            .await
            .unwrap();
    }
    for i in 1..=34u16 {
        let p = publisher.recv().await.unwrap();
        assert!(
            matches!(&p, Packet::PubAck(a) if a.packet_id == i),
            "PUBACK {i}: {p:?}"
        );
    }
    publisher
        .expect_silence(Duration::from_millis(300))
        .await
        .unwrap();
    // The subscriber acknowledges two: the queue has room, the 35th is acknowledged.
    for _ in 0..2 {
        let p = sub.recv_publish().await.unwrap();
        sub.send(&Packet::PubAck(ferry_mqtt::Ack::new(
            p.packet_id,
            reason::SUCCESS,
        )))
        .await
        .unwrap();
    }
    let p = publisher.recv().await.unwrap();
    assert!(
        matches!(&p, Packet::PubAck(a) if a.packet_id == 35),
        "{p:?}"
    );
    assert_eq!(b.broker.metrics().get(BrokerMetric::DroppedQueueFull), 0);
    b.stop().await;
}

#[tokio::test]
async fn a_stuck_subscriber_is_dropped_after_the_bound_and_the_others_keep_flowing() {
    let cfg = MqttConfig {
        max_queued_messages: 200,
        queue_full_wait: Dur(Duration::from_millis(300)),
        slow_subscriber_timeout: Dur(Duration::from_secs(1)),
        ..MqttConfig::default()
    };
    let b = TestBroker::with_config(cfg).await;
    // Never reads: once the socket buffers are full (the messages are 4 KB), the queue fills
    // and stays full.
    let (mut stuck, _) = RawClient::connect(b.addr, Version::V5, "stuck", true)
        .await
        .unwrap();
    stuck.subscribe("flow/#", QoS::AtLeastOnce).await.unwrap();
    let (mut ok, _) = RawClient::connect(b.addr, Version::V5, "ok", true)
        .await
        .unwrap();
    ok.subscribe("flow/#", QoS::AtMostOnce).await.unwrap();
    let (mut publisher, _) = RawClient::connect(b.addr, Version::V5, "pub", true)
        .await
        .unwrap();
    const N: u32 = 5_000;
    let bytes = burst("flow/s", N, 4096, Version::V5);
    let writer = tokio::spawn(async move {
        publisher.send_raw(&bytes).await.unwrap();
        publisher
    });
    // The healthy subscriber gets everything, in order, while the stuck one gets nothing.
    read_all(&mut ok, N, 0, Duration::ZERO).await;
    let publisher = writer.await.unwrap();
    let m = b.broker.metrics();
    assert!(m.get(BrokerMetric::PublishersHeld) > 0);
    assert!(
        m.get(BrokerMetric::DroppedQueueFull) > 0,
        "the stuck subscriber lost its oldest, counted: {}",
        m.get(BrokerMetric::DroppedQueueFull)
    );
    // Full for slow_subscriber_timeout: a message after that disconnects it.
    let mut publisher = publisher;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while m.get(BrokerMetric::SlowSubscribersDisconnected) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never disconnected");
        publisher
            .publish("flow/tick", b"x", QoS::AtMostOnce, false, 0)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stuck.expect_close().await.unwrap(),
        Some(reason::QUOTA_EXCEEDED)
    );
    b.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_still_times_out_and_lets_the_server_stop() {
    let cfg = MqttConfig {
        queue_full: QueueFull::DropOldest,
        session_expiry_interval: 60,
        ..MqttConfig::default()
    };
    let b = TestBroker::with_config(cfg).await;
    let mut deaf = RawClient::open(b.addr, Version::V5).await.unwrap();
    let connect = ferry_mqtt::Connect {
        keep_alive: 1,
        properties: ferry_mqtt::Properties {
            session_expiry_interval: Some(60),
            ..Default::default()
        },
        ..ferry_testkit::connect_packet(Version::V5, "deaf", true)
    };
    deaf.handshake(connect).await.unwrap();
    deaf.subscribe("deaf/#", QoS::AtMostOnce).await.unwrap();
    let (mut publisher, _) = RawClient::connect(b.addr, Version::V5, "pub", true)
        .await
        .unwrap();
    // 8 MB: more than the socket buffers take, so writes to `deaf` stop completing.
    let bytes = burst("deaf/x", 2_000, 4096, Version::V5);
    publisher.send_raw(&bytes).await.unwrap();
    // Keep alive (1.5 s) is enforced although a write is pending.
    let broker = b.broker.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while broker.client("deaf").is_some_and(|c| c.connected) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a connection blocked in a write outlived its keep alive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another one, left connected: the server still stops.
    let (mut deaf2, _) = RawClient::connect(b.addr, Version::V5, "deaf2", true)
        .await
        .unwrap();
    deaf2.subscribe("deaf/#", QoS::AtMostOnce).await.unwrap();
    publisher.send_raw(&bytes).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), b.stop())
        .await
        .expect("stopped although a peer does not read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_subscriber_gets_a_large_burst_without_stalling() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The output buffer fills and drains many times, the subscriber reading as fast as it
    // can (a plain socket counting bytes): no refill may wait for a wake-up that never comes.
    let b = TestBroker::start().await;
    let mut sub = tokio::net::TcpStream::connect(b.addr).await.unwrap();
    let mut hello = BytesMut::new();
    let connect = ferry_testkit::connect_packet(Version::V311, "sub", true);
    ferry_mqtt::encode(
        &Packet::Connect(Box::new(connect)),
        Version::V311,
        &mut hello,
    )
    .unwrap();
    let subscribe = ferry_mqtt::Subscribe {
        packet_id: 1,
        filters: vec![("flow/b".into(), ferry_mqtt::SubOptions::default())],
        properties: Default::default(),
    };
    ferry_mqtt::encode(&Packet::Subscribe(subscribe), Version::V311, &mut hello).unwrap();
    sub.write_all(&hello).await.unwrap();
    // CONNACK (4 bytes) and SUBACK (5).
    let mut head = [0u8; 9];
    sub.read_exact(&mut head).await.unwrap();
    const N: u32 = 100_000;
    let bytes = burst("flow/b", N, 100, Version::V311);
    let per_round = bytes.len();
    for round in 0..3 {
        let (mut publisher, _) = RawClient::connect(b.addr, Version::V311, "pub", true)
            .await
            .unwrap();
        let out = bytes.clone();
        let writer = tokio::spawn(async move {
            publisher.send_raw(&out).await.unwrap();
            publisher
        });
        let mut got = 0;
        let mut buf = vec![0u8; 256 * 1024];
        while got < per_round {
            let n = tokio::time::timeout(Duration::from_secs(10), sub.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("round {round}: stalled at {got} of {per_round} bytes"))
                .unwrap();
            assert!(n > 0, "closed");
            got += n;
        }
        assert_eq!(got, per_round, "round {round}: exactly the burst");
        writer.await.unwrap().disconnect().await.unwrap();
    }
    assert_eq!(b.broker.metrics().get(BrokerMetric::DroppedQueueFull), 0);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_without_reading_stops_being_read() {
    // PINGREQs, never reading the PINGRESPs: once its output backs up, Ferry stops reading
    // it (TCP pushes back) instead of buffering answers without bound.
    let b = TestBroker::start().await;
    let (mut c, _) = RawClient::connect(b.addr, Version::V311, "pinger", true)
        .await
        .unwrap();
    const N: usize = 8_000_000;
    let pings = [0xC0u8, 0x00].repeat(N);
    let writer = tokio::spawn(async move {
        let _ = c.send_raw(&pings).await;
        c
    });
    let m = b.broker.clone();
    let received = || m.metrics().get(BrokerMetric::PacketsReceived);
    // Wait until reading stops: the count holds still for a second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut last = received();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = received();
        if now == last {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still reading");
        last = now;
    }
    assert!(
        (last as usize) < N,
        "stopped reading before the end: {last} of {N} packets"
    );
    writer.abort();
    b.stop().await;
}

#[tokio::test]
async fn large_messages_wait_in_the_queue_not_in_the_write_buffer() {
    // 64 KB messages to a subscriber that does not read: once the socket buffers are full,
    // the connection takes about one more into its write buffer, and the rest wait in the
    // bounded queue, where `queue_full` applies. (Taking a batch of 256 whatever their size
    // would move them all, 15 MB, into this one client's write buffer.)
    let b = TestBroker::start().await;
    let (mut deaf, _) = RawClient::connect(b.addr, Version::V311, "deaf", true)
        .await
        .unwrap();
    deaf.subscribe("big/#", QoS::AtMostOnce).await.unwrap();
    let (mut publisher, _) = RawClient::connect(b.addr, Version::V311, "pub", true)
        .await
        .unwrap();
    const N: u64 = 240;
    let bytes = burst("big/x", N as u32, 64 * 1024, Version::V311);
    publisher.send_raw(&bytes).await.unwrap();
    let m = b.broker.clone();
    ferry_testkit::wait_until("all routed", Duration::from_secs(20), move || {
        m.metrics().get(BrokerMetric::ReceivedQos0) == N
    })
    .await;
    let queued = b.broker.client("deaf").map_or(0, |c| c.mqueue_len);
    // The socket buffers take a few MB at most; the rest is queued.
    assert!(queued >= 100, "{queued} of {N} still queued");
    b.stop().await;
}

/// A connection whose output is backed up (its peer does not read) still hears that its
/// session was taken over, and that the server is stopping: it ends (after its goodbye
/// write's own 5 s bound) without its peer reading anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_is_still_taken_over_and_told_to_stop() {
    let cfg = MqttConfig {
        queue_full: QueueFull::DropOldest,
        ..MqttConfig::default()
    };
    let b = TestBroker::with_config(cfg).await;
    let broker = b.broker.clone();
    let (mut deaf, _) = RawClient::connect(b.addr, Version::V5, "deaf", false)
        .await
        .unwrap();
    // Subscribed without reading the SUBACK: nothing is read from `deaf` from here on.
    let sub = Packet::Subscribe(ferry_mqtt::Subscribe {
        packet_id: 1,
        filters: vec![("deaf/#".into(), ferry_mqtt::SubOptions::default())],
        properties: Default::default(),
    });
    let (mut publisher, _) = RawClient::connect(b.addr, Version::V5, "pub", true)
        .await
        .unwrap();
    // 8 MB: more than the socket buffers take; the queue fills and drops (counted).
    let bytes = burst("deaf/x", 2_000, 4096, Version::V5);
    deaf.send(&sub).await.unwrap();
    ferry_testkit::wait_until("subscribed", Duration::from_secs(10), || {
        broker.subscription_count() == 1
    })
    .await;
    publisher.send_raw(&bytes).await.unwrap();
    ferry_testkit::wait_until("the queue overflows", Duration::from_secs(10), || {
        broker.metrics().get(BrokerMetric::DroppedQueueFull) > 0
    })
    .await;
    // Taken over while its writes are stuck: it ends although `deaf` reads nothing.
    let (_new, ack) = RawClient::connect(b.addr, Version::V5, "deaf", false)
        .await
        .unwrap();
    assert!(ack.session_present);
    ferry_testkit::wait_until("the old connection ended", Duration::from_secs(15), || {
        broker.metrics().get(BrokerMetric::ConnectionsClosed) == 1
    })
    .await;
    // The same for shutdown.
    let (mut deaf2, _) = RawClient::connect(b.addr, Version::V5, "deaf2", true)
        .await
        .unwrap();
    deaf2.send(&sub).await.unwrap();
    ferry_testkit::wait_until("subscribed", Duration::from_secs(10), || {
        broker.subscription_count() == 2
    })
    .await;
    let before = broker.metrics().get(BrokerMetric::DroppedQueueFull);
    publisher.send_raw(&bytes).await.unwrap();
    ferry_testkit::wait_until("the queue overflows again", Duration::from_secs(10), || {
        broker.metrics().get(BrokerMetric::DroppedQueueFull) > before
    })
    .await;
    let stopping = tokio::spawn(b.stop());
    ferry_testkit::wait_until("deaf2 ended", Duration::from_secs(15), || {
        !broker.client("deaf2").is_some_and(|c| c.connected)
    })
    .await;
    stopping.await.unwrap();
    drop(deaf);
}
