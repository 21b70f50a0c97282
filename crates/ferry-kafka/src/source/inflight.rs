//! Records read and not yet settled, per partition.
//!
//! Kafka orders records per partition only, and a commit is per partition: each
//! partition's records wait in a queue of their own, and a partition's offset moves past
//! its contiguous delivered prefix. A record still waiting for delivery on one partition
//! holds back that partition's commits, never another's.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use ferry_broker::Completion;
use ferry_metrics::{SourceMetric, SourceStats};

/// A topic and partition.
pub(super) type Tp = (String, i32);

pub(super) struct Pending {
    pub(super) offset: i64,
    /// When it was read: delivery latency starts here.
    pub(super) read_at: Instant,
    /// `None`: the record could not be mapped and was skipped.
    pub(super) completion: Option<Arc<Completion>>,
}

impl Pending {
    fn done(&self) -> bool {
        self.completion.as_ref().is_none_or(|c| c.is_done())
    }
}

/// Shared by the read loop and the rebalance callback (one lock, never held across an
/// `.await`).
#[derive(Default)]
pub(super) struct Inflight {
    /// Per partition, in offset order. A partition stays (empty) until it is revoked.
    pending: HashMap<Tp, VecDeque<Pending>>,
    /// Records in `pending`, over all partitions (bounded by `max_inflight`).
    len: usize,
    /// Next offset to commit per partition.
    pub(super) commit: HashMap<Tp, i64>,
}

impl Inflight {
    pub(super) fn push(&mut self, tp: Tp, p: Pending) {
        self.pending.entry(tp).or_default().push_back(p);
        self.len += 1;
    }

    /// Records waiting, over all partitions.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Settles each partition's delivered prefix; returns how many records.
    pub(super) fn settle_prefix(&mut self, metrics: &SourceStats) -> usize {
        let mut n = 0;
        for (tp, q) in &mut self.pending {
            n += settle_front(tp, q, &mut self.commit, metrics);
        }
        self.len -= n;
        n
    }

    /// Records of `of` not delivered yet.
    pub(super) fn undelivered(&self, of: &[Tp]) -> usize {
        of.iter()
            .filter_map(|tp| self.pending.get(tp))
            .map(|q| q.iter().filter(|p| !p.done()).count())
            .sum()
    }

    /// Partitions taken away: settles their delivered prefixes and forgets the rest
    /// (counted `released`: the next owner reads it again). Returns the offsets to commit
    /// for them and the partitions that had records left.
    pub(super) fn release(
        &mut self,
        revoked: &[Tp],
        metrics: &SourceStats,
    ) -> (HashMap<Tp, i64>, Vec<Tp>) {
        let mut stuck = Vec::new();
        for tp in revoked {
            let Some(mut q) = self.pending.remove(tp) else {
                continue;
            };
            let before = q.len();
            settle_front(tp, &mut q, &mut self.commit, metrics);
            if !q.is_empty() {
                metrics.counters.add(SourceMetric::Released, q.len() as u64);
                stuck.push(tp.clone());
            }
            self.len -= before;
        }
        let offsets = revoked
            .iter()
            .filter_map(|tp| self.commit.remove_entry(tp))
            .collect();
        (offsets, stuck)
    }

    /// Forgets every record still waiting (a stop past its drain deadline); returns how many.
    pub(super) fn clear(&mut self) -> usize {
        let left = self.len;
        self.pending.clear();
        self.len = 0;
        left
    }
}

/// Settles the delivered records at the front of one partition's queue. A delivered
/// record's latency is observed here, when it joins the delivered prefix (records settle
/// in offset order, so one slow delivery holds back those behind it on its partition).
fn settle_front(
    tp: &Tp,
    q: &mut VecDeque<Pending>,
    commit: &mut HashMap<Tp, i64>,
    metrics: &SourceStats,
) -> usize {
    let mut n = 0;
    let mut next = None;
    while q.front().is_some_and(Pending::done) {
        if let Some(p) = q.pop_front() {
            if p.completion.is_some() {
                metrics.counters.inc(SourceMetric::Delivered);
                metrics.latency.record(p.read_at.elapsed());
            }
            next = Some(p.offset + 1);
            n += 1;
        }
    }
    if let Some(o) = next {
        match commit.get_mut(tp) {
            Some(c) => *c = o,
            None => {
                commit.insert(tp.clone(), o);
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Arc<SourceStats> {
        ferry_metrics::Registry::new().source("s")
    }

    fn record(offset: i64, delivered: bool) -> Pending {
        Pending {
            offset,
            read_at: Instant::now(),
            // A fresh completion waits for its publisher's hold: never done here.
            completion: (!delivered).then(|| Completion::new(Arc::default())),
        }
    }

    fn tp(p: i32) -> Tp {
        ("t".to_owned(), p)
    }

    #[test]
    fn an_undelivered_record_on_one_partition_does_not_hold_back_another() {
        let m = stats();
        let mut f = Inflight::default();
        // Read interleaved, as a consumer returns them: partition 0's first record is stuck.
        f.push(tp(0), record(10, false));
        f.push(tp(1), record(20, true));
        f.push(tp(0), record(11, true));
        f.push(tp(1), record(21, true));
        f.push(tp(1), record(22, true));
        assert_eq!(f.settle_prefix(&m), 3);
        assert_eq!(f.len(), 2);
        assert_eq!(
            f.commit.get(&tp(1)),
            Some(&23),
            "partition 1 commits past its records"
        );
        assert_eq!(
            f.commit.get(&tp(0)),
            None,
            "partition 0 waits for offset 10"
        );
        assert_eq!(f.undelivered(&[tp(0), tp(1)]), 1);
        // More on partition 1 keeps moving while partition 0 is still stuck.
        f.push(tp(1), record(23, true));
        assert_eq!(f.settle_prefix(&m), 1);
        assert_eq!(f.commit.get(&tp(1)), Some(&24));
        // Revoking partition 0 releases its records (counted) and commits nothing for it.
        let (offsets, stuck) = f.release(&[tp(0)], &m);
        assert!(offsets.is_empty(), "{offsets:?}");
        assert_eq!(stuck, [tp(0)]);
        assert_eq!(m.counters.get(SourceMetric::Released), 2);
        assert_eq!(f.len(), 0);
        assert_eq!(f.commit.get(&tp(1)), Some(&24), "partition 1 is untouched");
    }

    #[test]
    fn a_revoked_partition_commits_its_delivered_prefix() {
        let m = stats();
        let mut f = Inflight::default();
        f.push(tp(0), record(5, true));
        f.push(tp(0), record(6, true));
        f.push(tp(0), record(7, false));
        f.push(tp(0), record(8, true));
        f.push(tp(1), record(1, false));
        let (offsets, stuck) = f.release(&[tp(0)], &m);
        assert_eq!(offsets.get(&tp(0)), Some(&7));
        assert_eq!(stuck, [tp(0)]);
        assert_eq!(m.counters.get(SourceMetric::Released), 2);
        assert_eq!(
            m.counters.get(SourceMetric::Delivered),
            0,
            "5 and 6 were skipped records"
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f.clear(), 1);
        assert_eq!(f.len(), 0);
    }
}
