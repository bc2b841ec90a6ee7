//! The S3 origin (`store = "s3"`): every committed file is also written to an S3-compatible
//! store that all nodes share, and the local disk becomes this node's cache of it.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`Origin`]: the jobs the rings hand to the origin's threads, and their answers |
//! | `s3.rs` | the S3 calls (`rust-s3`, blocking) |
//! | `queue.rs` | the durable queue of copies made after the `201` (`origin_write = "background"`) |
//! | `announce.rs` | telling the other nodes through etcd that a file changed, and dropping their changes from this node's cache |
//!
//! Where the patent's steps meet the origin (`upload::phases::commit`):
//! - `before_callback`: the staged body goes to the origin *before* the local commit; when the
//!   origin cannot take it the upload answers 503 `origin_unavailable` and nothing is visible,
//!   here or at any node. The post-callback and the `201` follow a copy the origin holds.
//! - `background`: a durable queue entry is written before the local commit; the copier
//!   thread sends the file after it, retrying until the origin takes it.
//!
//! A download that misses the local disk asks [`Origin::fetch`]: one origin GET per file
//! however many downloads miss it at once, into a temporary file, linked into place; then the
//! download is served from the local file like any other (ranges included).
//!
//! None of this runs on a ring: S3 calls block, so they run on the origin's threads
//! (`upgate-origin-*`) and the rings await their answers, as they await the callback pool's.

mod announce;
mod queue;
mod s3;

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

pub use crate::config::OriginWrite;
use crate::metrics::{self, OriginFetch};
use crate::storage::{FillProgress, Object, ObjectBody, ObjectMeta, Target, Version};
pub use s3::S3Settings;

use announce::Announcer;
use queue::{Entry, Next, Queue};
use s3::{S3Error, S3};

/// Threads that make the origin calls the rings wait for (puts, fetches, deletes): a large
/// put holds one for its whole length, so a few, and fetches of other files go on meanwhile.
const WORKERS: usize = 4;
/// The copier waits this long between passes over the queue when nothing wakes it, and at
/// most [`COPY_RETRY_MAX`] after a failure.
const COPY_IDLE: Duration = Duration::from_secs(1);
const COPY_RETRY_FIRST: Duration = Duration::from_millis(200);
const COPY_RETRY_MAX: Duration = Duration::from_secs(5);

/// Why the origin could not do what was asked.
#[derive(Debug)]
pub enum OriginError {
    /// The origin could not be reached, refused, or the local side failed (503
    /// `origin_unavailable`: nothing was stored or deleted).
    Unavailable(String),
    /// `overwrite = false` and the origin already holds an object at the key (409).
    Exists,
}

impl std::fmt::Display for OriginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OriginError::Unavailable(why) => f.write_str(why),
            OriginError::Exists => f.write_str("the origin already holds an object at this key"),
        }
    }
}

impl std::error::Error for OriginError {}

impl From<S3Error> for OriginError {
    fn from(e: S3Error) -> Self {
        OriginError::Unavailable(e.to_string())
    }
}

/// What the origin needs to start.
#[derive(Debug, Clone)]
pub struct OriginSettings {
    pub s3: S3Settings,
    pub write: OriginWrite,
    pub node_id: String,
    /// `data_dir`: the local store's `files/` and `tmp/` are under it, the queue in `origin/`.
    pub data_dir: PathBuf,
    /// etcd's endpoints and prefix (`registry = "etcd"`): change announcements to every node.
    pub etcd: Option<(Vec<String>, String)>,
    /// `fsync`: a fetched file is synced before it is linked into place, as a commit is.
    pub fsync: bool,
}

type Reply<T> = oneshot::Sender<Result<T, OriginError>>;

/// An upload staged for its commit, as the origin needs it.
pub struct Staged<'a> {
    /// The file its body is in.
    pub path: &'a Path,
    /// Its local version (kept by the commit's rename).
    pub version: &'a str,
    pub content_type: &'a str,
    pub upload_id: &'a str,
}

