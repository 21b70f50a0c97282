//! Bench payloads and what the receiving side makes of them: loss, duplicates, out-of-order
//! and latency percentiles, per publisher.
//!
//! A bench payload is JSON `{"c": <publisher index>, "s": <sequence from 1>, "t": <send time,
//! µs since the epoch>, "p": "<padding>"}`, so it survives any rule or template that keeps
//! the payload, including a trip through Kafka.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Builds a payload of at least `size` bytes.
pub fn payload(client: u32, seq: u64, sent_us: i64, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size.max(64));
    write_payload(&mut v, client, seq, sent_us, size);
    v
}

/// Appends a payload of at least `size` bytes to `v` (no allocation once `v` has room).
pub fn write_payload(v: &mut Vec<u8>, client: u32, seq: u64, sent_us: i64, size: usize) {
    let start = v.len();
    v.extend_from_slice(b"{\"c\":");
    push_int(v, u64::from(client));
    v.extend_from_slice(b",\"s\":");
    push_int(v, seq);
    v.extend_from_slice(b",\"t\":");
    push_int(v, sent_us.max(0) as u64);
    v.extend_from_slice(b",\"p\":\"");
    let pad = size.saturating_sub(v.len() - start + 2);
    v.resize(v.len() + pad, b'x');
    v.extend_from_slice(b"\"}");
}

fn push_int(v: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    v.extend_from_slice(&digits[i..]);
}

#[derive(Deserialize)]
struct Stamp {
    c: u32,
    s: u64,
    t: i64,
}

/// Parses a bench payload: (publisher, sequence, send time µs). The fixed prefix that
/// `payload` writes is read directly (cheap per message); anything else goes through JSON.
pub fn parse(payload: &[u8]) -> Option<(u32, u64, i64)> {
    fast_parse(payload).or_else(|| {
        let s: Stamp = serde_json::from_slice(payload).ok()?;
        Some((s.c, s.s, s.t))
    })
}

fn fast_parse(b: &[u8]) -> Option<(u32, u64, i64)> {
    fn num(b: &[u8], key: &[u8]) -> Option<(i64, usize)> {
        let rest = b.strip_prefix(key)?;
        let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 18 {
            return None;
        }
        let v = rest[..n]
            .iter()
            .fold(0i64, |v, d| v * 10 + i64::from(d - b'0'));
        Some((v, key.len() + n))
    }
    let (c, i) = num(b, b"{\"c\":")?;
    let (s, j) = num(&b[i..], b",\"s\":")?;
    let (t, _) = num(&b[i + j..], b",\"t\":")?;
    Some((u32::try_from(c).ok()?, s as u64, t))
}

/// The sequences seen from one publisher: a bitmap for the dense range a bench publisher
/// sends (1, 2, 3, ...), a hash set for anything far outside it.
#[derive(Default)]
struct SeqSet {
    bits: Vec<u64>,
    far: std::collections::HashSet<u64>,
    len: u64,
}

/// Sequences below this are kept in the bitmap (at most 16 MiB of bits).
const DENSE: u64 = 1 << 27;

impl SeqSet {
    /// False if `s` was already there.
    fn insert(&mut self, s: u64) -> bool {
        let new = if s < DENSE {
            let (word, bit) = ((s / 64) as usize, 1u64 << (s % 64));
            if word >= self.bits.len() {
                self.bits.resize((word + 1).next_power_of_two(), 0);
            }
            let new = self.bits[word] & bit == 0;
            self.bits[word] |= bit;
            new
        } else {
            self.far.insert(s)
        };
        self.len += u64::from(new);
        new
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.bits
            .iter()
            .enumerate()
            .flat_map(|(w, &b)| {
                (0..64u64)
                    .filter(move |i| b & (1 << i) != 0)
                    .map(move |i| w as u64 * 64 + i)
            })
            .chain(self.far.iter().copied())
    }
}

#[derive(Default)]
struct PerPublisher {
    seen: SeqSet,
    max_seq: u64,
    out_of_order: u64,
}

