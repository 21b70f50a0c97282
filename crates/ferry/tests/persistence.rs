//! MQTT state across restarts, over real sockets: a persistent session with queued QoS 1
//! messages and retained messages survives a graceful stop (in-process gateway) and a
//! `kill -9` of the real binary (strict mode, and the default mode once a sync covered the
//! changes); session expiry keeps counting while Ferry is down; plain
//! traffic of sessions that are not persistent never reaches the store.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use ferry::{Config, Gateway};
use ferry_mqtt::{Packet, Properties, QoS, Version};
use ferry_testkit::{RawClient, connect_packet, publish_packet, wait_until};

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
    let (child, addr) = common::serve_binary(&path);
    let child = common::Killed(child);
    prepare(addr).await?;
    child.kill()?; // SIGKILL

    let (child, addr) = common::serve_binary(&path);
    let _child = common::Killed(child);
    check(addr).await
}

/// `state_syncs_total` of the Ferry whose API is at `api`.
fn syncs(api: SocketAddr) -> f64 {
    common::sample(&common::scrape(api), "ferry_state_syncs_total").unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_and_retained_messages_survive_kill_9_after_a_sync() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ferry.toml");
    // The default, non-strict mode: PUBACKs and SUBACKs go out at once, and the state is
    // committed every 200 ms. A kill -9 loses what changed since the last commit (plus the
    // commit in flight): here it could be the subscription, some of the queued messages or
    // retained messages, had the kill come within 200 ms of them. So the test waits for a
    // commit that covers everything before it kills.
    let text = format!(
        "[node]\ndata_dir = {:?}\nstate_sync_interval = \"200ms\"\n\
         [api]\nenable = true\nbind = \"127.0.0.1:0\"\n\
         [listeners.tcp.default]\nbind = \"127.0.0.1:0\"\n",
        dir.path().join("data").display().to_string()
    );
    std::fs::write(&path, text)?;
    let (child, addr, api) = common::serve_binary_with_api(&path);
    let child = common::Killed(child);
    prepare(addr).await?;
    // Both clients have disconnected and the server saw it (dev's disconnect time is part
    // of its session record).
    wait_until(
        "the clients' connections closed",
        Duration::from_secs(10),
        || common::sample(&common::scrape(api), "ferry_connections") == Some(0.0),
    )
    .await;
    // `state_syncs_total` counts a sync when it starts (under the sync lock, before it takes
    // the dirty lists): sync n + 1 took its batch after this read, so after every change
    // above, and once sync n + 2 has started, n + 1 has committed.
    let n = syncs(api);
    wait_until(
        "a sync that covers every change",
        Duration::from_secs(10),
        || syncs(api) >= n + 2.0,
    )
    .await;
    let text = common::scrape(api);
    assert!(common::sample(&text, "ferry_state_commits_total") >= Some(1.0));
    assert_eq!(
        common::sample(&text, "ferry_state_commit_errors_total"),
        Some(0.0)
    );
    assert!(common::sample(&text, "ferry_state_commit_seconds_count") >= Some(1.0));
    child.kill()?; // SIGKILL

    let (child, addr, api) = common::serve_binary_with_api(&path);
    let _child = common::Killed(child);
    // What the restore found, as metrics.
    let text = common::scrape(api);
    for (what, n) in [
        ("sessions", 1.0),
        ("subscriptions", 1.0),
        ("queued_messages", 10.0),
        ("retained_messages", 3.0),
    ] {
        let series = format!("ferry_state_restored{{what=\"{what}\"}}");
        assert_eq!(common::sample(&text, &series), Some(n), "{series}");
    }
    check(addr).await
}