impl Staged<'_> {
    fn entry(&self, key: &Target) -> Entry {
        Entry {
            key: key_of(key),
            version: self.version.to_owned(),
            content_type: self.content_type.to_owned(),
            staged: self.path.to_owned(),
            queued_at_ms: crate::clock::unix_ms(),
            upload_id: self.upload_id.to_owned(),
        }
    }
}

/// What a download that missed the local disk gets from [`Origin::fetch`].
pub enum Fetched {
    /// The origin has no object at the key.
    Absent,
    /// The file is in the local store now.
    Cached,
    /// The file is being copied into the local store: serve it from there as it grows.
    Filling(Arc<Filling>),
}

/// A fetch under way: the temporary file the origin's object is written into, what the origin
/// said of it, and how far the copy has got.
pub struct Filling {
    pub path: PathBuf,
    pub size: u64,
    pub content_type: Option<String>,
    pub progress: Arc<FillProgress>,
}

/// A key's fetch: downloads waiting for the origin's first answer, then the copy they share.
enum InFlight {
    Waiting(Vec<Reply<Fetched>>),
    Filling(Arc<Filling>),
}

enum Job {
    Put {
        entry: Entry,
        absent: bool,
        reply: Reply<()>,
    },
    Fetch {
        key: String,
    },
    Head {
        key: String,
        reply: Reply<Option<ObjectMeta>>,
    },
    Delete {
        key: String,
        reply: Reply<()>,
    },
    DeleteApp {
        appid: String,
    },
    Queue {
        entry: Entry,
        reply: Reply<()>,
    },
}

/// The node's origin (cheap to clone; clones share the threads).
#[derive(Clone)]
pub struct Origin {
    inner: Arc<Inner>,
    jobs: crossbeam_channel::Sender<Job>,
}

struct Inner {
    s3: S3,
    write: OriginWrite,
    fsync: bool,
    files_root: PathBuf,
    tmp_dir: PathBuf,
    queue: Queue,
    /// Objects put before their local commit, until the commit is seen (`queue.rs`).
    intents: Queue,
    announcer: Option<Arc<Announcer>>,
    /// Fetches under way by key (single flight: the first miss's job serves every download
    /// of the key until the file is in place).
    fetching: Mutex<HashMap<String, InFlight>>,
    /// Wakes the copier (a copy queued, or the node stopping).
    wake: (Mutex<bool>, Condvar),
    stop: Arc<AtomicBool>,
    /// The last origin failure, until a call succeeds (`/readyz`).
    failing: Mutex<Option<String>>,
    /// Copies in the queue (`upgate_origin_queue`), counted as they come and go.
    queued: AtomicU64,
}

fn key_of(t: &Target) -> String {
    format!("{}/{}", t.appid, t.rel)
}

fn fetch_seq() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

impl Origin {
    /// Starts the origin's threads. Fails when the settings cannot make a client (a bad
    /// endpoint); an origin that does not answer yet is no reason not to start.
    pub fn start(s: OriginSettings) -> Result<Origin, String> {
        let s3 = S3::new(&s.s3)?;
        let queue = Queue::open(s.data_dir.join("origin").join("queue"), s.fsync)
            .map_err(|e| format!("origin queue: {e}"))?;
        let intents = Queue::open(s.data_dir.join("origin").join("intents"), s.fsync)
            .map_err(|e| format!("origin intents: {e}"))?;
        let announcer = s
            .etcd
            .as_ref()
            .map(|(endpoints, prefix)| Arc::new(Announcer::new(endpoints, prefix, &s.node_id)));
        let stop = Arc::new(AtomicBool::new(false));
        let queued = AtomicU64::new(queue.len() as u64);
        let inner = Arc::new(Inner {
            s3,
            write: s.write,
            fsync: s.fsync,
            files_root: s.data_dir.join("files"),
            tmp_dir: s.data_dir.join("tmp"),
            queue,
            intents,
            announcer: announcer.clone(),
            fetching: Mutex::new(HashMap::new()),
            wake: (Mutex::new(false), Condvar::new()),
            stop: stop.clone(),
            failing: Mutex::new(None),
            queued,
        });
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        for n in 0..WORKERS {
            let (inner, rx) = (inner.clone(), rx.clone());
            thread::Builder::new()
                .name(format!("upgate-origin-{n}"))
                .spawn(move || {
                    for job in rx {
                        inner.run(job);
                    }
                })
                .map_err(|e| format!("origin thread: {e}"))?;
        }
        let copier = inner.clone();
        thread::Builder::new()
            .name("upgate-origin-copy".into())
            .spawn(move || copier.copy_forever())
            .map_err(|e| format!("origin copier: {e}"))?;
        if let Some(a) = announcer {
            let files = s.data_dir.join("files");
            let state = s.data_dir.join("origin").join("watch-revision");
            thread::Builder::new()
                .name("upgate-origin-watch".into())
                .spawn(move || a.watch_forever(files, state, stop))
                .map_err(|e| format!("origin watch: {e}"))?;
        }
        Ok(Origin { inner, jobs })
    }

