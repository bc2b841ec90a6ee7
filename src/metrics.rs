//! Process-global metrics: counters, gauges and fixed-bucket histograms on plain atomics,
//! rendered as Prometheus text (`GET /metrics`). No registry, no allocation on the hot path:
//! every series is a field of [`METRICS`], and every label value comes from a closed enum, so
//! the set of series is fixed at compile time and each one is exported from the start (at 0).
//!
//! Instrumentation is one call per event ([`request_done`], [`timeout`], [`callback_done`], …);
//! the reference of every series is in `docs/operations.md`.

use crate::error::Blame;
use std::fmt::Write as _;
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
    bounds: &'static [u64],
    scale: f64,
    /// Non-cumulative: `buckets[i]` counts observations in `(bounds[i-1], bounds[i]]`; the last
    /// used slot (`bounds.len()`) counts those above every bound.
    buckets: [AtomicU64; MAX_BUCKETS + 1],
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

/// Upload sizes: 1 KiB … 16 GiB, ×4 per bucket.
const SIZE_BOUNDS: &[u64] = &[
    1 << 10,
    1 << 12,
    1 << 14,
    1 << 16,
    1 << 18,
    1 << 20,
    1 << 22,
    1 << 24,
    1 << 26,
    1 << 28,
    1 << 30,
    1 << 32,
    1 << 34,
];

/// Callback latencies in microseconds: 1 ms … 30 s.
const LATENCY_BOUNDS: &[u64] = &[
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

/// Declares a closed label set: an enum, its `ALL` list and its label values.
macro_rules! labels {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $v),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            pub const COUNT: usize = [$($s),+].len();
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }
    };
}

labels! {
    /// What a request was routed to (`route` label).
    Route {
        Healthz => "healthz",
        Readyz => "readyz",
        Metrics => "metrics",
        Register => "register",
        Upload => "upload",
        Download => "download",
        /// Unknown paths, wrong methods, unsupported expectations.
        Other => "other",
        /// No head was parsed: protocol errors and head timeouts.
        None => "none",
    }
}

labels! {
    /// Which callback (`callback` label).
    CallbackKind {
        Pre => "pre",
        Post => "post",
        /// A post-callback retried by the outbox sender.
        Retry => "retry",
    }
}

labels! {
    /// How a callback ended (`outcome` label).
    CallbackOutcome {
        /// Pre: the app accepted. Post: the app answered 2xx.
        Ok => "ok",
        /// Pre only: the app said no (`success` false, or a 4xx).
        Vetoed => "vetoed",
        /// No answer within `callback_timeout_ms`.
        Timeout => "timeout",
        /// Connection failed or refused, 3xx/5xx, an unparsable answer.
        Error => "error",
    }
}

labels! {
    /// Which timer fired (`kind` label).
    TimeoutKind {
        Header => "header",
        Body => "body",
        Keepalive => "keepalive",
        /// The peer stopped reading a response.
        Write => "write",
    }
}

labels! {
    /// How body bytes reached the file (`path` label).
    BodyPath {
        /// socket → pipe → file without entering user space.
        Splice => "splice",
        /// socket → registered (fixed) buffer → file: `READ_FIXED`, then `WRITE_FIXED`.
        Fixed => "fixed",
        /// Through the connection's read buffer (bytes read with the head; plain reads when
        /// the registered buffers are unavailable).
        Buffered => "buffered",
    }
}

impl CallbackOutcome {
    /// The label of a pre-callback decision.
    pub fn of_pre(decision: &Result<(), crate::callback::Veto>) -> CallbackOutcome {
        use crate::callback::Veto;
        match decision {
            Ok(()) => CallbackOutcome::Ok,
            Err(Veto::Denied { .. }) => CallbackOutcome::Vetoed,
            Err(Veto::Timeout) => CallbackOutcome::Timeout,
            Err(Veto::NotAllowed { .. } | Veto::BadGateway { .. }) => CallbackOutcome::Error,
        }
    }

