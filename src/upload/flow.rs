//! The upload method of patent CN103547339A, one step per block, top to bottom:
//!
//! | step | patent | here |
//! |---|---|---|
//! | receive conditions on the head | 202 / 304 | [`condition::check`], then the overwrite check |
//! | first file info → pre-upload callback | 203 / 305 | [`pre_callback`] on the blocking pool |
//! | `100 Continue` only after the app accepts | 204 / 306 | [`Exchange::accept_body`] |
//! | body → temp file → fsync → rename → dir fsync | 205 / 307 | [`receive_body`] |
//! | second file info → post-upload callback (outbox) | 205 / 307 | [`post_callback`] |
//! | completion response | 206 / 308 | [`reply::created`] |

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::app::App;
use crate::callback::{
    post_delivered, pre_decision, FirstInfo, Job, Outcome, SecondInfo, SuccessTrue,
};
use crate::http::Response;
use crate::registry::{backoff_jittered, OutboxEntry};
use crate::server::Exchange;
use crate::storage::{path, sink::is_disk_full, BodySink, CommitError};

use super::condition;
use super::model::{Notified, Stored, UploadRequest};
use super::reply::{self, FlowError};

/// Handles `POST`/`PUT /{appid}/{path}`.
pub async fn handle_upload(ex: &mut Exchange<'_>, app: &App) -> Response {
    match run(ex, app).await {
        Ok((req, stored, notified)) => reply::created(&req, &stored, notified),
        Err(e) => reply::fail(e),
    }
}

async fn run(
    ex: &mut Exchange<'_>,
    app: &App,
) -> Result<(UploadRequest, Stored, Notified), FlowError> {
    // 202/304: the receive conditions, on the head alone.
    let appid = std::str::from_utf8(path::first_segment(ex.head().path_only())).unwrap_or("");
    let record = app
        .registry
        .get(appid)
        .map_err(|e| FlowError::Internal(e.to_string()))?;
    let policy = app.policy();
    let req = condition::check(
        ex.head(),
        &app.config,
        &policy,
        record.as_ref(),
        new_upload_id(),
        ex.peer().ip().to_string(),
    )?;
    let dest = app.store.final_path(&req.target);
    if !app.config.overwrite && tokio_uring::fs::statx(&dest).await.is_ok() {
        return Err(FlowError::Exists);
    }

    // 203/305: the first file info to the pre-upload callback; the app may veto.
    pre_callback(app, &req).await?;

    // 204/306: only now may the client send its body.
    ex.accept_body().await.map_err(FlowError::Body)?;

    // 205/307: the body, stored durably and made visible in one rename.
    let stored = receive_body(ex, app, &req).await?;

    // 205/307: the second file info, recorded in the outbox before it is first sent.
    let notified = post_callback(app, &req, &stored).await;

    // 206/308: the completion response (rendered by `reply::created`).
    Ok((req, stored, notified))
}

/// Sends the first file info and waits for the app's decision without blocking the ring.
async fn pre_callback(app: &App, req: &UploadRequest) -> Result<(), FlowError> {
    let info = FirstInfo {
        appid: req.target.appid.clone(),
        filename: req.target.filename().to_owned(),
        path: req.target.rel.clone(),
        size: req.size,
        content_type: req.content_type.clone(),
        upload_id: req.upload_id.clone(),
        client_ip: req.client_ip.clone(),
    };
    let job = Job {
        url: req.pre.url.to_string(),
        body: serde_json::to_vec(&info).map_err(|e| FlowError::Internal(e.to_string()))?,
        webhook_id: req.pre_event_id(),
        secrets: req.secrets.clone(),
        guard: req.pre.guard.clone(),
    };
    let outcome = call(app, job).await?;
    pre_decision(&outcome).map_err(FlowError::Veto)
}

/// Submits a job and awaits its outcome, bounded: a job that waited in a busy queue past the
/// callback timeout counts as a timeout rather than an unbounded wait.
async fn call(app: &App, job: Job) -> Result<Outcome, FlowError> {
    let rx = app.pool.submit(job).map_err(|_| FlowError::Busy)?;
    let bound = app.config.callback_timeout() * 2 + Duration::from_secs(1);
    match tokio::time::timeout(bound, rx).await {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(_)) => Err(FlowError::Internal("callback worker vanished".into())),
        Err(_) => Ok(Outcome::TimedOut),
    }
}

