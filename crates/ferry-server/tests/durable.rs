//! The acknowledgement path for durable consumers: a QoS 1/2 PUBLISH is acknowledged only
//! once every durable consumer said "durable", in PUBLISH order; a failure reaches MQTT 5
//! publishers as a reason code and closes 3.x connections (so they resend). A *holding*
//! acknowledgement (a consumer applying backpressure) also stops reading the publisher.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_broker::{DurableAck, Hook, Message, NotDurable};
use ferry_mqtt::{Packet, QoS, Version, reason};
use ferry_testkit::{RawClient, TestBroker, wait_until};
use tokio::sync::oneshot;

type Sender = oneshot::Sender<Result<(), NotDurable>>;

/// Holds an acknowledgement for every message on `durable/#` until the test releases it.
#[derive(Default)]
struct Holding(Mutex<Vec<Sender>>);

impl Hook for Holding {
    fn message_published(&self, msg: &Arc<Message>, acks: &mut Vec<DurableAck>) {
        let holds = msg.topic.starts_with("holding/");
        if msg.topic.starts_with("durable/") || holds {
            let (tx, rx) = DurableAck::channel();
            self.0.lock().unwrap().push(tx);
            acks.push(if holds { rx.holding() } else { rx });
        }
    }
}

async fn setup() -> (TestBroker, Arc<Holding>) {
    let b = TestBroker::start().await;
    let h = Arc::new(Holding::default());
    let hook: Arc<dyn Hook> = h.clone();
    b.broker
        .install_hooks(vec![hook])
        .map_err(|_| "hooks")
        .unwrap();
    (b, h)
}

async fn held(h: &Arc<Holding>, n: usize) {
    let h = h.clone();
    wait_until("held acks", Duration::from_secs(5), move || {
        h.0.lock().unwrap().len() == n
    })
    .await;
}

fn release(h: &Holding, i: usize, r: Result<(), NotDurable>) {
    let tx = std::mem::replace(&mut h.0.lock().unwrap()[i], oneshot::channel().0);
    let _ = tx.send(r);
}

#[tokio::test]
async fn puback_waits_for_durable_and_keeps_publish_order() -> anyhow::Result<()> {
    let (b, h) = setup().await;
    let (mut c, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    c.publish("durable/1", b"a", QoS::AtLeastOnce, false, 1)
        .await?;
    c.publish("plain/2", b"b", QoS::AtLeastOnce, false, 2)
        .await?;
    c.publish("durable/3", b"c", QoS::ExactlyOnce, false, 3)
        .await?;
    held(&h, 2).await;
    c.expect_silence(Duration::from_millis(200)).await?;
    release(&h, 0, Ok(()));
    assert!(
        matches!(c.recv().await?, Packet::PubAck(a) if a.packet_id == 1 && a.code == reason::NO_MATCHING_SUBSCRIBERS)
    );
    assert!(
        matches!(c.recv().await?, Packet::PubAck(a) if a.packet_id == 2),
        "the later PUBACK waited for the earlier"
    );
    c.expect_silence(Duration::from_millis(100)).await?;
    release(
        &h,
        1,
        Err(NotDurable {
            code: reason::QUOTA_EXCEEDED,
            why: "queue full".into(),
        }),
    );
    assert!(
        matches!(c.recv().await?, Packet::PubRec(a) if a.packet_id == 3 && a.code == reason::QUOTA_EXCEEDED)
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn v3_publisher_is_disconnected_when_not_durable() -> anyhow::Result<()> {
    let (b, h) = setup().await;
    let (mut c, _) = RawClient::connect(b.addr, Version::V311, "p3", true).await?;
    c.publish("durable/x", b"a", QoS::AtLeastOnce, false, 1)
        .await?;
    held(&h, 1).await;
    release(
        &h,
        0,
        Err(NotDurable {
            code: reason::UNSPECIFIED_ERROR,
            why: "kafka down".into(),
        }),
    );
    assert_eq!(
        c.expect_close().await?,
        None,
        "no PUBACK: the client will resend"
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_consumer_that_goes_away_counts_as_failure() -> anyhow::Result<()> {
    let (b, h) = setup().await;
    let (mut c, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    c.publish("durable/x", b"a", QoS::AtLeastOnce, false, 1)
        .await?;
    held(&h, 1).await;
    h.0.lock().unwrap().clear();
    assert!(matches!(c.recv().await?, Packet::PubAck(a) if a.code == reason::UNSPECIFIED_ERROR));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn pending_acks_count_against_receive_maximum() -> anyhow::Result<()> {
    let b = TestBroker::with_config(ferry_broker::MqttConfig {
        receive_maximum: 2,
        ..Default::default()
    })
    .await;
    let h = Arc::new(Holding::default());
    let hook: Arc<dyn Hook> = h.clone();
    b.broker
        .install_hooks(vec![hook])
        .map_err(|_| "hooks")
        .unwrap();
    let (mut c, _) = RawClient::connect(b.addr, Version::V5, "p", true).await?;
    for i in 1..=3 {
        c.publish("durable/x", b"a", QoS::AtLeastOnce, false, i)
            .await?;
    }
    assert_eq!(
        c.expect_close().await?,
        Some(reason::RECEIVE_MAXIMUM_EXCEEDED)
    );
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_holding_ack_stops_reading_the_publisher_until_it_settles() -> anyhow::Result<()> {
    let (b, h) = setup().await;
    let (mut sub, _) = RawClient::connect(b.addr, Version::V5, "s", true).await?;
    sub.subscribe("after/#", QoS::AtMostOnce).await?;
    for (i, version) in [Version::V311, Version::V5].into_iter().enumerate() {
        let (mut c, _) = RawClient::connect(b.addr, version, "p", true).await?;
        c.publish("holding/1", b"a", QoS::AtMostOnce, false, 0)
            .await?;
        held(&h, i + 1).await;
        // Sent after the held message was handled: it waits in the socket.
        c.publish("after/1", b"b", QoS::AtMostOnce, false, 0)
            .await?;
        sub.expect_silence(Duration::from_millis(300)).await?;
        // A refused QoS 0 message is dropped (the consumer counts it); reading goes on,
        // even for MQTT 3.1.1.
        let r = if i == 0 {
            Err(NotDurable {
                code: reason::QUOTA_EXCEEDED,
                why: "full".into(),
            })
        } else {
            Ok(())
        };
        release(&h, i, r);
        let p = sub.recv_publish().await?;
        assert_eq!((p.topic.as_str(), &p.payload[..]), ("after/1", &b"b"[..]));
    }
    Ok(())
}
