//! Admin queries through the in-process client API (no sockets).

use std::sync::Arc;

use ferry_mqtt::{QoS, SubOptions};

use crate::{Attached, Broker, ClientInfo, Kick, Message, MqttConfig};

fn attach(b: &Broker, id: &str, clean_start: bool, expiry: u32) -> Attached {
    b.connect(Arc::new(ClientInfo {
        clean_start,
        expiry_interval: expiry,
        username: Some("user".into()),
        keepalive: 30,
        ..ClientInfo::internal(id)
    }))
}

fn qos(q: QoS) -> SubOptions {
    SubOptions {
        qos: q,
        ..Default::default()
    }
}

#[tokio::test]
async fn clients_lists_connected_and_offline_persistent_sessions() {
    let b = Broker::new(MqttConfig {
        max_queued_messages: 10,
        max_inflight: 16,
        ..Default::default()
    });
    let on = attach(&b, "on", true, 0);
    let off = attach(&b, "off", false, 300);
    on.session.lock().set_inflight_window(4);
    b.subscribe(&off.session, "t/#", qos(QoS::AtLeastOnce), None)
        .unwrap();
    b.disconnect(
        &off.session,
        off.conn_id,
        None,
        &Arc::new(ClientInfo::internal("off")),
    );
    b.publish(Message::new("t/1", "m", QoS::AtLeastOnce, false));

    let all = b.clients();
    let ids: Vec<&str> = all.iter().map(|c| &*c.client.client_id).collect();
    assert_eq!(ids, vec!["off", "on"], "sorted by client id");

    let on = b.client("on").unwrap();
    assert!(on.connected);
    assert_eq!(on.disconnected_at, None);
    assert_eq!(on.client.username.as_deref(), Some("user"));
    assert_eq!(on.client.keepalive, 30);
    assert!(on.client.clean_start);
    assert_eq!(on.inflight_max, 4, "the connection's window");
    assert!(on.created_at > 0);

    let off = b.client("off").unwrap();
    assert!(!off.connected);
    assert!(off.disconnected_at.is_some());
    assert!(!off.client.clean_start);
    assert_eq!(off.expiry_interval, 300);
    assert_eq!(off.subscriptions_cnt, 1);
    assert_eq!(off.mqueue_len, 1, "queued while offline");
    assert_eq!(off.mqueue_max, 10);
    assert_eq!(off.inflight_cnt, 0);
    assert_eq!(off.inflight_max, 16, "no window known: mqtt.max_inflight");

    assert!(b.client("nobody").is_none());
}

#[tokio::test]
async fn a_resumed_session_reports_the_new_connection() {
    let b = Broker::new(MqttConfig::default());
    let first = attach(&b, "c", false, 100);
    let created = b.client("c").unwrap().created_at;
    let second = b.connect(Arc::new(ClientInfo {
        clean_start: false,
        expiry_interval: 100,
        keepalive: 99,
        ..ClientInfo::internal("c")
    }));
    assert!(second.session_present);
    assert!(Arc::ptr_eq(&first.session, &second.session));
    let c = b.client("c").unwrap();
    assert_eq!(c.client.keepalive, 99);
    assert_eq!(c.created_at, created, "same session");
}

#[tokio::test]
async fn a_full_queue_counts_mqueue_dropped_for_that_client() {
    let b = Broker::new(MqttConfig {
        max_queued_messages: 2,
        ..Default::default()
    });
    let a = attach(&b, "a", true, 0);
    let other = attach(&b, "other", true, 0);
    b.subscribe(&a.session, "t", qos(QoS::AtMostOnce), None)
        .unwrap();
    for i in 0..5 {
        b.publish(Message::new("t", i.to_string(), QoS::AtMostOnce, false));
    }
    assert_eq!(b.client("a").unwrap().stats.mqueue_dropped, 3);
    assert_eq!(b.client("a").unwrap().mqueue_len, 2);
    assert_eq!(b.client("other").unwrap().stats.mqueue_dropped, 0);
    drop(other);
}