/// Collects what a receiver got.
#[derive(Default)]
pub struct Tracker {
    /// By publisher index; the high 32 bits tell subscribers apart after
    /// [`merge_as_subscriber`](Tracker::merge_as_subscriber).
    pubs: HashMap<u64, PerPublisher>,
    latencies_us: Vec<u32>,
    received: u64,
    duplicates: u64,
    unparsable: u64,
    /// When the first and the last message arrived (µs since the epoch; 0: none yet).
    first_us: i64,
    last_us: i64,
}

/// The receiving side's verdict. `expected` is what the publishers said they sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub sent: u64,
    pub received: u64,
    pub unique: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub unparsable: u64,
    pub latency_us: Percentiles,
    pub elapsed_s: f64,
    pub rate_per_s: f64,
    /// When the first and the last message arrived, µs since the epoch (0: none did): a
    /// harness measures its rate from its own start of publishing to `last_us`.
    pub first_us: i64,
    pub last_us: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Percentiles {
    pub p50: u32,
    pub p99: u32,
    pub p999: u32,
    pub max: u32,
}

impl Tracker {
    pub fn record(&mut self, payload: &[u8], now_us: i64) {
        self.received += 1;
        if self.first_us == 0 {
            self.first_us = now_us;
        }
        self.last_us = self.last_us.max(now_us);
        let Some((c, s, t)) = parse(payload) else {
            self.unparsable += 1;
            return;
        };
        let p = self.pubs.entry(u64::from(c)).or_default();
        if !p.seen.insert(s) {
            self.duplicates += 1;
            return;
        }
        if s < p.max_seq {
            p.out_of_order += 1;
        }
        p.max_seq = p.max_seq.max(s);
        self.latencies_us
            .push((now_us - t).clamp(0, i64::from(u32::MAX)) as u32);
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// What the publishers sent, as far as the receiver can tell: the highest sequence of
    /// each (losses at the very end of a stream are invisible this way; pass the real
    /// count when it is known).
    pub fn inferred_sent(&self) -> u64 {
        self.pubs.values().map(|p| p.max_seq).sum()
    }

    /// Adds what another tracker (another subscriber connection) saw.
    pub fn merge(&mut self, other: Tracker) {
        for (c, p) in other.pubs {
            let mine = self.pubs.entry(c).or_default();
            for s in p.seen.iter() {
                if !mine.seen.insert(s) {
                    self.duplicates += 1;
                }
            }
            mine.max_seq = mine.max_seq.max(p.max_seq);
            mine.out_of_order += p.out_of_order;
        }
        self.latencies_us.extend(other.latencies_us);
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.unparsable += other.unparsable;
        if other.first_us != 0 && (self.first_us == 0 || other.first_us < self.first_us) {
            self.first_us = other.first_us;
        }
        self.last_us = self.last_us.max(other.last_us);
    }

    /// Adds what another subscriber of a fan-out saw: each subscriber is to receive every
    /// message, so its copies are its own stream, not duplicates of the others'.
    pub fn merge_as_subscriber(&mut self, mut other: Tracker, subscriber: u32) {
        let tag = (u64::from(subscriber) + 1) << 32;
        other.pubs = std::mem::take(&mut other.pubs)
            .into_iter()
            .map(|(k, p)| (k | tag, p))
            .collect();
        self.merge(other);
    }

    /// `sent`: how many messages the publishers sent in all (sequences 1..=n each).
    pub fn report(&mut self, sent: u64, elapsed_s: f64) -> Report {
        let unique: u64 = self.pubs.values().map(|p| p.seen.len()).sum();
        self.latencies_us.sort_unstable();
        let pct = |q: f64| -> u32 {
            if self.latencies_us.is_empty() {
                return 0;
            }
            let i = ((self.latencies_us.len() as f64 * q).ceil() as usize)
                .clamp(1, self.latencies_us.len())
                - 1;
            self.latencies_us[i]
        };
        Report {
            sent,
            received: self.received,
            unique,
            lost: sent.saturating_sub(unique),
            duplicates: self.duplicates,
            out_of_order: self.pubs.values().map(|p| p.out_of_order).sum(),
            unparsable: self.unparsable,
            latency_us: Percentiles {
                p50: pct(0.5),
                p99: pct(0.99),
                p999: pct(0.999),
                max: self.latencies_us.last().copied().unwrap_or(0),
            },
            elapsed_s,
            rate_per_s: if elapsed_s > 0.0 {
                self.received as f64 / elapsed_s
            } else {
                0.0
            },
            first_us: self.first_us,
            last_us: self.last_us,
        }
    }
}

/// Latencies in µs, to about 1.5%: exact below 128, then 64 buckets per power of two. Fixed
/// size (30 KiB) however long a run lasts; one per publisher or connector, merged at the end.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    n: u64,
    max: u64,
}

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; ((64 - SUB_BITS + 1) as usize) * SUB as usize],
            n: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let shift = e - SUB_BITS;
        ((shift + 1) as usize) * SUB as usize + ((v >> shift) & (SUB - 1)) as usize
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> u64 {
        let (g, sub) = (i as u64 / SUB, i as u64 % SUB);
        if g == 0 {
            return sub;
        }
        let shift = g - 1;
        ((SUB + sub) << shift) + ((1u64 << shift) >> 1)
    }

    pub fn record(&mut self, us: u64) {
        self.counts[Self::index(us)] += 1;
        self.n += 1;
        self.max = self.max.max(us);
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.n += other.n;
        self.max = self.max.max(other.max);
    }

    fn quantile(&self, q: f64) -> u32 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((self.n as f64 * q).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i).min(self.max).min(u64::from(u32::MAX)) as u32;
            }
        }
        self.max.min(u64::from(u32::MAX)) as u32
    }

    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            p50: self.quantile(0.5),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            max: self.max.min(u64::from(u32::MAX)) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_set_counts_each_sequence_once_dense_or_far() {
        let mut s = SeqSet::default();
        for x in [1, 2, 64, 65, 1_000_000, DENSE + 5, u64::MAX] {
            assert!(s.insert(x), "{x} is new");
        }
        for x in [1, 65, 1_000_000, DENSE + 5, u64::MAX] {
            assert!(!s.insert(x), "{x} was there");
        }
        assert_eq!(s.len(), 7);
        let mut all: Vec<u64> = s.iter().collect();
        all.sort_unstable();
        assert_eq!(all, vec![1, 2, 64, 65, 1_000_000, DENSE + 5, u64::MAX]);
    }

    #[test]
    fn histogram_percentiles_are_within_two_percent() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        let p = h.percentiles();
        for (got, want) in [(p.p50, 50_000.0), (p.p99, 99_000.0), (p.p999, 99_900.0)] {
            assert!(
                (f64::from(got) - want).abs() / want < 0.02,
                "{got} vs {want}"
            );
        }
        assert_eq!(p.max, 100_000);
        let mut small = Histogram::default();
        for v in [0, 3, 3, 127] {
            small.record(v);
        }
        assert_eq!(small.percentiles().p50, 3, "exact below 128");
        h.merge(&small);
        assert_eq!(h.len(), 100_004);
        assert_eq!(Histogram::default().percentiles(), Percentiles::default());
        let mut big = Histogram::default();
        big.record(u64::MAX);
        assert_eq!(big.percentiles().p50, u32::MAX);
    }

    #[test]
    fn payloads_are_written_without_formatting_and_parse_back() {
        let mut v = Vec::new();
        write_payload(&mut v, 0, 1, 0, 0);
        assert_eq!(v, br#"{"c":0,"s":1,"t":0,"p":""}"#);
        v.clear();
        write_payload(&mut v, u32::MAX, u64::MAX / 1000, i64::MAX / 1000, 200);
        assert_eq!(v.len(), 200);
        assert_eq!(
            parse(&v),
            Some((u32::MAX, u64::MAX / 1000, i64::MAX / 1000))
        );
    }
}
