//! Hooks may call back into the broker: every event a connection reports (connected,
//! subscribed, unsubscribed, delivered, disconnected after a takeover or a kick) runs a hook
//! that lists the clients and looks one up, and nothing deadlocks.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use ferry_broker::{Broker, ClientInfo, Hook, Message};
use ferry_mqtt::{Packet, Properties, QoS, SubOptions, Unsubscribe, Version};
use ferry_testkit::{RawClient, TestBroker, wait_until};

/// Records each event after calling back into the broker.
#[derive(Default)]
struct Reentrant {
    broker: OnceLock<Weak<Broker>>,
    events: Mutex<Vec<&'static str>>,
}

impl Reentrant {
    fn touch(&self, event: &'static str, client_id: &str) {
        if let Some(b) = self.broker.get().and_then(Weak::upgrade) {
            let _ = b.clients();
            let _ = b.client(client_id);
            let _ = b.client_subscriptions(client_id);
        }
        self.events.lock().unwrap().push(event);
    }

    fn count(&self, event: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| **e == event)
            .count()
    }
}

impl Hook for Reentrant {
    fn client_connected(&self, c: &ClientInfo) {
        self.touch("connected", &c.client_id);
    }
    fn client_disconnected(&self, c: &ClientInfo, _reason: &str, _props: &Properties) {
        self.touch("disconnected", &c.client_id);
    }
    fn session_subscribed(&self, c: &ClientInfo, _f: &str, _o: &SubOptions, _p: &Properties) {
        self.touch("subscribed", &c.client_id);
    }
    fn session_unsubscribed(&self, c: &ClientInfo, _f: &str, _p: &Properties) {
        self.touch("unsubscribed", &c.client_id);
    }
    fn message_delivered(&self, to: &ClientInfo, _msg: &Arc<Message>) {
        self.touch("delivered", &to.client_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_that_call_back_into_the_broker_do_not_deadlock() -> anyhow::Result<()> {
    let b = TestBroker::start().await;
    let hook = Arc::new(Reentrant::default());
    let _ = hook.broker.set(Arc::downgrade(&b.broker));
    let as_hook: Arc<dyn Hook> = hook.clone();
    b.broker
        .install_hooks(vec![as_hook])
        .map_err(|_| anyhow::anyhow!("hooks installed twice"))?;

    let (mut dev, _) = RawClient::connect(b.addr, Version::V5, "dev", true).await?;
    assert_eq!(dev.subscribe("t/#", QoS::AtLeastOnce).await?, [1]);
    dev.subscribe("u", QoS::AtMostOnce).await?;
    dev.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: 7,
        filters: vec!["u".into()],
        properties: Properties::default(),
    }))
    .await?;
    assert!(matches!(dev.recv().await?, Packet::UnsubAck(_)));
    let (mut p, _) = RawClient::connect(b.addr, Version::V5, "pub", true).await?;
    p.publish("t/1", b"x", QoS::AtLeastOnce, false, 1).await?;
    assert_eq!(&dev.recv_publish().await?.payload[..], b"x");

    // A clean-start takeover discards the session, then an administrator kicks the new one.
    let (_dev2, _) = RawClient::connect(b.addr, Version::V5, "dev", true).await?;
    assert!(dev.expect_close().await.is_ok());
    assert!(b.broker.kick("dev"));

    let h = hook.clone();
    wait_until("every event reported", Duration::from_secs(10), move || {
        h.count("connected") == 3
            && h.count("subscribed") == 2
            && h.count("unsubscribed") == 1
            && h.count("delivered") >= 1
            && h.count("disconnected") >= 2
    })
    .await;
    // The broker still answers.
    assert!(b.broker.client("pub").is_some());
    b.stop().await;
    Ok(())
}
