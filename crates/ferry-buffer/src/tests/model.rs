//! A model-based property test: random sequences of append, commit, read, ack, drop,
//! reopen and crash against a `VecDeque` model, checking every invariant after each step.

use std::collections::VecDeque;

use proptest::prelude::*;

use crate::io::StdIo;
use crate::{Buffer, Id, Options, SyncMode};

#[derive(Clone, Debug)]
enum Op {
    Append(u8),
    Commit,
    Read {
        skip: u8,
        max: u8,
    },
    Ack(u8),
    DropOldest(u8),
    Discard,
    Reopen,
    /// A crash mid-commit: this many bytes of the pending batch reach the disk.
    Crash(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => any::<u8>().prop_map(Op::Append),
        3 => Just(Op::Commit),
        2 => (any::<u8>(), 1..40u8).prop_map(|(skip, max)| Op::Read { skip: skip % 32, max }),
        2 => (0..30u8).prop_map(Op::Ack),
        1 => (0..10u8).prop_map(Op::DropOldest),
        1 => Just(Op::Discard),
        1 => Just(Op::Reopen),
        1 => any::<u16>().prop_map(Op::Crash),
    ]
}

fn body(id: u64, len: u8) -> Vec<u8> {
    (0..len).map(|i| (id as u8) ^ i.wrapping_mul(31)).collect()
}

#[derive(Default)]
struct Model {
    durable: VecDeque<(u64, Vec<u8>)>,
    pending: Vec<(u64, Vec<u8>)>,
    last_durable: u64,
    acked: u64,
}

impl Model {
    fn bytes(&self) -> u64 {
        self.durable
            .iter()
            .chain(&self.pending)
            .map(|(_, p)| 16 + p.len() as u64)
            .sum()
    }

    fn advance(&mut self, target: u64) -> u64 {
        let target = target.min(self.last_durable);
        let mut n = 0;
        if target > self.acked {
            self.acked = target;
            while self.durable.front().is_some_and(|(id, _)| *id <= target) {
                self.durable.pop_front();
                n += 1;
            }
        }
        n
    }

    fn next_id(&self) -> u64 {
        self.pending
            .last()
            .map_or(self.last_durable.max(self.acked) + 1, |(id, _)| id + 1)
    }
}

fn check(b: &mut Buffer, m: &Model) {
    b.check_invariants();
    assert_eq!(b.durable(), Id(m.last_durable.max(m.acked)));
    assert_eq!(b.acked(), Id(m.acked));
    assert_eq!(b.len_records(), m.durable.len() as u64);
    assert_eq!(b.pending_records(), m.pending.len() as u64);
    assert_eq!(b.len_bytes(), m.bytes());
    assert_eq!(b.first_unacked(), m.durable.front().map(|(id, _)| Id(*id)));
    let all = b.read_from(Id(0), usize::MAX).unwrap();
    let want: Vec<_> = m
        .durable
        .iter()
        .map(|(id, p)| (Id(*id), p.clone()))
        .collect();
    assert_eq!(all, want);
}

fn run(ops: Vec<Op>, segment_bytes: u64, max_bytes: u64) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        segment_bytes,
        max_bytes,
        sync: SyncMode::Never,
    };
    let (mut b, _) = Buffer::open(dir.path(), options.clone(), StdIo).unwrap();
    let mut m = Model::default();
    for op in ops {
        match op {
            Op::Append(len) => {
                let id = m.next_id();
                let p = body(id, len);
                let frame = 16 + p.len() as u64;
                match b.append(&p) {
                    Ok(got) => {
                        assert!(m.bytes() + frame <= max_bytes);
                        assert_eq!(got, Id(id));
                        m.pending.push((id, p));
                    }
                    Err(e) => {
                        assert!(e.is_full(), "{e}");
                        assert!(m.bytes() + frame > max_bytes);
                    }
                }
            }
            Op::Commit => {
                let durable = b.commit().unwrap();
                if let Some((id, _)) = m.pending.last() {
                    m.last_durable = *id;
                }
                m.durable.extend(m.pending.drain(..));
                assert_eq!(durable, Id(m.last_durable.max(m.acked)));
            }
            Op::Read { skip, max } => {
                let from = m.acked + 1 + u64::from(skip);
                let got = b.read_from(Id(from), usize::from(max)).unwrap();
                let want: Vec<_> = m
                    .durable
                    .iter()
                    .filter(|(id, _)| *id >= from)
                    .take(usize::from(max))
                    .map(|(id, p)| (Id(*id), p.clone()))
                    .collect();
                assert_eq!(got, want);
            }
            Op::Ack(k) => {
                let target = m.acked + u64::from(k);
                b.ack(Id(target)).unwrap();
                m.advance(target);
            }
            Op::DropOldest(n) => {
                let dropped = b.drop_oldest(u64::from(n)).unwrap();
                assert_eq!(dropped, m.advance(m.acked + u64::from(n)));
            }
            Op::Discard => {
                assert_eq!(b.discard_pending(), m.pending.len() as u64);
                m.pending.clear();
            }
            Op::Reopen => {
                drop(b);
                let (nb, rec) = Buffer::open(dir.path(), options.clone(), StdIo).unwrap();
                b = nb;
                assert_eq!(rec.records, m.durable.len() as u64);
                assert_eq!(rec.truncated_records + rec.corrupt_records, 0);
                m.pending.clear();
            }
            Op::Crash(keep) => {
                let whole = b.crash_mid_commit(usize::from(keep)).unwrap();
                drop(b);
                let (nb, rec) = Buffer::open(dir.path(), options.clone(), StdIo).unwrap();
                b = nb;
                let survivors: Vec<_> = m.pending.drain(..).take(whole as usize).collect();
                if let Some((id, _)) = survivors.last() {
                    m.last_durable = *id;
                }
                m.durable.extend(survivors);
                assert_eq!(rec.records, m.durable.len() as u64);
                assert!(rec.truncated_records <= 1, "{rec:?}");
                assert!(rec.truncated_bytes <= u64::from(keep));
                assert_eq!(rec.corrupt_records, 0);
            }
        }
        check(&mut b, &m);
    }
    // Finally everything durable survives a last reopen.
    drop(b);
    let (mut b, _) = Buffer::open(dir.path(), options, StdIo).unwrap();
    m.pending.clear();
    check(&mut b, &m);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_buffer_behaves_like_a_queue_through_crashes_and_reopens(
        ops in proptest::collection::vec(op(), 1..80),
        segment_bytes in prop_oneof![Just(300u64), Just(700), Just(4096)],
        max_bytes in prop_oneof![Just(2_000u64), Just(1 << 20)],
    ) {
        run(ops, segment_bytes, max_bytes);
    }
}