/// Streams the body into a temporary file, then syncs and renames it into place. On any
/// failure the temporary file is removed and nothing becomes visible.
async fn receive_body(
    ex: &mut Exchange<'_>,
    app: &App,
    req: &UploadRequest,
) -> Result<Stored, FlowError> {
    let mut sink = BodySink::create(app.store.tmp_path(&req.upload_id))
        .await
        .map_err(storage_error)?;
    loop {
        let chunk = match ex.next_chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                sink.abort().await;
                return Err(FlowError::Body(e));
            }
        };
        if sink.written() + chunk.len() as u64 > req.limit {
            sink.abort().await;
            return Err(FlowError::TooLarge(req.limit));
        }
        if let Err(e) = sink.write(chunk).await {
            sink.abort().await;
            return Err(storage_error(e));
        }
    }
    let size = sink.written();
    let dest = app.store.final_path(&req.target);
    sink.commit(
        app.store.files_root(),
        &dest,
        app.config.fsync,
        app.config.overwrite,
    )
    .await
    .map_err(|e| match e {
        CommitError::Exists => FlowError::Exists,
        CommitError::Io(e) => storage_error(e),
    })?;
    Ok(Stored {
        size,
        url: format!(
            "{}/{}/{}",
            app.public_base(),
            req.target.appid,
            path::encode_rel(&req.target.rel)
        ),
    })
}

fn storage_error(e: std::io::Error) -> FlowError {
    if is_disk_full(&e) {
        FlowError::DiskFull
    } else {
        FlowError::Storage(e.to_string())
    }
}

/// Records the second file info durably, then makes the first attempt. A failed attempt stays
/// in the outbox, which retries it with backoff until the app answers 2xx (across restarts).
async fn post_callback(app: &App, req: &UploadRequest, stored: &Stored) -> Notified {
    let Some(post) = &req.post else {
        return Notified::NoCallback;
    };
    let info = SecondInfo {
        appid: req.target.appid.clone(),
        filename: req.target.filename().to_owned(),
        path: req.target.rel.clone(),
        size: stored.size,
        content_type: req.content_type.clone(),
        upload_id: req.upload_id.clone(),
        success: SuccessTrue,
        url: stored.url.clone(),
        sha256: None,
    };
    let body = serde_json::to_vec(&info).unwrap_or_default();
    let now = now_ms();
    // The background sender must not pick the entry up while this first attempt runs.
    let first_try_window = app.config.callback_timeout() * 2 + Duration::from_secs(2);
    let entry = OutboxEntry {
        event_id: req.post_event_id(),
        appid: req.target.appid.clone(),
        url: post.url.to_string(),
        body: body.clone(),
        attempts: 0,
        next_attempt_at_ms: now + first_try_window.as_millis() as u64,
        created_at_ms: now,
        last_error: None,
        guarded: post.guard.is_some(),
    };
    if let Err(e) = app.registry.outbox().enqueue_async(&entry).await {
        tracing::error!(error = %e, upload_id = %req.upload_id, "outbox write failed; post-callback not recorded");
        return Notified::Pending;
    }
    let job = Job {
        url: post.url.to_string(),
        body,
        webhook_id: entry.event_id.clone(),
        secrets: req.secrets.clone(),
        guard: post.guard.clone(),
    };
    let outcome = match call(app, job).await {
        Ok(o) => o,
        Err(_) => Outcome::Failed("callback queue full".into()),
    };
    match post_delivered(&outcome) {
        Some(answer) => {
            let _ = app.registry.outbox().delivered_async(&entry.event_id).await;
            Notified::Delivered(answer)
        }
        None => {
            let next = now_ms() + backoff_jittered(1, &entry.event_id).as_millis() as u64;
            let _ = app.registry.outbox().reschedule(
                &entry.event_id,
                1,
                next,
                Some(format!("{outcome:?}")),
            );
            Notified::Pending
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// 128 random bits, hex.
fn new_upload_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        // Fall back to time and a counter: unique within this process.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b[..8].copy_from_slice(&now_ms().to_be_bytes());
        b[8..].copy_from_slice(&n.to_be_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
