//! Unit tests of the producer's logic: partition picking, the partition count cache, the
//! async queue and its retries.

use super::*;

#[test]
fn partitioner_cannot_panic_whatever_the_count_and_limit() {
    let rr = AtomicU64::new(u64::MAX - 2);
    for strategy in [
        PartitionStrategy::Random,
        PartitionStrategy::RoundRobin,
        PartitionStrategy::KeyHash,
    ] {
        for count in [i32::MIN, -1, 0, 1, 3, i32::MAX] {
            for limit in [
                None,
                Some(1),
                Some(2),
                Some(i32::MAX as u32),
                Some(u32::MAX),
            ] {
                for _ in 0..5 {
                    let p = pick_partition(strategy, count, limit, Some(b"k"), &rr);
                    let n =
                        count.clamp(1, limit.map_or(i32::MAX, |l| l.min(i32::MAX as u32) as i32));
                    let p = p.expect("a key or a strategy that needs none");
                    assert!((0..n).contains(&p), "{strategy:?} {count} {limit:?}: {p}");
                }
            }
        }
    }
    // A limit above i32::MAX is no limit (the count decides), not a negative one.
    assert_eq!(
        pick_partition(
            PartitionStrategy::KeyHash,
            7,
            Some(u32::MAX),
            Some(b"21"),
            &rr
        ),
        Some(java_partition(b"21", 7))
    );
}

fn stats() -> Arc<ActionStats> {
    Registry::new().action("t")
}

#[test]
fn partition_counts_keep_at_most_max_topics_evicting_the_least_recently_used() {
    let m = stats();
    let c = counts::PartitionCounts::with_max(3, m.clone());
    for (i, t) in ["a", "b", "c"].into_iter().enumerate() {
        assert_eq!(c.lookup_at(t, i as u64), None);
        c.set(t, 4);
    }
    // "a" is used again: "b" is now the least recently used.
    assert_eq!(c.lookup_at("a", 10), Some(4));
    assert_eq!(c.lookup_at("d", 11), None);
    assert_eq!(c.len(), 3);
    assert_eq!(m.counters.get(ActionMetric::PartitionCountsEvicted), 1);
    assert_eq!(c.lookup_at("c", 12), Some(4));
    assert_eq!(c.lookup_at("a", 12), Some(4));
    // "b" was forgotten: it comes back unknown, pushing out "d" (never counted, oldest use).
    assert_eq!(c.lookup_at("b", 13), None);
    assert_eq!(m.counters.get(ActionMetric::PartitionCountsEvicted), 2);
    assert_eq!(
        c.lookup_at("d", 14),
        None,
        "d was evicted and is unknown again"
    );
    // A count fetched for a topic forgotten meanwhile is not kept.
    let c = counts::PartitionCounts::with_max(1, stats());
    c.lookup_at("x", 0);
    c.lookup_at("y", 1);
    c.set("x", 9);
    assert_eq!(c.len(), 1);
    assert_eq!(c.lookup_at("y", 2), None);
}

#[test]
fn partition_count_rounds_refresh_only_topics_in_use_and_forget_idle_ones() {
    let m = stats();
    let c = counts::PartitionCounts::with_max(100, m.clone());
    for t in ["hot", "cold", "gone"] {
        c.lookup_at(t, 0);
    }
    let mut first = c.round(1, Some(0), 1000);
    first.sort();
    assert_eq!(first, ["cold", "gone", "hot"], "new topics are all fetched");
    for t in ["hot", "cold", "gone"] {
        c.set(t, 2);
    }
    // Only "hot" is rendered after the first round.
    c.lookup_at("hot", 500);
    assert_eq!(c.round(600, Some(1), 1000), ["hot"]);
    // A round woken by a new topic fetches only what is not known yet.
    c.lookup_at("new", 700);
    assert_eq!(c.round(700, None, 1000), ["new"]);
    c.set("new", 2);
    // "cold" and "gone" were not rendered for longer than the idle bound: forgotten, counted.
    assert_eq!(
        c.round(1200, Some(600), 1000),
        ["new"],
        "hot was not rendered since 600"
    );
    assert_eq!(c.len(), 2, "hot and new are kept");
    assert_eq!(m.counters.get(ActionMetric::PartitionCountsEvicted), 2);
    assert_eq!(
        c.lookup_at("gone", 1300),
        None,
        "a forgotten topic starts unknown"
    );
}

fn delivery(value: &str) -> Box<Delivery> {
    Box::new(Delivery::in_memory(Record {
        topic: "t".into(),
        key: None,
        value: value.as_bytes().to_vec(),
        timestamp: 0,
        headers: Vec::new(),
        partition: None,
        since: Instant::now(),
    }))
}

fn value(d: Option<(Box<Delivery>, bool)>) -> Option<(String, bool)> {
    d.map(|(d, retry)| (String::from_utf8_lossy(&d.record.value).into_owned(), retry))
}

#[test]
fn a_retry_waits_for_its_own_due_time_without_holding_up_the_queue() {
    let q = Queue::new(10, Overflow::DropNewest, Duration::from_secs(3600), stats());
    q.push(delivery("first"));
    assert!(q.push_retry(delivery("failed")));
    q.push(delivery("second"));
    let now = Instant::now();
    // The retry is not due for an hour: the records behind it go now.
    assert_eq!(value(q.pop(Some(now))), Some(("first".into(), false)));
    assert_eq!(value(q.pop(Some(now))), Some(("second".into(), false)));
    assert_eq!(value(q.pop(Some(now))), None);
    let due = q.next_retry().expect("a retry waits");
    assert!(due > now + Duration::from_secs(3000));
    // Once due, it goes first.
    q.push(delivery("third"));
    assert_eq!(value(q.pop(Some(due))), Some(("failed".into(), true)));
    assert_eq!(value(q.pop(Some(due))), Some(("third".into(), false)));
    // A graceful stop takes retries whatever their due time.
    assert!(q.push_retry(delivery("again")));
    assert_eq!(value(q.pop(None)), Some(("again".into(), true)));
    assert_eq!(q.next_retry(), None);
}

#[test]
fn the_retry_queue_is_bounded_and_counts_what_it_drops() {
    let m = stats();
    let q = Queue::new(2, Overflow::DropNewest, Duration::ZERO, m.clone());
    assert!(q.push_retry(delivery("a")));
    assert!(q.push_retry(delivery("b")));
    assert!(!q.push_retry(delivery("c")));
    assert_eq!(m.counters.get(ActionMetric::DroppedRetryQueueFull), 1);
    assert_eq!(q.len(), 2);
    // The queue for new records is separate and still has room.
    q.push(delivery("new"));
    assert_eq!(m.counters.get(ActionMetric::DroppedQueueFull), 0);
    let now = Instant::now() + Duration::from_millis(1);
    assert_eq!(value(q.pop(Some(now))), Some(("a".into(), true)));
    assert_eq!(value(q.pop(Some(now))), Some(("b".into(), true)));
    assert_eq!(value(q.pop(Some(now))), Some(("new".into(), false)));
}
