//! Telling every node that a file changed at the origin, through etcd (`registry = "etcd"`),
//! so that no node serves its cached copy of a file another node overwrote or deleted.
//!
//! A node that wrote or deleted `{appid}/{path}` at the origin puts
//! `<etcd_prefix>files/{appid}/{path}` = `{"node": …, "op": "put" | "delete"}`, under a lease
//! of [`LEASE_TTL`] (the keys are announcements, not records: they go by themselves). Every
//! node watches that prefix; an announcement from another node removes the local copy, so the
//! next download misses and fetches the origin's. The watch resumes from the revision it last
//! applied (kept in `data_dir/origin/watch-revision`), so a node that restarts drops what
//! changed while it was down; if etcd compacted that revision away, the node cannot know what
//! changed and says so in its log (see `docs/operations.md`, "Many nodes").

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::registry::etcd_client::{EtcdClient, EtcdError, WatchEvent, WatchMessage};

/// How long an announcement stays in etcd; a node away for longer than etcd keeps history
/// misses it anyway.
const LEASE_TTL: Duration = Duration::from_secs(3600);
/// Attempts at one announcement before it is given up (logged at ERROR).
const ATTEMPTS: u32 = 3;
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, Deserialize)]
struct Announcement {
    node: String,
    op: String,
}

/// Announces this node's origin changes and drops other nodes' from the local cache.
pub struct Announcer {
    client: EtcdClient,
    prefix: Vec<u8>,
    node_id: String,
    /// The lease announcements are put under, and when it was granted.
    lease: Mutex<Option<(i64, Instant)>>,
}

impl Announcer {
    pub fn new(endpoints: &[String], etcd_prefix: &str, node_id: &str) -> Announcer {
        Announcer {
            client: EtcdClient::new(endpoints),
            prefix: format!("{etcd_prefix}files/").into_bytes(),
            node_id: node_id.to_owned(),
            lease: Mutex::new(None),
        }
    }

    /// A lease with at least half its time left.
    fn lease(&self) -> Result<i64, EtcdError> {
        let mut held = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((id, at)) = *held {
            if at.elapsed() < LEASE_TTL / 2 {
                return Ok(id);
            }
        }
        let id = self.client.grant(LEASE_TTL.as_secs())?;
        *held = Some((id, Instant::now()));
        Ok(id)
    }

    /// Tells every node that `key` (`{appid}/{path}`) changed at the origin (blocking; the
    /// origin's threads call it).
    pub fn announce(&self, key: &str, deleted: bool) {
        let value = serde_json::to_vec(&Announcement {
            node: self.node_id.clone(),
            op: if deleted { "delete" } else { "put" }.to_owned(),
        })
        .unwrap_or_default();
        let mut full = self.prefix.clone();
        full.extend_from_slice(key.as_bytes());
        let mut wait = RETRY_FIRST;
        for attempt in 1..=ATTEMPTS {
            match self.lease().and_then(|l| self.client.put(&full, &value, l)) {
                Ok(_) => return,
                Err(e) if attempt == ATTEMPTS => {
                    tracing::error!(%key, error = %e, "origin: could not announce a change to the other nodes; they may serve their cached copy until it is replaced");
                }
                Err(e) => {
                    // A lease that etcd no longer knows (it restarted without it) is granted anew.
                    if matches!(e, EtcdError::Protocol(_)) {
                        *self.lease.lock().unwrap_or_else(PoisonError::into_inner) = None;
                    }
                    thread::sleep(wait);
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// The watch thread's loop: until `stop`, removes from `files_root` what other nodes
    /// announce, resuming from the revision kept in `state`.
    pub fn watch_forever(
        self: Arc<Self>,
        files_root: PathBuf,
        state: PathBuf,
        stop: Arc<AtomicBool>,
    ) {
        let mut wait = RETRY_FIRST;
        let mut next = read_revision(&state);
        while !stop.load(Ordering::Relaxed) {
            let start = match next {
                Some(r) => r,
                None => match self.client.revision(&self.prefix) {
                    Ok(r) => r + 1,
                    Err(_) => {
                        thread::sleep(wait);
                        wait = (wait * 2).min(RETRY_MAX);
                        continue;
                    }
                },
            };
            let mut watch = match self.client.watch(&self.prefix, start) {
                Ok(w) => w,
                Err(_) => {
                    thread::sleep(wait);
                    wait = (wait * 2).min(RETRY_MAX);
                    continue;
                }
            };
            next = Some(start);
            while !stop.load(Ordering::Relaxed) {
                match watch.next_message() {
                    Ok(WatchMessage::Created) => wait = RETRY_FIRST,
                    Ok(WatchMessage::Events { revision, events }) => {
                        for event in events {
                            self.apply(&files_root, event);
                        }
                        next = Some(revision + 1);
                        write_revision(&state, revision + 1);
                    }
                    Ok(WatchMessage::Compacted) => {
                        tracing::warn!(from = start, "origin: etcd compacted the file announcements this node had not seen; files changed at other nodes meanwhile may be served from this node's cache until replaced");
                        next = None;
                        break;
                    }
                    Ok(WatchMessage::Canceled(_)) | Err(_) => {
                        thread::sleep(wait);
                        break;
                    }
                }
            }
        }
    }

    /// Removes the local copy of a file another node changed.
    fn apply(&self, files_root: &Path, event: WatchEvent) {
        let WatchEvent::Put(kv) = event else {
            return; // a lease expired: nothing changed
        };
        let Ok(a) = serde_json::from_slice::<Announcement>(&kv.value) else {
            return;
        };
        if a.node == self.node_id {
            return;
        }
        let Some(key) = kv
            .key
            .strip_prefix(self.prefix.as_slice())
            .and_then(|k| std::str::from_utf8(k).ok())
        else {
            return;
        };
        // The key was a validated target when it was announced; refuse anything else anyway.
        let Ok(target) = key
            .split_once('/')
            .ok_or(())
            .and_then(|(appid, rel)| crate::storage::path::of_text(appid, rel).map_err(|_| ()))
        else {
            return;
        };
        let path = files_root.join(&target.appid).join(&target.rel);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                crate::storage::generation_bump(&path);
                tracing::info!(%key, by = %a.node, op = %a.op, "origin: file changed at another node; local copy dropped");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(%key, error = %e, "origin: could not drop a local copy another node made stale")
            }
        }
    }
}

fn read_revision(state: &Path) -> Option<i64> {
    std::fs::read_to_string(state).ok()?.trim().parse().ok()
}

fn write_revision(state: &Path, revision: i64) {
    let tmp = state.with_extension("tmp");
    if std::fs::write(&tmp, revision.to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, state);
    }
}
