//! Failure injection: a disk full or an I/O error in a commit or an ack leaves the buffer
//! consistent, and it works again when the disk does.

use super::{payload, read_all};
use crate::io::{EIO, ENOSPC};
use crate::{Buffer, FaultyIo, Id, Options, SyncMode};

fn opts(segment_bytes: u64) -> Options {
    Options {
        segment_bytes,
        max_bytes: 1 << 20,
        sync: SyncMode::Always,
    }
}

fn ids<I: crate::Io>(b: &mut Buffer<I>) -> Vec<u64> {
    read_all(b).iter().map(|r| r.0.0).collect()
}

#[test]
fn a_failed_write_reports_nothing_durable_and_the_retry_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (io, faults) = FaultyIo::new();
    let (mut b, _) = Buffer::open(dir.path(), opts(4096), io).unwrap();
    for id in 1..=5 {
        b.append(&payload(id)).unwrap();
    }
    b.commit().unwrap();
    for id in 6..=10 {
        b.append(&payload(id)).unwrap();
    }
    faults.fail_nth_write(1, ENOSPC);
    let err = b.commit().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(ENOSPC));
    assert_eq!(b.durable(), Id(5));
    assert_eq!(
        ids(&mut b),
        [1, 2, 3, 4, 5],
        "the torn batch is not readable"
    );
    assert_eq!(b.commit().unwrap(), Id(10), "the retry rewrites the batch");
    assert_eq!(ids(&mut b), (1..=10).collect::<Vec<_>>());
    assert_eq!(b.stats().io_errors, 1);
    drop(b);
    let (mut b, rec) = Buffer::open(dir.path(), opts(4096), FaultyIo::new().0).unwrap();
    assert_eq!(rec.truncated_records, 0);
    assert_eq!(
        read_all(&mut b),
        (1..=10).map(|id| (Id(id), payload(id))).collect::<Vec<_>>()
    );
}

#[test]
fn a_failed_sync_is_retried_with_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let (io, faults) = FaultyIo::new();
    let (mut b, _) = Buffer::open(dir.path(), opts(4096), io).unwrap();
    b.append(b"one").unwrap();
    faults.fail_nth_sync(1, EIO);
    assert_eq!(b.commit().unwrap_err().raw_os_error(), Some(EIO));
    let writes = faults.writes();
    assert_eq!(b.durable(), Id(0));
    assert_eq!(b.commit().unwrap(), Id(1));
    assert_eq!(
        faults.writes(),
        writes + 1,
        "the data is written again before the next sync"
    );
}

#[test]
fn a_disk_full_at_a_segment_roll_and_a_crash_afterwards_lose_nothing_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (io, faults) = FaultyIo::new();
    let (mut b, _) = Buffer::open(dir.path(), opts(256), io).unwrap();
    let mut id = 0;
    while b.segments() < 2 {
        id += 1;
        b.append(&payload(id)).unwrap();
        b.commit().unwrap();
    }
    let durable = b.durable();
    faults.set_disk_full(true);
    let mut failed = 0;
    for _ in 0..30 {
        id += 1;
        b.append(&payload(id)).unwrap();
        if b.commit().is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 30);
    assert_eq!(b.durable(), durable);
    assert!(b.ack(durable).is_err(), "a cursor store fails too");
    assert_eq!(b.acked(), Id(0));
    // The caller gives up on the pending records (drop_newest), then the disk recovers.
    assert_eq!(b.discard_pending(), 30);
    faults.set_disk_full(false);
    let next = b.append(b"after").unwrap();
    assert_eq!(next, Id(durable.0 + 1));
    assert_eq!(b.commit().unwrap(), next);
    drop(b);
    let (mut b, rec) = Buffer::open(dir.path(), opts(256), FaultyIo::new().0).unwrap();
    assert_eq!(rec.corrupt_records, 0);
    let mut want: Vec<u64> = (1..=durable.0).collect();
    want.push(next.0);
    assert_eq!(ids(&mut b), want);
}

#[test]
fn every_single_io_failure_in_a_workload_leaves_a_recoverable_buffer() {
    // Fail the nth write (or sync) for every n the workload reaches; after each failure
    // retry, reopen and check that every id ever reported durable is there.
    for sync in [false, true] {
        for n in 1..40 {
            let dir = tempfile::tempdir().unwrap();
            let (io, faults) = FaultyIo::new();
            let (mut b, _) = Buffer::open(dir.path(), opts(200), io).unwrap();
            if sync {
                faults.fail_nth_sync(n, EIO);
            } else {
                faults.fail_nth_write(n, ENOSPC);
            }
            let mut durable = Id(0);
            let mut acked = Id(0);
            for id in 1..=60u64 {
                b.append(&payload(id)).unwrap();
                if id % 3 == 0 {
                    match b.commit() {
                        Ok(d) => durable = d,
                        Err(_) => durable = b.commit().unwrap(),
                    }
                }
                if id % 10 == 0 && b.ack(Id(id - 5)).is_ok() {
                    acked = b.acked();
                }
            }
            drop(b);
            let (mut b, rec) = Buffer::open(dir.path(), opts(200), FaultyIo::new().0).unwrap();
            assert_eq!(rec.corrupt_records, 0, "n {n} sync {sync}");
            assert!(b.acked() >= acked);
            let got = read_all(&mut b);
            let want: Vec<_> = (b.acked().0 + 1..=durable.0)
                .map(|id| (Id(id), payload(id)))
                .collect();
            assert_eq!(got, want, "n {n} sync {sync}");
        }
    }
}
