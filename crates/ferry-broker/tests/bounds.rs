//! Bounds and lock discipline of the broker core (issue 14 item 4): session expiry and will
//! delay timers do not pile up across reconnects, hooks run without the `sessions` lock (a
//! hook may call back into the broker), and a session a takeover discarded cannot subscribe.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak, mpsc};
use std::time::Duration;

use ferry_broker::queue::QueueFull;
use ferry_broker::{
    Attached, Broker, ClientInfo, DeliveryDropReason, Hook, Message, MqttConfig, NEVER_EXPIRE,
    Outgoing,
};
use ferry_mqtt::{Properties, QoS, SubOptions, Will};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn client(id: &str, clean_start: bool, expiry: u32) -> Arc<ClientInfo> {
    Arc::new(ClientInfo {
        clean_start,
        expiry_interval: expiry,
        ..ClientInfo::internal(id)
    })
}

fn attach(b: &Broker, id: &str, clean_start: bool, expiry: u32) -> Attached {
    b.connect(client(id, clean_start, expiry))
}

fn opts(qos: QoS) -> SubOptions {
    SubOptions {
        qos,
        ..Default::default()
    }
}

fn delayed_will(topic: &str, delay: u32) -> Will {
    Will {
        topic: topic.into(),
        payload: "gone".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: Some(delay),
            ..Properties::default()
        },
    }
}

fn queued_payloads(b: &Broker, a: &Attached) -> Vec<String> {
    let mut out = Vec::new();
    b.next_batch(
        &a.session,
        a.conn_id,
        100,
        1000,
        tokio::time::Instant::now(),
        &mut out,
    );
    out.iter()
        .filter_map(|o| match o {
            Outgoing::Publish { delivery, .. } => {
                Some(String::from_utf8_lossy(&delivery.msg.payload).into_owned())
            }
            Outgoing::Release(_) => None,
        })
        .collect()
}

/// Polls `cond` on paused time (each turn lets the timer task run).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) -> TestResult {
    for _ in 0..1000 {
        if cond() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("timed out waiting for {what}").into())
}

#[test]
fn reconnecting_clients_leave_no_timers_or_tasks_behind() -> TestResult {
    run_paused(|| async {
        let b = Broker::new(MqttConfig::default());
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        let before = tasks();
        for _ in 0..2000 {
            let a = attach(&b, "car", false, 86_400);
            assert_eq!(b.timers_armed(), 0, "a resumed session has no timer armed");
            let c = client("car", false, 86_400);
            b.disconnect(&a.session, a.conn_id, Some(delayed_will("w", 600)), &c);
            assert_eq!(
                b.timers_armed(),
                2,
                "one expiry and one will per offline session"
            );
        }
        // One broker-wide task for every timer, not one (or two) per disconnect.
        assert!(tasks() <= before + 1, "{} tasks alive", tasks() - before);
        drop(b);
        eventually("the timer task to end with the broker", || {
            tasks() == before
        })
        .await
    })
}

#[test]
fn an_offline_session_still_expires_and_its_delayed_will_is_published() -> TestResult {
    run_paused(|| async {
        let b = Broker::new(MqttConfig::default());
        let watcher = attach(&b, "watcher", true, NEVER_EXPIRE);
        b.subscribe(&watcher.session, "w", opts(QoS::AtLeastOnce), None)?;
        let a = attach(&b, "car", true, 30);
        let c = client("car", true, 30);
        b.disconnect(&a.session, a.conn_id, Some(delayed_will("w", 10)), &c);
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(
            queued_payloads(&b, &watcher).is_empty(),
            "not before the will delay"
        );
        eventually("the delayed will", || watcher.session.lock().queued() == 1).await?;
        assert_eq!(b.session_count(), 2, "the session outlives the will delay");
        tokio::time::sleep(Duration::from_secs(20)).await;
        eventually("the session to expire", || b.session_count() == 1).await?;
        assert_eq!(b.timers_armed(), 0);
        Ok(())
    })
}

