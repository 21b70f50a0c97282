//! Delivery reports: librdkafka's callback context, which settles each record (success,
//! failed, retried) and hands disk and hybrid records back to their buffer thread.

use super::*;

/// Receives delivery reports on librdkafka's thread.
pub struct Reports {
    metrics: Arc<ActionStats>,
    /// Set when an idempotent producer's record timed out: the cluster may have lost the
    /// producer's state (a wiped cluster leaves such a producer stalled), so the next send
    /// starts a fresh producer.
    stalled: Arc<std::sync::atomic::AtomicBool>,
    idempotent: bool,
    retry: Arc<Queue>,
    max_retries: u32,
    async_mode: bool,
    name: String,
    /// Disk and hybrid modes: reports go back to the buffer thread.
    disk: Option<std::sync::mpsc::Sender<Msg>>,
}

impl Reports {
    pub(super) fn new(
        cfg: &ProducerConfig,
        name: &str,
        metrics: &Arc<ActionStats>,
        retry: &Arc<Queue>,
        stalled: &Arc<std::sync::atomic::AtomicBool>,
        disk: Option<&DiskHandle>,
    ) -> Reports {
        Reports {
            metrics: metrics.clone(),
            stalled: stalled.clone(),
            idempotent: cfg.idempotence,
            retry: retry.clone(),
            max_retries: cfg.max_retries,
            async_mode: cfg.query_mode == QueryMode::Async,
            name: name.to_owned(),
            disk: disk.map(|h| h.tx.clone()),
        }
    }
}

impl ClientContext for Reports {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(action = %self.name, "librdkafka: {error}: {reason}");
    }
}

/// Errors that sending again cannot fix.
pub(super) fn fatal(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::UnknownPartition
        )
    )
}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, d: Box<Delivery>) {
        let m = &self.metrics;
        m.counters.inc(ActionMetric::InflightDone);
        if let Some(tx) = &self.disk {
            // A buffered record (by id), or (hybrid) one kept in memory (by size).
            let done = || match d.buffer_id {
                Some(id) => Msg::Done(id),
                None => Msg::MemDone(crate::disk::stored_len(&d.record) as u64),
            };
            match result {
                Ok(_) => {
                    m.counters.inc(ActionMetric::Success);
                    m.latency.record(d.record.since.elapsed());
                    let _ = tx.send(done());
                }
                Err((e, _)) if fatal(e) => {
                    let n = m.counters.inc(ActionMetric::Failed);
                    if n.is_power_of_two() {
                        tracing::warn!(action = %self.name, topic = %d.record.topic, failed_total = n, "buffered record not deliverable: {e}");
                    }
                    let _ = tx.send(done());
                }
                Err((e, _)) => {
                    if self.idempotent
                        && e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageTimedOut)
                    {
                        self.stalled.store(true, Ordering::Relaxed);
                    }
                    // Sent again from the buffer thread, without limit: it is on disk.
                    let _ = tx.send(Msg::Retry(d));
                }
            }
            return;
        }
        match result {
            Ok(_) => {
                m.counters.inc(ActionMetric::Success);
                m.latency.record(d.record.since.elapsed());
                if let Some(ack) = d.ack {
                    let _ = ack.send(Ok(()));
                }
            }
            Err((e, msg)) => {
                let mut d = d;
                d.restore(msg);
                if self.idempotent
                    && e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageTimedOut)
                {
                    self.stalled.store(true, Ordering::Relaxed);
                }
                if self.retry.stopping.load(Ordering::Relaxed) {
                    // Purged at a graceful stop: neither delivered nor kept anywhere.
                    m.counters.inc(ActionMetric::DroppedResourceStopped);
                    return;
                }
                if self.async_mode && !fatal(e) && d.attempt < self.max_retries {
                    d.attempt += 1;
                    let topic = d.record.topic.clone();
                    if self.retry.push_retry(d) {
                        m.counters.inc(ActionMetric::Retried);
                    } else {
                        let n = m.counters.get(ActionMetric::DroppedRetryQueueFull);
                        if n.is_power_of_two() {
                            tracing::warn!(action = %self.name, %topic, dropped_total = n, "retry queue full (max_queue_messages): record dropped: {e}");
                        }
                    }
                    return;
                }
                let n = m.counters.inc(ActionMetric::Failed);
                if n.is_power_of_two() {
                    tracing::warn!(action = %self.name, topic = %d.record.topic, failed_total = n, "record not delivered: {e}");
                }
                if let Some(ack) = d.ack.take() {
                    let _ = ack.send(Err(NotDurable {
                        code: reason::UNSPECIFIED_ERROR,
                        why: format!("kafka: {e}"),
                    }));
                }
            }
        }
    }
}
