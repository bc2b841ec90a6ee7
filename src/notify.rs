//! The outbox sender: a background thread that retries post-callbacks recorded in sled until
//! the application answers 2xx, with exponential backoff, across restarts. Each retry carries
//! the same `webhook-id` and the exact body first recorded.
//!
//! A notification is recorded before its file becomes visible (`upload::flow::commit`), so it is
//! sent only while its file is visible ([`placement`]): [`reconcile`] drops, at startup, the
//! entries whose file a crash kept from appearing, and [`spawn`]'s sender checks again before
//! every attempt. No path sends a post-callback for a file that is not there.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::callback::{post_delivered, Job, Outcome};
use crate::metrics::{self, CallbackKind, CallbackOutcome};
use crate::registry::OutboxJournal;
use crate::registry::{backoff_jittered_within, OutboxEntry, Registry, RegistryError};

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

/// One delivery attempt of `entry`, blocking this (non-ring) thread until the worker answers.
fn attempt(app: &App, entry: OutboxEntry) {
    match placement(app.store.files_root(), &entry) {
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

/// Records a failed attempt of `entry` and when to try next (exponential backoff with jitter,
/// capped by `outbox_retry_max_ms`).
pub fn reschedule(app: &App, entry: &OutboxEntry, error: String) {
    let attempts = entry.attempts + 1;
    let cap = Duration::from_millis(app.config.outbox_retry_max_ms).max(TICK);
    let delay = backoff_jittered_within(attempts, &entry.event_id, cap);
    let next = crate::clock::unix_ms() + delay.as_millis() as u64;
    let _ = app
        .registry
        .outbox()
        .reschedule(&entry.event_id, attempts, next, Some(error));
}

/// Whether the file an entry announces is visible under `files_root`.
#[derive(Debug)]
pub enum Placement {
    /// The upload's file is in place (or the entry predates file tracking): it may be sent.
    Visible,
    /// No file at the path, or, while the entry is staged, a file that is not the upload's
    /// (another inode or size: some other upload won the path).
    Missing,
    /// The path could not be examined (permissions, I/O): decide later.
    Unreadable(io::Error),
}

/// Where `entry`'s file stands. A staged entry's file must be the very file the upload wrote
/// (same inode, same size); a placed entry's file need only exist (`overwrite` may have replaced
/// it since).
pub fn placement(files_root: &Path, entry: &OutboxEntry) -> Placement {
    let Some(file) = &entry.file else {
        return Placement::Visible;
    };
    match std::fs::symlink_metadata(files_root.join(&entry.appid).join(&file.rel)) {
        Ok(m) if m.is_file() && (file.placed || (m.ino() == file.ino && m.len() == file.size)) => {
            Placement::Visible
        }
        Ok(_) => Placement::Missing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Placement::Missing,
        Err(e) => Placement::Unreadable(e),
    }
}

/// What [`reconcile`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Entries kept (their file is visible, or could not be examined).
    pub kept: usize,
    /// Entries dropped: their file is not visible (the node stopped between recording the
    /// notification and the rename, so the client never got `201`), or it is gone.
    pub dropped: usize,
    /// Kept entries whose first attempt never finished, made due at once.
    pub due_now: usize,
}

/// Startup, before the temporary files are removed and before the sender starts: every entry
/// whose file is not visible is dropped (never completed: the client of an upload cut off before
/// its rename never got `201`, and may have retried); a staged entry whose file is visible is
/// marked placed; an entry whose first attempt never finished (no attempt recorded) is made due
/// now rather than after the first-attempt window. Flushed before returning.
pub fn reconcile(registry: &Registry, files_root: &Path) -> Result<Reconciled, RegistryError> {
    let outbox = registry.outbox();
    let now = crate::clock::unix_ms();
    let mut done = Reconciled::default();
    // sled iterators tolerate writes: each key is visited once, whatever the loop changes.
    for entry in outbox.entries() {
        let entry = entry?;
        match placement(files_root, &entry) {
            Placement::Missing => {
                tracing::warn!(
                    event_id = %entry.event_id,
                    path = %entry.file.as_ref().map_or("", |f| f.rel.as_str()),
                    "post-callback dropped at startup: its file is not visible"
                );
                outbox.discard(&entry.event_id)?;
                done.dropped += 1;
                continue;
            }
            Placement::Unreadable(e) => {
                tracing::warn!(event_id = %entry.event_id, error = %e, "file of a post-callback unreadable; kept");
            }
            Placement::Visible => {
                let staged = entry.file.as_ref().is_some_and(|f| !f.placed);
                let due = if entry.attempts == 0 {
                    done.due_now += 1;
                    now
                } else {
                    entry.next_attempt_at_ms
                };
                if staged || due != entry.next_attempt_at_ms {
                    outbox.placed(&entry.event_id, due)?;
                }
            }
        }
        done.kept += 1;
    }
    outbox.flush()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    use super::*;
    use crate::registry::OutboxFile;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir() -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "upgate-notify-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("files/app1")).unwrap();
        Dir(d)
    }

    fn entry(id: &str, file: Option<OutboxFile>, attempts: u32, next: u64) -> OutboxEntry {
        OutboxEntry {
            event_id: id.into(),
            appid: "app1".into(),
            url: "http://app.example/post".into(),
            body: format!("{{\"upload_id\":\"{id}\"}}").into_bytes(),
            attempts,
            next_attempt_at_ms: next,
            created_at_ms: 1,
            last_error: None,
            guarded: false,
            file,
        }
    }

    /// Writes `files/app1/<rel>` and returns its reference (`placed` as given).
    fn stored(root: &Path, rel: &str, bytes: &[u8], placed: bool) -> OutboxFile {
        let path = root.join("app1").join(rel);
        std::fs::write(&path, bytes).unwrap();
        OutboxFile {
            rel: rel.into(),
            size: bytes.len() as u64,
            ino: std::fs::metadata(&path).unwrap().ino(),
            placed,
        }
    }

    #[test]
    fn placement_needs_the_uploads_own_file_while_staged_and_any_file_once_placed() {
        let d = dir();
        let root = d.0.join("files");
        let ours = stored(&root, "a.bin", b"abc", false);
        assert!(matches!(
            placement(&root, &entry("e", Some(ours.clone()), 0, 0)),
            Placement::Visible
        ));
        let other_inode = OutboxFile {
            ino: ours.ino + 1,
            ..ours.clone()
        };
        assert!(matches!(
            placement(&root, &entry("e", Some(other_inode.clone()), 0, 0)),
            Placement::Missing
        ));
        let other_size = OutboxFile {
            size: 4,
            ..ours.clone()
        };
        assert!(matches!(
            placement(&root, &entry("e", Some(other_size), 0, 0)),
            Placement::Missing
        ));
        let placed = OutboxFile {
            placed: true,
            ..other_inode
        };
        assert!(matches!(
            placement(&root, &entry("e", Some(placed.clone()), 0, 0)),
            Placement::Visible
        ));
        let gone = OutboxFile {
            rel: "nothing.bin".into(),
            ..placed
        };
        assert!(matches!(
            placement(&root, &entry("e", Some(gone), 0, 0)),
            Placement::Missing
        ));
        assert!(matches!(
            placement(&root, &entry("e", None, 0, 0)),
            Placement::Visible
        ));
    }

    #[test]
    fn reconcile_drops_entries_without_their_file_and_sends_interrupted_ones_now() {
        let d = dir();
        let root = d.0.join("files");
        let registry = Registry::open(&d.0).unwrap();
        let ob = registry.outbox();
        let far = crate::clock::unix_ms() + 3_600_000;
        let ours = stored(&root, "ours.bin", b"ours", false);
        let taken = stored(&root, "taken.bin", b"someone else's", false);
        let kept_placed = stored(&root, "placed.bin", b"placed", true);
        let entries = [
            entry(
                "never_renamed",
                Some(OutboxFile {
                    rel: "none.bin".into(),
                    size: 3,
                    ino: 7,
                    placed: false,
                }),
                0,
                far,
            ),
            entry("renamed", Some(ours), 0, far),
            entry(
                "lost_the_race",
                Some(OutboxFile {
                    ino: taken.ino + 1,
                    ..taken
                }),
                0,
                far,
            ),
            entry(
                "placed_gone",
                Some(OutboxFile {
                    rel: "deleted.bin".into(),
                    size: 1,
                    ino: 9,
                    placed: true,
                }),
                2,
                far,
            ),
            entry("placed_retrying", Some(kept_placed), 3, far),
            entry("legacy", None, 0, far),
        ];
        for e in &entries {
            ob.enqueue(e).unwrap();
        }
        let done = reconcile(&registry, &root).unwrap();
        assert_eq!(
            done,
            Reconciled {
                kept: 3,
                dropped: 3,
                due_now: 2
            }
        );
        let left: Vec<String> = ob.entries().map(|e| e.unwrap().event_id).collect();
        assert_eq!(left, ["legacy", "placed_retrying", "renamed"]);
        let renamed = ob.get("renamed").unwrap().unwrap();
        assert!(renamed.file.as_ref().unwrap().placed);
        assert!(renamed.next_attempt_at_ms <= crate::clock::unix_ms());
        assert_eq!(renamed.body, entries[1].body);
        assert_eq!(
            ob.get("placed_retrying")
                .unwrap()
                .unwrap()
                .next_attempt_at_ms,
            far,
            "a retried entry keeps its backoff"
        );
        let due: Vec<String> = ob
            .due(crate::clock::unix_ms(), 10)
            .unwrap()
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(due.len(), 2);
        assert!(due.contains(&"renamed".to_string()) && due.contains(&"legacy".to_string()));
        drop(registry);
        // Durable: a second start finds the same outbox and has nothing to drop.
        let registry = Registry::open(&d.0).unwrap();
        assert_eq!(registry.outbox().len(), 3);
        assert_eq!(reconcile(&registry, &root).unwrap().dropped, 0);
    }
}
