//! Deliveries are stored under keys of their own, so a sync writes what changed: the
//! write of a session with a long queue is as small as its change; a model-based test checks
//! that what the store holds after every commit, and what a restart brings back, is exactly
//! the session's state at that commit, through sends, acknowledgements, drops from a full
//! queue, disconnects, failed commits and restarts; version 1 records are still read.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ferry_mqtt::QoS;
use proptest::prelude::*;
use tokio::time::Instant;

use super::tests::{Flaky, TestResult, attach, detach, open, opts};
use crate::session::InflightState;
use crate::store::MemStore;
use crate::tests::{drain, payloads};
use crate::*;

/// A session's deliveries as (queue payloads, inflight (packet id, state, payload)), and its
/// last packet id.
type View = (Vec<String>, Vec<(u16, InflightState, String)>, u16);

fn text(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.msg.payload).into_owned()
}

/// "dev" in the broker.
fn live_view(b: &Broker) -> Option<View> {
    let s = lock(&b.sessions).get("dev").cloned()?;
    let st = s.lock();
    Some((
        st.queue.iter().map(text).collect(),
        st.inflight
            .iter()
            .map(|i| (i.packet_id, i.state, text(&i.delivery)))
            .collect(),
        st.next_packet_id,
    ))
}

/// "dev" in the store.
fn stored_view(store: &dyn Store) -> Result<Option<View>, StoreError> {
    let loaded = store.load()?;
    let Some(s) = loaded
        .sessions
        .into_iter()
        .find(|s| &*s.record.client_id == "dev")
    else {
        return Ok(None);
    };
    let mut queue = Vec::new();
    let mut inflight = Vec::new();
    for d in &s.deliveries {
        match d.sent {
            None => queue.push(text(&d.delivery)),
            Some((id, state)) => inflight.push((id, state, text(&d.delivery))),
        }
    }
    Ok(Some((queue, inflight, s.record.next_packet_id)))
}

#[tokio::test]
async fn a_change_to_a_long_queue_writes_only_what_changed() -> TestResult {
    let store = Arc::new(MemStore::default());
    let (b, _) = open(&store, Duration::from_millis(100))?;
    let a = attach(&b, "dev", false, 300);
    b.subscribe(&a.session, "t", opts(QoS::AtLeastOnce), None)
        .map_err(|e| e.what)?;
    detach(&b, &a);
    for i in 0..500 {
        b.publish(Message::new("t", i.to_string(), QoS::AtLeastOnce, false));
    }
    b.sync()?;
    assert_eq!(store.deliveries_written(), 500);
    b.publish(Message::new("t", "one more", QoS::AtLeastOnce, false));
    b.sync()?;
    assert_eq!(store.deliveries_written(), 501, "only the new one");
    // The device takes 10 (sent: their state is written) and acknowledges them (deleted).
    let a = attach(&b, "dev", false, 300);
    let mut out = Vec::new();
    a.session
        .lock()
        .next_batch(a.conn_id, 10, 100, Instant::now(), b.metrics(), &mut out);
    assert_eq!(out.len(), 10);
    b.sync()?;
    assert_eq!(store.deliveries_written(), 511);
    for o in &out {
        let Outgoing::Publish { packet_id, .. } = o else {
            return Err("a publish".into());
        };
        assert!(a.session.lock().puback(*packet_id).is_some());
    }
    b.sync()?;
    assert_eq!(store.deliveries_written(), 511, "deletes write nothing");
    assert_eq!(store.deliveries_stored(), 491);
    drop(b);
    let (_b, restored) = open(&store, Duration::from_millis(100))?;
    assert_eq!((restored.queued, restored.inflight), (491, 0));
    Ok(())
}

