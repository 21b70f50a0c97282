//! MQTT state across restarts, over real sockets: a persistent session with queued QoS 1
//! messages and retained messages survives a graceful stop (in-process gateway) and a
//! `kill -9` of the real binary; session expiry keeps counting while Ferry is down; plain
//! traffic of sessions that are not persistent never reaches the store.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use ferry::{Config, Gateway};
use ferry_mqtt::{Packet, Properties, QoS, Version};
use ferry_testkit::{RawClient, connect_packet, publish_packet};

type TestResult = anyhow::Result<()>;

fn config_text(data: &Path, extra: &str) -> String {
    format!(
        "[node]\ndata_dir = {:?}\n{extra}\n[api]\nenable = false\n[listeners.tcp.default]\nbind = \"127.0.0.1:0\"\n",
        data.display().to_string()
    )
}

async fn start(data: &Path, extra: &str) -> anyhow::Result<(Gateway, SocketAddr)> {
    let cfg = Config::parse(&config_text(data, extra), "test")?;
    let g = Gateway::start(&cfg).await?;
    let addr = g.listeners[0].1;
    Ok((g, addr))
}

/// MQTT 5, clean start false, the given session expiry.
async fn persistent(
    addr: SocketAddr,
    id: &str,
    expiry: u32,
) -> anyhow::Result<(RawClient, ferry_mqtt::ConnAck)> {
    let mut c = RawClient::open(addr, Version::V5).await?;
    let mut connect = connect_packet(Version::V5, id, false);
    connect.properties = Properties {
        session_expiry_interval: Some(expiry),
        ..Default::default()
    };
    let ack = c.handshake(connect).await?;
    anyhow::ensure!(ack.code == 0, "CONNACK {:#x}", ack.code);
    Ok((c, ack))
}

async fn publish_acked(
    c: &mut RawClient,
    topic: &str,
    payload: &str,
    retain: bool,
    pid: u16,
) -> TestResult {
    let p = publish_packet(topic, payload.as_bytes(), QoS::AtLeastOnce, retain, pid);
    c.send(&Packet::Publish(p)).await?;
    match c.recv().await? {
        Packet::PubAck(a) if a.packet_id == pid && a.code < 0x80 => Ok(()),
        other => anyhow::bail!("expected PUBACK {pid}, got {other:?}"),
    }
}

const RETAINED: [&str; 3] = ["state/a", "state/b", "state/c"];

/// "dev" subscribes to fleet/# at QoS 1 and goes away; 10 QoS 1 messages are queued for it;
/// three retained messages are set.
async fn prepare(addr: SocketAddr) -> TestResult {
    let (mut dev, ack) = persistent(addr, "dev", 300).await?;
    assert!(!ack.session_present);
    assert_eq!(dev.subscribe("fleet/#", QoS::AtLeastOnce).await?, vec![1]);
    dev.disconnect().await?;
    let (mut publisher, _) = RawClient::connect(addr, Version::V5, "publisher", true).await?;
    for i in 0..10u16 {
        publish_acked(&mut publisher, "fleet/1", &format!("m{i}"), false, i + 1).await?;
    }
    for (i, t) in RETAINED.iter().enumerate() {
        publish_acked(&mut publisher, t, &format!("r-{t}"), true, 100 + i as u16).await?;
    }
    publisher.disconnect().await?;
    Ok(())
}

