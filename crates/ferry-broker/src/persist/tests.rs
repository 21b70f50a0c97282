//! Persistence without files: the in-memory byte store ([`MemStore`]) stands in for redb,
//! and a "restart" is a new broker on the same store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ferry_mqtt::{QoS, SubOptions};

use crate::store::{MemStore, codec};
use crate::tests::{drain, payloads};
use crate::*;

pub(super) type TestResult = Result<(), Box<dyn std::error::Error>>;

pub(super) fn opts(qos: QoS) -> SubOptions {
    SubOptions {
        qos,
        ..Default::default()
    }
}

pub(super) fn attach(b: &Broker, id: &str, clean_start: bool, expiry: u32) -> Attached {
    b.connect(Arc::new(ClientInfo {
        clean_start,
        expiry_interval: expiry,
        ..ClientInfo::internal(id)
    }))
}

pub(super) fn detach(b: &Arc<Broker>, a: &Attached) {
    let client = a.session.lock().client().clone();
    b.disconnect(&a.session, a.conn_id, None, &client);
}

pub(super) fn open(
    store: &Arc<MemStore>,
    interval: Duration,
) -> Result<(Arc<Broker>, Restored), StoreError> {
    Broker::with_store(MqttConfig::default(), store.clone(), interval)
}

#[test]
fn codec_round_trips_a_session_record_and_a_message() -> TestResult {
    let mut m = Message::new(
        "a/b",
        Bytes::from_static(b"\x00\x01bin"),
        QoS::ExactlyOnce,
        true,
    );
    m.properties.message_expiry_interval = Some(600);
    m.properties.content_type = Some("text/plain".into());
    m.properties.correlation_data = Some(Bytes::from_static(b"corr"));
    m.properties.user_properties = vec![("k".into(), "v".into())];
    m.publisher = Some(Arc::new(ClientInfo {
        username: Some("user".into()),
        ..ClientInfo::internal("pub-1")
    }));
    let m = Arc::new(m);
    let back = codec::decode_message(&codec::encode_message(&m))?;
    assert_eq!(
        (
            &back.topic,
            &back.payload,
            back.qos,
            back.retain,
            back.timestamp
        ),
        (&m.topic, &m.payload, m.qos, m.retain, m.timestamp)
    );
    assert_eq!(back.properties, m.properties);
    assert_eq!(back.publisher_id(), Some("pub-1"));
    assert_eq!(
        back.publisher.as_ref().and_then(|p| p.username.as_deref()),
        Some("user")
    );

    let d = |qos, shared: Option<SharedVia>| Delivery {
        msg: m.clone(),
        qos,
        retain: false,
        sub_ids: vec![7, 9],
        shared,
        ticket: None,
        seq: 0,
    };
    let rec = SessionRecord {
        client_id: "c1".into(),
        created_at: 11,
        expiry_interval: 300,
        disconnected_at: 22,
        saved_at: 33,
        client: Arc::new(ClientInfo {
            peer: Some("127.0.0.1:5000".parse()?),
            proto_ver: 5,
            keepalive: 60,
            clean_start: false,
            expiry_interval: 300,
            ..ClientInfo::internal("c1")
        }),
        subscriptions: vec![
            (
                "a/#".into(),
                Subscription {
                    opts: SubOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: true,
                        retain_as_published: true,
                        retain_handling: 2,
                    },
                    sub_id: Some(7),
                },
            ),
            (
                "$share/g/x".into(),
                Subscription {
                    opts: opts(QoS::ExactlyOnce),
                    sub_id: None,
                },
            ),
        ],
        awaiting_rel: vec![3, 4],
        next_packet_id: 6,
    };
    let bytes = codec::encode_session(&rec);
    let StoredSession {
        record: back,
        deliveries,
    } = codec::decode_session(&bytes)?;
    assert!(deliveries.is_empty(), "stored under their own keys");
    assert_eq!(back.client_id, rec.client_id);
    assert_eq!(
        (
            back.created_at,
            back.expiry_interval,
            back.disconnected_at,
            back.saved_at
        ),
        (11, 300, 22, 33)
    );
    assert_eq!(*back.client, *rec.client);
    assert_eq!(back.subscriptions, rec.subscriptions);
    assert_eq!(back.awaiting_rel, vec![3, 4]);
    assert_eq!(back.next_packet_id, 6);
    // Deliveries: queued (QoS 0, and QoS 1 through a shared subscription) and inflight.
    let stored = [
        (1, d(QoS::AtMostOnce, None), None),
        (
            2,
            d(
                QoS::AtLeastOnce,
                Some(SharedVia {
                    group: "g".into(),
                    filter: "x".into(),
                }),
            ),
            None,
        ),
        (
            7,
            d(QoS::AtLeastOnce, None),
            Some((5, session::InflightState::Published)),
        ),
        (
            8,
            d(QoS::ExactlyOnce, None),
            Some((6, session::InflightState::Released)),
        ),
    ];
    for (seq, delivery, sent) in stored {
        let sd = StoredDelivery {
            seq,
            delivery,
            sent,
        };
        let bytes = codec::encode_delivery(&sd);
        let back = codec::decode_delivery(seq, &bytes)?;
        assert_eq!((back.seq, back.delivery.seq, back.sent), (seq, seq, sent));
        assert_eq!(back.delivery.qos, sd.delivery.qos);
        assert_eq!(back.delivery.shared, sd.delivery.shared);
        assert_eq!(back.delivery.sub_ids, vec![7, 9]);
        assert_eq!(back.delivery.msg.payload, m.payload);
        for n in 0..bytes.len() {
            assert!(codec::decode_delivery(seq, &bytes[..n]).is_err(), "{n}");
        }
    }
    // Every truncation is refused, never a panic.
    for n in 0..bytes.len() {
        assert!(codec::decode_session(&bytes[..n]).is_err(), "{n}");
    }
    Ok(())
}

