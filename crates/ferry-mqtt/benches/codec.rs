//! Packet decode/encode cost on the hot path (PUBLISH in, PUBACK out).
#![allow(clippy::unwrap_used)]
use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use ferry_mqtt::*;
use std::hint::black_box;

fn publish() -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "mqttx/simulate/tesla/vehicle-0001".into(),
        packet_id: 7,
        properties: Properties::default(),
        payload: Bytes::from(vec![b'x'; 100]),
    })
}

fn bench(c: &mut Criterion) {
    for v in [Version::V311, Version::V5] {
        let p = publish();
        let mut wire = BytesMut::new();
        encode(&p, v, &mut wire).unwrap();
        let wire = wire.freeze();
        c.bench_function(&format!("decode publish 100B v{v}"), |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                black_box(decode(&mut buf, v, 1 << 20).unwrap());
            })
        });
        let mut out = BytesMut::with_capacity(4096);
        c.bench_function(&format!("encode publish 100B v{v}"), |b| {
            b.iter(|| {
                out.clear();
                encode(black_box(&p), v, &mut out).unwrap();
            })
        });
        let ack = Packet::PubAck(Ack::new(7, 0));
        c.bench_function(&format!("encode puback v{v}"), |b| {
            b.iter(|| {
                out.clear();
                encode(black_box(&ack), v, &mut out).unwrap();
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
