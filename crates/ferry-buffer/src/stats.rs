use std::time::Duration;

use crate::Id;

/// What [`crate::Buffer::open`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Unacknowledged records recovered.
    pub records: u64,
    /// Segment files kept.
    pub segments: u64,
    /// Records lost from a torn tail of the last segment (never reported durable).
    pub truncated_records: u64,
    /// Bytes of that torn tail.
    pub truncated_bytes: u64,
    /// Unacknowledged records skipped because a sealed segment was corrupt before them.
    pub corrupt_records: u64,
    /// Sealed segments found corrupt (an invalid frame, or records missing before the
    /// next segment).
    pub corrupt_segments: u64,
    /// Fully acknowledged segments left by a crash between the cursor store and their
    /// deletion, deleted now.
    pub removed_segments: u64,
    /// How long recovery took.
    pub duration: Duration,
}

/// A snapshot of the buffer's gauges and counters, for the metrics registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of unacknowledged records (frames, durable and pending): what `max_bytes` bounds.
    pub bytes: u64,
    /// Bytes the segment files take on disk (they are preallocated).
    pub disk_bytes: u64,
    /// Unacknowledged durable records.
    pub records: u64,
    /// Records appended but not committed yet.
    pub pending_records: u64,
    /// Segment files.
    pub segments: u64,
    /// The last durable id (0: none yet).
    pub durable: Id,
    /// The ack cursor.
    pub acked: Id,
    /// The oldest unacknowledged durable record, if any.
    pub first_unacked: Option<Id>,
    /// How long ago it became durable (to within 64 records; for records recovered at
    /// start, since the start).
    pub oldest_unacked_age: Option<Duration>,
    /// Records appended (counted at `append`).
    pub appended: u64,
    /// Records made durable by commits.
    pub committed: u64,
    /// Records acknowledged by `ack`.
    pub acked_records: u64,
    /// Records dropped by `drop_oldest`.
    pub dropped_oldest: u64,
    /// Appends refused with [`crate::Error::Full`].
    pub rejected_full: u64,
    /// Pending records thrown away by `discard_pending`.
    pub discarded_pending: u64,
    /// Commits that wrote something.
    pub commits: u64,
    /// Failed file operations.
    pub io_errors: u64,
    /// `fdatasync`/`fsync` calls (commits, segment creation, cursor stores).
    pub fsyncs: u64,
    /// Their total duration.
    pub fsync_total: Duration,
    /// The last one's duration.
    pub fsync_last: Duration,
    /// The longest one.
    pub fsync_max: Duration,
    /// What the last open recovered.
    pub recovery: Recovery,
}
