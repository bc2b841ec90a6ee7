//! The upload method of patent CN103547339A, one step per block, top to bottom:
//!
//! | step | patent | here |
//! |---|---|---|
//! | receive conditions on the head | 202 / 304 | [`condition::check`], then the overwrite check |
//! | first file info → pre-upload callback | 203 / 305 | [`pre_callback`] on the blocking pool |
//! | `100 Continue` only after the app accepts | 204 / 306 | [`Exchange::accept_body`] |
//! | temp file, declared size reserved (507 before the 100) | 204 / 306 | [`open_sink`] |
//! | body → temp file (digest checked with `checksum = "sha256"`) | 205 / 307 | [`receive_body`] |
//! | second file info → outbox (flushed), then fsync → rename → dir fsync | 205 / 307 | [`commit`] |
//! | second file info → post-upload callback (first attempt) | 205 / 307 | [`post_callback`] |
//! | completion response | 206 / 308 | [`reply::created`] |
//!
//! Each step's duration goes to the access log ([`Timings`]); callbacks, sizes and body bytes
//! to [`metrics`].

use std::time::{Duration, Instant};

use crate::app::App;
use crate::callback::{
    post_delivered, pre_decision, FirstInfo, Job, Outcome, SecondInfo, SuccessTrue,
};
use crate::config::Checksum;
use crate::http::Response;
use crate::metrics::{self, CallbackKind, CallbackOutcome};
use crate::registry::OutboxJournal;
use crate::registry::{valid_appid, AppRecord, OutboxEntry, OutboxFile};
use crate::server::{BodyPlan, Exchange, ReceiveError, Step, Timings};
use crate::storage::{path, sink::is_disk_full, BodySink, CommitError};

use super::condition;
use super::digest::{BodyDigest, Claims};
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
        Err(e) => crate::error::respond(ex.access(), &e),
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
    // With `checksum = "sha256"`, a digest the client sends must parse: 400 `bad_digest` now,
    // before the pre-callback and any `100 Continue`.
    let claims = match app.config.checksum {
        Checksum::Sha256 => Some(Claims::from_head(ex.head()).map_err(|e| e.refusal())?),
        Checksum::None => None,
    };
    let dest = app.store.final_path(&req.target);
    if !app.config.overwrite && tokio_uring::fs::statx(&dest).await.is_ok() {
        return Err(FlowError::Exists);
    }

    // 203/305: the first file info to the pre-upload callback; the app may veto.
    t.timed(Step::PreCallback, pre_callback(app, &req)).await?;

    // 204/306: only now may the client send its body, once its temporary file exists with the
    // declared size reserved: a full disk answers 507 without a `100 Continue`.
    let sink = open_sink(app, &req).await?;
    if let Err(e) = ex.accept_body().await {
        sink.abort().await;
        return Err(FlowError::Body(e));
    }

    // 205/307: the body into a temporary file; its second file info recorded in the outbox
    // (durably, while nothing is visible yet); then the file made durable and visible in one
    // rename.
    let body = receive_body(ex, app, &req, sink, claims);
    let (sink, sha256) = t.timed(Step::Body, body).await?;
    let (stored, note) = t
        .timed(Step::Commit, commit(app, &req, sink, sha256))
        .await?;

    // 205/307: the second file info's first attempt; the outbox retries it until delivered.
    let notified = t
        .timed(Step::PostCallback, post_callback(app, &req, note))
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
    app.registry.get(appid).map_err(FlowError::Registry)
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

/// The upload's temporary file, with a `Content-Length` body's size reserved (`fallocate`).
async fn open_sink(app: &App, req: &UploadRequest) -> Result<BodySink, FlowError> {
    let sink = BodySink::create(app.store.tmp_path(&req.upload_id))
        .await
        .map_err(storage_error)?;
    if let Some(size) = req.size {
        if let Err(e) = sink.preallocate(size).await {
            sink.abort().await;
            return Err(storage_error(e));
        }
    }
    Ok(sink)
}