    /// When the origin copy is made.
    pub fn write_mode(&self) -> OriginWrite {
        self.inner.write
    }

    async fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, OriginError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(job(tx))
            .map_err(|_| OriginError::Unavailable("the origin's threads are gone".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(OriginError::Unavailable("origin thread ended".into())))
    }

    /// `before_callback`: writes the body `upload` staged to the origin as `key`, after an
    /// intent that lets the copier delete it should the local commit never happen. With
    /// `absent` (`overwrite = false`), an object already at the origin's key is
    /// [`OriginError::Exists`].
    pub async fn put(
        &self,
        key: &Target,
        upload: &Staged<'_>,
        absent: bool,
    ) -> Result<(), OriginError> {
        let entry = upload.entry(key);
        self.ask(|reply| Job::Put {
            entry,
            absent,
            reply,
        })
        .await
    }

    /// `background`: queues the copy of the staged `upload` (whose version the commit keeps)
    /// durably, before the commit.
    pub async fn queue(&self, key: &Target, upload: &Staged<'_>) -> Result<(), OriginError> {
        let entry = upload.entry(key);
        self.ask(|reply| Job::Queue { entry, reply }).await
    }

    /// Tells the copier that a queued copy's commit is done.
    pub fn wake_copier(&self) {
        self.inner.wake_copier();
    }

    /// Brings the origin's object at `key` into the local store, for a download that missed
    /// it. Every download of the key while this goes on shares one origin GET, and each is
    /// answered as soon as the GET starts ([`Fetched::Filling`]), not when it ends.
    pub async fn fetch(&self, key: &Target) -> Result<Fetched, OriginError> {
        let key = key_of(key);
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut fetching = self
                .inner
                .fetching
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match fetching.get_mut(&key) {
                Some(InFlight::Filling(f)) => return Ok(Fetched::Filling(f.clone())),
                Some(InFlight::Waiting(list)) => {
                    list.push(tx);
                    false
                }
                None => {
                    fetching.insert(key.clone(), InFlight::Waiting(vec![tx]));
                    true
                }
            }
        };
        if first && self.jobs.send(Job::Fetch { key: key.clone() }).is_err() {
            self.inner
                .fetching
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            return Err(OriginError::Unavailable(
                "the origin's threads are gone".into(),
            ));
        }
        rx.await
            .unwrap_or_else(|_| Err(OriginError::Unavailable("origin thread ended".into())))
    }

    /// What the origin holds at `key`: size and content type (a delete of a file this node
    /// never cached).
    pub async fn head(&self, key: &Target) -> Result<Option<ObjectMeta>, OriginError> {
        let key = key_of(key);
        self.ask(|reply| Job::Head { key, reply }).await
    }

    /// Deletes `key` at the origin and tells the other nodes.
    pub async fn delete(&self, key: &Target) -> Result<(), OriginError> {
        let key = key_of(key);
        self.ask(|reply| Job::Delete { key, reply }).await
    }

    /// Deletes every object of `appid` at the origin, in the background (an app's
    /// registration deleted at this node).
    pub fn delete_app(&self, appid: &str) {
        let _ = self.jobs.send(Job::DeleteApp {
            appid: appid.to_owned(),
        });
    }

    /// `Err` with the last failure while the origin is failing (`/readyz`).
    pub fn health(&self) -> Result<(), String> {
        match &*self
            .inner
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    /// Copies waiting in the queue.
    pub fn queued(&self) -> u64 {
        self.inner.queued.load(Ordering::Relaxed)
    }
}

