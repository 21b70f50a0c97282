//! The crash harness: a child process (this test binary re-run in writer mode) appends,
//! commits and acks in a loop and prints every id it was told is durable and every ack that
//! returned; the parent kills it with SIGKILL at random moments (from right at start, during
//! recovery, to well into the run), reopens the buffer and checks that recovery succeeds,
//! that every id printed as durable is there, in order, with its content, and that the ack
//! cursor never moved backwards. Small segments put many kills near segment rolls.

// Test code: an unwrap that fails is a test failure.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_buffer::{Buffer, Id, Options, StdIo, SyncMode};

const CHILD_ENV: &str = "FERRY_BUFFER_CRASH_CHILD";

/// The payload of record `id`: its id, then bytes derived from it, of a length that varies
/// so frames straddle segment ends in every way.
fn payload(id: u64) -> Vec<u8> {
    let len = (id.wrapping_mul(2_654_435_761) % 300) as usize;
    let mut p = id.to_le_bytes().to_vec();
    p.extend((0..len).map(|i| (id as u8).wrapping_mul(3).wrapping_add(i as u8)));
    p
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    (nanos ^ u64::from(std::process::id())) | 1
}

fn options(segment_bytes: u64, sync: SyncMode) -> Options {
    Options {
        segment_bytes,
        max_bytes: 1 << 30,
        sync,
    }
}

/// Writer mode: runs only when the harness starts this binary with the env var set.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let segment_bytes: u64 = std::env::var("SEGMENT_BYTES").unwrap().parse().unwrap();
    let sync = if std::env::var("SYNC").as_deref() == Ok("always") {
        SyncMode::Always
    } else {
        SyncMode::Never
    };
    let (mut b, _) = Buffer::open(&dir, options(segment_bytes, sync), StdIo).unwrap();
    let mut rng = Rng(seed());
    println!("opened");
    loop {
        for _ in 0..=rng.below(40) {
            let id = b.durable().0 + b.pending_records() + 1;
            assert_eq!(b.append(&payload(id)).unwrap(), Id(id));
        }
        let durable = b.commit().unwrap();
        println!("durable {}", durable.0);
        if rng.below(4) == 0 {
            let target = durable.0.saturating_sub(rng.below(100));
            b.ack(Id(target)).unwrap();
            println!("acked {}", b.acked().0);
        }
    }
}

struct Cycle {
    durable: u64,
    acked: u64,
    opened: bool,
}

fn run_child(dir: &Path, segment_bytes: u64, sync: &str, kill_after: Duration) -> Cycle {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env("SEGMENT_BYTES", segment_bytes.to_string())
        .env("SYNC", sync)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(kill_after);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        !status.success(),
        "the child must run until killed: {status:?}\n{out}"
    );
    let mut cycle = Cycle {
        durable: 0,
        acked: 0,
        opened: false,
    };
    // Only whole lines count: the last one may have been cut by the kill.
    let complete = &out[..out.rfind('\n').map_or(0, |i| i + 1)];
    for line in complete.lines() {
        if line.ends_with("opened") {
            cycle.opened = true;
        } else if let Some(id) = line.strip_prefix("durable ") {
            cycle.durable = cycle.durable.max(id.parse().unwrap());
        } else if let Some(id) = line.strip_prefix("acked ") {
            cycle.acked = cycle.acked.max(id.parse().unwrap());
        }
    }
    cycle
}

fn harness(segment_bytes: u64, sync: &str, cycles: usize) {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed();
    let mut rng = Rng(seed);
    let mut durable = 0u64; // the largest id ever reported durable
    let mut acked = 0u64; // the largest ack that ever returned (or the cursor seen)
    let mut killed_running = 0;
    let started = Instant::now();
    for cycle in 0..cycles {
        let kill_after = Duration::from_millis(rng.below(120));
        let c = run_child(dir.path(), segment_bytes, sync, kill_after);
        killed_running += usize::from(c.opened);
        durable = durable.max(c.durable);
        acked = acked.max(c.acked);
        let ctx = format!("seed {seed} cycle {cycle} segment {segment_bytes} sync {sync}");

        let (mut b, rec) = Buffer::open(dir.path(), options(segment_bytes, SyncMode::Never), StdIo)
            .unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
        assert_eq!(rec.corrupt_records, 0, "{ctx}: {rec:?}");
        assert!(rec.truncated_records <= 40, "{ctx}: {rec:?}");
        assert!(
            b.acked().0 >= acked,
            "{ctx}: the ack cursor moved backwards"
        );
        acked = b.acked().0;
        let records = b.read_from(Id(0), usize::MAX).unwrap();
        let mut expect = acked + 1;
        for (id, p) in &records {
            assert_eq!(id.0, expect, "{ctx}: ids are contiguous from the cursor");
            assert_eq!(*p, payload(id.0), "{ctx}: content of {id}");
            expect += 1;
        }
        let last = expect - 1;
        assert!(
            last >= durable,
            "{ctx}: durable id {durable} was lost (log ends at {last}, cursor {acked})"
        );
        // Unacknowledged-but-durable may grow past what was printed (written, not yet
        // reported): later cycles continue from there.
        durable = durable.max(last);
    }
    assert!(
        killed_running >= cycles / 3,
        "most kills should hit a running writer ({killed_running} of {cycles})"
    );
    eprintln!(
        "{cycles} kills ({killed_running} of a running writer), {durable} ids durable, cursor {acked}, {:?}",
        started.elapsed()
    );
    assert!(durable > 1000, "the writers made progress: {durable}");
    assert!(started.elapsed() < Duration::from_secs(40));
}

#[test]
fn kill_9_near_segment_rolls_loses_no_durable_record() {
    harness(1024, "always", 40);
}

#[test]
fn kill_9_with_larger_segments_and_no_sync_loses_no_durable_record() {
    harness(64 << 10, "never", 30);
}
