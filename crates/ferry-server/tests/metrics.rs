//! Metrics seen from outside: what a connection counts, and that clients add no series.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use ferry_broker::BrokerMetric;
use ferry_mqtt::{Packet, QoS, Version};
use ferry_testkit::{RawClient, TestBroker, wait_until};

/// The series (name and labels) of a Prometheus text exposition.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(k, _)| k.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_add_no_series() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let before = series(&b.broker.registry().encode_prometheus(&[]));
    let mut clients = Vec::new();
    for i in 0..1000 {
        let (mut c, _) =
            RawClient::connect(b.addr, Version::V5, &format!("device-{i}"), true).await?;
        // Each has its own topic and subscription; none of it may become a label.
        c.subscribe(&format!("devices/{i}/cmd"), QoS::AtLeastOnce)
            .await?;
        c.publish(
            &format!("devices/{i}/telemetry"),
            b"{}",
            QoS::AtLeastOnce,
            false,
            1,
        )
        .await?;
        match c.recv().await? {
            Packet::PubAck(_) => {}
            other => anyhow::bail!("expected PUBACK, got {other:?}"),
        }
        clients.push(c);
    }
    let m = b.broker.metrics();
    wait_until("1000 connections counted", Duration::from_secs(10), || {
        m.get(BrokerMetric::ConnectionsOpened) == 1000
    })
    .await;
    let text = b.broker.registry().encode_prometheus(&[]);
    let after = series(&text);
    assert_eq!(
        before.symmetric_difference(&after).collect::<Vec<_>>(),
        Vec::<&String>::new()
    );
    assert!(
        text.contains("ferry_messages_received_total{qos=\"1\"} 1000"),
        "{text}"
    );
    assert!(
        text.contains("ferry_puback_delay_seconds_count 1000"),
        "{text}"
    );
    for c in clients {
        c.disconnect().await?;
    }
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn connections_count_bytes_packets_qos_and_puback_delay() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V311, "sub", true).await?;
    sub.subscribe("t/#", QoS::ExactlyOnce).await?;
    let (mut publ, _) = RawClient::connect(b.addr, Version::V311, "pub", true).await?;
    publ.publish("t/1", b"hello", QoS::AtLeastOnce, false, 7)
        .await?;
    assert!(matches!(publ.recv().await?, Packet::PubAck(_)));
    publ.publish("t/0", b"hi", QoS::AtMostOnce, false, 0)
        .await?;
    publ.publish("nobody", b"x", QoS::AtMostOnce, false, 0)
        .await?;
    // recv_publish answers the QoS 1 PUBLISH with its PUBACK.
    let p = sub.recv_publish().await?;
    assert_eq!(p.qos, QoS::AtLeastOnce);
    assert_eq!(sub.recv_publish().await?.qos, QoS::AtMostOnce);
    let m = b.broker.metrics();
    wait_until("messages counted", Duration::from_secs(5), || {
        m.get(BrokerMetric::DroppedNoSubscribers) == 1 && m.get(BrokerMetric::PacketsReceived) == 7
    })
    .await;
    assert_eq!(m.get(BrokerMetric::ReceivedQos0), 2);
    assert_eq!(m.get(BrokerMetric::ReceivedQos1), 1);
    assert_eq!(m.get(BrokerMetric::SentQos1), 1);
    assert_eq!(m.get(BrokerMetric::SentQos0), 1);
    assert_eq!(m.get(BrokerMetric::ConnectionsOpened), 2);
    // CONNECT, SUBSCRIBE, CONNECT, 3 PUBLISH, PUBACK.
    assert_eq!(m.get(BrokerMetric::PacketsReceived), 7);
    // CONNACK, SUBACK, CONNACK, PUBACK, 2 PUBLISH.
    assert_eq!(m.get(BrokerMetric::PacketsSent), 6, "{m:?}");
    assert!(m.get(BrokerMetric::BytesReceived) > 30);
    assert!(m.get(BrokerMetric::BytesSent) > 20);
    assert_eq!(b.broker.registry().puback_delay().count(), 1);
    let json = b.broker.registry().json();
    assert_eq!(json["messages.received"], 3);
    assert_eq!(json["messages.dropped"], 1);
    b.stop().await;
    Ok(())
}
