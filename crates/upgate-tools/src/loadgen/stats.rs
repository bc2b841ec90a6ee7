//! Counting and summarising: latency percentiles over sorted samples, errors by kind, and the
//! report printed by `upgate bench` (human-readable or one JSON line).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::watch::Usage;

/// The value at quantile `q` (0 < q ≤ 1) of `sorted` (ascending), nearest-rank method: the
/// smallest sample such that at least `q` of all samples are ≤ it. 0 for no samples.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    let rank = (q * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Latency summary, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: u64,
}

impl Latency {
    /// Summarises `samples` (sorts them in place).
    pub fn of(samples: &mut [u64]) -> Latency {
        samples.sort_unstable();
        let sum: u128 = samples.iter().map(|&s| s as u128).sum();
        Latency {
            p50: percentile(samples, 0.50),
            p99: percentile(samples, 0.99),
            max: samples.last().copied().unwrap_or(0),
            mean: if samples.is_empty() {
                0
            } else {
                (sum / samples.len() as u128) as u64
            },
        }
    }
}

/// What one connection's thread measured.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub bytes: u64,
    pub latencies_ns: Vec<u64>,
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    pub fn error(&mut self, key: String) {
        *self.errors.entry(key).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.bytes += other.bytes;
        self.latencies_ns.extend(other.latencies_ns);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_insert(0) += v;
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub label: String,
    pub mode: &'static str,
    pub target: String,
    pub connections: usize,
    pub size: u64,
    /// Requests that succeeded and were verified.
    pub ok: u64,
    /// Body bytes of the successful requests (sent for uploads, received for downloads).
    pub bytes: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub elapsed: Duration,
    pub latency: Latency,
    /// CPU and memory of the watched processes (`--watch-pid`), if any.
    pub usage: Option<Usage>,
}

impl Report {
    pub fn requests_per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Payload megabytes (10^6 bytes) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One JSON object (the `--json` line).
    pub fn to_json(&self) -> serde_json::Value {
        let to_ms = |ns: u64| round3(ns as f64 / 1e6);
        let mut v = serde_json::json!({
            "label": self.label,
            "mode": self.mode,
            "target": self.target,
            "connections": self.connections,
            "size": self.size,
            "ok": self.ok,
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "elapsed_s": round3(self.elapsed.as_secs_f64()),
            "rps": round3(self.requests_per_sec()),
            "mb_s": round3(self.mb_per_sec()),
            "bytes": self.bytes,
            "p50_ms": to_ms(self.latency.p50),
            "p99_ms": to_ms(self.latency.p99),
            "max_ms": to_ms(self.latency.max),
            "mean_ms": to_ms(self.latency.mean),
        });
        if let Some(u) = &self.usage {
            let gib = self.bytes as f64 / (1u64 << 30) as f64;
            v["watched_pids"] = serde_json::json!(u.pids);
            v["rss_peak_kib"] = serde_json::json!(u.rss_peak_kib);
            v["hwm_kib"] = serde_json::json!(u.hwm_kib);
            v["cpu_s"] = serde_json::json!(round3(u.cpu.as_secs_f64()));
            v["cpu_s_per_gib"] = if gib > 0.0 {
                serde_json::json!(round3(u.cpu.as_secs_f64() / gib))
            } else {
                serde_json::Value::Null
            };
        }
        v
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = if self.label.is_empty() {
            String::new()
        } else {
            format!(" [{}]", self.label)
        };
        writeln!(
            f,
            "{} of {} B over {} connection(s) to {}{label}",
            self.mode, self.size, self.connections, self.target
        )?;
        writeln!(
            f,
            "  requests    {} ok, {} errors in {:.2} s",
            self.ok,
            self.errors,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  throughput  {:.1} req/s, {:.1} MB/s",
            self.requests_per_sec(),
            self.mb_per_sec()
        )?;
        write!(
            f,
            "  latency     p50 {}, p99 {}, max {}, mean {}",
            ms(self.latency.p50),
            ms(self.latency.p99),
            ms(self.latency.max),
            ms(self.latency.mean)
        )?;
        if !self.error_kinds.is_empty() {
            let kinds: Vec<String> = self
                .error_kinds
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            write!(f, "\n  errors      {}", kinds.join(", "))?;
        }
        if let Some(u) = &self.usage {
            let gib = self.bytes as f64 / (1u64 << 30) as f64;
            write!(
                f,
                "\n  watched     pids {:?}: peak RSS {:.1} MiB (VmHWM {:.1} MiB), CPU {:.2} s",
                u.pids,
                u.rss_peak_kib as f64 / 1024.0,
                u.hwm_kib as f64 / 1024.0,
                u.cpu.as_secs_f64()
            )?;
            if gib > 0.0 {
                write!(f, " ({:.2} s per GiB)", u.cpu.as_secs_f64() / gib)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.99), 990);
    }

    #[test]
    fn latency_summary() {
        let mut v = vec![5, 1, 4, 2, 3];
        let l = Latency::of(&mut v);
        assert_eq!((l.p50, l.p99, l.max, l.mean), (3, 5, 5, 3));
    }

    #[test]
    fn tallies_merge() {
        let mut a = Tally {
            ok: 2,
            ..Tally::default()
        };
        a.error("timeout".into());
        let mut b = Tally {
            ok: 3,
            ..Tally::default()
        };
        b.error("timeout".into());
        b.error("status_500".into());
        a.merge(b);
        assert_eq!(a.ok, 5);
        assert_eq!(a.errors["timeout"], 2);
        assert_eq!(a.errors["status_500"], 1);
    }
}
