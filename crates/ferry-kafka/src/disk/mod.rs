//! Disk mode of a producer action (`buffer_mode = "disk"`): render → buffer → driver.
//!
//! `KafkaAction::run` renders the record as in memory mode, encodes it ([`encode`]) and
//! hands it to the action's buffer thread through a bounded hand-over ([`DiskHandle`]).
//! That thread owns the [`ferry_buffer::Buffer`] (in `[node] data_dir`/buffer/NAME) and:
//! - appends what arrived since its last turn and group-commits it (one write, one
//!   `fdatasync`), then completes each waiting [`DurableAck`](ferry_broker::DurableAck):
//!   Ok once committed, `NotDurable{0x80}` when the commit failed (the batch is discarded,
//!   the device sends again);
//! - applies `when_full` when the buffer is at `buffer_max_bytes`: drop the oldest records
//!   (counted, the new record is stored), drop the new one (counted, the publisher still
//!   gets a success), or hold it (`backpressure`): held records wait in memory, in order,
//!   until acknowledgements free room, and their publishers' PUBACKs wait with them, so a
//!   publisher stops at its Receive Maximum; past [`HELD`] held records a PUBLISH is
//!   refused with 0x97 (counted). Nothing is dropped;
//! - is the driver: reads durable records in id order, produces them with librdkafka (at
//!   most [`WINDOW`] outstanding), takes delivery reports back through the same channel
//!   and acknowledges the buffer's contiguous prefix of delivered ids (reports may come
//!   out of order); a retryable failure is sent again after `retry_backoff`, without limit:
//!   the record is only given up on for errors sending cannot fix (counted as `failed`).
//!
//! At start the buffer's recovery runs on this thread and everything unacknowledged is
//! sent again (`resent`): a record whose delivery report was lost in a crash reaches Kafka
//! twice. Kafka sees records in id order, except after a failed send (a retry goes after
//! records already in flight).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferry_broker::NotDurable;
use ferry_buffer::{Buffer, Id, Io, Options, StdIo, SyncMode};
use ferry_metrics::ActionMetric;
use ferry_mqtt::reason;
use rdkafka::error::RDKafkaErrorCode;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::WhenFull;
use crate::producer::{Delivery, KafkaAction, Record};

mod record;

pub use record::{decode, encode};

/// Records read from the buffer and not yet delivered, at most.
pub const WINDOW: usize = 10_000;
/// Appends waiting for the buffer thread, at most; past it a PUBLISH is refused (0x97).
pub const HANDOVER: usize = 20_000;
/// `backpressure`: records held for room, at most; past it a PUBLISH is refused (0x97).
pub const HELD: usize = 20_000;
/// Records read and sent per turn of the buffer thread, at most.
pub const PUMP_TURN: usize = 1024;
/// How often the ack cursor is stored (each store is an fdatasync).
pub const ACK_EVERY: Duration = Duration::from_millis(100);

pub type AckTx = oneshot::Sender<Result<(), NotDurable>>;

/// What the buffer thread receives.
pub enum Msg {
    /// A rendered, encoded record; `ack` for a QoS 1/2 publisher waiting for durability.
    Append { bytes: Vec<u8>, ack: Option<AckTx> },
    /// Kafka acknowledged the record with this buffer id (or it failed for good).
    Done(u64),
    /// A retryable failure: send it again.
    Retry(Box<Delivery>),
}

/// The sending side, held by the action and by its delivery-report context.
#[derive(Clone)]
pub struct DiskHandle {
    pub tx: Sender<Msg>,
    queued: Arc<AtomicUsize>,
}

impl DiskHandle {
    pub fn new() -> (DiskHandle, Receiver<Msg>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (
            DiskHandle {
                tx,
                queued: Arc::default(),
            },
            rx,
        )
    }

    /// Hands a record over; gives the ack back when the thread is [`HANDOVER`] behind.
    pub fn append(&self, bytes: Vec<u8>, ack: Option<AckTx>) -> Result<(), Option<AckTx>> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= HANDOVER {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(ack);
        }
        self.tx.send(Msg::Append { bytes, ack }).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            match e.0 {
                Msg::Append { ack, .. } => ack,
                _ => None,
            }
        })
    }
}

/// One lock per buffer directory in this process: an action replaced by a reconfiguration
/// lets go of its buffer before its successor opens it.
fn dir_lock(dir: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    LOCKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(dir.to_owned())
        .or_default()
        .clone()
}

fn refuse(ack: Option<AckTx>, code: u8, why: &str) {
    if let Some(ack) = ack {
        let _ = ack.send(Err(NotDurable {
            code,
            why: why.to_owned(),
        }));
    }
}

/// Starts the buffer thread of `a`.
pub fn spawn(
    a: Arc<KafkaAction>,
    handle: DiskHandle,
    rx: Receiver<Msg>,
    dir: PathBuf,
    stop: CancellationToken,
) {
    let name = format!("ferry-buf-{}", a.short_name());
    let spawned = std::thread::Builder::new()
        .name(name.chars().take(15).collect())
        .spawn(move || run(a, handle, rx, dir, stop));
    if let Err(e) = spawned {
        tracing::error!("cannot start a disk buffer thread: {e}");
    }
}

