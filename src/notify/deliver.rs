//! The one delivery path of a post-upload notification: the upload's own first attempt (on its
//! io_uring thread, `upload::phases::post_callback`) and every retry of the outbox sender (on
//! its own thread, [`super::spawn`]) build the same call from the recorded entry and settle
//! its outcome the same way: metrics, then delivered or rescheduled with backoff, or, once
//! `notify_max_age_s` has passed, moved to the dead list.

use std::time::Duration;

use crate::app::App;
use crate::callback::{post_delivered, Guard, Job, Outcome};
use crate::metrics::{self, CallbackKind, CallbackOutcome};
use crate::registry::{backoff_jittered_within, OutboxEntry, OutboxJournal};

/// Where the next attempt of `entry` goes: a client-carried URL (`guarded`) keeps its own; a
/// registered app's notification goes to the app's *current* `callback_url_post`, so a
/// re-registration redirects what is pending. `Err` (why it must wait) when the app is gone or
/// names no post-callback any more: the entry is never sent anywhere else.
pub fn target(app: &App, entry: &OutboxEntry) -> Result<String, String> {
    if entry.guarded {
        return Ok(entry.url.clone());
    }
    match app.registry.get(&entry.appid) {
        Ok(Some(record)) => record
            .callback_url_post
            .map(|u| u.to_string())
            .ok_or_else(|| "the app's registration names no callback_url_post; waiting".into()),
        Ok(None) => Err("the app is not registered; waiting for it to be registered again".into()),
        Err(e) => Err(format!("registry: {e}")),
    }
}

/// What an undelivered attempt came to, for `last_error` and the log.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Answered { status, .. } => format!("the app answered {status}"),
        Outcome::TimedOut => "no answer within callback_timeout_ms".into(),
        Outcome::ConnectFailed(e) => format!("connection failed: {e}"),
        Outcome::Refused(e) => format!("refused by the callback policy: {e}"),
        Outcome::Failed(e) => format!("failed: {e}"),
    }
}

/// Which attempt of a notification this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The upload's own, before the client is answered.
    First,
    /// The outbox sender's.
    Retry,
}

/// The call for `entry`: the exact body recorded, the same `webhook-id` on every attempt.
pub fn job(entry: &OutboxEntry, secrets: Vec<String>, guard: Option<Guard>) -> Job {
    Job {
        url: entry.url.clone(),
        body: entry.body.clone(),
        webhook_id: entry.event_id.clone(),
        secrets,
        guard,
    }
}

/// Records what an attempt came to: the metrics, then the entry delivered (a 2xx: returns the
/// app's answer) or rescheduled. A first attempt's delivery is recorded without a flush (a
/// crash re-sends it once, with the same `webhook-id`); a retry's is flushed.
pub fn settle(
    app: &App,
    entry: &OutboxEntry,
    outcome: &Outcome,
    attempt: Attempt,
    took: Duration,
) -> Option<serde_json::Value> {
    let kind = match attempt {
        Attempt::First => CallbackKind::Post,
        Attempt::Retry => CallbackKind::Retry,
    };
    metrics::callback_done(kind, CallbackOutcome::of_answer(outcome), took);
    match post_delivered(outcome) {
        Some(answer) => {
            let outbox = app.registry.outbox();
            let _ = match attempt {
                Attempt::First => outbox.delivered_lazily(&entry.event_id),
                Attempt::Retry => outbox.delivered(&entry.event_id),
            };
            if attempt == Attempt::Retry {
                tracing::info!(event_id = %entry.event_id, attempts = entry.attempts + 1, "post-callback delivered");
            }
            Some(answer)
        }
        None => {
            // The first attempt runs on an io_uring thread: it never buries (a flush); a late
            // one is left due at its deadline, for the sender to attempt and bury.
            reschedule_or_bury(app, entry, describe(outcome), attempt == Attempt::Retry);
            None
        }
    }
}

/// Records a failed attempt of `entry` (logged at WARN) and when to try next: exponential
/// backoff with jitter, capped by `outbox_retry_max_ms`, and never past the entry's deadline
/// (`created + notify_max_age_s`), so the last attempt comes on time. An attempt failing at or
/// after the deadline moves the entry to the dead list instead (flushed, WARN, counted).
pub fn reschedule(app: &App, entry: &OutboxEntry, error: String) {
    reschedule_or_bury(app, entry, error, true)
}

fn reschedule_or_bury(app: &App, entry: &OutboxEntry, error: String, may_bury: bool) {
    let attempts = entry.attempts + 1;
    let now = crate::clock::unix_ms();
    let deadline = entry
        .created_at_ms
        .saturating_add(app.config.notify_max_age_s.saturating_mul(1000));
    let upload_id = entry.upload_id();
    if now >= deadline && may_bury {
        tracing::warn!(
            event_id = %entry.event_id,
            appid = %entry.appid,
            upload_id = upload_id.as_deref(),
            attempts,
            last_error = %error,
            "post-callback undelivered for notify_max_age_s; moved to the dead list (retry it with POST /upload/outbox/{{appid}}/{{event_id}}/retry)"
        );
        if let Ok(true) = app
            .registry
            .outbox()
            .bury(&entry.event_id, attempts, Some(error))
        {
            metrics::outbox_died();
        }
        return;
    }
    let cap = Duration::from_millis(app.config.outbox_retry_max_ms).max(super::TICK);
    let delay = backoff_jittered_within(attempts, &entry.event_id, cap);
    let next = (now + delay.as_millis() as u64).min(deadline);
    tracing::warn!(
        event_id = %entry.event_id,
        appid = %entry.appid,
        upload_id = upload_id.as_deref(),
        callback = "post",
        attempts,
        error = %error,
        retry_in_ms = next.saturating_sub(now),
        "post-callback not delivered; will retry"
    );
    let _ = app
        .registry
        .outbox()
        .reschedule(&entry.event_id, attempts, next, Some(error));
}
