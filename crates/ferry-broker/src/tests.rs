//! Unit tests of routing and session logic, without sockets: the same API an in-process
//! client (rule engine, Kafka source) uses.

use std::sync::Arc;

use ferry_mqtt::{QoS, SubOptions};
use tokio::time::Instant;

use super::*;

fn opts(qos: QoS) -> SubOptions {
    SubOptions {
        qos,
        ..Default::default()
    }
}

/// Attaches an in-process client, as a connection would.
fn attach(b: &Broker, id: &str, clean_start: bool, expiry: u32) -> Attached {
    b.connect(Arc::new(ClientInfo {
        clean_start,
        expiry_interval: expiry,
        ..ClientInfo::internal(id)
    }))
}

pub(crate) fn drain(s: &Arc<Session>, conn_id: u64, b: &Broker) -> Vec<Outgoing> {
    let mut out = Vec::new();
    s.lock()
        .next_batch(conn_id, 100, 1000, Instant::now(), b.metrics(), &mut out);
    out
}

pub(crate) fn payloads(out: &[Outgoing]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Outgoing::Publish { delivery, .. } => {
                Some(String::from_utf8_lossy(&delivery.msg.payload).into_owned())
            }
            Outgoing::Release(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn in_process_client_subscribes_and_receives() {
    let b = Broker::new(MqttConfig::default());
    let a = attach(&b, "rules", true, NEVER_EXPIRE);
    b.subscribe(&a.session, "mqttx/simulate/#", opts(QoS::AtLeastOnce), None)
        .unwrap();
    assert_eq!(
        b.publish(Message::new(
            "mqttx/simulate/tesla/1",
            "x",
            QoS::AtLeastOnce,
            false
        )),
        1
    );
    assert_eq!(
        b.publish(Message::new("other", "y", QoS::AtLeastOnce, false)),
        0
    );
    let out = drain(&a.session, a.conn_id, &b);
    assert_eq!(payloads(&out), vec!["x"]);
    match &out[0] {
        Outgoing::Publish { packet_id, .. } => assert_ne!(*packet_id, 0),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.session.lock().inflight_len(), 1);
}

#[tokio::test]
async fn overlapping_subscriptions_merge_into_one_delivery() {
    let b = Broker::new(MqttConfig::default());
    let a = attach(&b, "c", true, 0);
    b.subscribe(&a.session, "a/#", opts(QoS::AtMostOnce), Some(1))
        .unwrap();
    b.subscribe(&a.session, "a/+", opts(QoS::ExactlyOnce), Some(2))
        .unwrap();
    b.publish(Message::new("a/b", "m", QoS::AtLeastOnce, false));
    let out = drain(&a.session, a.conn_id, &b);
    assert_eq!(out.len(), 1);
    let Outgoing::Publish { delivery, .. } = &out[0] else {
        panic!()
    };
    assert_eq!(
        delivery.qos,
        QoS::AtLeastOnce,
        "min(published, max granted)"
    );
    let mut ids = delivery.sub_ids.clone();
    ids.sort();
    assert_eq!(ids, vec![1, 2]);
}

#[tokio::test]
async fn queue_overflow_drops_the_oldest_and_counts() {
    let b = Broker::new(MqttConfig {
        max_queued_messages: 3,
        ..Default::default()
    });
    let a = attach(&b, "c", true, 0);
    b.subscribe(&a.session, "t", opts(QoS::AtMostOnce), None)
        .unwrap();
    for i in 0..5 {
        b.publish(Message::new("t", i.to_string(), QoS::AtMostOnce, false));
    }
    assert_eq!(b.metrics().get(BrokerMetric::DroppedQueueFull), 2);
    assert_eq!(
        payloads(&drain(&a.session, a.conn_id, &b)),
        vec!["2", "3", "4"]
    );
}

#[tokio::test]
async fn a_detached_connection_cannot_drain_the_session() {
    let b = Broker::new(MqttConfig::default());
    let old = attach(&b, "c", false, 100);
    b.subscribe(&old.session, "t", opts(QoS::AtLeastOnce), None)
        .unwrap();
    let new = attach(&b, "c", false, 100);
    assert!(new.session_present);
    b.publish(Message::new("t", "m", QoS::AtLeastOnce, false));
    assert!(drain(&old.session, old.conn_id, &b).is_empty());
    assert_eq!(payloads(&drain(&new.session, new.conn_id, &b)), vec!["m"]);
}

#[tokio::test]
async fn shared_group_prefers_connected_members() {
    let b = Broker::new(MqttConfig::default());
    let on = attach(&b, "on", true, 0);
    let off = attach(&b, "off", false, 1000);
    b.subscribe(&on.session, "$share/g/t", opts(QoS::AtLeastOnce), None)
        .unwrap();
    b.subscribe(&off.session, "$share/g/t", opts(QoS::AtLeastOnce), None)
        .unwrap();
    b.disconnect(
        &off.session,
        off.conn_id,
        None,
        &Arc::new(ClientInfo::internal("off")),
    );
    for i in 0..4 {
        b.publish(Message::new("t", i.to_string(), QoS::AtLeastOnce, false));
    }
    assert_eq!(payloads(&drain(&on.session, on.conn_id, &b)).len(), 4);
    assert_eq!(off.session.lock().queued(), 0);
}

#[tokio::test]
async fn packet_ids_skip_ids_still_inflight() {
    let b = Broker::new(MqttConfig {
        max_queued_messages: 100_000,
        ..Default::default()
    });
    let a = attach(&b, "c", true, 0);
    b.subscribe(&a.session, "t", opts(QoS::AtLeastOnce), None)
        .unwrap();
    b.publish(Message::new("t", "first", QoS::AtLeastOnce, false));
    let first = drain(&a.session, a.conn_id, &b);
    let Outgoing::Publish {
        packet_id: kept, ..
    } = first[0]
    else {
        panic!()
    };
    // Cycle through the whole id space while `kept` stays unacknowledged.
    for _ in 0..70_000u32 {
        b.publish(Message::new("t", "x", QoS::AtLeastOnce, false));
        let mut out = Vec::new();
        a.session.lock().next_batch(
            a.conn_id,
            usize::MAX,
            1,
            Instant::now(),
            b.metrics(),
            &mut out,
        );
        let Outgoing::Publish { packet_id, .. } = out[0] else {
            panic!()
        };
        assert_ne!(packet_id, kept);
        assert_ne!(packet_id, 0);
        assert!(a.session.lock().puback(packet_id).is_some());
    }
}

#[tokio::test]
async fn completion_waits_for_every_qos1_delivery() {
    let b = Broker::new(MqttConfig::default());
    let s1 = attach(&b, "s1", true, 0);
    let s2 = attach(&b, "s2", true, 0);
    let s0 = attach(&b, "s0", true, 0);
    b.subscribe(&s1.session, "t", opts(QoS::AtLeastOnce), None)
        .unwrap();
    b.subscribe(&s2.session, "t", opts(QoS::ExactlyOnce), None)
        .unwrap();
    b.subscribe(&s0.session, "t", opts(QoS::AtMostOnce), None)
        .unwrap();
    let done = Completion::new(Default::default());
    let c = done.clone();
    let mut m = Message::new("t", "x", QoS::ExactlyOnce, false);
    m.completion = Some(c);
    assert_eq!(b.publish(m), 3);
    assert!(!done.is_done(), "not delivered yet");
    let o1 = drain(&s1.session, s1.conn_id, &b);
    let o2 = drain(&s2.session, s2.conn_id, &b);
    drop(drain(&s0.session, s0.conn_id, &b));
    let Outgoing::Publish { packet_id: p1, .. } = o1[0] else {
        panic!()
    };
    let Outgoing::Publish { packet_id: p2, .. } = o2[0] else {
        panic!()
    };
    drop((o1, o2));
    assert!(s1.session.lock().puback(p1).is_some());
    assert!(!done.is_done(), "s2 has not completed");
    assert!(s2.session.lock().pubrec(p2, true));
    assert!(!done.is_done(), "PUBREC is not the end of QoS 2");
    drop(s2.session.lock().pubcomp(p2));
    assert!(done.is_done(), "delivered to everyone");
}

#[tokio::test]
async fn completion_is_immediate_without_qos1_subscribers_and_on_drops() {
    let b = Broker::new(MqttConfig {
        max_queued_messages: 1,
        ..Default::default()
    });
    let done = Completion::new(Default::default());
    let c = done.clone();
    let mut m = Message::new("nobody", "x", QoS::AtLeastOnce, false);
    m.completion = Some(c);
    b.publish(m);
    assert!(done.is_done());
    let s = attach(&b, "s", true, 0);
    b.subscribe(&s.session, "t", opts(QoS::AtLeastOnce), None)
        .unwrap();
    let first = Completion::new(Default::default());
    let c = first.clone();
    let mut m = Message::new("t", "1", QoS::AtLeastOnce, false);
    m.completion = Some(c);
    b.publish(m);
    assert!(!first.is_done());
    b.publish(Message::new("t", "2", QoS::AtLeastOnce, false));
    assert!(
        first.is_done(),
        "pushed out of a full queue: given up, so complete"
    );
    let gone = Completion::new(Default::default());
    let c = gone.clone();
    let mut m = Message::new("t", "3", QoS::AtLeastOnce, false);
    m.completion = Some(c);
    b.publish(m);
    b.disconnect(
        &s.session,
        s.conn_id,
        None,
        &Arc::new(ClientInfo::internal("s")),
    );
    assert!(gone.is_done(), "the session ended");
}

/// Records the per-subscriber drops and authorization checks hooks hear of.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl Hook for Recorder {
    fn delivery_dropped(&self, to: &ClientInfo, msg: &Arc<Message>, why: DeliveryDropReason) {
        let line = format!("{} {} {}", to.client_id, why.as_str(), msg.topic);
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    fn client_check_authz_complete(
        &self,
        c: &ClientInfo,
        action: AuthzAction,
        topic: &str,
        authz: &Authz,
    ) {
        let line = format!(
            "{} {} {topic} {}",
            c.client_id,
            action.as_str(),
            authz.result()
        );
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
}

#[tokio::test]
async fn expired_and_overflowing_deliveries_are_reported_per_subscriber() {
    let cfg = MqttConfig {
        max_queued_messages: 2,
        ..MqttConfig::default()
    };
    let b = Broker::new(cfg);
    let rec = Arc::new(Recorder::default());
    let hook: Arc<dyn Hook> = rec.clone();
    assert!(b.install_hooks(vec![hook]).is_ok());
    let a = attach(&b, "sub", true, NEVER_EXPIRE);
    b.subscribe(&a.session, "t/#", opts(QoS::AtLeastOnce), None)
        .unwrap();
    for topic in ["t/1", "t/2", "t/3"] {
        let mut m = Message::new(topic, "x", QoS::AtLeastOnce, false);
        m.properties.message_expiry_interval = Some(5);
        b.publish(m);
    }
    let mut out = Vec::new();
    let later = Instant::now() + std::time::Duration::from_secs(6);
    b.next_batch(&a.session, a.conn_id, 10, 10, later, &mut out);
    assert!(out.is_empty());
    let seen = rec.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        ["sub queue_full t/1", "sub expired t/2", "sub expired t/3"],
        "in-process clients are not authorized, so only drops are heard"
    );
}

#[tokio::test]
async fn a_batch_stops_at_its_byte_budget() {
    let b = Broker::new(MqttConfig::default());
    let a = attach(&b, "sub", true, 0);
    b.subscribe(&a.session, "big/#", opts(QoS::AtMostOnce), None)
        .unwrap();
    let kb = "x".repeat(1000);
    for _ in 0..10 {
        b.publish(Message::new("big/1", kb.clone(), QoS::AtMostOnce, false));
    }
    let mut out = Vec::new();
    // 1,005 bytes each (topic and payload): the third reaches 3,000.
    b.next_batch_within(
        &a.session,
        a.conn_id,
        32,
        (256, 3000),
        Instant::now(),
        &mut out,
    );
    assert_eq!(out.len(), 3);
    out.clear();
    // At least one, however small the budget.
    b.next_batch_within(
        &a.session,
        a.conn_id,
        32,
        (256, 1),
        Instant::now(),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(a.session.lock().queued(), 6);
}