    /// The label of a post-callback attempt: `ok` for any 2xx answer.
    pub fn of_answer(outcome: &crate::callback::Outcome) -> CallbackOutcome {
        use crate::callback::Outcome;
        match outcome {
            Outcome::Answered { status, .. } if (200..300).contains(status) => CallbackOutcome::Ok,
            Outcome::TimedOut => CallbackOutcome::Timeout,
            _ => CallbackOutcome::Error,
        }
    }
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Every series of the process.
pub struct Metrics {
    pub requests: [[Counter; 5]; Route::COUNT],
    pub uploads_in_flight: Gauge,
    pub received_bytes: Counter,
    pub sent_bytes: Counter,
    pub body_bytes: [Counter; BodyPath::COUNT],
    /// Times a body waited because every registered buffer of its thread was in use.
    pub fixed_buffer_waits: Counter,
    pub upload_size: Histogram,
    pub callback_seconds: [[Histogram; CallbackOutcome::COUNT]; CallbackKind::COUNT],
    pub callback_rejections: [Counter; CallbackKind::COUNT],
    pub callback_queue_depth: Gauge,
    pub callback_queue_capacity: Gauge,
    pub callback_workers_alive: Gauge,
    pub outbox_backlog: Gauge,
    /// `created_at_ms` of the oldest outbox entry; 0 when the outbox is empty.
    pub outbox_oldest_created_ms: AtomicU64,
    pub open_connections: Gauge,
    pub connections_accepted: Counter,
    pub connections_refused: Counter,
    pub accept_errors: Counter,
    pub timeouts: [Counter; TimeoutKind::COUNT],
    /// Error responses by whose fault they were (`crate::error::Blame`).
    pub errors: [Counter; Blame::COUNT],
    pub log_lines_dropped: Counter,
}

const fn latency_row() -> [Histogram; CallbackOutcome::COUNT] {
    [const { Histogram::new(LATENCY_BOUNDS, 1e6) }; CallbackOutcome::COUNT]
}

impl Metrics {
    const fn new() -> Self {
        Metrics {
            requests: [const { [const { Counter::new() }; 5] }; Route::COUNT],
            uploads_in_flight: Gauge::new(),
            received_bytes: Counter::new(),
            sent_bytes: Counter::new(),
            body_bytes: [const { Counter::new() }; BodyPath::COUNT],
            fixed_buffer_waits: Counter::new(),
            upload_size: Histogram::new(SIZE_BOUNDS, 1.0),
            callback_seconds: [const { latency_row() }; CallbackKind::COUNT],
            callback_rejections: [const { Counter::new() }; CallbackKind::COUNT],
            callback_queue_depth: Gauge::new(),
            callback_queue_capacity: Gauge::new(),
            callback_workers_alive: Gauge::new(),
            outbox_backlog: Gauge::new(),
            outbox_oldest_created_ms: AtomicU64::new(0),
            open_connections: Gauge::new(),
            connections_accepted: Counter::new(),
            connections_refused: Counter::new(),
            accept_errors: Counter::new(),
            timeouts: [const { Counter::new() }; TimeoutKind::COUNT],
            errors: [const { Counter::new() }; Blame::COUNT],
            log_lines_dropped: Counter::new(),
        }
    }
}

/// The process's metrics.
pub static METRICS: Metrics = Metrics::new();

// ── one-line instrumentation calls ──────────────────────────────────────────────────────────

/// A response was sent (or attempted) for a request on `route`.
pub fn request_done(route: Route, status: u16) {
    let class = (status / 100).clamp(1, 5) as usize - 1;
    METRICS.requests[route as usize][class].inc();
}

/// Bytes read from client sockets (heads and bodies).
pub fn received(n: usize) {
    METRICS.received_bytes.add(n as u64);
}

/// Bytes written to client sockets (responses, `100 Continue`, downloads).
pub fn sent(n: usize) {
    METRICS.sent_bytes.add(n as u64);
}

/// Request body bytes that reached a handler, by how they travelled.
pub fn body_bytes(path: BodyPath, n: usize) {
    METRICS.body_bytes[path as usize].add(n as u64);
}

/// A body found every registered buffer of its thread in use and had to wait.
pub fn fixed_buffer_wait() {
    METRICS.fixed_buffer_waits.inc();
}

/// A timer expired.
/// An error response was sent; `blame` says whose fault it was.
pub fn error_blamed(blame: Blame) {
    METRICS.errors[blame.index()].inc();
}

pub fn timeout(kind: TimeoutKind) {
    METRICS.timeouts[kind as usize].inc();
}

/// An upload was stored (its size in bytes).
pub fn upload_stored(size: u64) {
    METRICS.upload_size.observe(size);
}

/// A callback call ended.
pub fn callback_done(kind: CallbackKind, outcome: CallbackOutcome, took: Duration) {
    METRICS.callback_seconds[kind as usize][outcome as usize].observe_duration(took);
}

/// A callback could not be queued (the pool's queue was full).
pub fn callback_rejected(kind: CallbackKind) {
    METRICS.callback_rejections[kind as usize].inc();
}

/// A connection was accepted and counted against `max_connections`.
pub fn connection_opened() {
    METRICS.connections_accepted.inc();
    METRICS.open_connections.inc();
}

pub fn connection_closed() {
    METRICS.open_connections.dec();
}

/// A connection was refused with 503 (over `max_connections`).
pub fn connection_refused() {
    METRICS.connections_refused.inc();
}

/// `accept` failed (out of descriptors or memory, or the connection was aborted first).
pub fn accept_failed() {
    METRICS.accept_errors.inc();
}

/// The outbox's size and the creation time of its oldest entry (sampled off the rings).
pub fn outbox_sampled(backlog: usize, oldest_created_ms: Option<u64>) {
    METRICS.outbox_backlog.set(backlog as i64);
    METRICS
        .outbox_oldest_created_ms
        .store(oldest_created_ms.unwrap_or(0), Relaxed);
}

/// The callback pool's state, sampled when `/metrics` is rendered.
pub fn pool_sampled(depth: usize, capacity: usize, workers_alive: usize) {
    METRICS.callback_queue_depth.set(depth as i64);
    METRICS.callback_queue_capacity.set(capacity as i64);
    METRICS.callback_workers_alive.set(workers_alive as i64);
}

/// A log line was dropped: the log writer's queue was full.
pub fn log_line_dropped() {
    METRICS.log_lines_dropped.inc();
}

/// Counts an upload in flight for as long as it lives.
#[must_use]
pub struct InFlight(());

impl InFlight {
    pub fn enter() -> InFlight {
        METRICS.uploads_in_flight.inc();
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        METRICS.uploads_in_flight.dec();
    }
}

// ── exposition ──────────────────────────────────────────────────────────────────────────────

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every series in the Prometheus text exposition format.
pub fn render() -> String {
    let m = &METRICS;
    let mut out = String::with_capacity(16 * 1024);
    let o = &mut out;

    header(
        o,
        "upgate_build_info",
        "gauge",
        "Always 1; the version is a label.",
    );
    line(
        o,
        "upgate_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );

    header(
        o,
        "upgate_requests_total",
        "counter",
        "Responses sent, by route and status class.",
    );
    for r in Route::ALL {
        for (c, class) in STATUS_CLASSES.iter().enumerate() {
            let v = m.requests[*r as usize][c].get();
            line(
                o,
                "upgate_requests_total",
                &[("route", r.as_str()), ("code", class)],
                v,
            );
        }
    }

    gauge(
        o,
        "upgate_uploads_in_flight",
        "Uploads between their head and their response.",
        m.uploads_in_flight.get(),
    );
    counter(
        o,
        "upgate_received_bytes_total",
        "Bytes read from client connections.",
        m.received_bytes.get(),
    );
    counter(
        o,
        "upgate_sent_bytes_total",
        "Bytes written to client connections.",
        m.sent_bytes.get(),
    );
    labeled_counter(
        o,
        "upgate_body_bytes_total",
        "Upload body bytes written to files, by path: splice (zero-copy), fixed (registered buffers) or buffered.",
        "path",
        BodyPath::ALL
            .iter()
            .map(|p| (p.as_str(), m.body_bytes[*p as usize].get())),
    );

    counter(
        o,
        "upgate_fixed_buffer_waits_total",
        "Times a body waited for a registered I/O buffer (all of its thread's were in use).",
        m.fixed_buffer_waits.get(),
    );

    header(
        o,
        "upgate_upload_size_bytes",
        "histogram",
        "Sizes of stored uploads.",
    );
    histogram(o, "upgate_upload_size_bytes", &[], &m.upload_size);

    header(
        o,
        "upgate_callback_duration_seconds",
        "histogram",
        "Callback latency, by callback (pre, post, retry) and outcome.",
    );
    for k in CallbackKind::ALL {
        for oc in CallbackOutcome::ALL {
            if *k != CallbackKind::Pre && *oc == CallbackOutcome::Vetoed {
                continue;
            }
            histogram(
                o,
                "upgate_callback_duration_seconds",
                &[("callback", k.as_str()), ("outcome", oc.as_str())],
                &m.callback_seconds[*k as usize][*oc as usize],
            );
        }
    }
    labeled_counter(
        o,
        "upgate_callback_rejections_total",
        "Callbacks not queued because the callback queue was full.",
        "callback",
        CallbackKind::ALL
            .iter()
            .map(|k| (k.as_str(), m.callback_rejections[*k as usize].get())),
    );
    gauge(
        o,
        "upgate_callback_queue_depth",
        "Callbacks waiting in the queue.",
        m.callback_queue_depth.get(),
    );
    gauge(
        o,
        "upgate_callback_queue_capacity",
        "The callback queue bound (callback_queue).",
        m.callback_queue_capacity.get(),
    );
    gauge(
        o,
        "upgate_callback_workers_alive",
        "Callback worker threads running.",
        m.callback_workers_alive.get(),
    );

    gauge(
        o,
        "upgate_outbox_backlog",
        "Post-callbacks recorded and not yet delivered.",
        m.outbox_backlog.get(),
    );
    let oldest = m.outbox_oldest_created_ms.load(Relaxed);
    let age = if oldest == 0 {
        0.0
    } else {
        crate::clock::unix_ms().saturating_sub(oldest) as f64 / 1000.0
    };
    header(
        o,
        "upgate_outbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest undelivered post-callback; 0 when none.",
    );
    let _ = writeln!(o, "upgate_outbox_oldest_age_seconds {age}");

    gauge(
        o,
        "upgate_open_connections",
        "Client connections open now.",
        m.open_connections.get(),
    );
    counter(
        o,
        "upgate_connections_accepted_total",
        "Client connections accepted.",
        m.connections_accepted.get(),
    );
    counter(
        o,
        "upgate_connections_refused_total",
        "Client connections refused with 503 at max_connections.",
        m.connections_refused.get(),
    );
    counter(
        o,
        "upgate_accept_errors_total",
        "Failed accepts (EMFILE, ENFILE, ENOMEM, aborted connections); each pauses accepting.",
        m.accept_errors.get(),
    );
    labeled_counter(
        o,
        "upgate_timeouts_total",
        "Timers that expired, by kind: header, body, keepalive, write.",
        "kind",
        TimeoutKind::ALL
            .iter()
            .map(|k| (k.as_str(), m.timeouts[*k as usize].get())),
    );
    labeled_counter(
        o,
        "upgate_errors_total",
        "Error responses by whose fault they were: client, app (its callback), storage, internal.",
        "blame",
        Blame::ALL
            .iter()
            .map(|b| (b.as_str(), m.errors[b.index()].get())),
    );
    counter(
        o,
        "upgate_log_lines_dropped_total",
        "Log lines dropped because the log writer could not keep up.",
        m.log_lines_dropped.get(),
    );
    out
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(o: &mut String, name: &str, help: &str, v: u64) {
    header(o, name, "counter", help);
    let _ = writeln!(o, "{name} {v}");
}

/// A counter family with one label: a line per (label value, count).
fn labeled_counter<'a>(
    o: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (&'a str, u64)>,
) {
    header(o, name, "counter", help);
    for (value, v) in values {
        line(o, name, &[(label, value)], v);
    }
}

fn gauge(o: &mut String, name: &str, help: &str, v: i64) {
    header(o, name, "gauge", help);
    let _ = writeln!(o, "{name} {v}");
}

fn labels(o: &mut String, labels: &[(&str, &str)], extra: Option<(&str, &str)>) {
    let mut all = labels.iter().copied().chain(extra).peekable();
    if all.peek().is_none() {
        return;
    }
    o.push('{');
    let mut first = true;
    for (k, v) in all {
        if !first {
            o.push(',');
        }
        first = false;
        // Label values are compile-time constants without quotes, backslashes or newlines.
        let _ = write!(o, "{k}=\"{v}\"");
    }
    o.push('}');
}

fn line(o: &mut String, name: &str, l: &[(&str, &str)], v: u64) {
    o.push_str(name);
    labels(o, l, None);
    let _ = writeln!(o, " {v}");
}

fn histogram(o: &mut String, name: &str, l: &[(&str, &str)], h: &Histogram) {
    let mut cumulative = 0u64;
    for (i, bound) in h.bounds.iter().enumerate() {
        cumulative += h.buckets[i].load(Relaxed);
        let le = format!("{}", *bound as f64 / h.scale);
        o.push_str(name);
        o.push_str("_bucket");
        labels(o, l, Some(("le", &le)));
        let _ = writeln!(o, " {cumulative}");
    }
    cumulative += h.buckets[h.bounds.len()].load(Relaxed);
    o.push_str(name);
    o.push_str("_bucket");
    labels(o, l, Some(("le", "+Inf")));
    let _ = writeln!(o, " {cumulative}");
    o.push_str(name);
    o.push_str("_sum");
    labels(o, l, None);
    let _ = writeln!(o, " {}", h.sum());
    o.push_str(name);
    o.push_str("_count");
    labels(o, l, None);
    // The count is the +Inf bucket, so the two always agree within one scrape.
    let _ = writeln!(o, " {cumulative}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        static H: Histogram = Histogram::new(&[10, 100], 1.0);
        for v in [1, 10, 11, 100, 1000] {
            H.observe(v);
        }
        let mut out = String::new();
        histogram(&mut out, "h", &[("a", "b")], &H);
        assert_eq!(
            out,
            "h_bucket{a=\"b\",le=\"10\"} 2\nh_bucket{a=\"b\",le=\"100\"} 4\n\
             h_bucket{a=\"b\",le=\"+Inf\"} 5\nh_sum{a=\"b\"} 1122\nh_count{a=\"b\"} 5\n"
        );
        assert_eq!(H.count(), 5);
    }

    #[test]
    fn seconds_histograms_export_base_units() {
        static H: Histogram = Histogram::new(&[1_000, 2_500_000], 1e6);
        H.observe_duration(Duration::from_millis(2));
        let mut out = String::new();
        histogram(&mut out, "s", &[], &H);
        assert!(
            out.starts_with("s_bucket{le=\"0.001\"} 0\ns_bucket{le=\"2.5\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("s_sum 0.002\n"), "{out}");
    }

    #[test]
    fn every_route_and_class_is_exported_from_the_start() {
        let text = render();
        for r in Route::ALL {
            for c in STATUS_CLASSES {
                let series = format!(
                    "upgate_requests_total{{route=\"{}\",code=\"{c}\"}} ",
                    r.as_str()
                );
                assert!(text.contains(&series), "missing {series}");
            }
        }
        assert!(text.contains("upgate_body_bytes_total{path=\"splice\"} "));
        assert!(text.contains("upgate_timeouts_total{kind=\"keepalive\"} "));
    }

    #[test]
    fn status_classes_clamp() {
        let before = METRICS.requests[Route::Other as usize][4].get();
        request_done(Route::Other, 599);
        request_done(Route::Other, 600);
        assert_eq!(METRICS.requests[Route::Other as usize][4].get(), before + 2);
    }
}