#[tokio::test]
async fn a_persistent_session_and_retained_messages_survive_a_restart() -> TestResult {
    let store = Arc::new(MemStore::default());
    let (b, _) = open(&store, Duration::from_millis(100))?;
    let a = attach(&b, "dev", false, 300);
    b.subscribe(&a.session, "t/#", opts(QoS::AtLeastOnce), Some(4))
        .map_err(|e| e.what)?;
    // One message sent and unacknowledged (inflight), then offline.
    b.publish(Message::new("t/0", "inflight", QoS::AtLeastOnce, false));
    let sent = drain(&a.session, a.conn_id, &b);
    assert_eq!(payloads(&sent), vec!["inflight"]);
    detach(&b, &a);
    for i in 0..10 {
        b.publish(Message::new("t/1", i.to_string(), QoS::AtLeastOnce, false));
    }
    b.publish(Message::new("r/1", "r1", QoS::AtLeastOnce, true));
    b.publish(Message::new("r/2", "r2", QoS::AtMostOnce, true));
    b.publish(Message::new("r/3", "r3", QoS::AtMostOnce, true));
    b.publish(Message::new("r/3", "", QoS::AtMostOnce, true)); // cleared again
    b.sync()?;
    assert_eq!(store.counts().0, 1, "one commit for the whole batch");
    drop(b);

    let (b, restored) = open(&store, Duration::from_millis(100))?;
    assert_eq!(
        restored,
        Restored {
            sessions: 1,
            expired: 0,
            retained: 2,
            subscriptions: 1,
            subscriptions_dropped: 0,
            queued: 10,
            inflight: 1,
            retained_expired: 0,
        }
    );
    // The same counts are gauges of the registry (`/metrics`, the API's metrics).
    let m = b.registry().json();
    assert_eq!(m["state.restored.sessions"], 1);
    assert_eq!(m["state.restored.subscriptions"], 1);
    assert_eq!(m["state.restored.queued_messages"], 10);
    assert_eq!(m["state.restored.inflight_messages"], 1);
    assert_eq!(m["state.restored.retained_messages"], 2);
    assert_eq!(m["state.restore_dropped"], 0);
    assert_eq!(b.retained_count(), 2);
    let offline = b.client("dev").ok_or("session restored")?;
    assert!(!offline.connected);
    assert_eq!((offline.mqueue_len, offline.inflight_cnt), (10, 1));
    // The subscription routes again, with its id.
    b.publish(Message::new("t/2", "after", QoS::AtLeastOnce, false));
    let a = attach(&b, "dev", false, 300);
    assert!(a.session_present);
    let resent = a.session.lock().resend_all();
    assert_eq!(payloads(&resent), vec!["inflight"]);
    let out = drain(&a.session, a.conn_id, &b);
    let mut want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    want.push("after".into());
    assert_eq!(payloads(&out), want);
    let Outgoing::Publish { delivery, .. } = &out[10] else {
        panic!("publish")
    };
    assert_eq!(delivery.sub_ids, vec![4]);
    Ok(())
}