#[tokio::test]
async fn kick_discards_the_session_and_tells_the_connection() {
    let b = Broker::new(MqttConfig::default());
    let a = attach(&b, "a", false, 3600);
    b.subscribe(&a.session, "x/#", qos(QoS::AtLeastOnce), None)
        .unwrap();
    b.subscribe(&a.session, "$share/g/y", qos(QoS::AtLeastOnce), None)
        .unwrap();
    b.publish(Message::new("x/1", "m", QoS::AtLeastOnce, false));

    // The connection waits on its session; the kick wakes it.
    let woken = a.session.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    assert!(b.kick("a"));
    woken.await;
    assert_eq!(a.session.kicked(a.conn_id), Some(Kick::Admin));
    assert!(b.client("a").is_none());
    assert!(b.clients().is_empty());
    assert_eq!(b.subscription_count(), 0);
    assert!(b.topics().is_empty());
    assert!(!a.session.is_connected());
    assert_eq!(a.session.lock().queued(), 0, "what it held is dropped");
    assert!(!b.kick("a"), "already gone");

    let again = attach(&b, "a", false, 3600);
    assert!(!again.session_present);
}

#[tokio::test]
async fn kick_discards_an_offline_persistent_session() {
    let b = Broker::new(MqttConfig::default());
    let a = attach(&b, "p", false, 3600);
    b.subscribe(&a.session, "x", qos(QoS::AtLeastOnce), None)
        .unwrap();
    b.disconnect(
        &a.session,
        a.conn_id,
        None,
        &Arc::new(ClientInfo::internal("p")),
    );
    assert_eq!(b.session_count(), 1);
    assert!(b.kick("p"));
    assert_eq!(b.session_count(), 0);
    assert_eq!(b.subscription_count(), 0);
}