/// Streams the body into the temporary file ([`Exchange::receive_into`] picks the path per
/// byte: splice, registered buffers, or the connection's buffer). With `checksum = "sha256"`
/// the body is digested on its way and checked against the client's claims (400
/// `digest_mismatch`); returns the digest (hex) when computed. On any failure the temporary
/// file is removed.
async fn receive_body(
    ex: &mut Exchange<'_>,
    app: &App,
    req: &UploadRequest,
    mut sink: BodySink,
    claims: Option<Claims>,
) -> Result<(BodySink, Option<String>), FlowError> {
    let mut digest = claims.map(BodyDigest::new);
    // Spliced bytes never pass through the node, so a digest takes registered buffers.
    let plan = BodyPlan {
        splice: app.config.zero_copy && digest.is_none(),
        limit: req.limit,
    };
    let mut seen = |bytes: &[u8]| {
        if let Some(d) = digest.as_mut() {
            d.update(bytes);
        }
    };
    let checked = match ex.receive_into(&mut sink, plan, &mut seen).await {
        Ok(()) => digest
            .map(BodyDigest::finish)
            .transpose()
            .map_err(|m| FlowError::Refused(m.refusal())),
        Err(ReceiveError::Body(e)) => Err(FlowError::Body(e)),
        Err(ReceiveError::File(e)) => Err(storage_error(e)),
        Err(ReceiveError::TooLarge(limit)) => Err(FlowError::TooLarge(limit)),
    };
    match checked {
        Ok(sha256) => Ok((sink, sha256)),
        Err(e) => {
            sink.abort().await;
            Err(e)
        }
    }
}

/// Makes the upload durable and visible, its notification first:
///
/// 1. the second file info goes into the outbox and is flushed, *staged*: naming the file by
///    path, size and the temporary file's inode (which the rename keeps);
/// 2. the file is synced, renamed into place, and its directory synced: visible whole or not
///    at all;
/// 3. the entry is marked *placed* and given a fresh first-attempt window.
///
/// A crash after 1 and before the rename leaves an entry whose file is not visible: the next
/// start drops it (`notify::reconcile`); the client never got `201`. A crash after the rename
/// leaves a visible file whose notification is recorded. If 1 fails the body is dropped and the
/// client gets 503: a `201` always has its notification.
async fn commit(
    app: &App,
    req: &UploadRequest,
    sink: BodySink,
    sha256: Option<String>,
) -> Result<(Stored, Option<OutboxEntry>), FlowError> {
    let stored = Stored {
        size: sink.written(),
        url: format!(
            "{}/{}/{}",
            app.public_base(),
            req.target.appid,
            path::encode_rel(&req.target.rel)
        ),
        sha256,
    };
    let note = match record(app, req, &stored).await {
        Ok(note) => note,
        Err(e) => {
            sink.abort().await;
            return Err(e);
        }
    };
    let dest = app.store.final_path(&req.target);
    let placed = sink
        .commit(
            app.store.files_root(),
            &dest,
            app.config.fsync,
            app.config.overwrite,
        )
        .await;
    if let Err(e) = placed {
        if let Some(note) = &note {
            withdraw(app, note, &dest).await;
        }
        return Err(match e {
            CommitError::Exists => FlowError::Exists,
            CommitError::Io(e) => storage_error(e),
        });
    }
    if let Some(note) = &note {
        let _ = app.registry.outbox().placed(
            &note.event_id,
            crate::clock::unix_ms() + first_try_window(app),
        );
    }
    metrics::upload_stored(stored.size);
    Ok((stored, note))
}

/// The outbox keeps an entry from the background sender for this long after it is recorded or
/// placed, so the upload's own first attempt does not race a retry.
fn first_try_window(app: &App) -> u64 {
    (app.config.callback_timeout() * 2 + Duration::from_secs(2)).as_millis() as u64
}

