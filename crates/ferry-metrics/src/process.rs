//! Process metrics read from `/proc/self` at scrape time (Linux; elsewhere none).

use crate::{Sample, SampleKind};

/// Linux reports CPU times and start time in clock ticks; `USER_HZ` is 100 on every
/// architecture Linux supports for user space (`sysconf(_SC_CLK_TCK)`), and reading it
/// would take `libc` for one constant.
const TICKS_PER_SECOND: f64 = 100.0;

pub(crate) fn samples() -> Vec<Sample> {
    let mut out = Vec::new();
    let gauge = |name: &str, help: &str, value: f64| Sample {
        name: name.to_owned(),
        help: help.to_owned(),
        labels: Vec::new(),
        value,
        kind: SampleKind::Gauge,
    };
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // `fields[0]` is field 3 (state) of proc(5).
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        if let (Some(utime), Some(stime)) = (field(14), field(15)) {
            out.push(Sample {
                kind: SampleKind::Counter,
                ..gauge(
                    "process_cpu_seconds_total",
                    "User and system CPU time spent, in seconds.",
                    (utime + stime) as f64 / TICKS_PER_SECOND,
                )
            });
        }
        if let Some(vsize) = field(23) {
            out.push(gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                vsize as f64,
            ));
        }
        if let (Some(start), Some(btime)) = (field(22), boot_time()) {
            out.push(gauge(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds.",
                btime as f64 + start as f64 / TICKS_PER_SECOND,
            ));
        }
    }
    if let Some(kb) = status_kb("VmRSS:") {
        out.push(gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            (kb * 1024) as f64,
        ));
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        out.push(gauge(
            "process_open_fds",
            "Open file descriptors.",
            dir.count() as f64,
        ));
    }
    if let Some(max) = max_fds() {
        out.push(gauge(
            "process_max_fds",
            "Limit of open file descriptors.",
            max as f64,
        ));
    }
    out
}

fn boot_time() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn status_kb(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn max_fds() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Resident memory of this process in bytes (0 where unknown).
pub fn resident_bytes() -> u64 {
    status_kb("VmRSS:").map_or(0, |kb| kb * 1024)
}
