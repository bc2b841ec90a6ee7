//! The outbox sender: a background thread that retries post-callbacks recorded in sled until
//! the application answers 2xx, with exponential backoff, across restarts. Each retry carries
//! the same `webhook-id` and the exact body first recorded.
//!
//! A notification is recorded before its file becomes visible (`upload::flow::commit`), so it is
//! sent only while its file is visible ([`placement`]): [`reconcile`] drops, at startup, the
//! entries whose file a crash kept from appearing, and [`spawn`]'s sender checks again before
//! every attempt. No path sends a post-callback for a file that is not there.

pub mod deliver;
mod reconcile;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::callback::Outcome;
use crate::metrics::{self, CallbackKind};
use crate::registry::{OutboxEntry, OutboxJournal};

use deliver::{reschedule, Attempt};
pub use reconcile::{placement, reconcile, Placement, Reconciled};

/// How often the sender looks for due entries.
pub(crate) const TICK: Duration = Duration::from_millis(200);
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
                    .due(crate::clock::unix_ms(), BATCH)
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

/// Publishes the outbox's backlog and the age of its oldest entry.
fn sample(app: &App) {
    let outbox = app.registry.outbox();
    let oldest = outbox.oldest_created_ms().ok().flatten();
    metrics::outbox_sampled(outbox.len(), oldest);
}

/// One delivery attempt of `entry`, blocking this (non-ring) thread until the worker answers.
fn attempt(app: &App, entry: OutboxEntry) {
    match placement(&app.store, &entry) {
        Placement::Visible => {}
        Placement::Missing if entry.file.as_ref().is_some_and(|f| f.placed) => {
            tracing::warn!(event_id = %entry.event_id, "file gone; post-callback dropped");
            let _ = app.registry.outbox().discard(&entry.event_id);
            return;
        }
        // Staged: the upload is still placing its file (a long sync), or failed to and could not
        // withdraw the entry; the next start decides.
        Placement::Missing => {
            reschedule(app, &entry, "file not visible yet".into());
            return;
        }
        Placement::Unreadable(e) => {
            reschedule(app, &entry, format!("file: {e}"));
            return;
        }
    }
    let secrets = app
        .registry
        .secrets_for_signing(&entry.appid, crate::clock::unix_ms() / 1000)
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
    let job = deliver::job(&entry, secrets, guard);
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
    deliver::settle(app, &entry, &outcome, Attempt::Retry, started.elapsed());
}