#[tokio::test]
async fn a_version_1_record_is_read_and_rewritten_with_keyed_deliveries() -> TestResult {
    // Written by the version 1 codec: "legacy" (never expires), subscribed to t/# at QoS 2,
    // p0 (QoS 1) sent and p1 (QoS 2) sent and PUBREC'd, then offline with q0 (QoS 1) and
    // q1 (QoS 0) queued.
    let store = Arc::new(MemStore::default());
    store.put_raw_session(
        "legacy",
        include_bytes!("../store/testdata/session_v1.bin").to_vec(),
    );
    let (b, restored) = open(&store, Duration::from_millis(100))?;
    assert_eq!(
        (
            restored.sessions,
            restored.subscriptions,
            restored.queued,
            restored.inflight
        ),
        (1, 1, 2, 2)
    );
    assert_eq!(store.deliveries_stored(), 0);
    // The next sync writes it in the new form (a change makes it dirty: here, a new message).
    b.publish(Message::new("t/4", "q2", QoS::AtLeastOnce, false));
    b.sync()?;
    assert_eq!(store.deliveries_stored(), 5);
    drop(b);
    let (b, restored) = open(&store, Duration::from_millis(100))?;
    assert_eq!((restored.queued, restored.inflight), (3, 2));
    let a = attach(&b, "legacy", false, NEVER_EXPIRE);
    assert!(a.session_present);
    let resent = a.session.lock().resend_all();
    assert_eq!(payloads(&resent), vec!["p0"], "p0 again, with DUP");
    assert!(
        matches!(resent.last(), Some(Outgoing::Release(_))),
        "p1: PUBREL again"
    );
    let out = drain(&a.session, a.conn_id, &b);
    assert_eq!(payloads(&out), vec!["q0", "q1", "q2"]);
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Publish(QoS),
    Connect,
    Disconnect,
    /// Sends queued messages with this inflight window.
    Send(usize),
    /// Acknowledges the n-th inflight message (PUBACK, PUBREC or PUBCOMP as it needs).
    Ack(usize),
    Sync,
    FailedSync,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let qos = prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ];
    prop_oneof![
        4 => qos.prop_map(Op::Publish),
        1 => Just(Op::Connect),
        1 => Just(Op::Disconnect),
        2 => (1usize..5).prop_map(Op::Send),
        3 => (0usize..4).prop_map(Op::Ack),
        2 => Just(Op::Sync),
        1 => Just(Op::FailedSync),
        1 => Just(Op::Restart),
    ]
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let _rt = rt.enter();
    let fail = |e: StoreError| TestCaseError::fail(e.to_string());
    let store = Arc::new(Flaky::default());
    let config = MqttConfig {
        max_queued_messages: 6,
        ..Default::default()
    };
    let reopen = || Broker::with_store(config.clone(), store.clone(), Duration::from_secs(1));
    let (mut b, _) = reopen().map_err(fail)?;
    let a = attach(&b, "dev", false, 300);
    b.subscribe(&a.session, "t", opts(QoS::ExactlyOnce), None)
        .map_err(|e| TestCaseError::fail(e.what))?;
    let mut conn = Some(a);
    b.sync().map_err(fail)?;
    let mut committed = live_view(&b);
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Publish(qos) => {
                b.publish(Message::new("t", format!("m{n}"), *qos, false));
            }
            Op::Connect => {
                if conn.is_none() {
                    conn = Some(attach(&b, "dev", false, 300));
                }
            }
            Op::Disconnect => {
                if let Some(a) = conn.take() {
                    detach(&b, &a);
                }
            }
            Op::Send(window) => {
                if let Some(a) = &conn {
                    let mut out = Vec::new();
                    a.session.lock().next_batch(
                        a.conn_id,
                        *window,
                        100,
                        Instant::now(),
                        b.metrics(),
                        &mut out,
                    );
                }
            }
            Op::Ack(i) => {
                if let Some(a) = &conn {
                    let mut st = a.session.lock();
                    if let Some((id, qos, state)) = st
                        .inflight
                        .get(*i)
                        .map(|f| (f.packet_id, f.delivery.qos, f.state))
                    {
                        match (qos, state) {
                            (QoS::ExactlyOnce, InflightState::Published) => {
                                st.pubrec(id, true);
                            }
                            (QoS::ExactlyOnce, InflightState::Released) => {
                                st.pubcomp(id);
                            }
                            _ => {
                                st.puback(id);
                            }
                        }
                    }
                }
            }
            Op::Sync => {
                b.sync().map_err(fail)?;
                committed = live_view(&b);
                prop_assert_eq!(stored_view(&store.inner).map_err(fail)?, committed.clone());
            }
            Op::FailedSync => {
                store.fail.store(true, Ordering::Relaxed);
                let _ = b.sync();
                store.fail.store(false, Ordering::Relaxed);
                prop_assert_eq!(stored_view(&store.inner).map_err(fail)?, committed.clone());
            }
            Op::Restart => {
                // kill -9: nothing after the last commit is kept.
                conn = None;
                (b, _) = reopen().map_err(fail)?;
                prop_assert_eq!(live_view(&b), committed.clone());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_store_holds_each_committed_state_exactly(ops in proptest::collection::vec(op(), 1..80)) {
        run(&ops)?;
    }
}
