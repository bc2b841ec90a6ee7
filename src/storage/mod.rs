//! Storage behind one interface ([`ObjectStore`], [`UploadHandle`]): the upload flow, downloads
//! and the outbox ask for objects by `{appid}/{path}` and never see files, inodes or `statx`.
//!
//! | file | owns |
//! |---|---|
//! | `object.rs` | the interface: [`ObjectStore`], [`UploadHandle`], [`Version`], [`ObjectMeta`] |
//! | `local.rs` | [`LocalStore`]: files under `data_dir` (the node's store) |
//! | `dirs.rs` | directories a ring thread knows exist (no `mkdirat` per commit into them) |
//! | `memory.rs` | [`MemoryStore`]: the in-memory twin for tests without a disk |
//! | `path.rs` | request path → [`Target`] (`{appid}/{path}`), refusing traversal |
//! | `mime.rs` | content types by extension; the check a declared one passes before it is stored |
//! | `xattr.rs` | the local store's content types, in an extended attribute of each file |
//! | `cache.rs`, `generation.rs` | the per-thread open-file cache of downloads; the generations that invalidate it across threads |
//! | `ops.rs`, `splice.rs`, `fixed.rs` | io_uring operations, splice pipes, registered buffers |
//!
//! The node holds [`Store`], the closed set of implementations (an S3 origin is the next
//! variant); see `object.rs` for why it is an enum and not a trait object.

mod cache;
mod dirs;
pub mod fixed;
mod generation;
mod local;
pub mod mapped;
mod memory;
pub mod mime;
mod object;
pub mod ops;
pub mod path;
pub mod splice;
mod xattr;

use std::io;
use std::os::fd::RawFd;

use bytes::Bytes;

pub use local::{LocalStore, LocalUpload, SMALL_BODY};
pub use memory::{MemoryStore, MemoryUpload};
pub use object::{
    is_disk_full, CommitError, CommitOptions, FillProgress, FillState, ListPage, ListQuery, Object,
    ObjectBody, ObjectMeta, ObjectStore, UploadHandle, Version,
};
pub use path::Target;

/// The node's store.
#[derive(Clone)]
pub enum Store {
    Local(LocalStore),
    Memory(MemoryStore),
}

/// An upload of [`Store`].
pub enum Upload {
    Local(LocalUpload),
    Memory(MemoryUpload),
}

/// Forwards a call to the implementation.
macro_rules! each {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            Store::Local($s) => $call,
            Store::Memory($s) => $call,
        }
    };
}

/// Marks every cached open of `path`, on every thread, stale: for changes made outside the
/// store (the origin filling or dropping a cached copy).
pub fn generation_bump(path: &std::path::Path) {
    generation::bump(path)
}

/// Stores `content_type` with a file made outside the store (the origin filling the cache),
/// as a commit stores it; false when it is not a type the store keeps or cannot be kept.
pub fn set_stored_type(file: &std::fs::File, content_type: &str, path: &std::path::Path) -> bool {
    mime::declared(content_type)
        .is_some_and(|ct| xattr::set(std::os::fd::AsRawFd::as_raw_fd(file), ct, path))
}

impl Upload {
    /// The file the body is staged in before its commit (the local store's); the origin
    /// copies from it.
    pub fn staged_path(&self) -> Option<&std::path::Path> {
        match self {
            Upload::Local(u) => Some(u.staged_path()),
            Upload::Memory(_) => None,
        }
    }
}

impl Store {
    /// Whether the resumable upload `upload_id` still has its partial body (startup, plain
    /// thread). The memory store answers yes: it loses everything with the process, as its
    /// records do.
    pub fn has_partial_blocking(&self, upload_id: &str) -> io::Result<bool> {
        match self {
            Store::Local(s) => s.partial_path(upload_id).try_exists(),
            Store::Memory(_) => Ok(true),
        }
    }
}

impl ObjectStore for Store {
    type Upload = Upload;

