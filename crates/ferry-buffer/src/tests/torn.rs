//! A torn tail: the last frame cut at every byte offset.

use std::fs;
use std::path::Path;

use super::{open, payload, read_all};
use crate::Id;

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_torn_last_frame_is_truncated_at_every_byte_offset_and_counted() {
    const SEG: u64 = 1024;
    let src = tempfile::tempdir().unwrap();
    let (mut b, _) = open(src.path(), SEG);
    let n = 40;
    for id in 1..=n {
        b.append(&payload(id)).unwrap();
        b.commit().unwrap();
    }
    b.ack(Id(3)).unwrap();
    let segs = b.segment_paths();
    assert!(segs.len() >= 2, "the log spans segments");
    let (last_path, _, end) = segs.last().cloned().unwrap();
    let frame = 16 + payload(n).len() as u64;
    let start = end - frame;
    drop(b);
    let name = last_path.file_name().unwrap();
    for cut in 0..frame {
        for shrink in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(src.path(), dir.path());
            let path = dir.path().join(name);
            let mut bytes = fs::read(&path).unwrap();
            if shrink {
                bytes.truncate((start + cut) as usize);
            } else {
                bytes[(start + cut) as usize..end as usize].fill(0);
            }
            fs::write(&path, &bytes).unwrap();

            let (mut b, rec) = open(dir.path(), SEG);
            let ids: Vec<u64> = read_all(&mut b).iter().map(|r| r.0.0).collect();
            assert_eq!(ids, (4..n).collect::<Vec<_>>(), "cut {cut} shrink {shrink}");
            let records = read_all(&mut b);
            assert!(records.iter().all(|(id, p)| *p == payload(id.0)));
            if cut == 0 {
                assert_eq!((rec.truncated_records, rec.truncated_bytes), (0, 0));
            } else {
                assert_eq!(rec.truncated_records, 1, "cut {cut} shrink {shrink}");
                assert!(rec.truncated_bytes > 0 && rec.truncated_bytes <= cut);
                if cut > 16 {
                    assert_eq!(rec.truncated_bytes, cut, "cut {cut} shrink {shrink}");
                }
            }
            assert_eq!(rec.corrupt_records, 0);
            assert_eq!(rec.records, n - 4);
            // The tail was cut and zeroed: the id is given again, and a reopen is clean.
            assert_eq!(b.append(b"again").unwrap(), Id(n));
            b.commit().unwrap();
            drop(b);
            let (mut b, rec) = open(dir.path(), SEG);
            assert_eq!(rec.truncated_records + rec.truncated_bytes, 0);
            assert_eq!(read_all(&mut b).last(), Some(&(Id(n), b"again".to_vec())));
        }
    }
}

#[test]
fn a_crash_right_after_a_segment_roll_recovers() {
    // The new segment exists (created and preallocated) but nothing reached it, or only a
    // torn part of its first frame: recovery keeps the sealed segment whole.
    for keep in [0usize, 5, 17] {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, _) = open(dir.path(), 200);
        let mut id = 0;
        while b.segments() < 3 {
            id += 1;
            b.append(&payload(id)).unwrap();
            b.commit().unwrap();
        }
        // `id` is the first record of the third segment; tear it.
        let segs = b.segment_paths();
        let (path, first, _) = segs.last().cloned().unwrap();
        assert_eq!(first, id);
        drop(b);
        let mut bytes = fs::read(&path).unwrap();
        let frame = 16 + payload(id).len();
        bytes[keep.min(frame)..frame].fill(0);
        fs::write(&path, &bytes).unwrap();
        let (mut b, rec) = open(dir.path(), 200);
        let ids: Vec<u64> = read_all(&mut b).iter().map(|r| r.0.0).collect();
        assert_eq!(ids, (1..id).collect::<Vec<_>>());
        assert_eq!(rec.truncated_records, u64::from(keep > 0));
        assert_eq!(rec.corrupt_segments, 0);
        assert_eq!(b.append(b"x").unwrap(), Id(id));
    }
}
