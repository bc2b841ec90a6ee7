//! The outbox sender: a background thread that retries post-callbacks recorded in sled until
//! the application answers 2xx, with exponential backoff, across restarts. Each retry carries
//! the same `webhook-id` and the exact body first recorded.
//!
//! A notification is recorded before its file becomes visible (`upload::flow::commit`), so it is
//! sent only while its file is visible ([`placement`]): [`reconcile`] drops, at startup, the
//! entries whose file a crash kept from appearing, and [`spawn`]'s sender checks again before
//! every attempt. No path sends a post-callback for a file that is not there.
//!
//! Each attempt goes to the app's *current* `callback_url_post` ([`deliver::target`]), so a
//! re-registration redirects what is pending; a notification undelivered for
//! `notify_max_age_s` moves to the dead list ([`deliver::reschedule`]) and waits there for a
//! retry asked through the management API (`crate::manage::outbox`), which [`Wake`]s this
//! thread.

pub mod deliver;
mod reconcile;
pub mod wake;

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
pub use wake::Wake;

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
                app.outbox_wake.sleep(TICK);
            }
        })
}

/// Publishes the outbox's backlog (pending entries), the age of its oldest pending entry and
/// the size of its dead list, in one pass.
fn sample(app: &App) {
    let (mut pending, mut dead, mut oldest) = (0usize, 0usize, None::<u64>);
    for entry in app.registry.outbox().entries().flatten() {
        if entry.is_dead() {
            dead += 1;
        } else {
            pending += 1;
            oldest = Some(oldest.map_or(entry.created_at_ms, |o| o.min(entry.created_at_ms)));
        }
    }
    metrics::outbox_sampled(pending, oldest);
    metrics::outbox_dead_sampled(dead);
}

/// One delivery attempt of `entry`, blocking this (non-ring) thread until the worker answers.
fn attempt(app: &App, entry: OutboxEntry) {
    if entry.is_dead() {
        return; // never due; only a revival makes it pending again
    }
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
    let url = match deliver::target(app, &entry) {
        Ok(url) => url,
        Err(why) => {
            reschedule(app, &entry, why);
            return;
        }
    };
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
        match app.policy().check(&url, &hosts) {
            Ok(checked) => Some(checked.into_parts().1),
            Err(e) => {
                reschedule(app, &entry, format!("policy: {e}"));
                return;
            }
        }
    } else {
        None
    };
    let mut job = deliver::job(&entry, secrets, guard);
    job.url = url;
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
