//! Disk and hybrid modes of a producer action (`buffer_mode = "disk" | "hybrid"`):
//! render → buffer → driver.
//!
//! `KafkaAction::run` renders the record as in memory mode and hands it to the action's
//! buffer thread through a bounded hand-over ([`DiskHandle`]). That thread ([`Driver`]) owns
//! the [`ferry_buffer::Buffer`] (in `[node] data_dir`/buffer/NAME) and:
//! - hybrid mode: keeps a record in memory, acknowledged at once, while fewer than
//!   `buffer_memory_bytes` wait in memory and nothing waits on disk (so records reach
//!   Kafka in arrival order); otherwise it goes to disk as below. A graceful stop writes
//!   what is still in memory to disk (records librdkafka had are purged back first);
//! - encodes ([`encode`]) and appends what arrived since its last turn and group-commits it
//!   (one write, one `fdatasync`), then completes each waiting
//!   [`DurableAck`](ferry_broker::DurableAck): Ok once committed, `NotDurable{0x80}` when
//!   the commit failed (the batch is discarded, the device sends again);
//! - applies `when_full` when the buffer is at `buffer_max_bytes`: drop the oldest records
//!   (counted, the new record is stored), drop the new one (counted, the publisher still
//!   gets a success), or hold it (`backpressure`): held records wait in memory, in order,
//!   until acknowledgements free room; while any is held the hand-over says so
//!   ([`DiskHandle::pressing`]) and each new record's acknowledgement *holds* its
//!   publisher: the connection stops reading (QoS 0 included) until the record is stored,
//!   so TCP pushes back on the devices. Past [`HELD`] held records a PUBLISH is refused
//!   with 0x97 (counted). Nothing is dropped;
//! - is the driver: takes durable records in id order (from memory when it has just
//!   written them, else read back from disk), produces them with librdkafka (at most
//!   [`WINDOW`] records and half the buffer's bytes, at most [`INFLIGHT_BYTES`],
//!   outstanding, so a full buffer's `when_full` applies to records still on disk), takes delivery reports back through the same channel and
//!   acknowledges the buffer's contiguous prefix of delivered ids (reports may come out of
//!   order); a retryable failure is sent again after `retry_backoff`, without limit: the
//!   record is only given up on for errors sending cannot fix (counted as `failed`).
//!
//! At start the buffer's recovery runs on this thread and everything unacknowledged is
//! sent again (`resent`): a record whose delivery report was lost in a crash reaches Kafka
//! twice. Kafka sees records in id order, except after a failed send (a retry goes after
//! records already in flight).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferry_broker::NotDurable;
use ferry_buffer::{Buffer, Id, Io, Options, StdIo, SyncMode};
use ferry_metrics::ActionMetric;
use ferry_mqtt::reason;
use rdkafka::error::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use crate::config::WhenFull;
use crate::producer::{Delivery, KafkaAction, Record};

mod driver;
mod record;

use driver::Driver;
pub use record::{decode, encode, encode_into, stored_len};

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
/// Bytes of records read from the buffer and not yet delivered, at most (and at most half
/// of `buffer_max_bytes`).
pub const INFLIGHT_BYTES: u64 = 16 << 20;
/// Bytes of just-written records kept to be sent without reading them back from disk.
pub const CACHE_BYTES: u64 = 8 << 20;
/// How long a stopping driver lets in-flight records land.
pub const DRAIN: Duration = Duration::from_secs(3);

pub type AckTx = ferry_broker::AckSender;

/// What the buffer thread receives.
pub enum Msg {
    /// A rendered record; `ack` for a publisher waiting for it (QoS 1/2, or held).
    Append {
        record: Record,
        received_ms: i64,
        ack: Option<AckTx>,
    },
    /// Kafka acknowledged the record with this buffer id (or it failed for good).
    Done(u64),
    /// Hybrid: a record kept in memory (of this stored size) was delivered or failed.
    MemDone(u64),
    /// A retryable failure: send it again.
    Retry(Box<Delivery>),
}

/// The sending side, held by the action and by its delivery-report context.
#[derive(Clone)]
pub struct DiskHandle {
    pub tx: Sender<Msg>,
    queued: Arc<AtomicUsize>,
    /// `backpressure`: records are held for room (new ones hold their publishers).
    pressing: Arc<AtomicBool>,
    /// Hybrid: new records go to memory (their publishers need not wait for the thread).
    in_memory: Arc<AtomicBool>,
}

impl DiskHandle {
    pub fn new() -> (DiskHandle, Receiver<Msg>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (
            DiskHandle {
                tx,
                queued: Arc::default(),
                pressing: Arc::default(),
                in_memory: Arc::default(),
            },
            rx,
        )
    }

    /// Hands a record over; gives the ack back when the thread is [`HANDOVER`] behind.
    pub fn append(
        &self,
        record: Record,
        received_ms: i64,
        ack: Option<AckTx>,
    ) -> Result<(), Option<AckTx>> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= HANDOVER {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(ack);
        }
        self.tx
            .send(Msg::Append {
                record,
                received_ms,
                ack,
            })
            .map_err(|e| {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                match e.0 {
                    Msg::Append { ack, .. } => ack,
                    _ => None,
                }
            })
    }

    /// Is the buffer full and holding records for room (`when_full = "backpressure"`)?
    pub fn pressing(&self) -> bool {
        self.pressing.load(Ordering::Relaxed)
    }

    /// Hybrid: do records go to memory now (with room to spare)? Then a publisher is
    /// acknowledged without waiting for the buffer thread; should the record go to disk
    /// after all, it is only kept more safely than promised.
    pub fn in_memory(&self) -> bool {
        self.in_memory.load(Ordering::Relaxed)
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
) -> Option<std::thread::JoinHandle<()>> {
    let name = format!("ferry-buf-{}", a.short_name());
    let spawned = std::thread::Builder::new()
        .name(name.chars().take(15).collect())
        .spawn(move || run(a, handle, rx, dir, stop));
    spawned
        .map_err(|e| tracing::error!("cannot start a disk buffer thread: {e}"))
        .ok()
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

#[cfg(test)]
mod tests;
