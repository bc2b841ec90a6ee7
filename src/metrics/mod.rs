//! Process-global metrics: counters, gauges and fixed-bucket histograms on plain atomics,
//! rendered as Prometheus text (`GET /metrics`). No registry, no allocation on the hot path:
//! every series is a field of [`METRICS`], and every label value comes from a closed enum, so
//! the set of series is fixed at compile time and each one is exported from the start (at 0).
//!
//! Instrumentation is one call per event ([`request_done`], [`timeout`], [`callback_done`], …);
//! the reference of every series is in `docs/operations.md`.

mod render;
mod series;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::error::blame::Blame;
pub use render::{
    render, render_app_usage, render_node_info, render_origin_queue, AppUsage, CONTENT_TYPE,
};
pub use series::{Counter, Gauge, Histogram};

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
        /// The app's control plane (`/upload/outbox/…`).
        Manage => "manage",
        /// The app's file management: listings and deletions.
        Files => "files",
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
    /// What the management API did to a notification (`action` label).
    OutboxAction {
        /// `POST /upload/outbox/{appid}/{event_id}/retry`.
        Retry => "retry",
        /// `DELETE /upload/outbox/{appid}/{event_id}`.
        Drop => "drop",
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
    pub fn of_pre<T>(decision: &Result<T, crate::callback::Veto>) -> CallbackOutcome {
        use crate::callback::Veto;
        match decision {
            Ok(_) => CallbackOutcome::Ok,
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

labels! {
    /// How a download's open went (`result` label).
    OpenCacheResult {
        /// Served from the thread's open-file cache: no open, no `statx`, no read.
        Hit => "hit",
        /// Opened (absent, expired, or made stale by a commit or delete).
        Miss => "miss",
    }
}

labels! {
    /// Which quota refused an upload (`quota` label).
    QuotaKind {
        Bytes => "bytes",
        Concurrency => "concurrency",
        Rate => "rate",
    }
}

labels! {
    /// The TLS version a handshake agreed (`version` label).
    TlsVersion {
        V13 => "1.3",
        V12 => "1.2",
    }
}

labels! {
    /// How an origin write went (`result` label): a `before_callback` PUT, or a queued copy.
    OriginWrite {
        Ok => "ok",
        Failed => "failed",
    }
}

labels! {
    /// How a download's miss at the origin went (`result` label).
    OriginFetch {
        /// The origin had it: served while it filled the local disk.
        Filled => "filled",
        /// The origin has nothing at the key (the download is 404).
        Absent => "absent",
        Failed => "failed",
    }
}

labels! {
    /// Why a TLS handshake did not complete (`reason` label).
    TlsFailure {
        /// The client offered nothing the node accepts (cipher suites, versions, groups).
        NoCommonParameters => "no_common_parameters",
        /// Bytes that are not TLS, or a record or message the node could not read.
        BadRecord => "bad_record",
        /// The client sent an alert (it refused the certificate, say).
        PeerAlert => "peer_alert",
        /// The connection ended or timed out before the handshake finished.
        Incomplete => "incomplete",
        Other => "other",
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
    /// Resumable uploads created, completed (stored), and removed by the expiry sweep.
    pub resumable_created: Counter,
    pub resumable_completed: Counter,
    pub resumable_expired: Counter,
    /// Uploads refused by an app's quota, by quota.
    pub quota_refusals: [Counter; QuotaKind::COUNT],
    /// TLS handshakes completed, by version, and failed, by reason.
    pub tls_handshakes: [Counter; TlsVersion::COUNT],
    pub tls_failures: [Counter; TlsFailure::COUNT],
    /// Files deleted through the management API (`DELETE /{appid}/{path}`).
    pub files_deleted: Counter,
    pub open_file_cache: [Counter; OpenCacheResult::COUNT],
    /// Origin writes and fetches (`store = "s3"`).
    pub origin_writes: [Counter; OriginWrite::COUNT],
    pub origin_fetches: [Counter; OriginFetch::COUNT],
    pub upload_size: Histogram,
    pub callback_seconds: [[Histogram; CallbackOutcome::COUNT]; CallbackKind::COUNT],
    pub callback_rejections: [Counter; CallbackKind::COUNT],
    pub callback_queue_depth: Gauge,
    pub callback_queue_capacity: Gauge,
    pub callback_workers_alive: Gauge,
    pub outbox_backlog: Gauge,
    /// Group commits of the outbox log, and the records they carried.
    pub outbox_commits: Counter,
    pub outbox_records: Counter,
    /// Entries on the outbox's dead list (sampled), those moved there, and what the
    /// management API did (`upgate_outbox_api_total{action}`).
    pub outbox_dead: Gauge,
    pub outbox_died: Counter,
    pub outbox_api: [Counter; OutboxAction::COUNT],
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
            resumable_created: Counter::new(),
            resumable_completed: Counter::new(),
            resumable_expired: Counter::new(),
            quota_refusals: [const { Counter::new() }; QuotaKind::COUNT],
            tls_handshakes: [const { Counter::new() }; TlsVersion::COUNT],
            tls_failures: [const { Counter::new() }; TlsFailure::COUNT],
            files_deleted: Counter::new(),
            open_file_cache: [const { Counter::new() }; OpenCacheResult::COUNT],
            origin_writes: [const { Counter::new() }; OriginWrite::COUNT],
            origin_fetches: [const { Counter::new() }; OriginFetch::COUNT],
            upload_size: Histogram::new(SIZE_BOUNDS, 1.0),
            callback_seconds: [const { latency_row() }; CallbackKind::COUNT],
            callback_rejections: [const { Counter::new() }; CallbackKind::COUNT],
            callback_queue_depth: Gauge::new(),
            callback_queue_capacity: Gauge::new(),
            callback_workers_alive: Gauge::new(),
            outbox_backlog: Gauge::new(),
            outbox_commits: Counter::new(),
            outbox_records: Counter::new(),
            outbox_dead: Gauge::new(),
            outbox_died: Counter::new(),
            outbox_api: [const { Counter::new() }; OutboxAction::COUNT],
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

/// A resumable upload was created.
pub fn resumable_created() {
    METRICS.resumable_created.inc();
}

/// A resumable upload's last append stored its file.
pub fn resumable_completed() {
    METRICS.resumable_completed.inc();
}

/// The sweep removed an abandoned resumable upload.
pub fn resumable_expired() {
    METRICS.resumable_expired.inc();
}

/// The management API deleted a file.
pub fn file_deleted() {
    METRICS.files_deleted.inc();
}

/// A download looked in its thread's open-file cache.
pub fn open_file_cache(result: OpenCacheResult) {
    METRICS.open_file_cache[result as usize].inc();
}

/// An origin write (PUT of an upload, or a queued copy) ended.
pub fn origin_write(result: OriginWrite) {
    METRICS.origin_writes[result as usize].inc();
}

/// A download's miss asked the origin.
pub fn origin_fetch(result: OriginFetch) {
    METRICS.origin_fetches[result as usize].inc();
}

/// An error response was sent; `blame` says whose fault it was.
pub fn error_blamed(blame: Blame) {
    METRICS.errors[blame.index()].inc();
}

/// A timer expired.
pub fn timeout(kind: TimeoutKind) {
    METRICS.timeouts[kind as usize].inc();
}

/// An app's quota refused an upload.
pub fn quota_refused(kind: QuotaKind) {
    METRICS.quota_refusals[kind as usize].inc();
}

/// A TLS handshake completed.
pub fn tls_handshake(version: TlsVersion) {
    METRICS.tls_handshakes[version as usize].inc();
}

/// A TLS handshake failed.
pub fn tls_failure(reason: TlsFailure) {
    METRICS.tls_failures[reason as usize].inc();
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

/// Entries on the outbox's dead list (sampled with the backlog).
pub fn outbox_dead_sampled(dead: usize) {
    METRICS.outbox_dead.set(dead as i64);
}

/// A notification moved to the dead list (undelivered for `notify_max_age_s`).
pub fn outbox_died() {
    METRICS.outbox_died.inc();
}

/// The management API retried or dropped a notification.
pub fn outbox_api(action: OutboxAction) {
    METRICS.outbox_api[action as usize].inc();
}

/// The outbox log appended one batch of `records` (one group commit).
pub fn outbox_committed(records: u64) {
    METRICS.outbox_commits.inc();
    METRICS.outbox_records.add(records);
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

// ── exposition: `render.rs` ─────────────────────────────────────────────────────────────────

#[cfg(test)]
mod tests;
