//! The upload method of patent CN103547339A, one step per block, top to bottom:
//!
//! | step | patent | here |
//! |---|---|---|
//! | receive conditions on the head | 202 / 304 | [`condition::check`], then the overwrite check |
//! | first file info → pre-upload callback | 203 / 305 | [`pre_callback`] on the blocking pool |
//! | `100 Continue` only after the app accepts | 204 / 306 | [`Exchange::accept_body`] |
//! | body → temp file | 205 / 307 | [`receive_body`] |
//! | fsync → rename → dir fsync | 205 / 307 | [`commit`] |
//! | second file info → post-upload callback (outbox) | 205 / 307 | [`post_callback`] |
//! | completion response | 206 / 308 | [`reply::created`] |
//!
//! Each step's duration goes to the access log ([`Timings`]); callbacks, sizes and body bytes
//! to [`metrics`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::app::App;
use crate::callback::{
    post_delivered, pre_decision, FirstInfo, Job, Outcome, SecondInfo, SuccessTrue,
};
use crate::http::Response;
use crate::metrics::{self, BodyPath, CallbackKind, CallbackOutcome};
use crate::registry::{valid_appid, AppRecord, OutboxEntry};
use crate::server::{Exchange, SpliceError, Step, Timings};
use crate::storage::{path, sink::is_disk_full, BodySink, CommitError};

use super::condition;
use super::model::{Notified, Stored, UploadRequest};
use super::reply::{self, FlowError};

/// Handles `POST`/`PUT /{appid}/{path}`.
pub async fn handle_upload(ex: &mut Exchange<'_>, app: &App) -> Response {
    let _in_flight = metrics::InFlight::enter();
    let mut timings = Timings::default();
    let result = run(ex, app, &mut timings).await;
    ex.access().timings = timings;
    match result {
        Ok((req, stored, notified)) => reply::created(&req, &stored, notified),
        Err(e) => reply::fail(e),
    }
}

async fn run(
    ex: &mut Exchange<'_>,
    app: &App,
    t: &mut Timings,
) -> Result<(UploadRequest, Stored, Notified), FlowError> {
    // 202/304: the receive conditions, on the head alone.
    let appid = String::from_utf8_lossy(path::first_segment(ex.head().path_only())).into_owned();
    ex.access().appid = valid_appid(&appid).then(|| appid.clone());
    let record = registered(app, &appid)?;
    let policy = app.policy();
    let req = condition::check(
        ex.head(),
        &app.config,
        &policy,
        record.as_ref(),
        new_upload_id(),
        ex.peer().ip().to_string(),
    )?;
    ex.access().upload_id = Some(req.upload_id.clone());
    let dest = app.store.final_path(&req.target);
    if !app.config.overwrite && tokio_uring::fs::statx(&dest).await.is_ok() {
        return Err(FlowError::Exists);
    }

    // 203/305: the first file info to the pre-upload callback; the app may veto.
    t.timed(Step::PreCallback, pre_callback(app, &req)).await?;

    // 204/306: only now may the client send its body.
    ex.accept_body().await.map_err(FlowError::Body)?;

    // 205/307: the body into a temporary file, then made durable and visible in one rename.
    let sink = t.timed(Step::Body, receive_body(ex, app, &req)).await?;
    let stored = t.timed(Step::Commit, commit(app, &req, sink)).await?;

    // 205/307: the second file info, recorded in the outbox before it is first sent.
    let notified = t
        .timed(Step::PostCallback, post_callback(app, &req, &stored))
        .await;

    // 206/308: the completion response (rendered by `reply::created`).
    Ok((req, stored, notified))
}

/// The app's registration. An invalid appid has none: [`condition::check`] then answers 400
/// `bad_appid` (a registry lookup would fail, and that is not the node's fault).
fn registered(app: &App, appid: &str) -> Result<Option<AppRecord>, FlowError> {
    if !valid_appid(appid) {
        return Ok(None);
    }
    app.registry
        .get(appid)
        .map_err(|e| FlowError::Internal(e.to_string()))
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
    let started = Instant::now();
    let decision = pre_decision(&call(app, job, CallbackKind::Pre).await?);
    metrics::callback_done(
        CallbackKind::Pre,
        CallbackOutcome::of_pre(&decision),
        started.elapsed(),
    );
    decision.map_err(FlowError::Veto)
}

/// Submits a job and awaits its outcome, bounded: a job that waited in a busy queue past the
/// callback timeout counts as a timeout rather than an unbounded wait.
async fn call(app: &App, job: Job, kind: CallbackKind) -> Result<Outcome, FlowError> {
    let rx = app.pool.submit(job).map_err(|_| {
        metrics::callback_rejected(kind);
        FlowError::Busy
    })?;
    let bound = app.config.callback_timeout() * 2 + Duration::from_secs(1);
    match tokio::time::timeout(bound, rx).await {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(_)) => Err(FlowError::Internal("callback worker vanished".into())),
        Err(_) => Ok(Outcome::TimedOut),
    }
}

/// Streams the body into a temporary file. On any failure the temporary file is removed.
async fn receive_body(
    ex: &mut Exchange<'_>,
    app: &App,
    req: &UploadRequest,
) -> Result<BodySink, FlowError> {
    let mut sink = BodySink::create(app.store.tmp_path(&req.upload_id))
        .await
        .map_err(storage_error)?;
    loop {
        // Bytes that came with the head arrive as `Data`; the rest of a Content-Length body is
        // spliced socket → pipe → file, never entering user space (`zero_copy`).
        if let (true, Some(rest)) = (app.config.zero_copy, ex.splice_ready()) {
            let moved = ex.splice_into(sink.raw_fd(), sink.written(), rest).await;
            match moved {
                Ok(n) => {
                    sink.advance(n);
                    metrics::body_bytes(BodyPath::Splice, n as usize);
                    continue;
                }
                Err(e) => {
                    sink.abort().await;
                    return Err(match e {
                        SpliceError::Body(b) => FlowError::Body(b),
                        SpliceError::File(e) => storage_error(e),
                    });
                }
            }
        }
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
        let len = chunk.len();
        if let Err(e) = sink.write(chunk).await {
            sink.abort().await;
            return Err(storage_error(e));
        }
        metrics::body_bytes(BodyPath::Buffered, len);
    }
    Ok(sink)
}

/// Syncs the temporary file and renames it into place (then syncs its directory): the upload
/// becomes visible whole or not at all.
async fn commit(app: &App, req: &UploadRequest, sink: BodySink) -> Result<Stored, FlowError> {
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
    metrics::upload_stored(size);
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
    let started = Instant::now();
    let outcome = match call(app, job, CallbackKind::Post).await {
        Ok(o) => o,
        Err(_) => Outcome::Failed("callback queue full".into()),
    };
    metrics::callback_done(
        CallbackKind::Post,
        CallbackOutcome::of_answer(&outcome),
        started.elapsed(),
    );
    match post_delivered(&outcome) {
        Some(answer) => {
            let _ = app.registry.outbox().delivered_async(&entry.event_id).await;
            Notified::Delivered(answer)
        }
        None => {
            crate::notify::reschedule(app, &entry, format!("{outcome:?}"));
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
