//! The buffer thread's state machine (see the module doc of [`crate::disk`]).

use std::collections::{BTreeMap, VecDeque};

use crate::config::BufferMode;

use super::*;

/// Hybrid: memory kept free while publishers are acknowledged without waiting for the
/// thread (records handed over meanwhile must still fit).
const MEMORY_SPARE: u64 = 1 << 20;

/// A record held for room (`backpressure`), with its publisher's acknowledgement.
struct Held {
    record: Record,
    received_ms: i64,
    ack: Option<AckTx>,
}

pub(super) struct Driver<I: Io> {
    pub(super) a: Arc<KafkaAction>,
    handle: DiskHandle,
    pub(super) buf: Buffer<I>,
    when_full: WhenFull,
    backoff: Duration,
    /// Hybrid: records may wait in memory up to these bytes.
    mem_limit: Option<u64>,
    /// Hybrid: records kept in memory and not yet delivered, and their stored size.
    mem_records: u64,
    mem_bytes: u64,
    /// The next id to read.
    next: u64,
    /// Ids read and not yet delivered (or given up on), with their stored sizes.
    pub(super) outstanding: BTreeMap<u64, u64>,
    outstanding_bytes: u64,
    /// Bytes that may be outstanding: half the buffer, at most [`INFLIGHT_BYTES`], so a
    /// full buffer's `when_full` applies to records still on disk.
    inflight_limit: u64,
    /// Read (or kept in memory), waiting for room in librdkafka's queue.
    unsent: VecDeque<Box<Delivery>>,
    /// Failed sends, each due at its time.
    retries: VecDeque<(Instant, Box<Delivery>)>,
    /// Acks of the appends since the last commit.
    waiting: Vec<Option<AckTx>>,
    /// Records appended since the last commit, sent from memory once durable.
    fresh: Vec<(u64, Record)>,
    /// Durable records not read yet, in memory: ids contiguous, from `next` on.
    cache: VecDeque<(u64, Record)>,
    cache_bytes: u64,
    /// Encoding buffer.
    scratch: Vec<u8>,
    /// `backpressure`: records waiting for room, in arrival order, with their acks.
    held: VecDeque<Held>,
    /// Ids up to this one were in the buffer at start: sending them counts as `resent`.
    recovered_to: u64,
    /// librdkafka's queue was full: do not send before this.
    paused_until: Option<Instant>,
    last_gauges: Instant,
    last_ack: Instant,
    errors: u64,
    /// An I/O error was the last word (the action's status shows it).
    failing: bool,
}

impl<I: Io> Driver<I> {
    pub(super) fn new(
        a: Arc<KafkaAction>,
        handle: DiskHandle,
        buf: Buffer<I>,
        recovered_to: u64,
    ) -> Self {
        let cfg = a.config();
        let (when_full, backoff) = (cfg.when_full, cfg.retry_backoff.0);
        let mem_limit = (cfg.buffer_mode == BufferMode::Hybrid).then_some(cfg.buffer_memory_bytes);
        let inflight_limit = (cfg.buffer_max_bytes / 2).clamp(1, INFLIGHT_BYTES);
        Driver {
            next: buf.acked().0 + 1,
            a,
            handle,
            buf,
            when_full,
            backoff,
            mem_limit,
            mem_records: 0,
            mem_bytes: 0,
            outstanding: BTreeMap::new(),
            outstanding_bytes: 0,
            inflight_limit,
            unsent: VecDeque::new(),
            retries: VecDeque::new(),
            waiting: Vec::new(),
            fresh: Vec::new(),
            cache: VecDeque::new(),
            cache_bytes: 0,
            scratch: Vec::new(),
            held: VecDeque::new(),
            recovered_to,
            paused_until: None,
            last_gauges: Instant::now() - Duration::from_secs(1),
            last_ack: Instant::now(),
            errors: 0,
            failing: false,
        }
    }

