//! The outbox sender: a background thread that retries post-callbacks recorded in sled until
//! the application answers 2xx, with exponential backoff, across restarts. Each retry carries
//! the same `webhook-id` and the exact body first recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::app::App;
use crate::callback::{post_delivered, Job, Outcome};
use crate::metrics::{self, CallbackKind, CallbackOutcome};
use crate::registry::{backoff_jittered, OutboxEntry};

/// How often the sender looks for due entries.
const TICK: Duration = Duration::from_millis(200);
/// Entries taken per tick.
const BATCH: usize = 64;
/// How often the outbox gauges (backlog, oldest age) are sampled: counting is O(backlog), so
/// it happens here, off the io_uring threads, rather than on every scrape.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Runs the sender until `stop` is set.
pub fn spawn(app: Arc<App>, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("upgate-outbox".into())
        .spawn(move || {
            let mut sampled: Option<Instant> = None;
            while !stop.load(Ordering::Relaxed) {
                if sampled.is_none_or(|t| t.elapsed() >= SAMPLE_EVERY) {
                    sample(&app);
                    sampled = Some(Instant::now());
                }
                let due = app
                    .registry
                    .outbox()
                    .due(now_ms(), BATCH)
                    .unwrap_or_default();
                for entry in due {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    attempt(&app, entry);
                }
                std::thread::sleep(TICK);
            }
        })
}

/// One delivery attempt of `entry`, blocking this (non-ring) thread until the worker answers.
fn attempt(app: &App, entry: OutboxEntry) {
    let secrets = app
        .registry
        .secrets_for_signing(&entry.appid, now_ms() / 1000)
        .unwrap_or_default();
    let guard = if entry.guarded {
        let hosts = app
            .registry
            .get(&entry.appid)
            .ok()
            .flatten()
            .map(|a| a.callback_hosts)
            .unwrap_or_default();
        match app.policy().check(&entry.url, &hosts) {
            Ok(checked) => Some(checked.into_parts().1),
            Err(e) => {
                reschedule(app, &entry, format!("policy: {e}"));
                return;
            }
        }
    } else {
        None
    };
    let job = Job {
        url: entry.url.clone(),
        body: entry.body.clone(),
        webhook_id: entry.event_id.clone(),
        secrets,
        guard,
    };
    let started = Instant::now();
    let outcome = match app.pool.submit(job) {
        Ok(rx) => rx
            .blocking_recv()
            .unwrap_or(Outcome::Failed("worker vanished".into())),
        Err(_) => {
            metrics::callback_rejected(CallbackKind::Retry);
            Outcome::Failed("callback queue full".into())
        }
    };
    metrics::callback_done(
        CallbackKind::Retry,
        CallbackOutcome::of_answer(&outcome),
        started.elapsed(),
    );
    if post_delivered(&outcome).is_some() {
        let _ = app.registry.outbox().delivered(&entry.event_id);
        tracing::info!(event_id = %entry.event_id, attempts = entry.attempts + 1, "post-callback delivered");
    } else {
        reschedule(app, &entry, format!("{outcome:?}"));
    }
}

/// Publishes the outbox's backlog and the age of its oldest entry.
fn sample(app: &App) {
    let outbox = app.registry.outbox();
    let oldest = outbox.oldest_created_ms().ok().flatten();
    metrics::outbox_sampled(outbox.len(), oldest);
}

/// Records a failed attempt of `entry` and when to try next (exponential backoff with jitter).
pub fn reschedule(app: &App, entry: &OutboxEntry, error: String) {
    let attempts = entry.attempts + 1;
    let next = now_ms() + backoff_jittered(attempts, &entry.event_id).as_millis() as u64;
    let _ = app
        .registry
        .outbox()
        .reschedule(&entry.event_id, attempts, next, Some(error));
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
