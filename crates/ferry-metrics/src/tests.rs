use std::collections::BTreeSet;
use std::time::Duration;

use crate::names::{ActionMetric, BrokerMetric, Kind, MetricSet, RuleMetric, SourceMetric};
use crate::{Histogram, Registry, Sample};

fn check_names<M: MetricSet>() {
    let mut json = BTreeSet::new();
    let mut series = BTreeSet::new();
    for (i, m) in M::ALL.iter().enumerate() {
        assert_eq!(m.index(), i);
        let d = m.def();
        assert!(json.insert(d.json), "duplicate json name {}", d.json);
        assert!(series.insert((d.name, d.labels)), "duplicate series {d:?}");
        assert!(!d.name.starts_with("ferry_"), "{d:?}");
        match d.kind {
            Kind::Counter => assert!(d.name.ends_with("_total"), "{d:?}"),
            Kind::Gauge => assert!(!d.name.ends_with("_total"), "{d:?}"),
        }
        assert!(
            d.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{d:?}"
        );
        // One family, one help and kind.
        for o in M::ALL {
            let od = o.def();
            if od.name == d.name {
                assert_eq!((od.help, od.kind), (d.help, d.kind));
            }
        }
    }
}

#[test]
fn names_are_unique_and_follow_conventions() {
    check_names::<BrokerMetric>();
    check_names::<RuleMetric>();
    check_names::<ActionMetric>();
    check_names::<SourceMetric>();
}

#[test]
fn json_uses_emqx_names_with_totals_and_derived_gauges() {
    let r = Registry::new();
    let b = r.broker();
    b.inc(BrokerMetric::ReceivedQos0);
    b.add(BrokerMetric::ReceivedQos1, 2);
    b.inc(BrokerMetric::DroppedQueueFull);
    b.inc(BrokerMetric::DroppedNoSubscribers);
    let j = r.json();
    assert_eq!(j["messages.received"], 3);
    assert_eq!(j["messages.qos1.received"], 2);
    assert_eq!(j["messages.dropped"], 2);
    assert_eq!(j["messages.dropped.queue_full"], 1);
    assert_eq!(j["messages.dropped.no_subscribers"], 1);
    assert_eq!(j["client.connected"], 0);

    let a = r.action("to_kafka");
    a.counters.add(ActionMetric::Enqueued, 5);
    a.counters.add(ActionMetric::Dequeued, 2);
    a.counters.inc(ActionMetric::InflightSent);
    a.counters.inc(ActionMetric::DroppedQueueFull);
    a.latency.record(Duration::from_millis(3));
    let j = a.json();
    assert_eq!(j["queuing"], 3);
    assert_eq!(j["inflight"], 1);
    assert_eq!(j["dropped"], 1);
    assert_eq!(j["dropped.queue_full"], 1);
    assert_eq!(j["latency.count"], 1);
    assert!((2500..=5000).contains(&j["latency.p50_us"]), "{j:?}");

    let rule = r.rule("hot");
    rule.inc(RuleMetric::FailedException);
    rule.inc(RuleMetric::FailedNoResult);
    assert_eq!(rule.json()["failed"], 2);

    let s = r.source("cmds");
    s.counters.add(SourceMetric::Received, 10);
    s.counters.add(SourceMetric::Delivered, 6);
    s.counters.add(SourceMetric::Failed, 1);
    s.set_lag([("t/0".to_owned(), 4), ("t/1".to_owned(), 3)].into());
    let j = s.json();
    assert_eq!((j["inflight"], j["lag"]), (3, 7));
    assert_eq!(s.lag()["t/0"], 4);
}

#[test]
fn get_or_create_returns_the_same_handle_and_remove_forgets_it() {
    let r = Registry::new();
    r.rule("a").inc(RuleMetric::Matched);
    assert_eq!(r.rule("a").get(RuleMetric::Matched), 1);
    assert!(r.find_rule("b").is_none());
    assert!(r.remove_rule("a"));
    assert!(!r.remove_rule("a"));
    assert_eq!(r.rule("a").get(RuleMetric::Matched), 0);
}

#[test]
fn reset_zeroes_counters_but_keeps_queue_depth_and_gauges() {
    let r = Registry::new();
    let a = r.action("x");
    a.counters.add(ActionMetric::Matched, 7);
    a.counters.add(ActionMetric::Enqueued, 4);
    a.counters.add(ActionMetric::Dequeued, 1);
    a.latency.record(Duration::from_millis(1));
    a.reset();
    let j = a.json();
    assert_eq!((j["matched"], j["queuing"], j["latency.count"]), (0, 3, 0));
    let s = r.source("y");
    s.set_lag([("t/0".to_owned(), 9)].into());
    s.counters.add(SourceMetric::Received, 2);
    s.reset();
    assert_eq!(s.json()["lag"], 9);
    assert_eq!(s.json()["inflight"], 2);
}

