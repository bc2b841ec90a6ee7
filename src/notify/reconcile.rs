//! Which notifications may be sent: only those whose object is visible. [`placement`] asks
//! the store before every attempt; [`reconcile`] settles the outbox at startup, before
//! anything is sent or accepted.

use std::io;

use crate::registry::{OutboxEntry, OutboxJournal, Registry, RegistryError};
use crate::storage::{ObjectStore, Store, Target};

/// Whether the file an entry announces is visible in the store.
#[derive(Debug)]
pub enum Placement {
    /// The upload's file is in place (or the entry predates file tracking): it may be sent.
    Visible,
    /// No file at the path, or, while the entry is staged, a file that is not the upload's
    /// (another version or size: some other upload won the path).
    Missing,
    /// The path could not be examined (permissions, I/O): decide later.
    Unreadable(io::Error),
}

/// Where `entry`'s file stands. A staged entry's file must be the very object the upload wrote
/// (same version, same size); a placed entry's file need only exist (`overwrite` may have
/// replaced it since).
pub fn placement(store: &Store, entry: &OutboxEntry) -> Placement {
    let Some(file) = &entry.file else {
        return Placement::Visible;
    };
    let key = Target {
        appid: entry.appid.clone(),
        rel: file.rel.clone(),
    };
    match store.head_blocking(&key) {
        Ok(Some(m)) if file.placed || (m.version == file.version && m.size == file.size) => {
            Placement::Visible
        }
        Ok(_) => Placement::Missing,
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
pub fn reconcile(registry: &Registry, store: &Store) -> Result<Reconciled, RegistryError> {
    let outbox = registry.outbox();
    let now = crate::clock::unix_ms();
    let mut done = Reconciled::default();
    // sled iterators tolerate writes: each key is visited once, whatever the loop changes.
    for entry in outbox.entries() {
        let entry = entry?;
        match placement(store, &entry) {
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
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::registry::OutboxFile;
    use crate::storage::{LocalStore, Version};
    use std::sync::atomic::Ordering;

    fn ino(v: u64) -> Version {
        Version(v.to_string())
    }

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
            version: ino(std::fs::metadata(&path).unwrap().ino()),
            placed,
        }
    }

    #[test]
    fn placement_needs_the_uploads_own_file_while_staged_and_any_file_once_placed() {
        let d = dir();
        let root = d.0.join("files");
        let store = Store::Local(LocalStore::open(&d.0).unwrap());
        let ours = stored(&root, "a.bin", b"abc", false);
        assert!(matches!(
            placement(&store, &entry("e", Some(ours.clone()), 0, 0)),
            Placement::Visible
        ));
        let other_inode = OutboxFile {
            version: ino(ours.version.0.parse::<u64>().unwrap() + 1),
            ..ours.clone()
        };
        assert!(matches!(
            placement(&store, &entry("e", Some(other_inode.clone()), 0, 0)),
            Placement::Missing
        ));
        let other_size = OutboxFile {
            size: 4,
            ..ours.clone()
        };
        assert!(matches!(
            placement(&store, &entry("e", Some(other_size), 0, 0)),
            Placement::Missing
        ));
        let placed = OutboxFile {
            placed: true,
            ..other_inode
        };
        assert!(matches!(
            placement(&store, &entry("e", Some(placed.clone()), 0, 0)),
            Placement::Visible
        ));
        let gone = OutboxFile {
            rel: "nothing.bin".into(),
            ..placed
        };
        assert!(matches!(
            placement(&store, &entry("e", Some(gone), 0, 0)),
            Placement::Missing
        ));
        assert!(matches!(
            placement(&store, &entry("e", None, 0, 0)),
            Placement::Visible
        ));
    }

    #[test]
    fn reconcile_drops_entries_without_their_file_and_sends_interrupted_ones_now() {
        let d = dir();
        let root = d.0.join("files");
        let store = Store::Local(LocalStore::open(&d.0).unwrap());
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
                    version: ino(7),
                    placed: false,
                }),
                0,
                far,
            ),
            entry("renamed", Some(ours), 0, far),
            entry(
                "lost_the_race",
                Some(OutboxFile {
                    version: ino(taken.version.0.parse::<u64>().unwrap() + 1),
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
                    version: ino(9),
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
        let done = reconcile(&registry, &store).unwrap();
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
        assert_eq!(reconcile(&registry, &store).unwrap().dropped, 0);
    }
}