/// "dev" resumes its session and gets the 10 messages in order; a new subscriber gets the
/// retained messages.
async fn check(addr: SocketAddr) -> TestResult {
    let (mut dev, ack) = persistent(addr, "dev", 300).await?;
    assert!(ack.session_present, "the session survived");
    for i in 0..10 {
        let p = dev.recv_publish().await?;
        assert_eq!(p.topic, "fleet/1");
        assert_eq!(p.qos, QoS::AtLeastOnce);
        assert_eq!(String::from_utf8_lossy(&p.payload), format!("m{i}"));
    }
    dev.expect_silence(Duration::from_millis(200)).await?;
    dev.disconnect().await?;
    let (mut fresh, _) = RawClient::connect(addr, Version::V5, "fresh", true).await?;
    fresh.subscribe("state/#", QoS::AtLeastOnce).await?;
    let mut got = Vec::new();
    for _ in RETAINED {
        let p = fresh.recv_publish().await?;
        assert!(p.retain);
        got.push((
            p.topic.clone(),
            String::from_utf8_lossy(&p.payload).into_owned(),
        ));
    }
    got.sort();
    let want: Vec<_> = RETAINED
        .iter()
        .map(|t| (t.to_string(), format!("r-{t}")))
        .collect();
    assert_eq!(got, want);
    fresh.disconnect().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_and_retained_messages_survive_a_graceful_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (g, addr) = start(&data, "").await?;
    prepare(addr).await?;
    g.stop().await;
    assert!(data.join("state.redb").exists());

    let (g, addr) = start(&data, "").await?;
    assert_eq!(
        g.broker.session_count(),
        1,
        "only the persistent session is kept"
    );
    assert_eq!(g.broker.retained_count(), 3);
    check(addr).await?;
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_keeps_counting_across_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (g, addr) = start(&data, "").await?;
    let (mut dev, _) = persistent(addr, "short", 2).await?;
    dev.subscribe("x/#", QoS::AtLeastOnce).await?;
    dev.disconnect().await?;
    let gone_at = Instant::now() + Duration::from_secs(2);
    g.stop().await;

    // Within its 2 s, a restart keeps it...
    let (g, _) = start(&data, "").await?;
    assert!(g.broker.client("short").is_some());
    g.stop().await;
    // ...and once they passed while Ferry was down, a restart drops it.
    let left = gone_at.saturating_duration_since(Instant::now());
    tokio::time::sleep(left + Duration::from_millis(100)).await;
    let (g, addr) = start(&data, "").await?;
    assert!(g.broker.client("short").is_none());
    assert_eq!(g.broker.subscription_count(), 0);
    let (c, ack) = persistent(addr, "short", 2).await?;
    assert!(!ack.session_present);
    c.disconnect().await?;
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos0_routing_between_sessions_that_are_not_persistent_never_touches_the_store()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let (g, addr) = start(&dir.path().join("data"), "").await?;
    let mut subs = Vec::new();
    for i in 0..5 {
        let (mut c, _) = RawClient::connect(addr, Version::V5, &format!("s{i}"), true).await?;
        c.subscribe("plain/#", QoS::AtMostOnce).await?;
        subs.push(c);
    }
    let (mut publisher, _) = RawClient::connect(addr, Version::V5, "p", true).await?;
    for i in 0..500 {
        publisher
            .publish(
                "plain/t",
                format!("{i}").as_bytes(),
                QoS::AtMostOnce,
                false,
                0,
            )
            .await?;
    }
    for c in &mut subs {
        for _ in 0..500 {
            c.recv_publish().await?;
        }
    }
    let stats = g.broker.persist_stats();
    assert_eq!(stats.enlisted, 0, "no session was marked for writing");
    assert_eq!(stats.commits, 0, "no store call");
    for c in subs {
        c.disconnect().await?;
    }
    publisher.disconnect().await?;
    g.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_and_retained_messages_survive_kill_9() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ferry.toml");
    // The strictest setting: every PUBACK and SUBACK above was sent after its commit, so
    // the kill can come right after the last one.
    std::fs::write(
        &path,
        config_text(&dir.path().join("data"), "state_sync_interval = \"0ms\""),
    )?;
    let (mut child, addr) = common::serve_binary(&path);
    prepare(addr).await?;
    child.kill()?; // SIGKILL
    child.wait()?;

    let (mut child, addr) = common::serve_binary(&path);
    let result = check(addr).await;
    child.kill()?;
    child.wait()?;
    result
}