    pub(super) fn serve(&mut self, rx: &Receiver<Msg>, stop: &CancellationToken) {
        loop {
            let busy = !self.unsent.is_empty() || !self.retries.is_empty();
            let wait = if busy {
                Duration::from_millis(20)
            } else {
                Duration::from_millis(100)
            };
            match rx.recv_timeout(wait) {
                Ok(msg) => self.handle_msg(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            for _ in 0..4096 {
                match rx.try_recv() {
                    Ok(msg) => self.handle_msg(msg),
                    Err(_) => break,
                }
            }
            self.commit();
            self.pump();
            self.ack(false);
            if self.release_held() {
                self.commit();
            }
            let memory = self.mem_limit.is_some_and(|limit| {
                self.mem_bytes + MEMORY_SPARE <= limit
                    && self.held.is_empty()
                    && self.buf.pending_records() == 0
                    && self.next > self.buf.durable().0
            });
            self.handle.in_memory.store(memory, Ordering::Relaxed);
            if self.last_gauges.elapsed() >= Duration::from_millis(200) {
                self.gauges();
            }
            if stop.is_cancelled() {
                break;
            }
        }
        self.handle.in_memory.store(false, Ordering::Relaxed);
        self.shutdown(rx);
    }

    /// Stores what is still arriving, lets what is in flight land ([`DRAIN`] at most),
    /// acknowledges it, and (hybrid) writes what is still in memory to disk. Held records
    /// that do not fit are refused (their publishers send again; QoS 0 ones are counted
    /// as `dropped.resource_stopped`).
    fn shutdown(&mut self, rx: &Receiver<Msg>) {
        while let Ok(msg) = rx.try_recv() {
            self.handle_msg(msg);
        }
        self.release_held();
        self.commit();
        self.a.flush(DRAIN);
        if self.mem_records > 0 {
            // What librdkafka still has comes back as retries: it goes to disk below.
            self.a.purge();
            self.a.flush(Duration::from_secs(1));
        }
        while let Ok(msg) = rx.try_recv() {
            self.handle_msg(msg);
        }
        self.save_memory();
        self.release_held();
        self.commit();
        self.ack(true);
        for h in std::mem::take(&mut self.held) {
            self.stopped_without(h.ack);
        }
        self.gauges();
    }

    /// Hybrid, at stop: the records kept in memory go to disk.
    fn save_memory(&mut self) {
        let in_memory: Vec<Box<Delivery>> = self
            .retries
            .drain(..)
            .map(|(_, d)| d)
            .chain(self.unsent.drain(..))
            .filter(|d| d.buffer_id().is_none())
            .collect();
        let (mut saved, mut lost) = (0u64, 0u64);
        for d in in_memory {
            let received_ms = ferry_broker::hook::now_ms();
            let record = d.into_record();
            self.mem_done(stored_len(&record) as u64);
            self.scratch.clear();
            encode_into(&record, received_ms, &mut self.scratch);
            match self.buf.append(&self.scratch) {
                Ok(_) => saved += 1,
                Err(_) => lost += 1,
            }
        }
        let c = &self.a.metrics.counters;
        c.add(ActionMetric::BufferSpilled, saved);
        c.add(ActionMetric::DroppedResourceStopped, lost);
        if saved + lost > 0 {
            tracing::info!(action = %self.a.short_name(), saved, lost, "stopping: records kept in memory written to the disk buffer");
        }
        if lost > 0 {
            tracing::warn!(action = %self.a.short_name(), lost, "stopping: the disk buffer is full; records kept in memory are lost");
        }
    }

    fn stopped_without(&self, ack: Option<AckTx>) {
        match ack {
            Some(ack) => refuse(Some(ack), reason::UNSPECIFIED_ERROR, "action stopped"),
            None => {
                self.a
                    .metrics
                    .counters
                    .inc(ActionMetric::DroppedResourceStopped);
            }
        }
    }

    pub(super) fn handle_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Append {
                record,
                received_ms,
                ack,
            } => {
                self.handle.queued.fetch_sub(1, Ordering::AcqRel);
                if !self.held.is_empty() {
                    // Behind held records: keep the order.
                    self.hold(record, received_ms, ack);
                } else if self.fits_in_memory(&record) {
                    self.keep_in_memory(record, ack);
                } else {
                    self.append(record, received_ms, ack);
                }
            }
            Msg::Done(id) => self.settled(id),
            Msg::MemDone(n) => self.mem_done(n),
            Msg::Retry(d) => {
                self.retries.push_back((Instant::now() + self.backoff, d));
            }
        }
    }

    /// Hybrid: may this record wait in memory? Only while nothing waits on disk (records
    /// reach Kafka in arrival order) and the memory bound allows.
    fn fits_in_memory(&self, r: &Record) -> bool {
        self.mem_limit.is_some_and(|limit| {
            self.mem_bytes + stored_len(r) as u64 <= limit
                && self.buf.pending_records() == 0
                && self.next > self.buf.durable().0
        })
    }

