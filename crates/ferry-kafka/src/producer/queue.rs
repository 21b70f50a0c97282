//! Async (memory) mode: the bounded queue, the worker that moves it into librdkafka, and
//! the graceful stop that drains it (or waits for the disk buffer thread).

use super::*;

/// The async-mode buffer: bounded, with an overflow policy, plus records coming back for a
/// retry (those are few: bounded by what librdkafka had in flight).
pub(super) struct Queue {
    pub(super) items: Mutex<VecDeque<Delivery>>,
    pub(super) retries: Mutex<VecDeque<Delivery>>,
    pub(super) notify: Notify,
    pub(super) limit: usize,
    pub(super) overflow: Overflow,
    pub(super) metrics: Arc<ActionStats>,
    /// Set by [`KafkaAction::drain`] once it gave up: what fails now is dropped (counted).
    pub(super) stopping: std::sync::atomic::AtomicBool,
}

impl Queue {
    pub(super) fn push(&self, d: Delivery) {
        let m = &self.metrics;
        {
            let mut q = self.items.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() >= self.limit {
                m.counters.inc(ActionMetric::DroppedQueueFull);
                m.counters.inc(ActionMetric::Dequeued);
                match self.overflow {
                    Overflow::DropNewest => {
                        // The new record is the one dropped.
                        return;
                    }
                    Overflow::DropOldest => {
                        q.pop_front();
                    }
                }
            }
            m.counters.inc(ActionMetric::Enqueued);
            q.push_back(d);
        }
        self.notify.notify_one();
    }

    pub(super) fn push_retry(&self, d: Delivery) {
        self.retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(d);
        self.notify.notify_one();
    }

    pub(super) fn pop(&self) -> Option<(Delivery, bool)> {
        if let Some(d) = self
            .retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
        {
            return Some((d, true));
        }
        let d = self
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()?;
        self.metrics.counters.inc(ActionMetric::Dequeued);
        Some((d, false))
    }

    pub(super) fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).len()
            + self.retries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(super) fn unpop(&self, d: Delivery, retry: bool) {
        if retry {
            self.retries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_front(d);
        } else {
            self.metrics.counters.inc(ActionMetric::Enqueued);
            self.items
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_front(d);
        }
    }
}

/// Async mode: moves queued records into librdkafka, pausing while its queue is full.
pub(super) async fn worker(a: Arc<KafkaAction>, stop: CancellationToken) {
    loop {
        while let Some((d, retry)) = a.queue.pop() {
            if retry {
                tokio::time::sleep(a.cfg.retry_backoff.0).await;
            }
            match a.send(d) {
                Ok(()) => {}
                Err((e, d)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    a.queue.unpop(*d, retry);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    }
                }
                Err((e, d)) => {
                    let n = a.metrics.counters.inc(ActionMetric::Failed);
                    if n.is_power_of_two() {
                        tracing::warn!(action = %a.name, topic = %d.record.topic, failed_total = n, "record refused: {e}");
                    }
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = a.queue.notify.notified() => {}
        }
    }
}

impl KafkaAction {
    /// A graceful stop, after the action's stop token was cancelled: delivers what waits
    /// within `timeout`. Memory mode: the queue goes to librdkafka, then what is not
    /// delivered in time is purged and counted (`dropped.resource_stopped`, logged). Disk
    /// and hybrid modes: waits for the buffer thread, which stores what is left.
    pub fn drain(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let thread = self.driver.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            // The thread lets in-flight records land for DRAIN, then writes to disk.
            let until = deadline.max(Instant::now() + crate::disk::DRAIN) + Duration::from_secs(5);
            while !t.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                tracing::warn!(action = %self.name, "disk buffer thread still busy at stop");
            }
            return;
        }
        while Instant::now() < deadline {
            let Some((d, retry)) = self.queue.pop() else {
                break;
            };
            match self.send(d) {
                Ok(()) => {}
                Err((e, d)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    self.queue.unpop(*d, retry);
                    let _ = self.producer().flush(Duration::from_millis(20));
                }
                Err(_) => {
                    self.metrics.counters.inc(ActionMetric::Failed);
                }
            }
        }
        let _ = self
            .producer()
            .flush(deadline.saturating_duration_since(Instant::now()));
        self.queue.stopping.store(true, Ordering::Relaxed);
        let queued = self.queue.len() as u64;
        while self.queue.pop().is_some() {}
        let before = self
            .metrics
            .counters
            .get(ActionMetric::DroppedResourceStopped);
        self.purge();
        let _ = self.producer().flush(Duration::from_secs(1));
        let purged = self
            .metrics
            .counters
            .get(ActionMetric::DroppedResourceStopped)
            - before;
        self.metrics
            .counters
            .add(ActionMetric::DroppedResourceStopped, queued);
        if queued + purged > 0 {
            tracing::warn!(
                action = %self.name,
                queued,
                in_flight = purged,
                "stopping: records not delivered within the drain deadline are dropped (dropped.resource_stopped)"
            );
        }
    }
}
