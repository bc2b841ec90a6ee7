//! The Prometheus text exposition of every series (`GET /metrics`).

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::*;

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
    counter(
        o,
        "upgate_resumable_created_total",
        "Resumable uploads (tus, IETF) created.",
        m.resumable_created.get(),
    );
    counter(
        o,
        "upgate_resumable_completed_total",
        "Resumable uploads whose last append stored the file.",
        m.resumable_completed.get(),
    );
    counter(
        o,
        "upgate_resumable_expired_total",
        "Abandoned resumable uploads removed after resumable_expiry_s without an append.",
        m.resumable_expired.get(),
    );
    counter(
        o,
        "upgate_files_deleted_total",
        "Files deleted by their app (DELETE /{appid}/{path}).",
        m.files_deleted.get(),
    );
    labeled_counter(
        o,
        "upgate_quota_refusals_total",
        "Uploads refused by an app's quota: bytes (403 quota_exceeded), concurrency or rate \
         (429 rate_limited).",
        "quota",
        QuotaKind::ALL
            .iter()
            .map(|k| (k.as_str(), m.quota_refusals[*k as usize].get())),
    );
    labeled_counter(
        o,
        "upgate_tls_handshakes_total",
        "TLS handshakes completed on tls_listen, by the version agreed.",
        "version",
        TlsVersion::ALL
            .iter()
            .map(|k| (k.as_str(), m.tls_handshakes[*k as usize].get())),
    );
    labeled_counter(
        o,
        "upgate_tls_handshake_failures_total",
        "TLS handshakes that did not complete, by reason.",
        "reason",
        TlsFailure::ALL
            .iter()
            .map(|k| (k.as_str(), m.tls_failures[*k as usize].get())),
    );
    labeled_counter(
        o,
        "upgate_origin_writes_total",
        "Writes to the S3 origin (store = \"s3\"): uploads before their callback, and queued copies, by result.",
        "result",
        OriginWrite::ALL
            .iter()
            .map(|k| (k.as_str(), m.origin_writes[*k as usize].get())),
    );
    labeled_counter(
        o,
        "upgate_origin_fetches_total",
        "Downloads that missed this node's disk and asked the origin, by result.",
        "result",
        OriginFetch::ALL
            .iter()
            .map(|k| (k.as_str(), m.origin_fetches[*k as usize].get())),
    );
    labeled_counter(
        o,
        "upgate_open_file_cache_total",
        "Download opens, by result: hit (the thread's open-file cache) or miss (opened).",
        "result",
        OpenCacheResult::ALL
            .iter()
            .map(|r| (r.as_str(), m.open_file_cache[*r as usize].get())),
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
    counter(
        o,
        "upgate_outbox_commits_total",
        "Group commits of the outbox log (one append, and with fsync one fdatasync, each).",
        m.outbox_commits.get(),
    );
    counter(
        o,
        "upgate_outbox_records_total",
        "Outbox log records those commits carried.",
        m.outbox_records.get(),
    );
    gauge(
        o,
        "upgate_outbox_dead",
        "Post-callbacks on the dead list: undelivered for notify_max_age_s, no longer retried \
         until retried through the API.",
        m.outbox_dead.get(),
    );
    counter(
        o,
        "upgate_outbox_dead_total",
        "Post-callbacks moved to the dead list.",
        m.outbox_died.get(),
    );
    labeled_counter(
        o,
        "upgate_outbox_api_total",
        "Notifications retried or dropped through the management API.",
        "action",
        OutboxAction::ALL
            .iter()
            .map(|a| (a.as_str(), m.outbox_api[*a as usize].get())),
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

pub(super) fn histogram(o: &mut String, name: &str, l: &[(&str, &str)], h: &Histogram) {
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

/// One app's usage as `/metrics` shows it.
pub struct AppUsage<'a> {
    pub appid: &'a str,
    pub stored: u64,
    pub reserved: u64,
    pub in_flight: u64,
}

/// `upgate_node_info{node_id}` (appended to [`render`] by the `/metrics` handler): which node
/// these series are from, for dashboards that gather many.
pub fn render_node_info(o: &mut String, node_id: &str) {
    header(
        o,
        "upgate_node_info",
        "gauge",
        "Always 1; this node's node_id is a label.",
    );
    line(o, "upgate_node_info", &[("node_id", node_id)], 1);
}

/// `upgate_origin_queue` (appended by the `/metrics` handler with `store = "s3"`): origin
/// copies queued and not yet written (`origin_write = "background"`).
pub fn render_origin_queue(o: &mut String, queued: u64) {
    gauge(
        o,
        "upgate_origin_queue",
        "Origin copies queued on this node and not yet at the origin.",
        queued as i64,
    );
}

/// Per-app usage (appended to [`render`] by the `/metrics` handler, which holds the node's
/// quotas): stored bytes, bytes reserved by uploads in flight, uploads in flight.
pub fn render_app_usage(o: &mut String, apps: &[AppUsage<'_>]) {
    type Of = fn(&AppUsage<'_>) -> u64;
    let series: [(&str, &str, Of); 3] = [
        (
            "upgate_app_stored_bytes",
            "Bytes of the app's committed files on this node.",
            |u| u.stored,
        ),
        (
            "upgate_app_reserved_bytes",
            "Declared bytes of the app's uploads in flight on this node.",
            |u| u.reserved,
        ),
        (
            "upgate_app_uploads_in_flight",
            "The app's uploads in flight on this node.",
            |u| u.in_flight,
        ),
    ];
    for (name, help, value) in series {
        header(o, name, "gauge", help);
        for usage in apps {
            line(o, name, &[("appid", usage.appid)], value(usage));
        }
    }
}
