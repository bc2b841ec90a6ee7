//! [`AppStore`] on etcd (`registry = "etcd"`): registrations live in etcd, one key per app
//! (`<etcd_prefix>apps/<appid>`, the [`AppRecord`] as JSON), written in a transaction that
//! compares the key's last revision (the same read-modify-write rules as sled's CAS). This
//! node's sled `apps` tree is the cache the io_uring threads read: every node fills its own
//! from one watch on the prefix, started from the revision it stored last, so a change made at
//! any node reaches every node as soon as etcd delivers it.
//!
//! Threads, none of them a ring's:
//! - the **control thread** (`upgate-etcd`) runs registrations and deletions (blocking ureq
//!   calls to etcd's JSON gateway) for the `*_async` calls, which await its answer;
//! - the **watch thread** (`upgate-etcd-watch`) keeps the watch open, applies what it brings
//!   to the cache in revision order and stores the revision; when etcd has compacted that
//!   revision away, or nothing was stored yet, it reads the whole prefix again.
//!
//! While etcd is unreachable, reads keep answering from the cache (uploads for the apps this
//! node knows go on), writes fail with [`AppStoreError::Unreachable`] (503
//! `registry_unavailable`) and [`EtcdApps::health`] says why (`/readyz`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

use super::apps::{check_appid, decode, next_record, CAS_ATTEMPTS};
use super::etcd_client::{EtcdClient, EtcdError, WatchEvent, WatchMessage};
use super::record::{AppRecord, Registered, Registration};
use super::{AppChanges, AppStore, AppStoreError, Put, SledApps};

/// Waits between attempts to reach etcd again (doubling up to the last).
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Where the watch keeps the last revision it applied (in the cache's sled database).
const WATCH_TREE: &str = "etcd_watch";
const WATCH_KEY: &[u8] = b"revision";
/// How long a write waits for the watch to bring it into this node's cache before it writes
/// it there itself (the watch is down or slow).
const VISIBLE_WITHIN: Duration = Duration::from_secs(2);

/// Where the registry lives in etcd.
#[derive(Debug, Clone)]
pub struct EtcdSettings {
    /// Client URLs of the members (`etcd_endpoints`).
    pub endpoints: Vec<String>,
    /// Key prefix (`etcd_prefix`); apps are under `<prefix>apps/`.
    pub prefix: String,
}

/// The etcd app store (cheap to clone; clones share the client, the cache and the threads).
#[derive(Clone)]
pub struct EtcdApps {
    inner: Arc<Inner>,
    jobs: crossbeam_channel::Sender<Job>,
    /// Stops the watch thread when the last clone goes (the control thread stops when the
    /// last `jobs` sender does).
    _stop: Arc<StopOnDrop>,
}

struct StopOnDrop(Arc<Inner>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Relaxed);
    }
}

type Job = Box<dyn FnOnce() + Send>;
/// What the node does when an app's deletion reaches it ([`EtcdApps::on_deleted`]).
type DeletedHook = Box<dyn Fn(&str) + Send + Sync>;

struct Inner {
    cache: SledApps,
    client: EtcdClient,
    /// `<etcd_prefix>apps/`
    apps_prefix: Vec<u8>,
    watch: sled::Tree,
    /// `None` while etcd answers; the reason otherwise.
    down: Mutex<Option<String>>,
    /// The last etcd revision the cache holds everything up to (the watch's), and its signal.
    applied: Mutex<i64>,
    caught_up: Condvar,
    /// Called with the appid when the watch brings an app's deletion (made at any node).
    on_deleted: std::sync::OnceLock<DeletedHook>,
    /// Set when the store is dropped: the watch thread ends (within [`super::etcd_client::WATCH_IDLE`]).
    stopped: AtomicBool,
}

