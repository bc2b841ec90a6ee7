//! The operator's endpoints: `/healthz` (the process answers), `/readyz` (it can take uploads
//! now) and `/metrics` (Prometheus text).

use crate::storage::ObjectStore;
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::http::Response;
use crate::metrics;
use crate::server::Exchange;

/// `GET /healthz`: alive. Checks nothing else, so a liveness probe never restarts a node that
/// is only waiting for its disk or its application.
pub fn healthz() -> Response {
    Response::json(200, &br#"{"status":"ok"}"#[..])
}

/// `GET /readyz`: 200 when every check passes, else 503 naming the checks that failed.
///
/// | check | passes when |
/// |---|---|
/// | `registry` | a read of the sled registry succeeds |
/// | `etcd` | (`registry = "etcd"` only) etcd answered the last call and holds the watch |
/// | `origin` | (`store = "s3"`, `origin_write = "before_callback"` only) the last origin call succeeded |
/// | `data_dir` | a file can be created, written and removed in `data_dir/tmp`, and `data_dir/files` exists |
/// | `callback_pool` | at least one callback worker thread is running |
/// | `draining` | the node is not shutting down (SIGTERM/SIGINT) |
pub async fn readyz(ex: &Exchange<'_>, app: &App) -> Response {
    let mut checks = Map::new();
    let mut failed = Vec::new();
    let mut record = |name: &str, result: Result<(), String>| {
        let value = match result {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                failed.push(format!("{name}: {e}"));
                format!("failed: {e}")
            }
        };
        checks.insert(name.to_string(), Value::String(value));
    };
    record(
        "registry",
        app.registry
            .get("readyz-probe")
            .map(|_| ())
            .map_err(|e| e.to_string()),
    );
    if let Some(health) = app.registry.remote_health() {
        record("etcd", health);
    }
    // Only where uploads wait for the origin: with `background` copies they go on without it.
    if let Some(origin) = app.origin() {
        if origin.write_mode() == crate::origin::OriginWrite::BeforeCallback {
            record("origin", origin.health());
        }
    }
    record("data_dir", probe_data_dir(app).await);
    record(
        "callback_pool",
        match app.pool.workers_alive() {
            0 => Err("no callback worker is running".into()),
            _ => Ok(()),
        },
    );
    record(
        "draining",
        match ex.shutting_down() {
            true => Err("the node is shutting down".into()),
            false => Ok(()),
        },
    );
    if failed.is_empty() {
        let body = json!({"status": "ready", "checks": checks});
        Response::json(200, body.to_string())
    } else {
        let body = json!({
            "success": "false",
            "status": "not_ready",
            "error": "not_ready",
            "message": failed.join("; "),
            "checks": checks,
        });
        Response::json(503, body.to_string()).header("Retry-After", "1")
    }
}

/// Whether the store can take a body now ([`ObjectStore::ready`]).
async fn probe_data_dir(app: &App) -> Result<(), String> {
    app.store.ready().await.map_err(|e| e.to_string())
}

/// `GET /metrics`: every series, with the callback pool sampled now.
pub fn metrics(app: &App) -> Response {
    metrics::pool_sampled(
        app.pool.queue_depth(),
        app.pool.queue_capacity(),
        app.pool.workers_alive(),
    );
    let mut resp = Response::new(200).header("Content-Type", metrics::CONTENT_TYPE);
    let mut text = metrics::render();
    metrics::render_node_info(&mut text, &app.node_id);
    if let Some(origin) = app.origin() {
        metrics::render_origin_queue(&mut text, origin.queued());
    }
    let usage = app.quotas.snapshot();
    let usage: Vec<metrics::AppUsage<'_>> = usage
        .iter()
        .map(|(appid, u)| metrics::AppUsage {
            appid,
            stored: u.stored,
            reserved: u.reserved,
            in_flight: u64::from(u.in_flight),
        })
        .collect();
    metrics::render_app_usage(&mut text, &usage);
    resp.body = crate::http::ResponseBody::Full(text.into());
    resp
}
