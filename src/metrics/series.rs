//! The three kinds of series: lock-free counters, gauges and fixed-bucket histograms.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A monotonically increasing count.
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

impl Default for Counter {
    fn default() -> Self {
        Counter::new()
    }
}

/// A value that goes up and down.
pub struct Gauge(AtomicI64);

impl Gauge {
    pub const fn new() -> Self {
        Gauge(AtomicI64::new(0))
    }

    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Relaxed);
    }

    pub fn set(&self, v: i64) {
        self.0.store(v, Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

impl Default for Gauge {
    fn default() -> Self {
        Gauge::new()
    }
}

/// Most buckets a histogram may have (its `+Inf` bucket not counted).
const MAX_BUCKETS: usize = 24;

/// A histogram with fixed upper bounds, in integer units (bytes, microseconds); `scale` turns
/// units into the exported base unit (1 for bytes, 1e6 for seconds).
pub struct Histogram {
    pub(super) bounds: &'static [u64],
    pub(super) scale: f64,
    /// Non-cumulative: `buckets[i]` counts observations in `(bounds[i-1], bounds[i]]`; the last
    /// used slot (`bounds.len()`) counts those above every bound.
    pub(super) buckets: [AtomicU64; MAX_BUCKETS + 1],
    count: AtomicU64,
    sum: AtomicU64,
}

impl Histogram {
    pub const fn new(bounds: &'static [u64], scale: f64) -> Self {
        assert!(bounds.len() <= MAX_BUCKETS);
        Histogram {
            bounds,
            scale,
            buckets: [const { AtomicU64::new(0) }; MAX_BUCKETS + 1],
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: u64) {
        let i = self.bounds.partition_point(|&b| b < v);
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum.fetch_add(v, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_micros().min(u64::MAX as u128) as u64);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// Sum of observations in base units.
    pub fn sum(&self) -> f64 {
        self.sum.load(Relaxed) as f64 / self.scale
    }
}