impl EtcdApps {
    /// The store over `cache` (this node's sled `apps` tree). Tries once to bring the cache up
    /// to date before it returns (bounded by the client's timeouts); an unreachable etcd is
    /// logged and the node starts with what the cache holds. Starts both threads.
    pub fn open(cache: SledApps, settings: &EtcdSettings) -> Result<EtcdApps, AppStoreError> {
        let watch = cache.db().db().open_tree(WATCH_TREE)?;
        let inner = Arc::new(Inner {
            cache,
            client: EtcdClient::new(&settings.endpoints),
            apps_prefix: format!("{}apps/", settings.prefix).into_bytes(),
            watch,
            down: Mutex::new(None),
            applied: Mutex::new(0),
            caught_up: Condvar::new(),
            stopped: AtomicBool::new(false),
            on_deleted: std::sync::OnceLock::new(),
        });
        if let Some(revision) = inner.stored_revision() {
            inner.mark_applied(revision);
        }
        if inner.stored_revision().is_none() {
            match inner.reload() {
                Ok(revision) => tracing::info!(revision, "registry read from etcd"),
                Err(e) => inner.went_down(&e),
            }
        }
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        thread::Builder::new()
            .name("upgate-etcd".into())
            .spawn(move || {
                for job in queue {
                    job();
                }
            })
            .map_err(|e| AppStoreError::Unavailable(Box::new(e)))?;
        let watcher = inner.clone();
        thread::Builder::new()
            .name("upgate-etcd-watch".into())
            .spawn(move || watcher.watch_forever())
            .map_err(|e| AppStoreError::Unavailable(Box::new(e)))?;
        let stop = Arc::new(StopOnDrop(inner.clone()));
        Ok(EtcdApps {
            inner,
            jobs,
            _stop: stop,
        })
    }

    /// Runs `f` with the appid each time the watch brings an app's deletion, made at this node
    /// or another, once it is out of the cache (the node removes its files of the app). Not for
    /// apps that a full reload finds gone: a wrong `etcd_prefix` must not delete files. The
    /// first call wins.
    pub fn on_deleted(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.inner.on_deleted.set(Box::new(f));
    }

