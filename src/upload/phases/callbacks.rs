//! Phases 203/305 and 205/307: the pre-upload callback (the app decides), and the first
//! attempt of the post-upload callback (through the one delivery path, `crate::notify`).

use std::time::{Duration, Instant};

use crate::app::App;
use crate::callback::{pre_decision, ring, Job, Outcome};
use crate::metrics::{self, CallbackKind, CallbackOutcome};
use crate::notify::deliver::{self, Attempt};
use crate::registry::OutboxEntry;
use crate::upload::model::{Notified, UploadRequest};
use crate::upload::shape::Shape;
use crate::upload::FlowError;

/// Sends the first file info and waits for the app's decision without blocking the ring: a
/// veto, a failure or a timeout is the error that answers the client. An accepting answer
/// may shape the upload ([`Shape`]): its limit, path, content type and metadata are applied to
/// `req` here. An upload with no pre-callback (an app that registered none and a valid signed
/// token) is not asked.
pub(crate) async fn pre_callback(app: &App, req: &mut UploadRequest) -> Result<(), FlowError> {
    let Some(pre) = req.pre.clone() else {
        return Ok(());
    };
    let mut info = req.first_info();
    info.node_id = Some(app.node_id.clone());
    let job = Job {
        url: pre.url.to_string(),
        body: serde_json::to_vec(&info).map_err(|e| FlowError::Internal(e.to_string()))?,
        webhook_id: req.pre_event_id(),
        secrets: req.secrets.clone(),
        guard: pre.guard.clone(),
    };
    let started = Instant::now();
    let decision = pre_decision(&call(app, job, CallbackKind::Pre).await?);
    metrics::callback_done(
        CallbackKind::Pre,
        CallbackOutcome::of_pre(&decision),
        started.elapsed(),
    );
    let answer = decision.map_err(FlowError::Veto)?;
    let shape = Shape::of_answer(&answer, &req.target.appid).map_err(FlowError::Veto)?;
    let moved = shape.target.is_some();
    shape.apply(req)?;
    if moved {
        super::not_stored_yet(app, &req.target).await?;
    }
    Ok(())
}

/// Submits a job and awaits its outcome, bounded: a job that waited in a busy queue past the
/// callback timeout counts as a timeout rather than an unbounded wait.
async fn call(app: &App, job: Job, kind: CallbackKind) -> Result<Outcome, FlowError> {
    let rx = app.pool.submit(job).map_err(|e| {
        metrics::callback_rejected(kind);
        FlowError::Busy(e)
    })?;
    let bound = app.config.callback_timeout() * 2 + Duration::from_secs(1);
    match tokio::time::timeout(bound, rx).await {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(_)) => Err(FlowError::Internal("callback worker vanished".into())),
        Err(_) => Ok(Outcome::TimedOut),
    }
}

/// The first attempt of the notification [`commit`] recorded. A failed attempt stays in the
/// outbox, which retries it with backoff until the app answers 2xx (across restarts).
pub(crate) async fn post_callback(
    app: &App,
    req: &UploadRequest,
    note: Option<OutboxEntry>,
) -> Notified {
    let (Some(post), Some(entry)) = (&req.post, note) else {
        return Notified::NoCallback;
    };
    let job = deliver::job(&entry, req.secrets.clone(), post.guard.clone());
    let started = Instant::now();
    // From this ring thread when that needs no blocking call (`callback/ring.rs`); otherwise
    // through the pool.
    let on_ring = app.pool.over_http().then(|| ring::target(&job)).flatten();
    let outcome = match on_ring {
        Some((addr, path, host)) => {
            ring::call(&job, addr, &path, &host, app.config.callback_timeout()).await
        }
        None => match call(app, job, CallbackKind::Post).await {
            Ok(o) => o,
            Err(e) => Outcome::Failed(e.to_string()),
        },
    };
    match deliver::settle(app, &entry, &outcome, Attempt::First, started.elapsed()) {
        Some(answer) => Notified::Delivered(answer),
        None => {
            // Before a `201 pending`, the placed mark is made durable too: the entry then no
            // longer depends on the object's version (which `overwrite` may replace).
            let _ = app.registry.flush_async().await;
            Notified::Pending
        }
    }
}