/// Step 1 of [`commit`]: records the second file info, staged, and flushes it. `None` when no
/// post-callback is configured.
async fn record(
    app: &App,
    req: &UploadRequest,
    stored: &Stored,
) -> Result<Option<OutboxEntry>, FlowError> {
    let Some(post) = &req.post else {
        return Ok(None);
    };
    let tmp = tokio_uring::fs::statx(app.store.tmp_path(&req.upload_id))
        .await
        .map_err(storage_error)?;
    let info = SecondInfo {
        appid: req.target.appid.clone(),
        filename: req.target.filename().to_owned(),
        path: req.target.rel.clone(),
        size: stored.size,
        content_type: req.content_type.clone(),
        upload_id: req.upload_id.clone(),
        success: SuccessTrue,
        url: stored.url.clone(),
        sha256: stored.sha256.clone(),
    };
    let now = crate::clock::unix_ms();
    let entry = OutboxEntry {
        event_id: req.post_event_id(),
        appid: req.target.appid.clone(),
        url: post.url.to_string(),
        body: serde_json::to_vec(&info).map_err(|e| FlowError::Internal(e.to_string()))?,
        attempts: 0,
        next_attempt_at_ms: now + first_try_window(app),
        created_at_ms: now,
        last_error: None,
        guarded: post.guard.is_some(),
        file: Some(OutboxFile {
            rel: req.target.rel.clone(),
            size: stored.size,
            ino: tmp.stx_ino,
            placed: false,
        }),
    };
    match app.registry.outbox().enqueue_async(&entry).await {
        Ok(()) => Ok(Some(entry)),
        // Logged for the operator by the error funnel, with the upload id.
        Err(e) => Err(FlowError::Unrecorded(e)),
    }
}

/// The commit failed after the notification was recorded. If the rename happened anyway (a
/// directory sync failed after it), the file is visible: its notification stays, marked placed.
/// Otherwise the entry is removed (unflushed: should a crash bring it back, the next start drops
/// it, since its file is not visible).
async fn withdraw(app: &App, note: &OutboxEntry, dest: &std::path::Path) {
    let ours = match (&note.file, tokio_uring::fs::statx(dest).await) {
        (Some(f), Ok(st)) => st.stx_ino == f.ino && st.stx_size == f.size,
        _ => false,
    };
    let outbox = app.registry.outbox();
    let kept = if ours {
        tracing::error!(event_id = %note.event_id, "file visible but its commit failed; notification kept");
        outbox.placed(
            &note.event_id,
            crate::clock::unix_ms() + first_try_window(app),
        )
    } else {
        outbox.discard(&note.event_id)
    };
    if let Err(e) = kept {
        tracing::error!(error = %e, event_id = %note.event_id, "outbox update failed after a failed commit");
    }
}

fn storage_error(e: std::io::Error) -> FlowError {
    if is_disk_full(&e) {
        FlowError::DiskFull(e)
    } else {
        FlowError::Storage(e)
    }
}

/// The first attempt of the notification [`commit`] recorded. A failed attempt stays in the
/// outbox, which retries it with backoff until the app answers 2xx (across restarts).
async fn post_callback(app: &App, req: &UploadRequest, note: Option<OutboxEntry>) -> Notified {
    let (Some(post), Some(entry)) = (&req.post, note) else {
        return Notified::NoCallback;
    };
    let job = Job {
        url: entry.url.clone(),
        body: entry.body.clone(),
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
            let _ = app.registry.outbox().delivered_lazily(&entry.event_id);
            Notified::Delivered(answer)
        }
        None => {
            crate::notify::reschedule(app, &entry, format!("{outcome:?}"));
            // Before a `201 pending`, the placed mark is made durable too: the entry then no
            // longer depends on the file's inode (which `overwrite` may replace).
            let _ = app.registry.flush_async().await;
            Notified::Pending
        }
    }
}

/// 128 random bits, hex.
fn new_upload_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        // Fall back to time and a counter: unique within this process.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b[..8].copy_from_slice(&crate::clock::unix_ms().to_be_bytes());
        b[8..].copy_from_slice(&n.to_be_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
