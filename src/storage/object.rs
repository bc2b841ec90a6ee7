//! The object-store interface: what the upload flow, downloads and the outbox ask of storage,
//! without naming files, inodes or `statx` (pingora-cache's `Storage` with its hit and miss
//! handles; the `object_store` crate's `put_multipart`, `get`, `list`, `delete`, and a version
//! on every object).
//!
//! An upload is a handle ([`UploadHandle`]): appended to in order (or at its current length,
//! for an upload resumed later), then committed to its destination or aborted. Until the
//! commit nothing is visible; a commit makes the whole object visible at once.

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};

use super::path::Target;

/// An opaque token naming one version of an object: the same token as long as the object is
/// the one that was committed, another once something replaced it. The local store uses the
/// file's inode number, an S3 origin would use its ETag; nobody else looks inside.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Version(pub String);

/// Also reads the inode numbers (`"ino": 1234`) that outbox entries written before the store
/// interface recorded.
impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Text(s) => Version(s),
            Raw::Number(n) => Version(n.to_string()),
        })
    }
}

/// What is known of a stored object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub version: Version,
    pub modified: SystemTime,
    /// The content type stored with the object (always one [`super::mime::declared`]
    /// accepts); `None` when none was given or the store could not keep it: downloads then
    /// derive one from the extension.
    pub content_type: Option<String>,
}

/// A stored object opened for reading (downloads). Cloning shares the body (the same open
/// descriptor, the same bytes): sends read at explicit offsets and never move a file position.
#[derive(Clone)]
pub struct Object {
    pub meta: ObjectMeta,
    pub body: ObjectBody,
}

/// Where an object's bytes come from when sent.
#[derive(Clone)]
pub enum ObjectBody {
    /// A local file, perhaps shared with the thread's open-file cache: sent with splice
    /// (file → pipe → socket) or read in blocks, always at explicit offsets.
    File(Rc<tokio_uring::fs::File>),
    /// Bytes in memory: a small local file read whole (sent with the response head in one
    /// write), or the in-memory store's object.
    Bytes(Bytes),
    /// A file another thread is still writing (the origin filling this node's cache on a
    /// miss): sent as far as [`FillProgress`] says it is written, waiting for the rest.
    Growing(Rc<tokio_uring::fs::File>, Arc<FillProgress>),
}

impl ObjectBody {
    /// Releases what the body holds once it is sent or not needed: closes a file unless the
    /// cache (or another response) still holds it.
    pub async fn close(self) {
        if let ObjectBody::File(f) | ObjectBody::Growing(f, _) = self {
            if let Some(f) = Rc::into_inner(f) {
                let _ = f.close().await;
            }
        }
    }
}

/// How far a file being written by another thread has got: its writer advances it after
/// each write and finishes it; readers send up to [`FillProgress::available`].
#[derive(Debug, Default)]
pub struct FillProgress {
    written: AtomicU64,
    state: AtomicU8,
}

/// Where a fill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillState {
    Filling,
    Done,
    Failed,
}

impl FillProgress {
    /// `n` more bytes are written (and readable through another descriptor).
    pub fn advance(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Release);
    }

    /// The writer is done: every byte is there (`ok`), or it gave up.
    pub fn finish(&self, ok: bool) {
        self.state.store(if ok { 1 } else { 2 }, Ordering::Release);
    }

    /// Bytes readable now, and whether more will come.
    pub fn available(&self) -> (u64, FillState) {
        // The state first: a writer that finished wrote every byte before it said so.
        let state = match self.state.load(Ordering::Acquire) {
            0 => FillState::Filling,
            1 => FillState::Done,
            _ => FillState::Failed,
        };
        (self.written.load(Ordering::Acquire), state)
    }
}

/// Which page of an app's objects [`ObjectStore::list_page`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only paths starting with this (empty: all).
    pub prefix: String,
    /// Only paths sorting after this one (the `next` of the previous page).
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
}

