//! Lock-free storage of one scope's metrics: one `AtomicU64` per enum variant.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::names::{Kind, MetricSet};

/// The values of every metric of `M`, indexed by the enum. Relaxed atomics: they are read
/// for reporting only, and each is independent.
pub struct Counters<M: MetricSet> {
    values: Box<[AtomicU64]>,
    _m: PhantomData<M>,
}

impl<M: MetricSet> Default for Counters<M> {
    fn default() -> Self {
        Counters {
            values: M::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            _m: PhantomData,
        }
    }
}

impl<M: MetricSet> std::fmt::Debug for Counters<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(M::ALL.iter().map(|m| (m.def().json, self.get(*m))))
            .finish()
    }
}

impl<M: MetricSet> Counters<M> {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    fn cell(&self, m: M) -> Option<&AtomicU64> {
        self.values.get(m.index())
    }

    /// Adds one; returns the new value (for "log every power of two" warnings).
    #[inline]
    pub fn inc(&self, m: M) -> u64 {
        self.add(m, 1)
    }

    /// Adds `n`; returns the new value.
    #[inline]
    pub fn add(&self, m: M, n: u64) -> u64 {
        self.cell(m)
            .map_or(0, |c| c.fetch_add(n, Ordering::Relaxed).wrapping_add(n))
    }

    /// Sets a gauge.
    #[inline]
    pub fn set(&self, m: M, v: u64) {
        if let Some(c) = self.cell(m) {
            c.store(v, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn get(&self, m: M) -> u64 {
        self.cell(m).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The value of a derived gauge (`plus − minus`, never below 0).
    pub fn derived(&self, d: &crate::names::Derived<M>) -> u64 {
        let sum = |ms: &[M]| {
            ms.iter()
                .map(|m| self.get(*m))
                .fold(0u64, u64::wrapping_add)
        };
        sum(d.plus).saturating_sub(sum(d.minus))
    }

    /// Zeroes the counters. Gauges, and the paired counters behind derived gauges (queue
    /// depth, in flight), keep their values: they describe the present, not a history.
    pub fn reset(&self) {
        for m in M::ALL {
            let paired = M::DERIVED
                .iter()
                .any(|d| d.plus.contains(m) || d.minus.contains(m));
            if m.def().kind == Kind::Counter && !paired {
                self.set(*m, 0);
            }
        }
    }

    /// Every metric, derived gauge and total by its EMQX JSON name.
    pub fn json(&self) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = M::ALL
            .iter()
            .map(|m| (m.def().json.to_owned(), self.get(*m)))
            .collect();
        for d in M::DERIVED {
            out.insert(d.json.to_owned(), self.derived(d));
        }
        for t in M::TOTALS {
            let v =
                t.of.iter()
                    .map(|m| self.get(*m))
                    .fold(0u64, u64::wrapping_add);
            out.insert(t.json.to_owned(), v);
        }
        out
    }
}
