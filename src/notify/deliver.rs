//! The one delivery path of a post-upload notification: the upload's own first attempt (on its
//! io_uring thread, `upload::phases::post_callback`) and every retry of the outbox sender (on
//! its own thread, [`super::spawn`]) build the same call from the recorded entry and settle
//! its outcome the same way: metrics, then delivered or rescheduled with backoff.

use std::time::Duration;

use crate::app::App;
use crate::callback::{post_delivered, Guard, Job, Outcome};
use crate::metrics::{self, CallbackKind, CallbackOutcome};
use crate::registry::{backoff_jittered_within, OutboxEntry, OutboxJournal};

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
            reschedule(app, entry, format!("{outcome:?}"));
            None
        }
    }
}

/// Records a failed attempt of `entry` and when to try next (exponential backoff with jitter,
/// capped by `outbox_retry_max_ms`).
pub fn reschedule(app: &App, entry: &OutboxEntry, error: String) {
    let attempts = entry.attempts + 1;
    let cap = Duration::from_millis(app.config.outbox_retry_max_ms).max(super::TICK);
    let delay = backoff_jittered_within(attempts, &entry.event_id, cap);
    let next = crate::clock::unix_ms() + delay.as_millis() as u64;
    let _ = app
        .registry
        .outbox()
        .reschedule(&entry.event_id, attempts, next, Some(error));
}