    /// `Err(why)` while etcd cannot be reached (the last call or watch failed).
    pub fn health(&self) -> Result<(), String> {
        match &*self
            .inner
            .down
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            None => Ok(()),
            Some(why) => Err(why.clone()),
        }
    }

    /// Runs `f` on the control thread and awaits its answer (the ring does not block).
    async fn offload<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, AppStoreError> + Send + 'static,
    ) -> Result<T, AppStoreError> {
        let (tx, rx) = oneshot::channel();
        let inner = self.inner.clone();
        let job: Job = Box::new(move || {
            let _ = tx.send(f(&inner));
        });
        let gone = || AppStoreError::Unavailable("the etcd control thread has stopped".into());
        self.jobs.send(job).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

impl Inner {
    fn key(&self, appid: &str) -> Vec<u8> {
        let mut key = self.apps_prefix.clone();
        key.extend_from_slice(appid.as_bytes());
        key
    }

    /// The etcd error as the store's: unreachable → [`AppStoreError::Unreachable`] (and the
    /// health goes down), anything else → `Unavailable`.
    fn failed(&self, e: EtcdError) -> AppStoreError {
        match e {
            EtcdError::Unreachable(_) => {
                self.went_down(&e);
                AppStoreError::Unreachable(Box::new(e))
            }
            EtcdError::Protocol(_) => AppStoreError::Unavailable(Box::new(e)),
        }
    }

    fn went_down(&self, why: &EtcdError) {
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        if down.is_none() {
            tracing::warn!(error = %why, "registry: etcd unreachable; serving the apps this node knows, registrations answer 503");
        }
        *down = Some(why.to_string());
    }

    fn came_up(&self, revision: i64) {
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        if down.take().is_some() {
            tracing::info!(revision, "registry: etcd reachable again, cache caught up");
        }
    }

    fn mark_applied(&self, revision: i64) {
        let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        if revision > *applied {
            *applied = revision;
            self.caught_up.notify_all();
        }
    }

    /// Waits until the watch has brought `revision` into the cache: then the change was
    /// announced in etcd's order, as every other node sees it. False after
    /// [`VISIBLE_WITHIN`].
    fn await_applied(&self, revision: i64) -> bool {
        let applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        let (applied, _) = self
            .caught_up
            .wait_timeout_while(applied, VISIBLE_WITHIN, |a| *a < revision)
            .unwrap_or_else(PoisonError::into_inner);
        *applied >= revision
    }

    /// After a write committed at `revision`: this node reads it from here on. Normally the
    /// watch brings it; if it does not in time, the write goes into the cache directly (the
    /// watch skips it later, its revision being held).
    fn make_visible(
        &self,
        appid: &str,
        record: Option<&AppRecord>,
        revision: i64,
    ) -> Result<(), AppStoreError> {
        if !self.await_applied(revision) {
            self.cache.mirror(appid, record, revision, false)?;
        }
        Ok(())
    }

    fn put(&self, reg: &Registration, now: u64, mode: Put) -> Result<Registered, AppStoreError> {
        check_appid(&reg.appid)?;
        let key = self.key(&reg.appid);
        for _ in 0..CAS_ATTEMPTS {
            let (kv, _) = self.client.get(&key).map_err(|e| self.failed(e))?;
            let current = kv.as_ref().map(|kv| decode(&kv.value)).transpose()?;
            let out = next_record(current.as_ref(), reg, now, mode)?;
            let bytes = serde_json::to_vec(&out.record).expect("an app record serialises");
            let expected = kv.map_or(0, |kv| kv.mod_revision);
            let written = self
                .client
                .put_if(&key, &bytes, expected)
                .map_err(|e| self.failed(e))?;
            if let Some(revision) = written {
                self.make_visible(&reg.appid, Some(&out.record), revision)?;
                return Ok(out);
            }
        }
        Err(AppStoreError::Unavailable(
            "registration kept conflicting with concurrent writers".into(),
        ))
    }

    fn delete(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        check_appid(appid)?;
        let key = self.key(appid);
        for _ in 0..CAS_ATTEMPTS {
            let (kv, _) = self.client.get(&key).map_err(|e| self.failed(e))?;
            let Some(kv) = kv else {
                return Ok(None);
            };
            let removed = decode(&kv.value)?;
            let deleted = self
                .client
                .delete_if(&key, kv.mod_revision)
                .map_err(|e| self.failed(e))?;
            if let Some(revision) = deleted {
                self.make_visible(appid, None, revision)?;
                return Ok(Some(removed));
            }
        }
        Err(AppStoreError::Unavailable(
            "deletion kept conflicting with concurrent writers".into(),
        ))
    }

    fn stored_revision(&self) -> Option<i64> {
        let v = self.watch.get(WATCH_KEY).ok()??;
        <[u8; 8]>::try_from(v.as_ref()).ok().map(i64::from_be_bytes)
    }

    fn store_revision(&self, revision: Option<i64>) -> Result<(), AppStoreError> {
        match revision {
            Some(r) => self.watch.insert(WATCH_KEY, &r.to_be_bytes())?,
            None => self.watch.remove(WATCH_KEY)?,
        };
        Ok(())
    }

    /// Reads every app from etcd into the cache (apps etcd no longer holds leave it); returns
    /// the revision read at.
    fn reload(&self) -> Result<i64, EtcdError> {
        let (kvs, revision) = self.client.get_prefix(&self.apps_prefix)?;
        let mut held = Vec::new();
        for kv in kvs {
            let Some(appid) = self.appid_of(&kv.key) else {
                continue;
            };
            match decode(&kv.value) {
                Ok(record) => {
                    let _ = self
                        .cache
                        .mirror(&appid, Some(&record), kv.mod_revision, true);
                    held.push(appid);
                }
                Err(e) => {
                    tracing::warn!(%appid, error = %e, "registry: unreadable record in etcd skipped")
                }
            }
        }
        for appid in self.cache.appids().unwrap_or_default() {
            if !held.contains(&appid) {
                let _ = self.cache.mirror(&appid, None, revision, true);
            }
        }
        let _ = self.store_revision(Some(revision));
        self.mark_applied(revision);
        self.came_up(revision);
        Ok(revision)
    }

    fn appid_of(&self, key: &[u8]) -> Option<String> {
        let rest = key.strip_prefix(self.apps_prefix.as_slice())?;
        let appid = std::str::from_utf8(rest).ok()?;
        check_appid(appid).ok()?;
        Some(appid.to_owned())
    }

    fn apply(&self, event: WatchEvent) {
        let (appid, record, revision) = match event {
            WatchEvent::Put(kv) => match (self.appid_of(&kv.key), decode(&kv.value)) {
                (Some(appid), Ok(record)) => (appid, Some(record), kv.mod_revision),
                (Some(appid), Err(e)) => {
                    tracing::warn!(%appid, error = %e, "registry: unreadable record from etcd skipped");
                    return;
                }
                (None, _) => return,
            },
            WatchEvent::Delete { key, revision } => match self.appid_of(&key) {
                Some(appid) => (appid, None, revision),
                None => return,
            },
        };
        match self.cache.mirror(&appid, record.as_ref(), revision, false) {
            Ok(true) if record.is_none() => {
                if let Some(f) = self.on_deleted.get() {
                    f(&appid);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%appid, error = %e, "registry: cache write failed"),
        }
    }

    /// The watch thread: forever, keep the cache following etcd.
    fn watch_forever(&self) {
        let mut wait = RETRY_FIRST;
        while !self.stopped.load(Ordering::Relaxed) {
            let start = match self.stored_revision() {
                Some(r) => r + 1,
                None => match self.reload() {
                    Ok(r) => r + 1,
                    Err(e) => {
                        self.went_down(&e);
                        thread::sleep(wait);
                        wait = (wait * 2).min(RETRY_MAX);
                        continue;
                    }
                },
            };
            let mut watch = match self.client.watch(&self.apps_prefix, start) {
                Ok(w) => w,
                Err(e) => {
                    self.went_down(&e);
                    thread::sleep(wait);
                    wait = (wait * 2).min(RETRY_MAX);
                    continue;
                }
            };
            while !self.stopped.load(Ordering::Relaxed) {
                match watch.next_message() {
                    Ok(WatchMessage::Created) => {
                        wait = RETRY_FIRST;
                        self.came_up(start - 1);
                    }
                    Ok(WatchMessage::Events { revision, events }) => {
                        for event in events {
                            self.apply(event);
                        }
                        let _ = self.store_revision(Some(revision));
                        self.mark_applied(revision);
                    }
                    Ok(WatchMessage::Compacted) => {
                        tracing::info!(from = start, "registry: etcd compacted past this node's revision; reading every app again");
                        let _ = self.store_revision(None);
                        break;
                    }
                    Ok(WatchMessage::Canceled(why)) => {
                        tracing::warn!(reason = %why, "registry: etcd ended the watch; opening it again");
                        thread::sleep(wait);
                        break;
                    }
                    // A quiet stream times out by design; a broken one is found when the
                    // watch is opened again.
                    Err(EtcdError::Unreachable(_)) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "registry: bad message on the etcd watch");
                        thread::sleep(wait);
                        break;
                    }
                }
            }
        }
    }
}

impl AppStore for EtcdApps {
    fn get(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        self.inner.cache.get(appid)
    }

    fn appids(&self) -> Result<Vec<String>, AppStoreError> {
        self.inner.cache.appids()
    }

    fn put(&self, reg: &Registration, now: u64, mode: Put) -> Result<Registered, AppStoreError> {
        self.inner.put(reg, now, mode)
    }

    async fn put_async(
        &self,
        reg: &Registration,
        now: u64,
        mode: Put,
    ) -> Result<Registered, AppStoreError> {
        let reg = reg.clone();
        self.offload(move |inner| inner.put(&reg, now, mode)).await
    }

    fn delete(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        self.inner.delete(appid)
    }

    async fn delete_async(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        let appid = appid.to_owned();
        self.offload(move |inner| inner.delete(&appid)).await
    }

    fn flush(&self) -> Result<(), AppStoreError> {
        self.inner.cache.flush()
    }

    async fn flush_async(&self) -> Result<(), AppStoreError> {
        self.inner.cache.flush_async().await
    }

    fn subscribe(&self) -> AppChanges {
        self.inner.cache.subscribe()
    }
}