/// Stops the copier and the watch when the node stops (the workers end with the channel, when
/// the last [`Origin`] clone goes).
impl Origin {
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        self.inner.wake_copier();
    }
}

impl Inner {
    fn outcome<T>(&self, r: Result<T, S3Error>) -> Result<T, OriginError> {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        match r {
            Ok(v) => {
                *failing = None;
                Ok(v)
            }
            Err(e) => {
                *failing = Some(e.to_string());
                Err(e.into())
            }
        }
    }

    fn run(&self, job: Job) {
        match job {
            Job::Put {
                entry,
                absent,
                reply,
            } => {
                let key = entry.key.clone();
                let r = self.put(&entry, absent);
                match &r {
                    Ok(()) => metrics::origin_write(metrics::OriginWrite::Ok),
                    Err(OriginError::Exists) => {}
                    Err(e) => {
                        metrics::origin_write(metrics::OriginWrite::Failed);
                        tracing::warn!(%key, error = %e, "origin: upload not written to the origin");
                    }
                }
                let _ = reply.send(r);
            }
            Job::Fetch { key } => {
                let r = self.fetch(&key);
                match &r {
                    Ok(Some(true)) => {
                        metrics::origin_fetch(OriginFetch::Filled);
                        tracing::info!(%key, "origin: cache miss filled from the origin");
                    }
                    Ok(Some(false)) => {}
                    Ok(None) => metrics::origin_fetch(OriginFetch::Absent),
                    Err(e) => {
                        metrics::origin_fetch(OriginFetch::Failed);
                        tracing::warn!(%key, error = %e, "origin: cache miss not filled");
                    }
                }
                // Downloads still waiting (the fetch ended before it started filling) get the
                // outcome; those served from the filling file already have their answer.
                let waiting = self
                    .fetching
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&key);
                if let Some(InFlight::Waiting(list)) = waiting {
                    for w in list {
                        let _ = w.send(match &r {
                            Ok(Some(_)) => Ok(Fetched::Cached),
                            Ok(None) => Ok(Fetched::Absent),
                            Err(e) => Err(OriginError::Unavailable(e.to_string())),
                        });
                    }
                }
            }
            Job::Head { key, reply } => {
                let r = self.outcome(self.s3.head(&key)).map(|h| {
                    h.map(|h| ObjectMeta {
                        size: h.size,
                        version: Version(String::new()),
                        modified: std::time::SystemTime::now(),
                        content_type: h.content_type,
                    })
                });
                let _ = reply.send(r);
            }
            Job::Delete { key, reply } => {
                let r = self.outcome(self.s3.delete(&key));
                if r.is_ok() {
                    self.announce(&key, true);
                }
                let _ = reply.send(r);
            }
            Job::DeleteApp { appid } => {
                match self.outcome(self.s3.delete_prefix(&format!("{appid}/"))) {
                    Ok(n) => {
                        tracing::info!(%appid, objects = n, "origin: deleted application's objects removed")
                    }
                    Err(e) => {
                        tracing::error!(%appid, error = %e, "origin: could not remove a deleted application's objects")
                    }
                }
            }
            Job::Queue { entry, reply } => {
                let r = self
                    .queue
                    .push(&entry)
                    .map(|_| {
                        self.queued.fetch_add(1, Ordering::Relaxed);
                    })
                    .map_err(|e| OriginError::Unavailable(format!("origin queue: {e}")));
                let _ = reply.send(r);
            }
        }
    }

    fn announce(&self, key: &str, deleted: bool) {
        if let Some(a) = &self.announcer {
            a.announce(key, deleted);
        }
    }

    fn put(&self, e: &Entry, absent: bool) -> Result<(), OriginError> {
        if absent && self.outcome(self.s3.head(&e.key))?.is_some() {
            return Err(OriginError::Exists);
        }
        let intent = self
            .intents
            .push(e)
            .map_err(|err| OriginError::Unavailable(format!("origin intent: {err}")))?;
        let put = self
            .s3
            .put_file(&e.key, &e.staged, &e.content_type, &e.upload_id);
        if put.is_err() {
            // Nothing was written (a failed multipart upload is aborted): no intent to keep.
            self.intents.remove(&intent);
        }
        self.outcome(put)?;
        self.announce(&e.key, false);
        Ok(())
    }

    /// The downloads waiting for `key` are answered with `filling`, and later ones join it.
    fn start_filling(&self, key: &str, filling: Arc<Filling>) {
        let mut fetching = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
        let before = fetching.insert(key.to_owned(), InFlight::Filling(filling.clone()));
        if let Some(InFlight::Waiting(list)) = before {
            for w in list {
                let _ = w.send(Ok(Fetched::Filling(filling.clone())));
            }
        }
    }

    /// GETs `key` into a temporary file that downloads serve from as it grows, then links it
    /// into place: a later download never sees a partial file, and a local commit that came
    /// first keeps its file. `Some(true)` when the origin's object was copied here,
    /// `Some(false)` when the file was here already (filled or uploaded since the download
    /// missed), `None` when the origin has none.
    fn fetch(&self, key: &str) -> Result<Option<bool>, OriginError> {
        let dest = self.files_root.join(key);
        if local_version(&dest).is_some() {
            return Ok(Some(false));
        }
        let Some(head) = self.outcome(self.s3.head(key))? else {
            return Ok(None);
        };
        let tmp = self.tmp_dir.join(format!(
            "origin-{}-{}.part",
            std::process::id(),
            fetch_seq()
        ));
        let mut file = std::fs::File::create(&tmp)
            .map_err(|e| OriginError::Unavailable(format!("cache file: {e}")))?;
        if let Some(ct) = head.content_type.as_deref() {
            crate::storage::set_stored_type(&file, ct, &tmp);
        }
        let filling = Arc::new(Filling {
            path: tmp.clone(),
            size: head.size,
            content_type: head.content_type.clone(),
            progress: Arc::new(FillProgress::default()),
        });
        self.start_filling(key, filling.clone());
        let progress = &filling.progress;
        let got = (|| {
            let mut counted = Counted {
                file: &mut file,
                progress,
            };
            if !self.s3.get_to(key, &mut counted)? {
                return Err(S3Error::Unavailable(
                    "the object went during the fetch".into(),
                ));
            }
            if self.fsync {
                file.sync_all().map_err(S3Error::Local)?;
            }
            let len = file.metadata().map_err(S3Error::Local)?.len();
            if len != head.size {
                return Err(S3Error::Unavailable(format!(
                    "GET brought {len} bytes, HEAD said {}",
                    head.size
                )));
            }
            Ok(())
        })();
        drop(file);
        let placed = self.outcome(got).and_then(|()| {
            dest.parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::hard_link(&tmp, &dest))
                .or_else(|e| match e.kind() {
                    // An upload committed here meanwhile: its file is the newer one.
                    io::ErrorKind::AlreadyExists => Ok(()),
                    _ => Err(e),
                })
                .map_err(|e| OriginError::Unavailable(format!("placing the fetched file: {e}")))
        });
        progress.finish(placed.is_ok());
        let _ = std::fs::remove_file(&tmp);
        placed?;
        crate::storage::generation_bump(&dest);
        Ok(Some(true))
    }

    fn wake_copier(&self) {
        let (lock, cv) = &self.wake;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_one();
    }

    /// The copier thread: passes over the queue, oldest first, until the node stops.
    fn copy_forever(&self) {
        let mut backoff = COPY_RETRY_FIRST;
        let mut streak = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            let wait = match self.copy_pass() {
                Ok(()) => {
                    if streak > 0 {
                        tracing::info!(
                            failures = streak,
                            "origin: reachable again; queued copies resumed"
                        );
                    }
                    streak = 0;
                    backoff = COPY_RETRY_FIRST;
                    COPY_IDLE
                }
                Err(e) => {
                    if streak == 0 {
                        tracing::warn!(error = %e, queued = self.queued.load(Ordering::Relaxed), "origin: queued copies wait for the origin");
                    }
                    streak += 1;
                    let w = backoff;
                    backoff = (backoff * 2).min(COPY_RETRY_MAX);
                    w
                }
            };
            let (lock, cv) = &self.wake;
            let mut woken = lock.lock().unwrap_or_else(PoisonError::into_inner);
            if !*woken {
                woken = cv
                    .wait_timeout(woken, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            *woken = false;
        }
    }

    fn unqueue(&self, name: &str) {
        self.queue.remove(name);
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Settles the intents of `before_callback` puts: committed ones go; those whose commit
    /// never happened have their object deleted at the origin, unless a later upload replaced
    /// it. Stops at the first origin failure.
    fn settle_intents(&self) -> Result<(), S3Error> {
        for (name, intent) in self.intents.entries().map_err(S3Error::Local)? {
            match queue::next(&intent, &self.files_root, local_version) {
                Next::Later => {}
                Next::Copy(_) => self.intents.remove(&name),
                Next::Drop => {
                    let ours = self
                        .s3
                        .head(&intent.key)?
                        .is_some_and(|h| h.upload_id.as_deref() == Some(intent.upload_id.as_str()));
                    if ours {
                        self.s3.delete(&intent.key)?;
                        self.announce(&intent.key, true);
                        tracing::warn!(key = %intent.key, upload_id = %intent.upload_id, "origin: object of an upload that was never committed (a crash or a failed commit) deleted");
                    }
                    self.intents.remove(&name);
                }
            }
        }
        Ok(())
    }

    /// One pass; stops at the first origin failure (the rest would fail the same way).
    fn copy_pass(&self) -> Result<(), S3Error> {
        self.settle_intents()?;
        let entries = self.queue.entries().map_err(S3Error::Local)?;
        for (name, entry) in entries {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            match queue::next(&entry, &self.files_root, local_version) {
                Next::Later => {}
                Next::Drop => self.unqueue(&name),
                Next::Copy(path) => {
                    match self
                        .s3
                        .put_file(&entry.key, &path, &entry.content_type, &entry.upload_id)
                    {
                        Ok(()) => {
                            self.unqueue(&name);
                            metrics::origin_write(metrics::OriginWrite::Ok);
                            *self.failing.lock().unwrap_or_else(PoisonError::into_inner) = None;
                            self.announce(&entry.key, false);
                            tracing::debug!(key = %entry.key, "origin: queued copy written");
                        }
                        // The file went between the check and the read: the next pass drops it.
                        Err(S3Error::Local(e)) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => {
                            metrics::origin_write(metrics::OriginWrite::Failed);
                            *self.failing.lock().unwrap_or_else(PoisonError::into_inner) =
                                Some(e.to_string());
                            return Err(e);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A file that counts what is written to it, for the downloads reading it meanwhile.
struct Counted<'a> {
    file: &'a mut std::fs::File,
    progress: &'a FillProgress,
}

impl io::Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens the file a fetch is filling, on the download's ring: the object to serve from it, or
/// `None` when the fetch is already over (the file is linked into the local store, or failed).
pub async fn open_filling(f: &Filling) -> Option<Object> {
    let file = tokio_uring::fs::File::open(&f.path).await.ok()?;
    Some(Object {
        meta: ObjectMeta {
            size: f.size,
            version: Version(String::new()),
            modified: std::time::SystemTime::now(),
            content_type: f.content_type.clone(),
        },
        body: ObjectBody::Growing(std::rc::Rc::new(file), f.progress.clone()),
    })
}

/// The local store's version of the file at `path` (its inode), `None` when it is not a file.
fn local_version(path: &Path) -> Option<String> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.ino().to_string())
}