#[tokio::test]
async fn subscriptions_report_options_and_share_group() {
    let b = Broker::new(MqttConfig::default());
    let a = attach(&b, "a", true, 0);
    let c = attach(&b, "c", true, 0);
    let opts = SubOptions {
        qos: QoS::ExactlyOnce,
        no_local: true,
        retain_as_published: true,
        retain_handling: 2,
    };
    b.subscribe(&a.session, "s/+", opts, Some(7)).unwrap();
    b.subscribe(&a.session, "$share/grp/s/#", qos(QoS::AtLeastOnce), None)
        .unwrap();
    b.subscribe(&c.session, "t", qos(QoS::AtMostOnce), None)
        .unwrap();

    let all = b.subscriptions();
    let keys: Vec<(&str, &str)> = all
        .iter()
        .map(|s| (&*s.client_id, s.filter.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![("a", "$share/grp/s/#"), ("a", "s/+"), ("c", "t")]
    );
    assert_eq!(all[0].share_group.as_deref(), Some("grp"));
    assert_eq!(all[0].topic(), "s/#");
    assert_eq!(all[0].opts.qos, QoS::AtLeastOnce);
    assert_eq!(all[1].share_group, None);
    assert_eq!(all[1].topic(), "s/+");
    assert_eq!(all[1].opts, opts);
    assert_eq!(all[1].sub_id, Some(7));

    let of_c = b.client_subscriptions("c").unwrap();
    assert_eq!(of_c.len(), 1);
    assert_eq!(of_c[0].filter, "t");
    assert!(b.client_subscriptions("nobody").is_none());
    b.unsubscribe(&c.session, "t");
    assert_eq!(b.client_subscriptions("c"), Some(vec![]));
}

#[tokio::test]
async fn topics_are_the_distinct_subscribed_filters_sorted() {
    let b = Broker::new(MqttConfig::default());
    let a = attach(&b, "a", true, 0);
    let c = attach(&b, "c", true, 0);
    for (s, f) in [
        (&a, "b/#"),
        (&c, "b/#"),
        (&a, "a/+/x"),
        (&c, "$share/g/q"),
        (&a, "$share/h/b/#"),
        (&c, "gone"),
    ] {
        b.subscribe(&s.session, f, qos(QoS::AtMostOnce), None)
            .unwrap();
    }
    b.unsubscribe(&c.session, "gone");
    assert_eq!(b.topics(), vec!["a/+/x", "b/#", "q"]);
}

#[tokio::test]
async fn retained_messages_are_listed_read_deleted_and_cleared() {
    let b = Broker::new(MqttConfig::default());
    let mut m = Message::new("r/1", "one", QoS::AtLeastOnce, true);
    m.publisher = Some(Arc::new(ClientInfo {
        username: Some("alice".into()),
        ..ClientInfo::internal("pub")
    }));
    let at = m.timestamp;
    b.publish(m);
    b.publish(Message::new("r/2", "two", QoS::AtMostOnce, true));
    b.publish(Message::new("$SYS/x", "sys", QoS::AtMostOnce, true));
    b.publish(Message::new("other", "o", QoS::AtMostOnce, true));
    b.publish(Message::new("not/retained", "n", QoS::AtMostOnce, false));

    let topics = |v: Vec<crate::RetainedSnapshot>| -> Vec<String> {
        v.into_iter().map(|r| r.topic).collect()
    };
    assert_eq!(
        topics(b.retained_list("#").unwrap()),
        vec!["$SYS/x", "other", "r/1", "r/2"],
        "`#` lists everything, sorted"
    );
    assert_eq!(topics(b.retained_list("r/+").unwrap()), vec!["r/1", "r/2"]);
    assert!(b.retained_list("r/#/x").is_err());
    assert!(b.retained_list("").is_err());

    let one = b.retained_get("r/1").unwrap();
    assert_eq!(&one.payload[..], b"one");
    assert_eq!(one.qos, QoS::AtLeastOnce);
    assert_eq!(one.from_clientid.as_deref(), Some("pub"));
    assert_eq!(one.from_username.as_deref(), Some("alice"));
    assert_eq!(one.published_at, at);
    let two = b.retained_get("r/2").unwrap();
    assert_eq!(two.from_clientid, None);
    assert!(b.retained_get("not/retained").is_none());
    assert!(b.retained_get("r/+").is_none());

    assert!(b.retained_delete("r/1"));
    assert!(!b.retained_delete("r/1"));
    assert!(b.retained_get("r/1").is_none());
    assert_eq!(b.retained_clear(), 3);
    assert_eq!(b.retained_count(), 0);
    assert!(b.retained_list("#").unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn expired_retained_messages_are_not_listed() {
    let b = Broker::new(MqttConfig::default());
    let mut m = Message::new("e", "x", QoS::AtMostOnce, true);
    m.properties.message_expiry_interval = Some(5);
    b.publish(m);
    assert_eq!(b.retained_list("#").unwrap().len(), 1);
    tokio::time::advance(std::time::Duration::from_secs(6)).await;
    assert!(b.retained_list("#").unwrap().is_empty());
    assert!(b.retained_get("e").is_none());
}

#[test]
fn per_session_admin_state_stays_small() {
    // What the admin queries add to every session: the counters (56 bytes), `created_at`
    // (8), and in the state the client info pointer (8) and `disconnected_at` (8); the
    // inflight window (2) fits in existing padding. Guard the counters against growth.
    assert_eq!(std::mem::size_of::<crate::ClientCounters>(), 56);
    println!(
        "Session {} bytes, SessionState {} bytes, ClientInfo {} bytes",
        std::mem::size_of::<crate::Session>(),
        std::mem::size_of::<crate::SessionState>(),
        std::mem::size_of::<ClientInfo>()
    );
}

#[tokio::test]
async fn a_takeover_wakes_and_tells_the_old_connection_only() {
    let b = Broker::new(MqttConfig::default());
    let old = attach(&b, "a", false, 3600);
    assert_eq!(old.session.kicked(old.conn_id), None);
    let woken = old.session.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    // Resumed (same session) by a second connection.
    let new = attach(&b, "a", false, 3600);
    assert!(Arc::ptr_eq(&old.session, &new.session));
    woken.await;
    assert_eq!(old.session.kicked(old.conn_id), Some(Kick::TakenOver));
    assert_eq!(new.session.kicked(new.conn_id), None);
    // A third: both earlier connections are told, the last one is not.
    let third = attach(&b, "a", true, 0);
    assert_eq!(old.session.kicked(old.conn_id), Some(Kick::TakenOver));
    assert_eq!(new.session.kicked(new.conn_id), Some(Kick::TakenOver));
    assert_eq!(third.session.kicked(third.conn_id), None);
}

#[tokio::test]
async fn close_connections_tells_every_connection_and_those_that_attach_later() {
    let b = Broker::new(MqttConfig::default());
    let a = attach(&b, "a", true, 0);
    let c = attach(&b, "c", false, 60);
    let woken = c.session.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    b.close_connections();
    woken.await;
    assert_eq!(a.session.kicked(a.conn_id), Some(Kick::Shutdown));
    assert_eq!(c.session.kicked(c.conn_id), Some(Kick::Shutdown));
    let late = attach(&b, "late", true, 0);
    assert_eq!(late.session.kicked(late.conn_id), Some(Kick::Shutdown));
}
