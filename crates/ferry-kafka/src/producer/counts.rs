//! Partition counts per topic for the partition strategies that need them, refreshed in
//! the background.

use super::*;

/// Partition counts per topic, refreshed in the background; a topic seen for the first
/// time wakes the refresher.
#[derive(Default)]
pub(super) struct PartitionCounts(pub(super) RwLock<HashMap<String, i32>>, pub(super) Notify);

impl PartitionCounts {
    pub(super) fn get(&self, topic: &str) -> Option<i32> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .copied()
    }
    pub(super) fn wants(&self, topic: &str) {
        let mut m = self.0.write().unwrap_or_else(|e| e.into_inner());
        if !m.contains_key(topic) {
            m.insert(topic.to_owned(), 0);
            self.1.notify_one();
        }
    }
}

/// Keeps partition counts of the topics this action writes to.
pub(super) async fn refresh_counts(a: Arc<KafkaAction>, stop: CancellationToken) {
    loop {
        let topics: Vec<String> = a
            .counts
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for topic in topics {
            let a2 = a.clone();
            let t2 = topic.clone();
            let n = tokio::task::spawn_blocking(move || {
                a2.producer()
                    .client()
                    .fetch_metadata(Some(&t2), Duration::from_secs(5))
                    .ok()
                    .and_then(|md| md.topics().first().map(|t| t.partitions().len() as i32))
            })
            .await
            .ok()
            .flatten();
            if let Some(n) = n.filter(|n| *n > 0) {
                a.counts
                    .0
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(topic, n);
            }
        }
        let empty = a
            .counts
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|n| *n == 0);
        let wait = if empty {
            Duration::from_millis(500)
        } else {
            a.cfg.partition_count_refresh_interval.0
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = a.counts.1.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