    fn keep_in_memory(&mut self, record: Record, ack: Option<AckTx>) {
        self.mem_records += 1;
        self.mem_bytes += stored_len(&record) as u64;
        self.unsent.push_back(Box::new(Delivery::in_memory(record)));
        if let Some(ack) = ack {
            let _ = ack.send(Ok(()));
        }
    }

    fn mem_done(&mut self, n: u64) {
        self.mem_records = self.mem_records.saturating_sub(1);
        self.mem_bytes = self.mem_bytes.saturating_sub(n);
    }

    pub(super) fn append(&mut self, record: Record, received_ms: i64, ack: Option<AckTx>) {
        let m = self.a.metrics.clone();
        self.scratch.clear();
        encode_into(&record, received_ms, &mut self.scratch);
        loop {
            match self.buf.append(&self.scratch) {
                Ok(id) => {
                    if self.mem_limit.is_some() {
                        m.counters.inc(ActionMetric::BufferSpilled);
                    }
                    self.fresh.push((id.0, record));
                    self.waiting.push(ack);
                    return;
                }
                Err(e) if e.is_full() => match self.when_full {
                    WhenFull::DropNewest => {
                        m.counters.inc(ActionMetric::DroppedBufferNewest);
                        if let Some(ack) = ack {
                            let _ = ack.send(Ok(()));
                        }
                        return;
                    }
                    WhenFull::Backpressure => {
                        self.hold(record, received_ms, ack);
                        return;
                    }
                    WhenFull::DropOldest => {
                        // Only durable records can be dropped: commit what is pending first.
                        if self.buf.pending_records() > 0 {
                            self.commit();
                            continue;
                        }
                        // One cursor store per drop: drop a slice, not one record at a time.
                        let n = (self.buf.len_records() / 1000).max(1);
                        let from = self.buf.acked().0;
                        match self.buf.drop_oldest(n) {
                            Ok(0) => {
                                m.counters.inc(ActionMetric::DroppedBufferNewest);
                                if let Some(ack) = ack {
                                    let _ = ack.send(Ok(()));
                                }
                                return;
                            }
                            Ok(k) => {
                                // Records already read stay outstanding: those librdkafka
                                // delivers count as success, the others as dropped when
                                // they come back (see `send_unsent`).
                                let read = self.outstanding.range(from + 1..=from + k).count();
                                m.counters
                                    .add(ActionMetric::DroppedBufferOldest, k - read as u64);
                            }
                            Err(e) => {
                                self.io_error(&e);
                                refuse(ack, reason::UNSPECIFIED_ERROR, &e.to_string());
                                return;
                            }
                        }
                    }
                },
                Err(e) => {
                    // Too large for a segment: sending it again cannot help.
                    m.counters.inc(ActionMetric::Failed);
                    refuse(ack, reason::UNSPECIFIED_ERROR, &e.to_string());
                    return;
                }
            }
        }
    }

    /// `backpressure`: keeps the record (and its publisher's PUBACK) until there is room.
    fn hold(&mut self, record: Record, received_ms: i64, ack: Option<AckTx>) {
        if self.held.len() >= HELD {
            self.a.metrics.counters.inc(ActionMetric::RefusedBufferFull);
            refuse(
                ack,
                reason::QUOTA_EXCEEDED,
                "kafka action: disk buffer full",
            );
            return;
        }
        self.held.push_back(Held {
            record,
            received_ms,
            ack,
        });
        self.handle.pressing.store(true, Ordering::Relaxed);
    }

    /// Appends held records while they fit; true if any was appended.
    fn release_held(&mut self) -> bool {
        let mut any = false;
        while let Some(h) = self.held.front() {
            self.scratch.clear();
            encode_into(&h.record, h.received_ms, &mut self.scratch);
            match self.buf.append(&self.scratch) {
                Ok(id) => {
                    any = true;
                    if let Some(h) = self.held.pop_front() {
                        self.fresh.push((id.0, h.record));
                        self.waiting.push(h.ack);
                    }
                }
                Err(e) if e.is_full() => break,
                Err(e) => {
                    self.a.metrics.counters.inc(ActionMetric::Failed);
                    if let Some(h) = self.held.pop_front() {
                        refuse(h.ack, reason::UNSPECIFIED_ERROR, &e.to_string());
                    }
                }
            }
        }
        if self.held.is_empty() {
            self.handle.pressing.store(false, Ordering::Relaxed);
        }
        any
    }

