//! Partition counts per topic for the partition strategies that need them, refreshed in
//! the background.
//!
//! Bounded: an action keeps the counts of at most [`MAX_TOPICS`] topics. A topic seen for
//! the first time wakes the refresher; past the bound it takes the place of the least
//! recently rendered topic. Each refresh round fetches only the topics rendered since the
//! previous round (and those whose count is not known yet), and forgets the topics not
//! rendered for [`IDLE`] (or two refresh intervals, if longer). Every topic forgotten is
//! counted (`partition_counts.evicted`). Rendering touches a topic under the read lock (an
//! atomic store); only a new topic takes the write lock.

use std::sync::atomic::AtomicI32;

use super::*;

/// Topics whose partition count one action keeps.
pub(super) const MAX_TOPICS: usize = 4096;
/// A topic not rendered for this long is forgotten.
pub(super) const IDLE: Duration = Duration::from_secs(600);

struct Entry {
    /// 0 until the first metadata answer.
    count: AtomicI32,
    /// Milliseconds since [`PartitionCounts::base`] when a record last went to this topic.
    used_ms: AtomicU64,
}

pub(super) struct PartitionCounts {
    topics: RwLock<HashMap<String, Entry>>,
    /// Woken when a topic is seen for the first time.
    pub(super) wake: Notify,
    base: Instant,
    max: usize,
    metrics: Arc<ActionStats>,
}

impl PartitionCounts {
    pub(super) fn new(metrics: Arc<ActionStats>) -> PartitionCounts {
        PartitionCounts::with_max(MAX_TOPICS, metrics)
    }

    pub(super) fn with_max(max: usize, metrics: Arc<ActionStats>) -> PartitionCounts {
        PartitionCounts {
            topics: RwLock::new(HashMap::new()),
            wake: Notify::new(),
            base: Instant::now(),
            max: max.max(1),
            metrics,
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The partition count of `topic` if known; a topic not kept yet is added (and the
    /// refresher woken). Marks the topic as in use.
    pub(super) fn lookup(&self, topic: &str) -> Option<i32> {
        self.lookup_at(topic, self.now_ms())
    }

    pub(super) fn lookup_at(&self, topic: &str, now_ms: u64) -> Option<i32> {
        {
            let m = self.topics.read().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = m.get(topic) {
                e.used_ms.store(now_ms, Ordering::Relaxed);
                let n = e.count.load(Ordering::Relaxed);
                return (n > 0).then_some(n);
            }
        }
        let mut m = self.topics.write().unwrap_or_else(|e| e.into_inner());
        if m.contains_key(topic) {
            return None; // added meanwhile; its count is not known yet
        }
        if m.len() >= self.max {
            let lru = m
                .iter()
                .min_by_key(|(_, e)| e.used_ms.load(Ordering::Relaxed))
                .map(|(t, _)| t.clone());
            if let Some(t) = lru {
                m.remove(&t);
                self.metrics
                    .counters
                    .inc(ActionMetric::PartitionCountsEvicted);
            }
        }
        m.insert(
            topic.to_owned(),
            Entry {
                count: AtomicI32::new(0),
                used_ms: AtomicU64::new(now_ms),
            },
        );
        drop(m);
        self.wake.notify_one();
        None
    }

    /// The topics to fetch in a refresh round at `now_ms`. A full round (`since_ms`: the
    /// previous full round's start) first forgets (and counts) the topics not used for
    /// `idle_ms`, then returns those used since `since_ms` or not known yet; a round woken
    /// by a new topic (`None`) returns only the topics not known yet.
    pub(super) fn round(&self, now_ms: u64, since_ms: Option<u64>, idle_ms: u64) -> Vec<String> {
        let unknown = |e: &Entry| e.count.load(Ordering::Relaxed) == 0;
        let Some(since_ms) = since_ms else {
            let m = self.topics.read().unwrap_or_else(|e| e.into_inner());
            return m
                .iter()
                .filter(|(_, e)| unknown(e))
                .map(|(t, _)| t.clone())
                .collect();
        };
        let mut m = self.topics.write().unwrap_or_else(|e| e.into_inner());
        let before = m.len();
        m.retain(|_, e| e.used_ms.load(Ordering::Relaxed).saturating_add(idle_ms) >= now_ms);
        let evicted = (before - m.len()) as u64;
        if evicted > 0 {
            self.metrics
                .counters
                .add(ActionMetric::PartitionCountsEvicted, evicted);
        }
        m.iter()
            .filter(|(_, e)| e.used_ms.load(Ordering::Relaxed) >= since_ms || unknown(e))
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Records a fetched count (unless the topic was forgotten meanwhile).
    pub(super) fn set(&self, topic: &str, n: i32) {
        if n <= 0 {
            return;
        }
        let m = self.topics.read().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = m.get(topic) {
            e.count.store(n, Ordering::Relaxed);
        }
    }

    /// Some kept topic has no count yet.
    pub(super) fn any_unknown(&self) -> bool {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|e| e.count.load(Ordering::Relaxed) == 0)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.topics.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Keeps partition counts of the topics this action writes to.
pub(super) async fn refresh_counts(a: Arc<KafkaAction>, stop: CancellationToken) {
    let interval = a.cfg.partition_count_refresh_interval.0;
    let idle_ms =
        u64::try_from(IDLE.max(interval.saturating_mul(2)).as_millis()).unwrap_or(u64::MAX);
    let mut since_ms = 0;
    let mut next_full = tokio::time::Instant::now();
    loop {
        let full = tokio::time::Instant::now() >= next_full;
        let now_ms = a.counts.now_ms();
        let topics = a.counts.round(now_ms, full.then_some(since_ms), idle_ms);
        if full {
            since_ms = now_ms;
            let now = tokio::time::Instant::now();
            next_full = now
                .checked_add(interval)
                .unwrap_or(now + Duration::from_secs(86_400));
        }
        for topic in topics {
            let a2 = a.clone();
            let t2 = topic.clone();
            let n = tokio::task::spawn_blocking(move || {
                a2.producer()
                    .client()
                    .fetch_metadata(Some(&t2), Duration::from_secs(5))
                    .ok()
                    .and_then(|md| {
                        md.topics()
                            .first()
                            .map(|t| i32::try_from(t.partitions().len()).unwrap_or(i32::MAX))
                    })
            })
            .await
            .ok()
            .flatten();
            if let Some(n) = n {
                a.counts.set(&topic, n);
            }
        }
        let wait = if a.counts.any_unknown() {
            tokio::time::Instant::now() + Duration::from_millis(500)
        } else {
            next_full
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = a.counts.wake.notified() => {}
            _ = tokio::time::sleep_until(wait) => {}
        }
    }
}
