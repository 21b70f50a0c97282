mod faults;
mod model;
mod torn;

use std::path::Path;

use crate::io::StdIo;
use crate::{Buffer, Error, Id, Io, Options, Recovery, SyncMode};

pub(crate) fn options(segment_bytes: u64) -> Options {
    Options {
        segment_bytes,
        max_bytes: 1 << 30,
        sync: SyncMode::Never,
    }
}

pub(crate) fn payload(id: u64) -> Vec<u8> {
    let len = (id * 7 % 50) as usize + 1;
    (0..len)
        .map(|i| (id as u8).wrapping_add(i as u8) | 1)
        .collect()
}

pub(crate) fn open(dir: &Path, segment_bytes: u64) -> (Buffer, Recovery) {
    Buffer::open(dir, options(segment_bytes), StdIo).unwrap()
}

pub(crate) fn read_all<I: Io>(buffer: &mut Buffer<I>) -> Vec<(Id, Vec<u8>)> {
    buffer.read_from(Id(0), usize::MAX).unwrap()
}

#[test]
fn appended_records_are_read_back_in_order_after_commit_only() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, rec) = open(dir.path(), 4096);
    assert_eq!(
        rec,
        Recovery {
            segments: 1,
            duration: rec.duration,
            ..Recovery::default()
        }
    );
    for id in 1..=10 {
        assert_eq!(b.append(&payload(id)).unwrap(), Id(id));
    }
    assert!(
        read_all(&mut b).is_empty(),
        "nothing is readable before commit"
    );
    assert_eq!(b.commit().unwrap(), Id(10));
    let all = read_all(&mut b);
    assert_eq!(
        all,
        (1..=10).map(|id| (Id(id), payload(id))).collect::<Vec<_>>()
    );
    assert_eq!(
        b.read_from(Id(4), 3)
            .unwrap()
            .iter()
            .map(|r| r.0.0)
            .collect::<Vec<_>>(),
        [4, 5, 6]
    );
    assert_eq!(b.read_from(Id(7), 100).unwrap().len(), 4);
}

#[test]
fn segments_roll_and_whole_acked_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = open(dir.path(), 256);
    for id in 1..=100 {
        b.append(&payload(id)).unwrap();
        if id % 7 == 0 {
            b.commit().unwrap();
        }
    }
    b.commit().unwrap();
    let segments = b.segments();
    assert!(segments > 10, "{segments}");
    assert_eq!(read_all(&mut b).len(), 100);
    b.ack(Id(50)).unwrap();
    assert!(b.segments() < segments);
    assert_eq!(b.first_unacked(), Some(Id(51)));
    assert_eq!(b.len_records(), 50);
    let left = read_all(&mut b);
    assert_eq!(left.first().map(|r| r.0), Some(Id(51)));
    assert_eq!(left.len(), 50);
    // The cursor never moves backwards.
    b.ack(Id(10)).unwrap();
    assert_eq!(b.acked(), Id(50));
    b.ack(Id(100)).unwrap();
    assert_eq!(b.segments(), 1);
    assert_eq!(b.len_bytes(), 0);
    assert_eq!(b.len_records(), 0);
    drop(b);
    let (mut b, rec) = open(dir.path(), 256);
    assert_eq!(rec.records, 0);
    assert_eq!(b.acked(), Id(100));
    assert_eq!(
        b.append(b"x").unwrap(),
        Id(101),
        "ids continue after everything was acked"
    );
}

#[test]
fn acks_are_capped_at_the_durable_id() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = open(dir.path(), 4096);
    b.append(b"a").unwrap();
    b.commit().unwrap();
    b.append(b"b").unwrap();
    b.ack(Id(1000)).unwrap();
    assert_eq!(b.acked(), Id(1));
    assert_eq!(b.commit().unwrap(), Id(2));
    assert_eq!(read_all(&mut b), vec![(Id(2), b"b".to_vec())]);
}

#[test]
fn reopen_recovers_everything_committed_and_continues_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = open(dir.path(), 300);
    for id in 1..=40 {
        b.append(&payload(id)).unwrap();
    }
    b.commit().unwrap();
    b.ack(Id(5)).unwrap();
    b.append(b"lost: never committed").unwrap();
    drop(b);
    let (mut b, rec) = open(dir.path(), 300);
    assert_eq!(rec.records, 35);
    assert_eq!(rec.truncated_records, 0);
    assert_eq!(b.acked(), Id(5));
    assert_eq!(
        read_all(&mut b),
        (6..=40).map(|id| (Id(id), payload(id))).collect::<Vec<_>>()
    );
    assert_eq!(b.append(b"next").unwrap(), Id(41));
}

