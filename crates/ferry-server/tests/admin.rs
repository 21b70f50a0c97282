//! Admin queries and kick over real TCP: what the HTTP API will report about clients.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_mqtt::{Ack, Packet, Properties, QoS, SubAck, Version, encoded_len, reason};
use ferry_testkit::{RawClient, TestBroker, connect_packet, wait_until, will};

const LIMIT: Duration = Duration::from_secs(5);

fn len(p: &Packet, v: Version) -> u64 {
    encoded_len(p, v) as u64
}

#[tokio::test]
async fn kick_sends_disconnect_0x98_to_a_v5_client_and_discards_the_session() -> anyhow::Result<()>
{
    let b = TestBroker::start().await;
    let mut c = connect_packet(Version::V5, "kicked", false);
    c.properties.session_expiry_interval = Some(3600);
    let mut k = RawClient::open(b.addr, Version::V5).await?;
    k.handshake(c.clone()).await?;
    k.subscribe("k/#", QoS::AtLeastOnce).await?;
    assert!(b.broker.client("kicked").is_some_and(|c| c.connected));

    assert!(b.broker.kick("kicked"));
    assert_eq!(k.expect_close().await?, Some(reason::ADMINISTRATIVE_ACTION));
    assert!(b.broker.clients().is_empty(), "the session is gone");
    assert!(b.broker.subscriptions().is_empty());
    assert!(b.broker.topics().is_empty());
    assert!(!b.broker.kick("kicked"), "nothing left to kick");

    let mut again = RawClient::open(b.addr, Version::V5).await?;
    assert!(!again.handshake(c).await?.session_present);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn kick_closes_a_v311_client_and_publishes_its_will_at_once() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut watcher, _) = RawClient::connect(b.addr, Version::V5, "watcher", true).await?;
    watcher.subscribe("wills/#", QoS::AtMostOnce).await?;

    let mut c3 = RawClient::open(b.addr, Version::V311).await?;
    let mut c = connect_packet(Version::V311, "old", false);
    c.will = Some(will("wills/old", b"gone", QoS::AtMostOnce, false));
    c3.handshake(c).await?;

    // An MQTT 5 client with a will delay: a kick ends the session, so the will goes now.
    let mut c5 = RawClient::open(b.addr, Version::V5).await?;
    let mut c = connect_packet(Version::V5, "new", false);
    c.properties.session_expiry_interval = Some(3600);
    let mut w = will("wills/new", b"gone too", QoS::AtMostOnce, false);
    w.properties.will_delay_interval = Some(3600);
    c.will = Some(w);
    c5.handshake(c).await?;

    assert!(b.broker.kick("old"));
    assert_eq!(
        c3.expect_close().await?,
        None,
        "3.x has no DISCONNECT from the server"
    );
    assert_eq!(watcher.recv_publish().await?.topic, "wills/old");

    assert!(b.broker.kick("new"));
    assert_eq!(
        c5.expect_close().await?,
        Some(reason::ADMINISTRATIVE_ACTION)
    );
    assert_eq!(watcher.recv_publish().await?.topic, "wills/new");
    let ids: Vec<String> = b
        .broker
        .clients()
        .iter()
        .map(|c| c.client.client_id.to_string())
        .collect();
    assert_eq!(ids, vec!["watcher"]);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn kick_discards_an_offline_persistent_session() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let (mut s, _) = RawClient::connect(b.addr, Version::V311, "offline", false).await?;
    s.subscribe("o/t", QoS::AtLeastOnce).await?;
    s.disconnect().await?;
    let broker = b.broker.clone();
    wait_until("the session is offline", LIMIT, || {
        broker.client("offline").is_some_and(|c| !c.connected)
    })
    .await;
    assert!(b.broker.kick("offline"));
    assert_eq!(b.broker.session_count(), 0);
    let (_s, ack) = RawClient::connect(b.addr, Version::V311, "offline", false).await?;
    assert!(!ack.session_present);
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn client_counters_count_what_was_sent_and_received() -> anyhow::Result<()> {
    let v = Version::V5;
    let b = TestBroker::start().await;

    let mut sub = RawClient::open(b.addr, v).await?;
    let connect = Packet::Connect(Box::new(connect_packet(v, "sub", true)));
    let connack = sub.handshake(connect_packet(v, "sub", true)).await?;
    let codes = sub.subscribe("c/t", QoS::AtLeastOnce).await?;
    let mut sub_in = len(&connect, v);
    let mut sub_out = len(&Packet::ConnAck(connack), v);
    sub_in += len(
        &Packet::Subscribe(ferry_mqtt::Subscribe {
            packet_id: 4242,
            filters: vec![(
                "c/t".into(),
                ferry_mqtt::SubOptions {
                    qos: QoS::AtLeastOnce,
                    ..Default::default()
                },
            )],
            properties: Properties::default(),
        }),
        v,
    );
    sub_out += len(
        &Packet::SubAck(SubAck {
            packet_id: 4242,
            codes,
            properties: Properties::default(),
        }),
        v,
    );

    let mut publ = RawClient::open(b.addr, v).await?;
    let pub_connect = Packet::Connect(Box::new(connect_packet(v, "pub", true)));
    let connack = publ.handshake(connect_packet(v, "pub", true)).await?;
    let mut pub_in = len(&pub_connect, v);
    let mut pub_out = len(&Packet::ConnAck(connack), v);
    for i in 1..=3u16 {
        let payload = vec![b'x'; 10 * usize::from(i)];
        let p = ferry_testkit::publish_packet("c/t", &payload, QoS::AtLeastOnce, false, i);
        pub_in += len(&Packet::Publish(p.clone()), v);
        publ.send(&Packet::Publish(p)).await?;
        match publ.recv().await? {
            Packet::PubAck(a) => pub_out += len(&Packet::PubAck(a), v),
            other => anyhow::bail!("expected PUBACK, got {other:?}"),
        }
        let got = sub.recv_publish().await?;
        sub_in += len(&Packet::PubAck(Ack::new(got.packet_id, 0)), v);
        sub_out += len(&Packet::Publish(got), v);
    }

    let broker = b.broker.clone();
    wait_until("subscriber's PUBACKs counted", LIMIT, || {
        broker
            .client("sub")
            .is_some_and(|c| c.stats.recv_pkt == 5 && c.inflight_cnt == 0)
    })
    .await;
    let s = b.broker.client("sub").unwrap().stats;
    assert_eq!((s.recv_msg, s.send_msg), (0, 3));
    assert_eq!(
        (s.recv_pkt, s.send_pkt),
        (5, 5),
        "CONNECT SUBSCRIBE 3×PUBACK / CONNACK SUBACK 3×PUBLISH"
    );
    assert_eq!((s.recv_oct, s.send_oct), (sub_in, sub_out));
    assert_eq!(s.mqueue_dropped, 0);

    let p = b.broker.client("pub").unwrap().stats;
    assert_eq!((p.recv_msg, p.send_msg), (3, 0));
    assert_eq!(
        (p.recv_pkt, p.send_pkt),
        (4, 4),
        "CONNECT 3×PUBLISH / CONNACK 3×PUBACK"
    );
    assert_eq!((p.recv_oct, p.send_oct), (pub_in, pub_out));
    b.stop().await;
    Ok(())
}

