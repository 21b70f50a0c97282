//! Appends/s of 100-byte records with group commit (64 and 512 per fdatasync), recovery of a
//! ~200 MB log, and the cost of trimming (acknowledging) 1M records.
//! Run: `cargo bench -p ferry-buffer`. Temp files go to `$TMPDIR` (the disk under test).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ferry_buffer::{Buffer, Id, Options, StdIo, SyncMode};

const RECORD: [u8; 100] = [0x5a; 100];

fn options(sync: SyncMode) -> Options {
    Options {
        segment_bytes: 64 << 20,
        max_bytes: 64 << 30,
        sync,
    }
}

fn append_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_commit_100B");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for per_commit in [64u64, 512] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut b, _) = Buffer::open(dir.path(), options(SyncMode::Always), StdIo).expect("open");
        let mut batches = 0u64;
        group.throughput(Throughput::Elements(per_commit));
        group.bench_with_input(
            BenchmarkId::from_parameter(per_commit),
            &per_commit,
            |bench, &n| {
                bench.iter(|| {
                    for _ in 0..n {
                        black_box(b.append(&RECORD).expect("append"));
                    }
                    let durable = b.commit().expect("commit");
                    batches += 1;
                    // A reader acknowledging behind the writer, so segments get trimmed.
                    if batches.is_multiple_of(256) {
                        b.ack(Id(durable.0.saturating_sub(10_000))).expect("ack");
                    }
                });
            },
        );
        let s = b.stats();
        eprintln!(
            "  {per_commit}/commit: {} fsyncs, mean fsync {:?}, max {:?}",
            s.fsyncs,
            s.fsync_total / s.fsyncs.max(1) as u32,
            s.fsync_max
        );
    }
    group.finish();
}

/// Writes `records` 100-byte records without syncing (it is only setup).
fn fill(dir: &std::path::Path, records: u64) {
    let (mut b, _) = Buffer::open(dir, options(SyncMode::Never), StdIo).expect("open");
    for i in 0..records {
        b.append(&RECORD).expect("append");
        if i % 4096 == 4095 {
            b.commit().expect("commit");
        }
    }
    b.commit().expect("commit");
}

fn recovery(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let records = 200_000_000 / 116; // ~200 MB of frames
    fill(dir.path(), records);
    let mut group = c.benchmark_group("recovery");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(records * 116));
    group.bench_function("200MB", |bench| {
        bench.iter(|| {
            let (b, rec) =
                Buffer::open(dir.path(), options(SyncMode::Always), StdIo).expect("open");
            assert_eq!(rec.records, records);
            black_box(b)
        });
    });
    group.finish();
}

fn trim() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = options(SyncMode::Always);
    opts.segment_bytes = 8 << 20;
    let (mut b, _) = Buffer::open(dir.path(), opts, StdIo).expect("open");
    let records = 1_000_000u64;
    for i in 0..records {
        b.append(&RECORD).expect("append");
        if i % 4096 == 4095 {
            b.commit().expect("commit");
        }
    }
    let durable = b.commit().expect("commit");
    let segments = b.segments();
    let start = Instant::now();
    b.ack(durable).expect("ack");
    let took = start.elapsed();
    eprintln!(
        "trim: acknowledging {records} records ({segments} segments of 8 MiB deleted) took {took:?}"
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    append_commit(&mut c);
    // `FERRY_BUFFER_BENCH_QUICK=1`: the append figures only.
    if std::env::var_os("FERRY_BUFFER_BENCH_QUICK").is_none() {
        recovery(&mut c);
        trim();
    }
    c.final_summary();
}