#[test]
fn histogram_quantiles_interpolate_within_buckets() {
    let h = Histogram::new();
    assert_eq!(h.quantile(0.5), None);
    // 90 records at 1.5 ms (bucket 1..2.5 ms), 10 at 40 ms (bucket 25..50 ms).
    for _ in 0..90 {
        h.record(Duration::from_micros(1500));
    }
    for _ in 0..10 {
        h.record(Duration::from_millis(40));
    }
    let s = h.snapshot();
    assert_eq!(s.count, 100);
    assert!((s.sum_seconds - (0.135 + 0.4)).abs() < 1e-9);
    let p50 = s.quantile(0.5).unwrap_or_default();
    assert!(
        p50 > Duration::from_millis(1) && p50 <= Duration::from_micros(2500),
        "{p50:?}"
    );
    let p99 = s.quantile(0.99).unwrap_or_default();
    assert!(
        p99 > Duration::from_millis(25) && p99 <= Duration::from_millis(50),
        "{p99:?}"
    );
    // Beyond the last bound: the last bound.
    h.reset();
    h.record(Duration::from_secs(120));
    assert_eq!(h.quantile(0.5), Some(Duration::from_secs(60)));
    // Exactly on a bound falls into that bucket (le is inclusive).
    h.reset();
    h.record(Duration::from_micros(100));
    assert_eq!(h.snapshot().buckets[0].1, 1);
}

/// Every line is `# HELP`, `# TYPE` or a sample `name{labels} value`.
pub(crate) fn parse(text: &str) -> Result<BTreeSet<String>, String> {
    let mut series = BTreeSet::new();
    let mut typed = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if !name.starts_with("ferry_") {
                return Err(format!("HELP without prefix: {line}"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, ty) = (it.next().unwrap_or_default(), it.next().unwrap_or_default());
            if !["counter", "gauge", "histogram"].contains(&ty) {
                return Err(format!("bad TYPE: {line}"));
            }
            typed.insert(name.to_owned());
        } else {
            let (key, value) = line.rsplit_once(' ').ok_or(format!("no value: {line}"))?;
            value
                .parse::<f64>()
                .ok()
                .or_else(|| ["+Inf", "-Inf", "NaN"].contains(&value).then_some(0.0))
                .ok_or(format!("bad value: {line}"))?;
            let name = key.split('{').next().unwrap_or_default();
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("bad name: {line}"));
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                .unwrap_or(name);
            if !typed.contains(family) {
                return Err(format!("sample before its TYPE: {line}"));
            }
            let labels = key.strip_prefix(name).unwrap_or_default();
            let braced = labels.starts_with('{') && labels.ends_with('}');
            if !labels.is_empty() && !braced {
                return Err(format!("bad labels: {line}"));
            }
            if !series.insert(key.to_owned()) {
                return Err(format!("duplicate series: {line}"));
            }
        }
    }
    Ok(series)
}

#[test]
fn prometheus_text_parses_and_has_the_expected_series() {
    let r = Registry::new();
    r.broker().inc(BrokerMetric::DroppedTooLarge);
    r.broker().add(BrokerMetric::BytesReceived, 100);
    r.puback_delay().record(Duration::from_millis(2));
    r.rule("hot").inc(RuleMetric::Matched);
    r.action("to_kafka")
        .latency
        .record(Duration::from_millis(7));
    r.source("cmds").set_lag([("t/0".to_owned(), 5)].into());
    let extra = [
        Sample::gauge("connections", "Connected clients.", 3.0),
        Sample::gauge("action_status", "State per action.", 1.0)
            .label("action", "to_kafka")
            .label("status", "connected"),
        Sample::gauge("action_status", "State per action.", 0.0)
            .label("action", "to_kafka")
            .label("status", "disconnected"),
    ];
    let text = r.encode_prometheus(&extra);
    let series = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for want in [
        "ferry_messages_dropped_total{reason=\"too_large\"} 1",
        "ferry_bytes_received_total 100",
        "ferry_messages_received_total{qos=\"1\"} 0",
        "ferry_rule_matched_total{rule=\"hot\"} 1",
        "ferry_rule_failed_total{rule=\"hot\",reason=\"no_result\"} 0",
        "ferry_action_latency_seconds_bucket{action=\"to_kafka\",le=\"0.01\"} 1",
        "ferry_action_latency_seconds_count{action=\"to_kafka\"} 1",
        "ferry_action_queuing{action=\"to_kafka\"} 0",
        "ferry_puback_delay_seconds_bucket{le=\"+Inf\"} 1",
        "ferry_source_lag{source=\"cmds\"} 5",
        "ferry_source_inflight{source=\"cmds\"} 0",
        "ferry_connections 3",
        "ferry_action_status{action=\"to_kafka\",status=\"connected\"} 1",
        "ferry_build_info{version=\"",
        "# TYPE ferry_messages_dropped_total counter",
        "# TYPE ferry_puback_delay_seconds histogram",
    ] {
        assert!(text.contains(want), "missing {want}\n{text}");
    }
    if cfg!(target_os = "linux") {
        for want in [
            "ferry_process_cpu_seconds_total ",
            "ferry_process_resident_memory_bytes ",
            "ferry_process_virtual_memory_bytes ",
            "ferry_process_open_fds ",
            "ferry_process_max_fds ",
            "ferry_process_start_time_seconds ",
        ] {
            assert!(text.contains(want), "missing {want}\n{text}");
        }
    }
    assert!(series.len() > 50);
    if std::env::var_os("FERRY_SHOW_METRICS").is_some() {
        println!("{text}");
    }
    // Removing objects removes their series.
    r.remove_rule("hot");
    r.remove_action("to_kafka");
    r.remove_source("cmds");
    let text = r.encode_prometheus(&[]);
    assert!(!text.contains("rule=\"hot\"") && !text.contains("to_kafka") && !text.contains("cmds"));
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
}