#[tokio::test]
async fn client_details_match_the_connect() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let mut c = connect_packet(Version::V5, "detail", false);
    c.keep_alive = 45;
    c.username = Some("dev-1".into());
    c.properties.session_expiry_interval = Some(120);
    c.properties.receive_maximum = Some(10);
    let before = ferry_broker::hook::now_ms();
    let mut d = RawClient::open(b.addr, Version::V5).await?;
    d.handshake(c).await?;
    d.subscribe("d/+", QoS::AtLeastOnce).await?;

    let got = b.broker.client("detail").unwrap();
    let info = &got.client;
    assert_eq!(&*info.client_id, "detail");
    assert_eq!(info.username.as_deref(), Some("dev-1"));
    assert_eq!(info.proto_ver, 5);
    assert_eq!(info.keepalive, 45);
    assert!(!info.clean_start);
    assert_eq!(info.expiry_interval, 120);
    assert_eq!(got.expiry_interval, 120);
    let peer = info.peer.unwrap();
    assert!(peer.ip().is_loopback());
    assert_ne!(peer.port(), b.addr.port());
    assert!(info.connected_at >= before);
    assert!(got.created_at >= before);
    assert!(got.connected);
    assert_eq!(got.disconnected_at, None);
    assert_eq!(got.subscriptions_cnt, 1);
    assert_eq!(
        got.inflight_max, 10,
        "min(client Receive Maximum, mqtt.max_inflight)"
    );
    assert_eq!(got.mqueue_max, b.broker.config().max_queued_messages);

    // A 3.1.1 client with clean session = 0 gets the configured session expiry.
    let mut c = connect_packet(Version::V311, "old", false);
    c.keep_alive = 0;
    let mut o = RawClient::open(b.addr, Version::V311).await?;
    o.handshake(c).await?;
    let old = b.broker.client("old").unwrap();
    assert_eq!(old.client.proto_ver, 4);
    assert_eq!(old.client.keepalive, 0);
    assert_eq!(old.client.username, None);
    assert_eq!(
        old.client.expiry_interval,
        b.broker.config().session_expiry_interval
    );
    assert_eq!(
        old.inflight_max,
        usize::from(b.broker.config().max_inflight)
    );

    d.disconnect().await?;
    let broker = b.broker.clone();
    wait_until("detail offline", LIMIT, || {
        broker
            .client("detail")
            .is_some_and(|c| !c.connected && c.disconnected_at.is_some())
    })
    .await;
    b.stop().await;
    Ok(())
}