#[test]
fn discarding_an_offline_session_publishes_its_pending_will_at_once() -> TestResult {
    run_paused(|| async {
        let b = Broker::new(MqttConfig::default());
        let watcher = attach(&b, "watcher", true, NEVER_EXPIRE);
        b.subscribe(&watcher.session, "w", opts(QoS::AtLeastOnce), None)?;
        let a = attach(&b, "car", true, 3600);
        b.disconnect(
            &a.session,
            a.conn_id,
            Some(delayed_will("w", 600)),
            &client("car", true, 3600),
        );
        assert_eq!(b.timers_armed(), 2);
        // A clean start ends the old session before its will delay did.
        let _new = attach(&b, "car", true, 3600);
        assert_eq!(b.timers_armed(), 0);
        assert_eq!(queued_payloads(&b, &watcher), ["gone"]);
        Ok(())
    })
}

/// Calls back into the broker from every hook method the broker core runs.
#[derive(Default)]
struct Reentrant {
    broker: OnceLock<Weak<Broker>>,
    dropped: AtomicUsize,
}

impl Reentrant {
    fn touch(&self, id: &str) {
        if let Some(b) = self.broker.get().and_then(Weak::upgrade) {
            let _ = b.clients();
            let _ = b.client(id);
            let _ = b.subscriptions();
        }
    }
}

impl Hook for Reentrant {
    fn message_published(&self, msg: &Arc<Message>, _acks: &mut Vec<ferry_broker::DurableAck>) {
        self.touch(msg.publisher_id().unwrap_or(""));
    }
    fn client_connected(&self, client: &ClientInfo) {
        self.touch(&client.client_id);
    }
    fn delivery_dropped(&self, to: &ClientInfo, _msg: &Arc<Message>, _why: DeliveryDropReason) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.touch(&to.client_id);
    }
}

/// Runs `f` on its own thread: a deadlock fails the test instead of hanging it.
fn within_10s(f: impl FnOnce() -> TestResult + Send + 'static) -> TestResult {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = f().map_err(|e| e.to_string());
        let _ = tx.send(r);
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err("deadlock: a hook calling back into the broker did not return".into()),
    }
}

/// Runs a test on a paused-time runtime of its own thread: a deadlock fails it.
fn run_paused<F>(test: impl FnOnce() -> F + Send + 'static) -> TestResult
where
    F: std::future::Future<Output = TestResult>,
{
    within_10s(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()?
            .block_on(test())
    })
}

/// A shared group of `a` (holding one undelivered message of the group) and `b` (connected
/// with a full queue): discarding `a` hands its message to `b`, whose full queue drops it
/// and tells hooks.
fn group_with_full_member(broker: &Arc<Broker>) -> Result<(Attached, Attached), String> {
    let a = attach(broker, "a", true, 0);
    let b = attach(broker, "b", true, 0);
    for s in [&a, &b] {
        broker
            .subscribe(&s.session, "$share/g/t", opts(QoS::AtLeastOnce), None)
            .map_err(|e| e.what)?;
    }
    broker
        .subscribe(&b.session, "fill", opts(QoS::AtLeastOnce), None)
        .map_err(|e| e.what)?;
    broker.publish(Message::new("fill", "f", QoS::AtLeastOnce, false));
    // Round robin: one of the two goes to `a`.
    broker.publish(Message::new("t", "1", QoS::AtLeastOnce, false));
    broker.publish(Message::new("t", "2", QoS::AtLeastOnce, false));
    if a.session.lock().queued() != 1 || b.session.lock().queued() != 1 {
        return Err("setup: expected one queued delivery each".into());
    }
    Ok((a, b))
}

fn full_queue_broker() -> (Arc<Broker>, Arc<Reentrant>) {
    let broker = Broker::new(MqttConfig {
        max_queued_messages: 1,
        queue_full: QueueFull::DropNewest,
        ..MqttConfig::default()
    });
    let hook = Arc::new(Reentrant::default());
    let _ = hook.broker.set(Arc::downgrade(&broker));
    let _ = broker.install_hooks(vec![hook.clone()]);
    (broker, hook)
}

#[test]
fn a_hook_may_call_back_into_the_broker_when_a_kick_discards_a_session() -> TestResult {
    within_10s(|| {
        let (broker, hook) = full_queue_broker();
        let (_a, _b) = group_with_full_member(&broker)?;
        let before = hook.dropped.load(Ordering::Relaxed);
        assert!(broker.kick("a"));
        assert_eq!(hook.dropped.load(Ordering::Relaxed), before + 1);
        Ok(())
    })
}