impl ListQuery {
    /// Whether `path` belongs to the listing (before the limit).
    pub fn wants(&self, path: &str) -> bool {
        path.starts_with(&self.prefix) && self.after.as_deref().is_none_or(|a| path > a)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Paths relative to the appid (decoded, as the post-callback's `path`), sorted.
    pub objects: Vec<(String, ObjectMeta)>,
    /// More objects match after the last one.
    pub more: bool,
}

impl ListPage {
    /// The page of `limit` from objects that match, in order, of which up to `limit + 1` were
    /// gathered.
    pub fn of(mut objects: Vec<(String, ObjectMeta)>, limit: usize) -> ListPage {
        let more = objects.len() > limit;
        objects.truncate(limit);
        ListPage { objects, more }
    }
}

/// How a commit places the object.
#[derive(Debug, Clone)]
pub struct CommitOptions {
    /// Make the object durable before it is visible (`fsync`: file, then directories).
    pub fsync: bool,
    /// Replace an existing object (`overwrite`); otherwise an existing one wins.
    pub replace: bool,
    /// The content type to keep with the object, visible with it at once. A value that
    /// [`super::mime::declared`] refuses is not kept (the commit still succeeds), nor is one
    /// the store has no room for (the local store on a filesystem without user extended
    /// attributes): the object's [`ObjectMeta::content_type`] is then `None`.
    pub content_type: Option<String>,
}

/// Why a finished body could not be stored.
#[derive(Debug)]
pub enum CommitError {
    /// The destination exists and `replace` is off (or another upload of the path won the race).
    Exists,
    Io(io::Error),
}

/// A store of objects addressed by [`Target`] (`{appid}/{path}`).
///
/// Called on io_uring threads: the futures are `!Send` on purpose (they run on the thread's
/// own ring), which is why the methods are `async fn` in a trait that is never made an object;
/// the node holds the closed set [`super::Store`]. The `_blocking` methods are for plain
/// threads (the outbox sender).
#[allow(async_fn_in_trait)]
pub trait ObjectStore {
    type Upload: UploadHandle;

    /// Begins the upload `upload_id`, reserving `size_hint` bytes when known, so that a store
    /// without room fails here, before the client is told to send (507 before `100 Continue`).
    async fn begin(&self, upload_id: &str, size_hint: Option<u64>) -> io::Result<Self::Upload>;
    /// Begins a *resumable* upload `upload_id`: its partial body outlives the request and the
    /// process (a restart keeps it) until it is committed or [`ObjectStore::discard`]ed.
    async fn begin_partial(&self, upload_id: &str) -> io::Result<Self::Upload>;
    /// Reopens the resumable upload `upload_id` to append at `at`, the length its last
    /// acknowledged append reached; bytes past `at` (an append that was never acknowledged)
    /// are overwritten by the next one. `None` when there is no such upload; an error when it
    /// holds fewer than `at` bytes (lost: its acknowledgement cannot be kept).
    async fn resume(&self, upload_id: &str, at: u64) -> io::Result<Option<Self::Upload>>;
    /// Begins the resumable upload `into` holding the partial bodies `parts` one after the
    /// other (tus concatenation), its handle at their total length, ready to commit. The
    /// parts stay until discarded; `None` when one of them is not there.
    async fn concat_partials(
        &self,
        into: &str,
        parts: &[String],
    ) -> io::Result<Option<Self::Upload>>;
    /// Removes a resumable upload's partial body; false when there was none.
    async fn discard(&self, upload_id: &str) -> io::Result<bool>;
    /// [`ObjectStore::discard`] for a plain thread (the expiry sweep).
    fn discard_blocking(&self, upload_id: &str) -> io::Result<bool>;
    /// The object at `key`, if any (or whatever else occupies the key: see the local store).
    async fn head(&self, key: &Target) -> io::Result<Option<ObjectMeta>>;
    /// Opens the object at `key` for reading.
    async fn open(&self, key: &Target) -> io::Result<Option<Object>>;
    /// Paths and metadata of an app's objects, sorted by path.
    async fn list(&self, appid: &str) -> io::Result<Vec<(String, ObjectMeta)>>;
    /// One page of an app's objects whose path starts with `query.prefix` and sorts after
    /// `query.after`, in path order (bytes of the decoded path), at most `query.limit`; `more`
    /// when others follow. Only committed objects: never an upload in flight or a resumable
    /// upload's partial body.
    async fn list_page(&self, appid: &str, query: &ListQuery) -> io::Result<ListPage>;
    /// Removes the object at `key`; false when there was none. Downloads stop finding it at
    /// once, on every thread (the local store's open-file caches are invalidated).
    async fn delete(&self, key: &Target) -> io::Result<bool>;
    /// Removes every object of the app at once (its registration was deleted): downloads of
    /// any of them find nothing from the return on; the bytes may be reclaimed later. False
    /// when the app had none.
    async fn delete_app(&self, appid: &str) -> io::Result<bool>;
    /// [`ObjectStore::delete_app`] for a plain thread (an app deleted at another node, seen by
    /// the registry's watch).
    fn delete_app_blocking(&self, appid: &str) -> io::Result<bool>;
    /// Whether the store can take a body now (`/readyz`); the error names what failed.
    async fn ready(&self) -> io::Result<()>;
    /// [`ObjectStore::head`] for a plain thread.
    fn head_blocking(&self, key: &Target) -> io::Result<Option<ObjectMeta>>;
}

/// One upload being written. Dropping it without [`UploadHandle::commit`] or
/// [`UploadHandle::abort`] closes it: a resumable upload's partial body stays for
/// [`ObjectStore::resume`]; another's is removed by the next start's clean-up.
#[allow(async_fn_in_trait)]
pub trait UploadHandle {
    /// Bytes written so far.
    fn written(&self) -> u64;
    /// The version the object will have once committed.
    fn version(&self) -> &Version;
    /// A descriptor body bytes may be spliced or written into directly at
    /// [`UploadHandle::written`] (then [`UploadHandle::advance`]); `None` when the store has no
    /// such file (memory, a remote origin): bytes then go through
    /// [`UploadHandle::append_at`].
    fn splice_target(&self) -> Option<RawFd>;
    /// Records `n` bytes written through [`UploadHandle::splice_target`].
    fn advance(&mut self, n: u64);
    /// Writes `data` at `offset`, which must be the current length (appends are in order).
    async fn append_at(&mut self, offset: u64, data: Bytes) -> io::Result<()>;
    /// Reserves room for up to `len` more bytes after what was written, keeping the length:
    /// a store without room fails now, before the body is asked for (507 before
    /// `100 Continue`, as [`ObjectStore::begin`]'s `size_hint`); the commit gives back what
    /// the body did not fill. For bodies whose size is known per request (a resumable
    /// upload's append) or only as a bound (a form's file part).
    async fn reserve(&mut self, len: u64) -> io::Result<()>;
    /// Makes the bytes written so far durable (a resumable upload's append, before its offset
    /// is acknowledged under `fsync = true`).
    async fn sync(&self) -> io::Result<()>;
    /// Makes the object durable (when asked) and visible at `key`, whole or not at all.
    async fn commit(self, key: &Target, opts: CommitOptions) -> Result<ObjectMeta, CommitError>;
    /// Drops the partial body.
    async fn abort(self);
}

/// An append at an offset other than the current length.
pub(super) fn out_of_order(offset: u64, written: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("append at {offset}, but the upload has {written} bytes"),
    )
}

/// True for "no space left" (and quota) errors, which answer 507.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}