    async fn begin(&self, upload_id: &str, size_hint: Option<u64>) -> io::Result<Upload> {
        match self {
            Store::Local(s) => s.begin(upload_id, size_hint).await.map(Upload::Local),
            Store::Memory(s) => s.begin(upload_id, size_hint).await.map(Upload::Memory),
        }
    }

    async fn begin_partial(&self, upload_id: &str) -> io::Result<Upload> {
        match self {
            Store::Local(s) => s.begin_partial(upload_id).await.map(Upload::Local),
            Store::Memory(s) => s.begin_partial(upload_id).await.map(Upload::Memory),
        }
    }

    async fn resume(&self, upload_id: &str, at: u64) -> io::Result<Option<Upload>> {
        Ok(match self {
            Store::Local(s) => s.resume(upload_id, at).await?.map(Upload::Local),
            Store::Memory(s) => s.resume(upload_id, at).await?.map(Upload::Memory),
        })
    }

    async fn concat_partials(&self, into: &str, parts: &[String]) -> io::Result<Option<Upload>> {
        Ok(match self {
            Store::Local(s) => s.concat_partials(into, parts).await?.map(Upload::Local),
            Store::Memory(s) => s.concat_partials(into, parts).await?.map(Upload::Memory),
        })
    }

    async fn discard(&self, upload_id: &str) -> io::Result<bool> {
        each!(self, s => s.discard(upload_id).await)
    }

    fn discard_blocking(&self, upload_id: &str) -> io::Result<bool> {
        each!(self, s => s.discard_blocking(upload_id))
    }

    fn delete_app_blocking(&self, appid: &str) -> io::Result<bool> {
        each!(self, s => s.delete_app_blocking(appid))
    }

    async fn head(&self, key: &Target) -> io::Result<Option<ObjectMeta>> {
        each!(self, s => s.head(key).await)
    }

    async fn open(&self, key: &Target) -> io::Result<Option<Object>> {
        each!(self, s => s.open(key).await)
    }

    async fn list(&self, appid: &str) -> io::Result<Vec<(String, ObjectMeta)>> {
        each!(self, s => s.list(appid).await)
    }

    async fn list_page(&self, appid: &str, query: &ListQuery) -> io::Result<ListPage> {
        each!(self, s => s.list_page(appid, query).await)
    }

    async fn delete(&self, key: &Target) -> io::Result<bool> {
        each!(self, s => s.delete(key).await)
    }

    async fn delete_app(&self, appid: &str) -> io::Result<bool> {
        each!(self, s => s.delete_app(appid).await)
    }

    async fn ready(&self) -> io::Result<()> {
        each!(self, s => s.ready().await)
    }

    fn head_blocking(&self, key: &Target) -> io::Result<Option<ObjectMeta>> {
        each!(self, s => s.head_blocking(key))
    }
}

/// Forwards a call to the upload's implementation.
macro_rules! each_upload {
    ($self:expr, $u:ident => $call:expr) => {
        match $self {
            Upload::Local($u) => $call,
            Upload::Memory($u) => $call,
        }
    };
}

impl UploadHandle for Upload {
    fn written(&self) -> u64 {
        each_upload!(self, u => u.written())
    }

    fn version(&self) -> &Version {
        each_upload!(self, u => u.version())
    }

    fn splice_target(&self) -> Option<RawFd> {
        each_upload!(self, u => u.splice_target())
    }

    fn advance(&mut self, n: u64) {
        each_upload!(self, u => u.advance(n))
    }

    async fn append_at(&mut self, offset: u64, data: Bytes) -> io::Result<()> {
        each_upload!(self, u => u.append_at(offset, data).await)
    }

    async fn reserve(&mut self, len: u64) -> io::Result<()> {
        each_upload!(self, u => u.reserve(len).await)
    }

    async fn sync(&self) -> io::Result<()> {
        each_upload!(self, u => u.sync().await)
    }

    async fn commit(self, key: &Target, opts: CommitOptions) -> Result<ObjectMeta, CommitError> {
        each_upload!(self, u => u.commit(key, opts).await)
    }

    async fn abort(self) {
        each_upload!(self, u => u.abort().await)
    }
}

#[cfg(test)]
mod tests;
