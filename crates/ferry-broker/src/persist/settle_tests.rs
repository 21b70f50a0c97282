//! Issue 12 item 5: with persistence, a delivery of an in-process publisher (a Kafka source)
//! to an offline persistent session counts as delivered once the commit that stores it
//! succeeded; online sessions and brokers without persistence still wait for the client's
//! acknowledgement.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ferry_mqtt::QoS;

use super::tests::{Flaky, TestResult, attach, detach, open, opts};
use crate::store::MemStore;
use crate::tests::{drain, payloads};
use crate::*;

/// A QoS 1 message with a completion on topic `t`.
fn tracked(payload: &str) -> (Message, Arc<Completion>) {
    let done = Completion::new(Default::default());
    let mut m = Message::new("t", payload.to_owned(), QoS::AtLeastOnce, false);
    m.completion = Some(done.clone());
    (m, done)
}

/// A persistent session subscribed to `t` at QoS 1, then offline.
fn offline(b: &Arc<Broker>, id: &str) -> Result<(), SubscribeError> {
    let a = attach(b, id, false, 300);
    b.subscribe(&a.session, "t", opts(QoS::AtLeastOnce), None)?;
    detach(b, &a);
    Ok(())
}

#[tokio::test]
async fn a_delivery_to_an_offline_persistent_session_completes_once_committed() -> TestResult {
    let store = Arc::new(MemStore::default());
    let (b, _) = open(&store, Duration::from_millis(100))?;
    offline(&b, "dev").map_err(|e| e.what)?;
    let (m, done) = tracked("m");
    assert_eq!(b.publish(m), 1);
    assert!(!done.is_done(), "queued in memory only: not yet");
    b.sync()?;
    assert!(done.is_done(), "durably queued: delivered");
    assert_eq!(b.registry().json()["state.durably_queued"], 1);
    // It is in the store, and the device still gets it after a restart.
    drop(b);
    let (b, restored) = open(&store, Duration::from_millis(100))?;
    assert_eq!(restored.queued, 1);
    let a = attach(&b, "dev", false, 300);
    assert_eq!(payloads(&drain(&a.session, a.conn_id, &b)), vec!["m"]);
    Ok(())
}

#[tokio::test]
async fn an_online_subscriber_still_holds_the_completion_until_it_acknowledges() -> TestResult {
    let store = Arc::new(MemStore::default());
    let (b, _) = open(&store, Duration::from_millis(100))?;
    offline(&b, "away").map_err(|e| e.what)?;
    let live = attach(&b, "live", false, 300);
    b.subscribe(&live.session, "t", opts(QoS::AtLeastOnce), None)
        .map_err(|e| e.what)?;
    let (m, done) = tracked("m");
    assert_eq!(b.publish(m), 2);
    b.sync()?;
    assert!(
        !done.is_done(),
        "the connected session has not acknowledged"
    );
    let out = drain(&live.session, live.conn_id, &b);
    let Some(Outgoing::Publish { packet_id, .. }) = out.first() else {
        return Err("a publish".into());
    };
    let packet_id = *packet_id;
    drop(out);
    assert!(live.session.lock().puback(packet_id).is_some());
    assert!(done.is_done(), "acknowledged online, durable offline");
    Ok(())
}

#[tokio::test]
async fn an_unacknowledged_delivery_settles_when_its_session_goes_offline() -> TestResult {
    let store = Arc::new(MemStore::default());
    let (b, _) = open(&store, Duration::from_millis(100))?;
    let a = attach(&b, "dev", false, 300);
    b.subscribe(&a.session, "t", opts(QoS::AtLeastOnce), None)
        .map_err(|e| e.what)?;
    let (m, done) = tracked("m");
    b.publish(m);
    drop(drain(&a.session, a.conn_id, &b)); // sent, inflight, never acknowledged
    b.sync()?;
    assert!(!done.is_done(), "online: waits for the PUBACK");
    detach(&b, &a);
    assert!(!done.is_done(), "offline but not committed yet");
    b.sync()?;
    assert!(done.is_done(), "the inflight delivery is in the store");
    Ok(())
}

#[tokio::test]
async fn a_failed_commit_settles_nothing_until_a_commit_succeeds() -> TestResult {
    let store = Arc::new(Flaky::default());
    let (b, _) = Broker::with_store(
        MqttConfig::default(),
        store.clone(),
        Duration::from_millis(100),
    )?;
    offline(&b, "dev").map_err(|e| e.what)?;
    b.sync()?;
    let (m, done) = tracked("m");
    b.publish(m);
    store.fail.store(true, Ordering::Relaxed);
    assert!(b.sync().is_err());
    assert!(!done.is_done(), "not durable");
    store.fail.store(false, Ordering::Relaxed);
    b.sync()?;
    assert!(done.is_done());
    assert_eq!(store.inner.load()?.sessions[0].deliveries.len(), 1);
    Ok(())
}

#[tokio::test]
async fn strict_mode_settles_right_after_the_commit() -> TestResult {
    let store = Arc::new(MemStore::default());
    let (b, _) = open(&store, Duration::ZERO)?;
    offline(&b, "dev").map_err(|e| e.what)?;
    let stop = Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn(b.clone().run_sync({
        let stop = stop.clone();
        async move { stop.notified().await }
    }));
    let signal = Arc::new(tokio::sync::Notify::new());
    let done = Completion::new(signal.clone());
    let mut m = Message::new("t", "m", QoS::AtLeastOnce, false);
    m.completion = Some(done.clone());
    // As a Kafka source does: no acknowledgement to wait for, the commit follows at once.
    b.publish(m);
    tokio::time::timeout(Duration::from_secs(5), async {
        while !done.is_done() {
            signal.notified().await;
        }
    })
    .await?;
    assert_eq!(store.load()?.sessions[0].deliveries.len(), 1);
    stop.notify_one();
    task.await?;
    Ok(())
}

#[tokio::test]
async fn without_persistence_an_offline_session_holds_the_completion() -> TestResult {
    let b = Broker::new(MqttConfig::default());
    offline(&b, "dev").map_err(|e| e.what)?;
    let (m, done) = tracked("m");
    b.publish(m);
    b.sync()?;
    assert!(!done.is_done(), "only the device's PUBACK completes it");
    let a = attach(&b, "dev", false, 300);
    let out = drain(&a.session, a.conn_id, &b);
    let Some(Outgoing::Publish { packet_id, .. }) = out.first() else {
        return Err("a publish".into());
    };
    let packet_id = *packet_id;
    drop(out);
    assert!(a.session.lock().puback(packet_id).is_some());
    assert!(done.is_done());
    Ok(())
}