#[test]
fn a_hook_may_call_back_into_the_broker_when_a_takeover_discards_a_session() -> TestResult {
    within_10s(|| {
        let (broker, hook) = full_queue_broker();
        let (_a, _b) = group_with_full_member(&broker)?;
        let before = hook.dropped.load(Ordering::Relaxed);
        let _a2 = attach(&broker, "a", true, 0);
        assert_eq!(hook.dropped.load(Ordering::Relaxed), before + 1);
        Ok(())
    })
}

#[test]
fn a_hook_may_call_back_into_the_broker_when_a_session_expires() -> TestResult {
    run_paused(|| async {
        let (broker, hook) = full_queue_broker();
        let a = attach(&broker, "a", true, 5);
        let b = attach(&broker, "b", true, 3600);
        for s in [&a, &b] {
            broker.subscribe(&s.session, "$share/g/t", opts(QoS::AtLeastOnce), None)?;
        }
        broker.disconnect(&a.session, a.conn_id, None, &client("a", true, 5));
        broker.disconnect(&b.session, b.conn_id, None, &client("b", true, 3600));
        // Nobody connected: round robin gives one message to each offline member.
        broker.publish(Message::new("t", "1", QoS::AtLeastOnce, false));
        broker.publish(Message::new("t", "2", QoS::AtLeastOnce, false));
        let _b = attach(&broker, "b", false, 3600);
        assert_eq!(a.session.lock().queued(), 1);
        // `a` expires: its message goes to `b`, whose full queue drops it; the hook
        // runs from the timer task, which must not hold `sessions` then.
        tokio::time::sleep(Duration::from_secs(5)).await;
        eventually("the expiry to run the hook", || {
            hook.dropped.load(Ordering::Relaxed) == 1 && broker.session_count() == 1
        })
        .await
    })
}

#[tokio::test]
async fn a_discarded_session_cannot_subscribe() -> TestResult {
    let b = Broker::new(MqttConfig::default());
    let old = attach(&b, "car", false, 3600);
    // A clean-start takeover discards the session before the old connection's
    // SUBSCRIBE is handled.
    let new = attach(&b, "car", true, 3600);
    b.subscribe(&new.session, "t", opts(QoS::AtLeastOnce), None)?;
    let late = b.subscribe(&old.session, "t", opts(QoS::AtLeastOnce), None);
    assert!(late.is_err(), "{late:?}");
    let late = b.subscribe(&old.session, "u/#", opts(QoS::AtLeastOnce), None);
    assert!(late.is_err(), "{late:?}");
    assert!(old.session.lock().subscriptions().is_empty());
    assert_eq!(b.subscription_count(), 1, "only the new session's entry");
    assert_eq!(b.topics(), ["t"]);
    assert_eq!(
        b.publish(Message::new("t", "x", QoS::AtLeastOnce, false)),
        1
    );
    assert_eq!(
        b.publish(Message::new("u/1", "y", QoS::AtLeastOnce, false)),
        0
    );
    assert_eq!(
        old.session.lock().queued(),
        0,
        "nothing queues for the dead session"
    );
    assert_eq!(queued_payloads(&b, &new), ["x"]);
    // Its late UNSUBSCRIBE does not remove the new session's entry either.
    assert!(!b.unsubscribe(&old.session, "t"));
    assert_eq!(b.subscription_count(), 1);
    Ok(())
}

#[tokio::test]
async fn a_kicked_session_cannot_subscribe_to_a_shared_group() -> TestResult {
    let b = Broker::new(MqttConfig::default());
    let old = attach(&b, "car", false, 3600);
    assert!(b.kick("car"));
    let late = b.subscribe(&old.session, "$share/g/t", opts(QoS::AtLeastOnce), None);
    assert!(late.is_err(), "{late:?}");
    assert_eq!(b.subscription_count(), 0);
    assert_eq!(
        b.publish(Message::new("t", "x", QoS::AtLeastOnce, false)),
        0
    );
    assert_eq!(old.session.lock().queued(), 0);
    Ok(())
}