fn run(
    a: Arc<KafkaAction>,
    handle: DiskHandle,
    rx: Receiver<Msg>,
    dir: PathBuf,
    stop: CancellationToken,
) {
    let lock = dir_lock(&dir);
    let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = a.config().clone();
    let options = Options {
        segment_bytes: cfg.segment_bytes,
        max_bytes: cfg.buffer_max_bytes,
        sync: SyncMode::Always,
    };
    let m = a.metrics.clone();
    // Opening may fail (permissions, a full disk): refuse appends and try again.
    let (buf, recovery) = loop {
        let opened = std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))
            .and_then(|()| Buffer::open(&dir, options.clone(), StdIo).map_err(|e| e.to_string()));
        match opened {
            Ok(b) => break b,
            Err(e) => {
                m.counters.inc(ActionMetric::BufferErrors);
                tracing::error!(action = %a.short_name(), "disk buffer: {e}");
                let until = Instant::now() + Duration::from_secs(5);
                while Instant::now() < until {
                    if stop.is_cancelled() {
                        return;
                    }
                    match rx.recv_timeout(Duration::from_millis(100)) {
                        Ok(Msg::Append { ack, .. }) => {
                            handle.queued.fetch_sub(1, Ordering::AcqRel);
                            refuse(ack, reason::UNSPECIFIED_ERROR, &e);
                        }
                        Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
        }
    };
    let recovered_to = buf.durable().0;
    m.counters
        .add(ActionMetric::BufferRecovered, buf.len_records());
    m.counters.add(
        ActionMetric::BufferRecoveryDropped,
        recovery.truncated_records + recovery.corrupt_records,
    );
    if buf.len_records() > 0 || recovery.truncated_records > 0 || recovery.corrupt_records > 0 {
        tracing::info!(
            action = %a.short_name(),
            records = buf.len_records(),
            torn = recovery.truncated_records,
            corrupt = recovery.corrupt_records,
            "disk buffer recovered; unacknowledged records are sent again"
        );
    }
    let mut d = Driver::new(a, handle, buf, recovered_to);
    d.gauges();
    d.serve(&rx, &stop);
}

impl<I: Io> Driver<I> {
    fn new(a: Arc<KafkaAction>, handle: DiskHandle, buf: Buffer<I>, recovered_to: u64) -> Self {
        let cfg = a.config();
        let (when_full, backoff) = (cfg.when_full, cfg.retry_backoff.0);
        Driver {
            next: buf.acked().0 + 1,
            a,
            handle,
            buf,
            when_full,
            backoff,
            outstanding: BTreeSet::new(),
            unsent: VecDeque::new(),
            retries: VecDeque::new(),
            waiting: Vec::new(),
            held: VecDeque::new(),
            recovered_to,
            paused_until: None,
            last_gauges: Instant::now() - Duration::from_secs(1),
            last_ack: Instant::now(),
            errors: 0,
            failing: false,
        }
    }
}

struct Driver<I: Io> {
    a: Arc<KafkaAction>,
    handle: DiskHandle,
    buf: Buffer<I>,
    when_full: WhenFull,
    backoff: Duration,
    /// The next id to read.
    next: u64,
    /// Ids read and not yet delivered (or given up on).
    outstanding: BTreeSet<u64>,
    /// Read, waiting for room in librdkafka's queue.
    unsent: VecDeque<Box<Delivery>>,
    /// Failed sends, each due at its time.
    retries: VecDeque<(Instant, Box<Delivery>)>,
    /// Acks of the appends since the last commit.
    waiting: Vec<Option<AckTx>>,
    /// `backpressure`: records waiting for room, in arrival order, with their acks.
    held: VecDeque<(Vec<u8>, Option<AckTx>)>,
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
    fn serve(&mut self, rx: &Receiver<Msg>, stop: &CancellationToken) {
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
            if self.last_gauges.elapsed() >= Duration::from_millis(200) {
                self.gauges();
            }
            if stop.is_cancelled() {
                break;
            }
        }
        self.shutdown(rx);
    }

    /// Lets what is in flight land (a few seconds at most), acknowledges it, and refuses
    /// appends still waiting (their publishers get 0x80 and send again).
    fn shutdown(&mut self, rx: &Receiver<Msg>) {
        self.commit();
        self.a.flush(Duration::from_secs(3));
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Append { ack, .. } => {
                    self.handle.queued.fetch_sub(1, Ordering::AcqRel);
                    refuse(ack, reason::UNSPECIFIED_ERROR, "action stopped");
                }
                other => self.handle_msg(other),
            }
        }
        self.ack(true);
        for (_, ack) in self.held.drain(..) {
            refuse(ack, reason::UNSPECIFIED_ERROR, "action stopped");
        }
        self.gauges();
    }

    fn handle_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Append { bytes, ack } => {
                self.handle.queued.fetch_sub(1, Ordering::AcqRel);
                if self.held.is_empty() {
                    self.append(bytes, ack);
                } else {
                    // Behind held records: keep the order.
                    self.hold(bytes, ack);
                }
            }
            Msg::Done(id) => {
                self.outstanding.remove(&id);
            }
            Msg::Retry(d) => {
                self.retries.push_back((Instant::now() + self.backoff, d));
            }
        }
    }

    fn append(&mut self, bytes: Vec<u8>, ack: Option<AckTx>) {
        let m = self.a.metrics.clone();
        loop {
            match self.buf.append(&bytes) {
                Ok(_) => {
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
                        self.hold(bytes, ack);
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
                        match self.buf.drop_oldest(n) {
                            Ok(0) => {
                                m.counters.inc(ActionMetric::DroppedBufferNewest);
                                if let Some(ack) = ack {
                                    let _ = ack.send(Ok(()));
                                }
                                return;
                            }
                            Ok(k) => {
                                m.counters.add(ActionMetric::DroppedBufferOldest, k);
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
    fn hold(&mut self, bytes: Vec<u8>, ack: Option<AckTx>) {
        if self.held.len() >= HELD {
            self.a.metrics.counters.inc(ActionMetric::RefusedBufferFull);
            refuse(
                ack,
                reason::QUOTA_EXCEEDED,
                "kafka action: disk buffer full",
            );
            return;
        }
        self.held.push_back((bytes, ack));
    }

    /// Appends held records while they fit; true if any was appended.
    fn release_held(&mut self) -> bool {
        let mut any = false;
        while let Some((bytes, _)) = self.held.front() {
            match self.buf.append(bytes) {
                Ok(_) => {
                    any = true;
                    if let Some((_, ack)) = self.held.pop_front() {
                        self.waiting.push(ack);
                    }
                }
                Err(e) if e.is_full() => break,
                Err(e) => {
                    self.a.metrics.counters.inc(ActionMetric::Failed);
                    if let Some((_, ack)) = self.held.pop_front() {
                        refuse(ack, reason::UNSPECIFIED_ERROR, &e.to_string());
                    }
                }
            }
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
    fn commit(&mut self) {
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
            }
            Err(e) => {
                self.io_error(&e);
                // Not reported durable: the publishers send again (a part that did become
                // durable across a segment roll is delivered too: a duplicate at worst).
                self.buf.discard_pending();
                let why = format!("kafka action: {e}");
                for ack in self.waiting.drain(..) {
                    refuse(ack, reason::UNSPECIFIED_ERROR, &why);
                }
            }
        }
    }

    /// Moves records into librdkafka: retries that are due, then new records in id order.
    fn pump(&mut self) {
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
        // A bounded turn: the next group commit (and its PUBACKs) waits for this one.
        let mut budget = PUMP_TURN;
        loop {
            if !self.send_unsent() {
                return;
            }
            let room = WINDOW.saturating_sub(self.outstanding.len()).min(budget);
            if room == 0 {
                return;
            }
            budget -= room.min(512);
            let batch = match self.buf.read_from(Id(self.next), room.min(512)) {
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
            for (id, bytes) in batch {
                self.next = id.0 + 1;
                match decode(&bytes) {
                    Ok((record, _)) => {
                        if id.0 <= self.recovered_to {
                            self.a.metrics.counters.inc(ActionMetric::Resent);
                        }
                        self.outstanding.insert(id.0);
                        self.unsent
                            .push_back(Box::new(Delivery::buffered(record, id.0)));
                    }
                    Err(e) => {
                        self.a.metrics.counters.inc(ActionMetric::Failed);
                        tracing::warn!(action = %self.a.short_name(), id = id.0, "unreadable buffered record skipped: {e}");
                    }
                }
            }
        }
    }

    /// Sends from `unsent` until it is empty (true) or librdkafka's queue is full (false).
    fn send_unsent(&mut self) -> bool {
        while let Some(d) = self.unsent.pop_front() {
            let id = d.buffer_id().unwrap_or(0);
            if id <= self.buf.acked().0 {
                // Dropped (drop_oldest) while waiting: already counted.
                self.outstanding.remove(&id);
                continue;
            }
            match self.a.send(*d) {
                Ok(()) => {}
                Err((e, d)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    self.unsent.push_front(d);
                    self.paused_until = Some(Instant::now() + Duration::from_millis(20));
                    return false;
                }
                Err((e, _)) => {
                    self.outstanding.remove(&id);
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
    fn ack(&mut self, force: bool) {
        let to = self
            .outstanding
            .first()
            .map_or(self.next.saturating_sub(1), |f| f - 1);
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

    fn gauges(&mut self) {
        self.last_gauges = Instant::now();
        let s = self.buf.stats();
        let c = &self.a.metrics.counters;
        c.set(ActionMetric::BufferBytes, s.bytes);
        c.set(ActionMetric::BufferRecords, s.records);
        c.set(ActionMetric::BufferSegments, s.segments);
        c.set(ActionMetric::BufferHeld, self.held.len() as u64);
        c.set(
            ActionMetric::BufferOldestAgeMs,
            s.oldest_unacked_age
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        );
    }
}

#[cfg(test)]
mod tests;
