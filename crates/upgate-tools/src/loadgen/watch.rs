//! Watches other processes during a run (`--watch-pid`): resident memory sampled every 50 ms
//! (peak of the sum over the pids, plus the kernel's own `VmHWM` at the end) and CPU time
//! (`utime + stime` from `/proc/PID/stat`, all threads) spent between start and stop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the watched processes used during the run.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub pids: Vec<u32>,
    /// Highest sampled sum of `VmRSS`, KiB.
    pub rss_peak_kib: u64,
    /// Sum of `VmHWM` (each process's peak RSS since it started), KiB, read at the end.
    pub hwm_kib: u64,
    /// CPU time (user + system) spent during the run.
    pub cpu: Duration,
}

/// A running sampler; `finish` stops it and returns the usage.
pub struct Watcher {
    pids: Vec<u32>,
    cpu_start: Duration,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: Option<JoinHandle<()>>,
}

impl Watcher {
    pub fn start(pids: &[u32]) -> Watcher {
        let pids = pids.to_vec();
        let peak = Arc::new(AtomicU64::new(rss_kib(&pids, "VmRSS:")));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (pids, peak, stop) = (pids.clone(), peak.clone(), stop.clone());
            std::thread::Builder::new()
                .name("bench-watch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        peak.fetch_max(rss_kib(&pids, "VmRSS:"), Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(50));
                    }
                })
                .ok()
        };
        Watcher {
            cpu_start: cpu_time(&pids),
            pids,
            peak,
            stop,
            sampler,
        }
    }

    pub fn finish(mut self) -> Usage {
        self.peak
            .fetch_max(rss_kib(&self.pids, "VmRSS:"), Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.sampler.take() {
            let _ = t.join();
        }
        Usage {
            pids: self.pids.clone(),
            rss_peak_kib: self.peak.load(Ordering::Relaxed),
            hwm_kib: rss_kib(&self.pids, "VmHWM:"),
            cpu: cpu_time(&self.pids).saturating_sub(self.cpu_start),
        }
    }
}

/// Sum over `pids` of a `/proc/PID/status` field given in kB.
fn rss_kib(pids: &[u32], field: &str) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| {
            status.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l[field.len()..]
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
        })
        .sum()
}

/// Sum over `pids` of utime + stime.
fn cpu_time(pids: &[u32]) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let total: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| parse_cpu_ticks(&stat))
        .sum();
    Duration::from_secs_f64(total as f64 / ticks)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line; the command name (field 2) is
/// in parentheses and may contain spaces, so fields are counted after its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 is the first after ')'
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        let line = "1234 (a b) c) S 1 2 3 4 5 6 7 8 9 10 111 222 0 0 20 0 3 0 100 200 300";
        assert_eq!(parse_cpu_ticks(line), Some(333));
    }

    #[test]
    fn watches_itself() {
        let me = std::process::id();
        let w = Watcher::start(&[me]);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let u = w.finish();
        assert!(u.rss_peak_kib > 0 && u.hwm_kib >= u.rss_peak_kib / 2);
        assert_eq!(u.pids, vec![me]);
    }
}
