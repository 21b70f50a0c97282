//! Hot-path cost of ferry-metrics' atomics against prometheus-client's own metric types:
//! what one message pays to be counted (ADR 0005).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ferry_metrics::{ActionMetric, Counters, Histogram, Registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram as PcHistogram, exponential_buckets};

fn counters(c: &mut Criterion) {
    let mut g = c.benchmark_group("counter_inc");
    let ours: Counters<ActionMetric> = Counters::new();
    g.bench_function("ferry_counters_inc", |b| {
        b.iter(|| ours.inc(black_box(ActionMetric::Success)))
    });
    let reg = Registry::new();
    let handle = reg.action("to_kafka");
    g.bench_function("ferry_action_handle_inc", |b| {
        b.iter(|| handle.counters.inc(black_box(ActionMetric::Success)))
    });
    let pc: Counter = Counter::default();
    g.bench_function("prometheus_client_counter_inc", |b| {
        b.iter(|| black_box(&pc).inc())
    });
    let family: Family<Vec<(String, String)>, Counter> = Family::default();
    let labels = vec![("action".to_owned(), "to_kafka".to_owned())];
    family.get_or_create(&labels).inc();
    g.bench_function("prometheus_client_family_get_or_create_inc", |b| {
        b.iter(|| family.get_or_create(black_box(&labels)).inc())
    });
    g.finish();
}

fn histograms(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram_record");
    let ours = Histogram::new();
    let d = Duration::from_micros(1700);
    g.bench_function("ferry_histogram_record", |b| {
        b.iter(|| ours.record(black_box(d)))
    });
    let pc = PcHistogram::new(exponential_buckets(0.0001, 2.0, 20));
    g.bench_function("prometheus_client_histogram_observe", |b| {
        b.iter(|| pc.observe(black_box(d).as_secs_f64()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = counters, histograms
}
criterion_main!(benches);
