//! The routing hot path: one PUBLISH routed to one subscriber's queue and taken out for
//! sending (`Broker::publish_checked` with the flow-control queue of ADR 0010, then
//! `Broker::next_batch`), as a connection does it, in batches of 64.
use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use ferry_broker::{Broker, ClientInfo, Message, MqttConfig};
use ferry_mqtt::{QoS, SubOptions};
use tokio::time::Instant;

fn message(publisher: &Arc<ClientInfo>, qos: QoS) -> Message {
    Message {
        topic: "bench/route/1".into(),
        payload: Bytes::from_static(&[7u8; 100]),
        qos,
        retain: false,
        dup: false,
        properties: Default::default(),
        publisher: Some(publisher.clone()),
        completion: None,
        received_at: Instant::now(),
        timestamp: 0,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let broker = Broker::new(MqttConfig::default());
    let sub = broker.connect(Arc::new(ClientInfo::internal("sub")));
    let opts = SubOptions {
        qos: QoS::AtMostOnce,
        ..Default::default()
    };
    broker
        .subscribe(&sub.session, "bench/#", opts, None)
        .expect("subscribe");
    let publisher = Arc::new(ClientInfo::internal("pub"));
    let mut out = Vec::with_capacity(64);
    let mut acks = Vec::new();
    c.bench_function(
        "route 64 QoS 0 publishes to one subscriber and drain",
        |b| {
            b.iter(|| {
                for _ in 0..64 {
                    let n = broker.publish_checked(message(&publisher, QoS::AtMostOnce), &mut acks);
                    black_box(n.ok());
                }
                broker.next_batch(&sub.session, sub.conn_id, 32, 64, Instant::now(), &mut out);
                black_box(out.len());
                out.clear();
                acks.clear();
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
