//! Phase 205/307: the second file info into the outbox, then the object made durable and
//! visible.

use std::time::Duration;

use crate::app::App;
use crate::callback::{SecondInfo, SuccessTrue};
use crate::metrics;
use crate::origin::{OriginError, OriginWrite, Staged};
use crate::registry::{OutboxEntry, OutboxFile, OutboxJournal};
use crate::storage::{
    path, CommitError, CommitOptions, ObjectStore, Target, Upload, UploadHandle, Version,
};
use crate::upload::model::{Stored, UploadRequest};
use crate::upload::FlowError;

use super::storage_error;

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
pub(crate) async fn commit(
    app: &App,
    req: &UploadRequest,
    sink: Upload,
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
    let note = match record(app, req, &stored, sink.version()).await {
        Ok(note) => note,
        Err(e) => {
            sink.abort().await;
            return Err(e);
        }
    };
    // The app's quota takes the bytes (a body of unknown size may not fit any more: then
    // nothing is kept).
    if let Err(e) = account(app, req, stored.size).await {
        if let Some(note) = &note {
            withdraw(app, note, &req.target).await;
        }
        sink.abort().await;
        return Err(e);
    }
    // Many nodes: the origin takes the file (or its queued copy) before it is visible here.
    if let Err(e) = to_origin(app, req, &sink).await {
        if let Some(note) = &note {
            withdraw(app, note, &req.target).await;
        }
        if req.quota.is_some() {
            app.quotas.removed(&req.target.appid, stored.size);
        }
        sink.abort().await;
        return Err(e);
    }
    let opts = CommitOptions {
        fsync: app.config.fsync,
        replace: app.config.overwrite,
        content_type: Some(req.content_type.clone()),
    };
    let placed = sink.commit(&req.target, opts).await;
    if let Err(e) = placed {
        if let Some(note) = &note {
            withdraw(app, note, &req.target).await;
        }
        if req.quota.is_some() {
            app.quotas.removed(&req.target.appid, stored.size);
        }
        if let (Some(origin), CommitError::Io(_)) = (app.origin(), &e) {
            if origin.write_mode() == OriginWrite::BeforeCallback {
                // The origin took a file this node could not place: it must not be served
                // from another node either (an `Exists` loser's copy is the race documented
                // in docs/operations.md, "Many nodes").
                let _ = origin.delete(&req.target).await;
            }
        }
        return Err(match e {
            CommitError::Exists => FlowError::Exists,
            CommitError::Io(e) => storage_error(e),
        });
    }
    if let Some(origin) = app.origin() {
        origin.wake_copier();
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

/// `store = "s3"`: `before_callback` writes the staged body to the origin (503
/// `origin_unavailable` when it cannot; 409 when `overwrite = false` and the origin holds the
/// key already); `background` queues its copy durably. Nothing to do with a local store.
async fn to_origin(app: &App, req: &UploadRequest, sink: &Upload) -> Result<(), FlowError> {
    let Some(origin) = app.origin() else {
        return Ok(());
    };
    let Some(staged) = sink.staged_path() else {
        return Err(FlowError::Internal(
            "the origin needs the local store".into(),
        ));
    };
    let version = &sink.version().0;
    let upload = Staged {
        path: staged,
        version,
        content_type: &req.content_type,
        upload_id: &req.upload_id,
    };
    let done = match origin.write_mode() {
        OriginWrite::BeforeCallback => {
            let absent = !app.config.overwrite;
            origin.put(&req.target, &upload, absent).await
        }
        OriginWrite::Background => origin.queue(&req.target, &upload).await,
    };
    done.map_err(|e| match e {
        OriginError::Exists => FlowError::Exists,
        e => FlowError::Origin(e),
    })
}

/// Turns the upload's quota reservation into stored bytes (net of a file it replaces), or
/// refuses a body of unknown size that no longer fits (403 `quota_exceeded`).
async fn account(app: &App, req: &UploadRequest, size: u64) -> Result<(), FlowError> {
    let Some(hold) = &req.quota else {
        return Ok(());
    };
    let replaced = match app.config.overwrite {
        true => app
            .store
            .head(&req.target)
            .await
            .ok()
            .flatten()
            .map_or(0, |m| m.size),
        false => 0,
    };
    hold.commit(size, replaced).map_err(|denied| {
        metrics::quota_refused(denied.kind());
        FlowError::from(crate::upload::Refusal::Quota(denied))
    })
}

/// The outbox keeps an entry from the background sender for this long after it is recorded or
/// placed, so the upload's own first attempt does not race a retry.
pub(crate) fn first_try_window(app: &App) -> u64 {
    (app.config.callback_timeout() * 2 + Duration::from_secs(2)).as_millis() as u64
}

/// Step 1 of [`commit`]: records the second file info, staged, and flushes it. `None` when no
/// post-callback is configured.
async fn record(
    app: &App,
    req: &UploadRequest,
    stored: &Stored,
    version: &Version,
) -> Result<Option<OutboxEntry>, FlowError> {
    let Some(post) = &req.post else {
        return Ok(None);
    };
    let info = SecondInfo {
        event: Default::default(),
        appid: req.target.appid.clone(),
        filename: req.target.filename().to_owned(),
        path: req.target.rel.clone(),
        size: stored.size,
        content_type: req.content_type.clone(),
        upload_id: req.upload_id.clone(),
        success: SuccessTrue,
        url: stored.url.clone(),
        sha256: stored.sha256.clone(),
        metadata: req.metadata.clone(),
        node_id: Some(app.node_id.clone()),
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
            version: version.clone(),
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
async fn withdraw(app: &App, note: &OutboxEntry, key: &Target) {
    let ours = match (&note.file, app.store.head(key).await) {
        (Some(f), Ok(Some(meta))) => meta.version == f.version && meta.size == f.size,
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