    fn io_error(&mut self, e: &ferry_buffer::Error) {
        self.errors += 1;
        self.failing = true;
        self.a.set_buffer_error(Some(e.to_string()));
        self.a.metrics.counters.inc(ActionMetric::BufferErrors);
        if self.errors.is_power_of_two() {
            tracing::error!(action = %self.a.short_name(), errors = self.errors, "{e}");
        }
    }

    /// Group commit of everything appended since the last one, then the publishers' acks.
    pub(super) fn commit(&mut self) {
        if self.buf.pending_records() == 0 {
            for ack in self.waiting.drain(..).flatten() {
                let _ = ack.send(Ok(()));
            }
            return;
        }
        let t = Instant::now();
        let result = self.buf.commit();
        let m = self.a.metrics.clone();
        m.commit_latency.record(t.elapsed());
        m.counters.inc(ActionMetric::BufferCommits);
        match result {
            Ok(_) => {
                if self.failing {
                    self.failing = false;
                    self.a.set_buffer_error(None);
                    tracing::info!(action = %self.a.short_name(), "disk buffer writes again");
                }
                for ack in self.waiting.drain(..).flatten() {
                    let _ = ack.send(Ok(()));
                }
                self.cache_fresh();
            }
            Err(e) => {
                self.io_error(&e);
                // Not reported durable: the publishers send again (a part that did become
                // durable across a segment roll is delivered too: a duplicate at worst).
                self.buf.discard_pending();
                self.fresh.clear();
                let why = format!("kafka action: {e}");
                for ack in self.waiting.drain(..) {
                    refuse(ack, reason::UNSPECIFIED_ERROR, &why);
                }
            }
        }
    }

    /// Keeps the records just made durable in memory, to be sent without reading them
    /// back, while the cache stays contiguous from `next` and within [`CACHE_BYTES`].
    fn cache_fresh(&mut self) {
        for (id, r) in self.fresh.drain(..) {
            let follows = match self.cache.back() {
                Some((last, _)) => id == last + 1,
                None => id == self.next,
            };
            let size = stored_len(&r) as u64;
            if follows && self.cache_bytes + size <= CACHE_BYTES {
                self.cache_bytes += size;
                self.cache.push_back((id, r));
            }
        }
    }

    /// An outstanding record is delivered, failed for good or dropped.
    fn settled(&mut self, id: u64) {
        if let Some(size) = self.outstanding.remove(&id) {
            self.outstanding_bytes -= size;
        }
    }

    /// Up to `max` durable records from `next` on (moving `next` past them), stopping once
    /// `bytes` are taken: from the cache when it starts there, else read back from disk (up
    /// to where the cache starts).
    fn take_records(
        &mut self,
        max: usize,
        bytes: u64,
    ) -> Result<Vec<(u64, Record)>, ferry_buffer::Error> {
        while self.cache.front().is_some_and(|(id, _)| *id < self.next) {
            if let Some((_, r)) = self.cache.pop_front() {
                self.cache_bytes -= stored_len(&r) as u64;
            }
        }
        let mut out = Vec::new();
        let mut taken = 0;
        if self.cache.front().is_some_and(|(id, _)| *id == self.next) {
            while out.len() < max && taken < bytes {
                let Some((id, r)) = self.cache.pop_front() else {
                    break;
                };
                let size = stored_len(&r) as u64;
                self.cache_bytes -= size;
                taken += size;
                self.next = id + 1;
                out.push((id, r));
            }
            return Ok(out);
        }
        let max = match self.cache.front() {
            Some((id, _)) => max.min((id - self.next) as usize),
            None => max,
        };
        for (id, stored) in self.buf.read_from(Id(self.next), max)? {
            if taken >= bytes {
                // Read again on a later turn.
                break;
            }
            self.next = id.0 + 1;
            taken += stored.len() as u64;
            match decode(&stored) {
                Ok((record, _)) => out.push((id.0, record)),
                Err(e) => {
                    self.a.metrics.counters.inc(ActionMetric::Failed);
                    tracing::warn!(action = %self.a.short_name(), id = id.0, "unreadable buffered record skipped: {e}");
                }
            }
        }
        Ok(out)
    }