#[test]
fn full_is_reported_and_drop_oldest_makes_room() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_bytes: 1024,
        max_bytes: 10 * 116,
        sync: SyncMode::Never,
    };
    let (mut b, _) = Buffer::open(dir.path(), opts, StdIo).unwrap();
    for _ in 0..10 {
        b.append(&[7; 100]).unwrap();
    }
    let err = b.append(&[7; 100]).unwrap_err();
    assert!(err.is_full(), "{err}");
    assert_eq!(
        b.drop_oldest(3).unwrap(),
        0,
        "pending records are not dropped"
    );
    b.commit().unwrap();
    assert_eq!(b.drop_oldest(3).unwrap(), 3);
    assert_eq!(b.len_bytes(), 7 * 116);
    for _ in 0..3 {
        b.append(&[7; 100]).unwrap();
    }
    assert!(b.append(&[7; 100]).unwrap_err().is_full());
    let stats = b.stats();
    assert_eq!(stats.dropped_oldest, 3);
    assert_eq!(stats.rejected_full, 2);
    assert_eq!(stats.appended, 13);
    assert_eq!(b.first_unacked(), Some(Id(4)));
}

#[test]
fn a_record_larger_than_a_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = open(dir.path(), 128);
    assert!(matches!(b.append(&[0; 113]), Err(Error::TooLarge { .. })));
    assert_eq!(b.append(&[1; 112]).unwrap(), Id(1));
    assert_eq!(b.append(&[2; 112]).unwrap(), Id(2));
    b.commit().unwrap();
    assert_eq!(read_all(&mut b).len(), 2);
    assert_eq!(b.segments(), 2);
}

#[test]
fn stats_count_fsyncs_and_report_the_oldest_unacked() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_bytes: 4096,
        max_bytes: 1 << 20,
        sync: SyncMode::Always,
    };
    let (mut b, _) = Buffer::open(dir.path(), opts, StdIo).unwrap();
    let before = b.stats().fsyncs;
    for _ in 0..3 {
        b.append(b"r").unwrap();
        b.append(b"s").unwrap();
        b.commit().unwrap();
    }
    let s = b.stats();
    assert_eq!(s.fsyncs - before, 3, "one fdatasync per commit");
    assert_eq!(s.commits, 3);
    assert_eq!(s.committed, 6);
    assert_eq!(s.records, 6);
    assert_eq!(s.first_unacked, Some(Id(1)));
    assert!(s.oldest_unacked_age.is_some());
    assert!(s.fsync_max >= s.fsync_last);
    b.ack(Id(6)).unwrap();
    let s = b.stats();
    assert_eq!(s.first_unacked, None);
    assert_eq!(s.oldest_unacked_age, None);
    assert_eq!(s.acked_records, 6);
}

#[test]
fn reading_ahead_of_acks_and_rereading_return_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = open(dir.path(), 512);
    for id in 1..=300 {
        b.append(&payload(id)).unwrap();
    }
    b.commit().unwrap();
    let first = b.read_from(Id(1), 100).unwrap();
    let second = b.read_from(Id(101), 100).unwrap();
    assert_eq!(second.first().map(|r| r.0), Some(Id(101)));
    b.ack(Id(60)).unwrap();
    let again = b.read_from(Id(1), 40).unwrap();
    assert_eq!(again, first[60..100].to_vec());
}

#[test]
fn a_corrupt_record_in_a_sealed_segment_is_skipped_to_the_next_segment_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = open(dir.path(), 256);
    for id in 1..=60 {
        b.append(&payload(id)).unwrap();
    }
    b.commit().unwrap();
    let segs = b.segment_paths();
    drop(b);
    let (path, first, _) = &segs[1];
    let next_first = segs[2].1;
    // Flip a payload byte of the segment's second record.
    let mut bytes = std::fs::read(path).unwrap();
    let second = 16 + payload(*first).len() + 16;
    bytes[second] ^= 0xff;
    std::fs::write(path, &bytes).unwrap();
    let (mut b, rec) = open(dir.path(), 256);
    assert_eq!(rec.corrupt_segments, 1);
    assert_eq!(rec.corrupt_records, next_first - first - 1);
    let ids: Vec<u64> = read_all(&mut b).iter().map(|r| r.0.0).collect();
    let expected: Vec<u64> = (1..=60)
        .filter(|&id| id <= *first || id >= next_first)
        .collect();
    assert_eq!(ids, expected);
}
