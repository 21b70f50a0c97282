//! The seed rule on a 200-byte JSON payload (target: under 2 us), template rendering, and
//! finding the rules for a topic among 10k.
#![allow(clippy::unwrap_used)]
use criterion::{Criterion, criterion_group, criterion_main};
use ferry_rules::{Map, MessageInput, Rule, RuleSet, Template};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let rule = Rule::compile("SELECT timestamp, clientid, payload.temp as temp, payload.hum as hum FROM \"temp_hum/emqx\"").unwrap();
    let payload = br#"{"temp": 23.51, "hum": 61.2, "site": "building-7/floor-3/room-12", "device": "sensor-0042", "fw": "1.4.2", "battery": 87, "rssi": -71, "ts": 1700000000123, "status": "ok", "seq": 123456, "ok": true}"#;
    assert!((190..=210).contains(&payload.len()), "{}", payload.len());
    let input = MessageInput {
        id: "0005F8F84FFFAFB9F44200000D810002",
        clientid: "sensor-0042",
        username: None,
        payload,
        peerhost: "127.0.0.1",
        peername: "127.0.0.1:52918".parse().ok(),
        topic: "temp_hum/emqx",
        qos: 1,
        retain: false,
        dup: false,
        pub_props: Map::new(),
        timestamp: 1_700_000_000_123,
        node: "ferry@127.0.0.1",
    };
    c.bench_function("seed temp/hum rule, 200 B payload", |b| {
        b.iter(|| black_box(rule.apply(black_box(&input)).unwrap()))
    });

    let vehicle = Rule::compile("SELECT payload FROM \"mqttx/simulate/#\"").unwrap();
    c.bench_function("seed vehicle rule (SELECT payload)", |b| {
        b.iter(|| black_box(vehicle.apply(black_box(&input)).unwrap()))
    });

    let out = rule.apply(&input).unwrap().remove(0);
    let t = Template::parse("{\"temp\": ${temp}, \"hum\": ${hum}}").unwrap();
    let mut s = String::with_capacity(64);
    c.bench_function("render value template", |b| {
        b.iter(|| {
            s.clear();
            t.render_into(black_box(&out), &mut s);
        })
    });

    let mut set = RuleSet::new();
    for i in 0..10_000 {
        set.add(
            Rule::compile(&format!("SELECT * FROM \"site/{i}/+/temp\"")).unwrap(),
            i,
        );
    }
    c.bench_function("rules for a topic among 10k", |b| {
        b.iter(|| black_box(set.for_topic(black_box("site/4242/r1/temp")).len()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