    /// Moves records into librdkafka: retries that are due, then records in id order.
    pub(super) fn pump(&mut self) {
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.paused_until = None;
        let now = Instant::now();
        // Due retries go first (lower ids), in the order they failed.
        let mut due = Vec::new();
        while self.retries.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, d)) = self.retries.pop_front() {
                self.a.metrics.counters.inc(ActionMetric::Retried);
                due.push(d);
            }
        }
        for d in due.into_iter().rev() {
            self.unsent.push_front(d);
        }
        // Records dropped to make room are not read.
        self.next = self.next.max(self.buf.acked().0 + 1);
        // A bounded turn: the next group commit (and its PUBACKs) waits for this one.
        let mut budget = PUMP_TURN;
        loop {
            if !self.send_unsent() {
                return;
            }
            let room = WINDOW.saturating_sub(self.outstanding.len()).min(budget);
            let bytes = self.inflight_limit.saturating_sub(self.outstanding_bytes);
            if room == 0 || bytes == 0 {
                return;
            }
            budget -= room.min(512);
            let batch = match self.take_records(room.min(512), bytes) {
                Ok(b) => b,
                Err(e) => {
                    self.io_error(&e);
                    // A corrupt record cannot be read again: step over it (counted).
                    if matches!(e, ferry_buffer::Error::Corrupt { .. }) {
                        self.a.metrics.counters.inc(ActionMetric::Failed);
                        self.next += 1;
                    }
                    return;
                }
            };
            if batch.is_empty() {
                return;
            }
            for (id, record) in batch {
                if id <= self.recovered_to {
                    self.a.metrics.counters.inc(ActionMetric::Resent);
                }
                let size = stored_len(&record) as u64;
                self.outstanding.insert(id, size);
                self.outstanding_bytes += size;
                self.unsent
                    .push_back(Box::new(Delivery::buffered(record, id)));
            }
        }
    }

    /// Sends from `unsent` until it is empty (true) or librdkafka's queue is full (false).
    fn send_unsent(&mut self) -> bool {
        while let Some(d) = self.unsent.pop_front() {
            let id = d.buffer_id();
            if let Some(id) = id
                && id <= self.buf.acked().0
            {
                // Dropped (drop_oldest) after it was read, before it was delivered.
                self.settled(id);
                self.a
                    .metrics
                    .counters
                    .inc(ActionMetric::DroppedBufferOldest);
                continue;
            }
            match self.a.send(d) {
                Ok(()) => {}
                Err((e, d)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    self.unsent.push_front(d);
                    self.paused_until = Some(Instant::now() + Duration::from_millis(20));
                    return false;
                }
                Err((e, d)) => {
                    match id {
                        Some(id) => self.settled(id),
                        None => self.mem_done(stored_len(&d.into_record()) as u64),
                    }
                    let n = self.a.metrics.counters.inc(ActionMetric::Failed);
                    if n.is_power_of_two() {
                        tracing::warn!(action = %self.a.short_name(), failed_total = n, "buffered record refused by the producer: {e}");
                    }
                }
            }
        }
        true
    }

    /// Acknowledges the contiguous prefix of delivered ids. Storing the cursor costs an
    /// fdatasync, so it is done at most every [`ACK_EVERY`] unless `force`d or room is needed
    /// (records held, or the buffer over three quarters full); a crash in between only
    /// means those records are sent again.
    pub(super) fn ack(&mut self, force: bool) {
        let to = self
            .outstanding
            .first_key_value()
            .map_or(self.next.saturating_sub(1), |(f, _)| f - 1);
        if to <= self.buf.acked().0 {
            return;
        }
        let tight =
            !self.held.is_empty() || self.buf.len_bytes() >= self.buf.options().max_bytes / 4 * 3;
        if !force && !tight && self.last_ack.elapsed() < ACK_EVERY {
            return;
        }
        self.last_ack = Instant::now();
        if let Err(e) = self.buf.ack(Id(to)) {
            self.io_error(&e);
        }
    }

    pub(super) fn gauges(&mut self) {
        self.last_gauges = Instant::now();
        let s = self.buf.stats();
        let c = &self.a.metrics.counters;
        c.set(ActionMetric::BufferBytes, s.bytes);
        c.set(ActionMetric::BufferRecords, s.records);
        c.set(ActionMetric::BufferSegments, s.segments);
        c.set(ActionMetric::BufferHeld, self.held.len() as u64);
        c.set(ActionMetric::BufferMemoryRecords, self.mem_records);
        c.set(ActionMetric::BufferMemoryBytes, self.mem_bytes);
        c.set(
            ActionMetric::BufferOldestAgeMs,
            s.oldest_unacked_age
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        );
    }
}
