//! The durable queues of the origin, one small JSON file per entry:
//! - `data_dir/origin/queue/`: copies to make (`origin_write = "background"`), written (and with
//!   `fsync` synced, file then directory) **before** the upload's local commit, so a `201`
//!   always has its copy queued, and a crash at any moment leaves either no entry or one the
//!   copier can finish;
//! - `data_dir/origin/intents/`: objects put at the origin before their local commit
//!   (`before_callback`). Once the commit is seen the intent goes; an intent whose commit never
//!   happened (a crash between the PUT and the rename, a failed rename) makes the copier delete
//!   the object, if its `x-amz-meta-upload-id` still names this upload: no file is served
//!   anywhere that no client was told of and no post-callback names.
//!
//! An entry names the object and the version (the local file's inode, which the commit's
//! rename keeps) that must reach the origin. The copier takes entries oldest first and decides
//! from the disk alone:
//! - the file at the key has that version: copy it, then remove the entry;
//! - it does not, but the upload's temporary file still exists: the commit is under way, ask
//!   again later;
//! - neither: the commit failed, or a later upload or a delete replaced the file (which queued
//!   or did its own origin change): drop the entry.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// One queued copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `{appid}/{path}`: the object's key at the origin and its place under `files/`.
    pub key: String,
    /// The local version to copy.
    pub version: String,
    /// The content type to store with it.
    pub content_type: String,
    /// The upload's temporary file while its commit is under way.
    pub staged: PathBuf,
    pub queued_at_ms: u64,
    /// The upload (named in the origin object's metadata).
    #[serde(default)]
    pub upload_id: String,
}

/// The queue's directory.
pub struct Queue {
    dir: PathBuf,
    /// `fsync`: each entry synced (file and directory) before `push` returns. Without it an
    /// entry survives a crash of the process, not of the machine, like the node's other writes.
    sync: bool,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Queue {
    pub fn open(dir: PathBuf, sync: bool) -> io::Result<Queue> {
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(Queue { dir, sync })
    }

    /// Adds `entry`, durably: the entry's name (returned) sorts after every earlier one.
    pub fn push(&self, entry: &Entry) -> io::Result<String> {
        let name = format!(
            "{:016x}-{:08x}-{:06x}.json",
            entry.queued_at_ms,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed) & 0xff_ffff
        );
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(entry).map_err(io::Error::other)?)?;
        if self.sync {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, self.dir.join(&name))?;
        if self.sync {
            std::fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(name)
    }

    /// Removes an entry (done, or no longer wanted).
    pub fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(name));
    }

    /// Every entry, oldest first; unreadable ones are dropped (logged).
    pub fn entries(&self) -> io::Result<Vec<(String, Entry)>> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let parsed = std::fs::read(self.dir.join(&name))
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Entry>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(entry) => out.push((name, entry)),
                Err(e) => {
                    tracing::error!(entry = %name, error = %e, "origin queue: unreadable entry dropped");
                    self.remove(&name);
                }
            }
        }
        Ok(out)
    }

    /// How many copies wait.
    pub fn len(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// What the copier should do with an entry, from what the disk holds now.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Copy(PathBuf),
    Later,
    Drop,
}

/// Decides an entry's fate (see the module doc). `version_of` gives the local version of a
/// file (its inode), `None` when absent.
pub fn next(
    entry: &Entry,
    files_root: &Path,
    version_of: impl Fn(&Path) -> Option<String>,
) -> Next {
    let path = files_root.join(&entry.key);
    if version_of(&path).as_deref() == Some(entry.version.as_str()) {
        return Next::Copy(path);
    }
    if entry.staged.exists() {
        return Next::Later;
    }
    Next::Drop
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    struct Dir(PathBuf);
    impl Dir {
        fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ino(p: &Path) -> Option<String> {
        std::fs::metadata(p).ok().map(|m| m.ino().to_string())
    }

    #[test]
    fn entries_survive_reopen_in_order_and_decide_from_the_disk() {
        let root = std::env::temp_dir().join(format!("upgate-origin-queue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = Dir(root);
        let files = dir.path().join("files");
        std::fs::create_dir_all(files.join("app")).unwrap();
        let staged = dir.path().join("u1.part");
        std::fs::write(&staged, b"abc").unwrap();
        let version = ino(&staged).unwrap();
        let q = Queue::open(dir.path().join("queue"), true).unwrap();
        let e1 = Entry {
            key: "app/a.txt".into(),
            version: version.clone(),
            content_type: "text/plain".into(),
            staged: staged.clone(),
            queued_at_ms: 1,
            upload_id: "u1".into(),
        };
        let e2 = Entry {
            key: "app/b.txt".into(),
            queued_at_ms: 2,
            ..e1.clone()
        };
        let n2 = q.push(&e2).unwrap();
        let n1 = q.push(&e1).unwrap();
        let q = Queue::open(dir.path().join("queue"), true).unwrap();
        let got = q.entries().unwrap();
        assert_eq!(got, vec![(n1.clone(), e1.clone()), (n2, e2)]);
        assert_eq!(q.len(), 2);
        // The commit is under way: the staged file exists, the key does not yet.
        assert_eq!(next(&e1, &files, ino), Next::Later);
        // The rename keeps the inode: copy.
        std::fs::rename(&staged, files.join("app/a.txt")).unwrap();
        assert_eq!(next(&e1, &files, ino), Next::Copy(files.join("app/a.txt")));
        // Replaced by another upload (renamed over it, as a commit does): drop.
        std::fs::write(dir.path().join("u2.part"), b"new").unwrap();
        std::fs::rename(dir.path().join("u2.part"), files.join("app/a.txt")).unwrap();
        assert_eq!(next(&e1, &files, ino), Next::Drop);
        q.remove(&n1);
        assert_eq!(q.len(), 1);
    }
}