#[tokio::test]
async fn changes_between_syncs_are_one_batch_with_one_record_per_key() -> TestResult {
    let store = Arc::new(MemStore::default());
    let (b, _) = open(&store, Duration::from_millis(100))?;
    let mut sessions = Vec::new();
    for i in 0..3 {
        let a = attach(&b, &format!("s{i}"), false, 60);
        b.subscribe(&a.session, "t", opts(QoS::AtLeastOnce), None)
            .map_err(|e| e.what)?;
        sessions.push(a);
    }
    for i in 0..100 {
        b.publish(Message::new(
            "t",
            i.to_string(),
            QoS::AtLeastOnce,
            i % 10 == 0,
        ));
    }
    assert_eq!(b.persist_stats().enlisted, 3, "each session listed once");
    assert_eq!(b.sync()?, 3 + 1, "3 sessions and 1 retained topic");
    assert_eq!(store.counts(), (1, 4));
    assert_eq!(b.sync()?, 0, "nothing changed since");
    assert_eq!(store.counts(), (1, 4));
    // The registry has it: two syncs ran, one committed four records.
    let m = b.registry().json();
    assert_eq!(m["state.syncs"], 2);
    assert_eq!(m["state.commits"], 1);
    assert_eq!(m["state.changes_written"], 4);
    assert_eq!(m["state.sessions_marked"], 3);
    assert_eq!(m["state.commit.count"], 1, "only the commit is timed");
    assert!(m["state.last_commit_us"] > 0);
    let text = b.registry().encode_prometheus(&[]);
    assert!(text.contains("ferry_state_commits_total 1\n"), "{text}");
    assert!(
        text.contains("ferry_state_commit_seconds_count 1\n"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn routing_to_sessions_that_are_not_persistent_never_reaches_the_store() -> TestResult {
    let store = Arc::new(MemStore::default());
    let (b, _) = open(&store, Duration::ZERO)?;
    let mut subs = Vec::new();
    for i in 0..10 {
        let a = attach(&b, &format!("clean{i}"), true, 0);
        b.subscribe(&a.session, "t/#", opts(QoS::AtLeastOnce), None)
            .map_err(|e| e.what)?;
        subs.push(a);
    }
    for i in 0..100 {
        let qos = if i % 2 == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let mut acks = Vec::new();
        b.publish_durable(Message::new("t/x", "m", qos, false), &mut acks);
        assert!(
            acks.is_empty(),
            "strict mode waits only for durable changes"
        );
    }
    for a in &subs {
        let out = drain(&a.session, a.conn_id, &b);
        assert_eq!(out.len(), 100);
        for o in out {
            if let Outgoing::Publish { packet_id, .. } = o
                && packet_id != 0
            {
                a.session.lock().puback(packet_id);
            }
        }
        detach(&b, a);
    }
    assert_eq!(b.persist_stats().enlisted, 0);
    assert_eq!(b.sync()?, 0);
    assert_eq!(store.counts(), (0, 0), "no store call at all");
    Ok(())
}

#[tokio::test]
async fn a_clean_start_discards_the_stored_session() -> TestResult {
    let store = Arc::new(MemStore::default());
    let (b, _) = open(&store, Duration::from_millis(100))?;
    let a = attach(&b, "dev", false, 300);
    b.subscribe(&a.session, "t", opts(QoS::AtLeastOnce), None)
        .map_err(|e| e.what)?;
    detach(&b, &a);
    b.sync()?;
    let a = attach(&b, "dev", true, 0);
    assert!(!a.session_present);
    b.sync()?;
    drop(b);
    let (b, restored) = open(&store, Duration::from_millis(100))?;
    assert_eq!(restored.sessions, 0);
    assert_eq!(b.session_count(), 0);
    Ok(())
}

#[tokio::test]
async fn session_expiry_keeps_counting_across_a_restart() -> TestResult {
    let store = Arc::new(MemStore::default());
    let record = |id: &str, expiry: u32, ago_ms: i64| SessionWrite {
        replace: true,
        put: vec![],
        removed: vec![],
        record: SessionRecord {
            client_id: id.into(),
            created_at: 0,
            expiry_interval: expiry,
            disconnected_at: hook::now_ms() - ago_ms,
            saved_at: hook::now_ms() - ago_ms,
            client: Arc::new(ClientInfo::internal(id)),
            subscriptions: vec![(
                "t".into(),
                Subscription {
                    opts: opts(QoS::AtLeastOnce),
                    sub_id: None,
                },
            )],
            awaiting_rel: vec![],
            next_packet_id: 0,
        },
    };
    store.apply(&[
        Change::PutSession(Box::new(record("gone", 2, 3_000))),
        Change::PutSession(Box::new(record("left", 2, 1_000))),
        Change::PutSession(Box::new(record("never", NEVER_EXPIRE, 1_000_000))),
    ])?;
    tokio::time::pause();
    let (b, restored) = open(&store, Duration::from_millis(100))?;
    assert_eq!(
        (restored.sessions, restored.expired),
        (2, 1),
        "the session that expired while stopped is dropped at load"
    );
    assert!(b.client("gone").is_none());
    assert_eq!(b.subscription_count(), 2);
    b.sync()?;
    assert_eq!(b.persist_stats().changes, 1, "its record is deleted");
    // "left" had 1 s of its 2 s left.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(b.client("left").is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        b.client("left").is_none(),
        "expired 2 s after its disconnect"
    );
    assert!(b.client("never").is_some());
    assert_eq!(b.subscription_count(), 1);
    b.sync()?;
    drop(b);
    let (_b, restored) = open(&store, Duration::from_millis(100))?;
    assert_eq!((restored.sessions, restored.expired), (1, 0));
    Ok(())
}

#[tokio::test]
async fn strict_mode_acknowledges_after_the_commit() -> TestResult {
    let store = Arc::new(MemStore::default());
    let (b, _) = open(&store, Duration::ZERO)?;
    assert!(b.is_strict());
    let a = attach(&b, "dev", false, 300);
    b.subscribe(&a.session, "t", opts(QoS::AtLeastOnce), None)
        .map_err(|e| e.what)?;
    let mut acks = Vec::new();
    b.publish_durable(Message::new("t", "m", QoS::AtLeastOnce, false), &mut acks);
    assert_eq!(
        acks.len(),
        1,
        "queued for a persistent session: wait for the commit"
    );
    let mut acks0 = Vec::new();
    b.publish_durable(Message::new("t", "m", QoS::AtMostOnce, false), &mut acks0);
    assert!(acks0.is_empty(), "QoS 0 publishers are never held");
    let mut ack = acks.pop().ok_or("ack")?;
    assert!(ack.try_recv().is_err(), "not before the commit");
    let stop = Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn(b.clone().run_sync({
        let stop = stop.clone();
        async move { stop.notified().await }
    }));
    tokio::time::timeout(Duration::from_secs(5), ack)
        .await??
        .map_err(|e| e.why)?;
    assert!(store.counts().0 >= 1);
    let barrier = b.commit_barrier().ok_or("strict")?;
    tokio::time::timeout(Duration::from_secs(5), barrier)
        .await??
        .map_err(|e| e.why)?;
    stop.notify_one();
    task.await?;
    Ok(())
}

/// Fails while `fail` is set.
#[derive(Debug, Default)]
pub(super) struct Flaky {
    pub(super) inner: MemStore,
    pub(super) fail: AtomicBool,
}

impl Store for Flaky {
    fn load(&self) -> Result<Loaded, StoreError> {
        self.inner.load()
    }
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(StoreError::Backend("disk on fire".into()));
        }
        self.inner.apply(changes)
    }
}

