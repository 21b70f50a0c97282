//! The Kafka action's per-message hot path for K1's rule (`SELECT * FROM "t/#"`, key
//! `${clientid}`, value `${payload}`): the rule's output built and rendered into a record
//! (what every message paid before issue 14) against rendering it from the input
//! (`Bindings::Star`, what a plain `SELECT *` rule does now).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use ferry_kafka::config::ConnectorConfig;
use ferry_kafka::{Connector, KafkaAction, ProducerConfig};
use ferry_rules::{Bindings, Map, MessageInput, Report, Rule};

fn bench(c: &mut Criterion) {
    let conn: ConnectorConfig = toml::from_str("bootstrap_hosts = \"127.0.0.1:9\"").unwrap();
    let conn = Connector::new("k", conn);
    let cfg: ProducerConfig = toml::from_str(
        "connector = \"k\"\ntopic = \"k1\"\nkey = \"${clientid}\"\nvalue = \"${payload}\"\nquery_mode = \"sync\"\n",
    )
    .unwrap();
    let registry = std::sync::Arc::new(ferry_metrics::Registry::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let action = KafkaAction::start("a", cfg, &conn, &registry, stop, None).unwrap();
    let rule = Rule::compile("SELECT * FROM \"t/#\"").unwrap();
    let payload = [b'x'; 100];
    let input = MessageInput {
        id: "0005F8F84FFFAFB9F44200000D810002",
        clientid: "k1-7",
        username: None,
        payload: &payload,
        peerhost: "127.0.0.1",
        peername: "127.0.0.1:52918".parse().ok(),
        topic: "t/7",
        qos: 1,
        retain: false,
        dup: false,
        pub_props: Map::new(),
        timestamp: 1_700_000_000_123,
        node: "ferry@127.0.0.1",
    };
    let since = Instant::now();
    c.bench_function("K1 record: SELECT * output built, then rendered", |b| {
        b.iter(|| {
            let out = rule.apply(black_box(&input)).unwrap();
            black_box(action.render(&out[0], Some(&input), since).unwrap())
        })
    });
    c.bench_function("K1 record: rendered from the input (Bindings::Star)", |b| {
        b.iter(|| {
            rule.check_star(black_box(&input), &mut Report::default())
                .unwrap();
            black_box(action.render_in(Bindings::Star(&input), since).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
