//! Async (memory) mode: the bounded queue, the worker that moves it into librdkafka, and
//! the graceful stop that drains it (or waits for the disk buffer thread).

use super::*;

/// The async-mode buffer: bounded, with an overflow policy, plus records coming back for a
/// retry. Retries wait for their own due time (`retry_backoff` after the failure) in a
/// queue of their own, bounded by `max_queue_messages` (past that a retry is dropped,
/// counted as `dropped.retry_queue_full`): a retry that is not due does not hold up the
/// records behind it.
pub(super) struct Queue {
    /// Boxed: a record is a few hundred bytes, moved in and out of here and then handed
    /// to librdkafka as its delivery opaque (a box either way).
    pub(super) items: Mutex<VecDeque<Box<Delivery>>>,
    /// In due order: every retry waits the same backoff.
    pub(super) retries: Mutex<VecDeque<(Instant, Box<Delivery>)>>,
    pub(super) notify: Notify,
    pub(super) limit: usize,
    pub(super) retry_limit: usize,
    pub(super) backoff: Duration,
    pub(super) overflow: Overflow,
    pub(super) metrics: Arc<ActionStats>,
    /// Set by [`KafkaAction::drain`] once it gave up: what fails now is dropped (counted).
    pub(super) stopping: std::sync::atomic::AtomicBool,
}

impl Queue {
    pub(super) fn new(
        limit: usize,
        overflow: Overflow,
        backoff: Duration,
        metrics: Arc<ActionStats>,
    ) -> Queue {
        Queue {
            items: Mutex::new(VecDeque::new()),
            retries: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            limit,
            retry_limit: limit,
            backoff,
            overflow,
            metrics,
            stopping: Default::default(),
        }
    }

    pub(super) fn push(&self, d: Box<Delivery>) {
        let m = &self.metrics;
        // The worker sleeps only after it found the queue empty: only a push into an empty
        // queue needs to wake it (one wakeup per burst, not per record).
        let was_empty;
        {
            let mut q = self.items.lock().unwrap_or_else(|e| e.into_inner());
            was_empty = q.is_empty();
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
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// A record to send again once `retry_backoff` passed. Returns false if the retry
    /// queue was full and the record dropped (counted).
    pub(super) fn push_retry(&self, d: Box<Delivery>) -> bool {
        {
            let mut q = self.retries.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() >= self.retry_limit {
                drop(q);
                self.metrics
                    .counters
                    .inc(ActionMetric::DroppedRetryQueueFull);
                return false;
            }
            let now = Instant::now();
            // A backoff too large to add (config allows any duration) is a day.
            let due = now
                .checked_add(self.backoff)
                .unwrap_or(now + Duration::from_secs(86_400));
            q.push_back((due, d));
        }
        self.notify.notify_one();
        true
    }

    /// The next record to send: a retry that is due at `now` (any retry if `now` is
    /// `None`), else the oldest queued record. The flag says it is a retry.
    pub(super) fn pop(&self, now: Option<Instant>) -> Option<(Box<Delivery>, bool)> {
        {
            let mut r = self.retries.lock().unwrap_or_else(|e| e.into_inner());
            if r.front()
                .is_some_and(|(due, _)| now.is_none_or(|now| *due <= now))
                && let Some((_, d)) = r.pop_front()
            {
                return Some((d, true));
            }
        }
        let d = self
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()?;
        self.metrics.counters.inc(ActionMetric::Dequeued);
        Some((d, false))
    }

    /// Moves up to `max` records to send into `out` (in order, flagged as retries or
    /// not): the retries due at `now` first, then queued records, each queue locked once.
    pub(super) fn pop_batch(
        &self,
        now: Instant,
        max: usize,
        out: &mut VecDeque<(Box<Delivery>, bool)>,
    ) {
        {
            let mut r = self.retries.lock().unwrap_or_else(|e| e.into_inner());
            while out.len() < max && r.front().is_some_and(|(due, _)| *due <= now) {
                if let Some((_, d)) = r.pop_front() {
                    out.push_back((d, true));
                }
            }
        }
        let room = max.saturating_sub(out.len());
        if room == 0 {
            return;
        }
        let mut q = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let n = room.min(q.len());
        out.extend(q.drain(..n).map(|d| (d, false)));
        drop(q);
        if n > 0 {
            self.metrics.counters.add(ActionMetric::Dequeued, n as u64);
        }
    }

    /// When the first waiting retry is due.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .front()
            .map(|(due, _)| *due)
    }

    pub(super) fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).len()
            + self.retries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(super) fn unpop(&self, d: Box<Delivery>, retry: bool) {
        if retry {
            // It was due already: it goes first.
            self.retries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_front((Instant::now(), d));
        } else {
            self.metrics.counters.inc(ActionMetric::Enqueued);
            self.items
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_front(d);
        }
    }
}

/// Records the worker takes from the queue at a time (one lock and one clock read each).
const BATCH: usize = 256;

/// Async mode: moves queued records into librdkafka, pausing while its queue is full.
pub(super) async fn worker(a: Arc<KafkaAction>, stop: CancellationToken) {
    let mut batch = VecDeque::with_capacity(BATCH);
    loop {
        loop {
            a.queue.pop_batch(Instant::now(), BATCH, &mut batch);
            if batch.is_empty() {
                break;
            }
            while let Some((d, retry)) = batch.pop_front() {
                match a.send(d) {
                    Ok(()) => {}
                    Err((e, d)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                        // Back in front, in their order, the rest of the batch too.
                        batch.push_front((d, retry));
                        while let Some((d, retry)) = batch.pop_back() {
                            a.queue.unpop(d, retry);
                        }
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                        }
                        break;
                    }
                    Err((e, d)) => {
                        let n = a.metrics.counters.inc(ActionMetric::Failed);
                        if n.is_power_of_two() {
                            tracing::warn!(action = %a.name, topic = %d.record.topic, failed_total = n, "record refused: {e}");
                        }
                    }
                }
            }
        }
        let retry_due = a.queue.next_retry();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = a.queue.notify.notified() => {}
            _ = async {
                match retry_due {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => {}
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
            let Some((d, retry)) = self.queue.pop(None) else {
                break;
            };
            match self.send(d) {
                Ok(()) => {}
                Err((e, d)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    self.queue.unpop(d, retry);
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
        while self.queue.pop(None).is_some() {}
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