#[tokio::test]
async fn a_failed_commit_is_retried_by_the_next_sync() -> TestResult {
    let store = Arc::new(Flaky::default());
    let (b, _) = Broker::with_store(MqttConfig::default(), store.clone(), Duration::ZERO)?;
    let a = attach(&b, "dev", false, 300);
    b.subscribe(&a.session, "t", opts(QoS::AtLeastOnce), None)
        .map_err(|e| e.what)?;
    b.publish(Message::new("r", "x", QoS::AtMostOnce, true));
    store.fail.store(true, Ordering::Relaxed);
    let mut barrier = b.commit_barrier().ok_or("strict")?;
    assert!(b.sync().is_err());
    assert!(
        matches!(barrier.try_recv(), Ok(Err(_))),
        "the waiter hears of the failure"
    );
    assert_eq!(b.persist_stats().failures, 1);
    assert_eq!(b.registry().json()["state.commit_errors"], 1);
    assert_eq!(b.registry().json()["state.commits"], 0);
    store.fail.store(false, Ordering::Relaxed);
    assert_eq!(b.sync()?, 2, "the session and the retained topic again");
    assert_eq!(b.registry().json()["state.commits"], 1);
    let loaded = store.load()?;
    assert_eq!((loaded.sessions.len(), loaded.retained.len()), (1, 1));
    Ok(())
}
