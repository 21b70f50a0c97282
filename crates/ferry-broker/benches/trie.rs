//! Topic matching against 100k subscriptions: the cost must depend on matches, not filters.
use criterion::{Criterion, criterion_group, criterion_main};
use ferry_broker::trie::Trie;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut t: Trie<u32, u32> = Trie::default();
    for i in 0..100_000u32 {
        let f = match i % 4 {
            0 => format!("mqttx/simulate/tesla/v{i}"),
            1 => format!("fleet/{}/+/telemetry", i % 1000),
            2 => format!("site/{}/#", i),
            _ => format!("devices/d{i}/state"),
        };
        t.insert(&f, i, i);
    }
    t.insert("mqttx/simulate/#", 1_000_000, 0);
    c.bench_function("match 1 topic vs 100k filters", |b| {
        b.iter(|| {
            let mut n = 0;
            t.for_each_match(black_box("mqttx/simulate/tesla/v400"), |_| n += 1);
            black_box(n)
        })
    });
    c.bench_function("match wildcard topic vs 100k filters", |b| {
        b.iter(|| {
            let mut n = 0;
            t.for_each_match(black_box("fleet/17/truck9/telemetry"), |_| n += 1);
            black_box(n)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
