//! The local file store, the node's first [`ObjectStore`]:
//!
//! ```text
//! data_dir/files/{appid}/{path}   committed uploads, served for download
//! data_dir/tmp/{upload_id}.part   bodies being received; emptied at startup
//! data_dir/partial/{upload_id}.part   resumable uploads' bodies so far; kept across restarts
//! data_dir/trash/{appid}.{ms}.{n}      a deleted app's files, renamed aside, being removed
//! ```
//!
//! A listing ([`ObjectStore::list_page`]) walks `files/{appid}/` depth first, each directory's
//! entries sorted (a directory as `name/`, so the walk's order is the byte order of the whole
//! paths), skipping subtrees that lie wholly before `after` or outside `prefix`, and stops once
//! it has `limit + 1` files: a page costs the directories it passes through (each read whole
//! and sorted: one `getdents` pass over a directory however many of its entries the page
//! uses) plus a `stat` and a `getxattr` per file returned, not the app's whole tree.
//!
//! An upload is a temporary file written in order (from the connection's buffer, by splice, or
//! from registered buffers through [`UploadHandle::splice_target`]), then synced, renamed into
//! place and its directory synced. Until the rename nothing is visible under `files/`. A
//! version is the file's inode number, which the rename keeps.
//!
//! A content type given to the commit is set on the temporary file as an extended attribute
//! before the rename (`xattr.rs`), so it becomes visible with the bytes and survives restarts.
//!
//! Downloads open through the thread's open-file cache (`cache.rs`): a file of at most
//! [`SMALL_BODY`] bytes is read whole when opened and kept as bytes, a larger one as its open
//! descriptor. Every change under `files/` — a commit's rename (with or without replacing),
//! a delete's unlink — bumps the path's generation (`generation.rs`) once it is done, which
//! makes every thread's cached open of that path stale.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio_uring::fs::{File, OpenOptions};

use super::object::{
    out_of_order, CommitError, CommitOptions, ListPage, ListQuery, Object, ObjectBody, ObjectMeta,
    ObjectStore, UploadHandle, Version,
};
use super::path::Target;
use super::{cache, dirs, generation, mime, ops, xattr};
use crate::metrics::{self, OpenCacheResult};

/// Bodies declared at least this long get their blocks reserved before `100 Continue`
/// ([`LocalUpload::preallocate`]); below it the reservation costs more (a round trip through
/// io_uring's worker pool per upload) than it saves, and a full disk still answers 507 when
/// the first write fails.
const PREALLOCATE_FROM: u64 = 256 << 10;

/// Files up to this size are read whole when opened for a download, kept in the open-file
/// cache as bytes and sent with the response head in one write; larger ones are spliced.
pub const SMALL_BODY: u64 = 16 * 1024;

/// How long a cached open is served unless told otherwise (`open_file_cache_ttl_ms`'s
/// default).
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(1);

/// The file store's directories.
#[derive(Debug, Clone)]
pub struct LocalStore {
    files: PathBuf,
    tmp: PathBuf,
    partial: PathBuf,
    trash: PathBuf,
    /// How long a download may serve a cached open; zero: no cache.
    cache_ttl: Duration,
}

impl LocalStore {
    /// Creates the directories and removes temporary files left by a crash. Runs once at
    /// startup, before any runtime thread, so plain blocking calls are fine here.
    pub fn open(data_dir: &Path) -> io::Result<LocalStore> {
        let files = data_dir.join("files");
        let tmp = data_dir.join("tmp");
        let partial = data_dir.join("partial");
        let trash = data_dir.join("trash");
        std::fs::create_dir_all(&trash)?;
        // Apps deleted before a restart that stopped their removal: finished in the background.
        for entry in std::fs::read_dir(&trash)? {
            remove_in_background(entry?.path());
        }
        std::fs::create_dir_all(&files)?;
        std::fs::create_dir_all(&tmp)?;
        std::fs::create_dir_all(&partial)?;
        for entry in std::fs::read_dir(&tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(LocalStore {
            files,
            tmp,
            partial,
            trash,
            cache_ttl: DEFAULT_CACHE_TTL,
        })
    }

    /// Sets how long a download may serve what the thread's open-file cache holds
    /// (`open_file_cache_ttl_ms`); zero turns the cache off.
    pub fn with_cache_ttl(mut self, ttl: Duration) -> LocalStore {
        self.cache_ttl = ttl;
        self
    }

    /// Root of committed files.
    pub fn files_root(&self) -> &Path {
        &self.files
    }

    /// Where a target is stored.
    pub fn final_path(&self, t: &Target) -> PathBuf {
        self.files.join(&t.appid).join(&t.rel)
    }

    /// The temporary file of an upload.
    pub fn tmp_path(&self, upload_id: &str) -> PathBuf {
        self.tmp.join(format!("{upload_id}.part"))
    }

    /// The partial body of a resumable upload.
    pub fn partial_path(&self, upload_id: &str) -> PathBuf {
        self.partial.join(format!("{upload_id}.part"))
    }

    /// Temporary files present now (tests and the crash checks use it).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }
}

fn meta_of_statx(st: &libc::statx, content_type: Option<String>) -> ObjectMeta {
    ObjectMeta {
        size: st.stx_size,
        version: Version(st.stx_ino.to_string()),
        modified: UNIX_EPOCH + Duration::new(st.stx_mtime.tv_sec as u64, st.stx_mtime.tv_nsec),
        content_type,
    }
}

/// The inode number of an open file.
fn inode_of(file: &File) -> io::Result<u64> {
    fstat(file).map(|st| st.st_ino)
}

/// `fstat` of an open file, inline: its in-memory inode, no path walk and no I/O, so no round
/// trip through io_uring's worker pool (where it would queue behind page-cache copies).
fn fstat(file: &File) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat fills `st` on success; the descriptor is borrowed from an open file.
    let rc = unsafe { libc::fstat(std::os::fd::AsRawFd::as_raw_fd(file), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat returned 0, so it initialised `st`.
    Ok(unsafe { st.assume_init() })
}

/// Whether `file` (holding `size` bytes) holds at least 64 KiB more blocks than its bytes
/// need: a reservation past its end, not the few blocks of an extent tree.
fn reserved_past_end(file: &File, size: u64) -> bool {
    const SLACK: u64 = 64 << 10;
    match fstat(file) {
        Ok(st) => st.st_blocks as u64 * 512 >= size.next_multiple_of(4096) + SLACK,
        Err(_) => true,
    }
}

fn is_regular(st: &libc::statx) -> bool {
    u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFREG
}

fn not_found_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl ObjectStore for LocalStore {
    type Upload = LocalUpload;

    async fn begin(&self, upload_id: &str, size_hint: Option<u64>) -> io::Result<LocalUpload> {
        let tmp = self.tmp_path(upload_id);
        // Readable too: a form's spliced file bytes are checked in place (`mapped.rs`).
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await?;
        let up = LocalUpload::new(file, tmp, self.files.clone(), 0).await?;
        if let Some(size) = size_hint.filter(|&s| s >= PREALLOCATE_FROM) {
            if let Err(e) = up.preallocate(size).await {
                up.abort().await;
                return Err(e);
            }
        }
        Ok(up)
    }

    async fn begin_partial(&self, upload_id: &str) -> io::Result<LocalUpload> {
        let path = self.partial_path(upload_id);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        LocalUpload::new(file, path, self.files.clone(), 0).await
    }

    async fn resume(&self, upload_id: &str, at: u64) -> io::Result<Option<LocalUpload>> {
        let path = self.partial_path(upload_id);
        let Some(file) = not_found_is_none(OpenOptions::new().write(true).open(&path).await)?
        else {
            return Ok(None);
        };
        let size = match fstat(&file) {
            Ok(st) => st.st_size as u64,
            Err(e) => {
                let _ = file.close().await;
                return Err(e);
            }
        };
        if size < at {
            let _ = file.close().await;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} holds {size} bytes, {at} were acknowledged",
                    path.display()
                ),
            ));
        }
        if size > at {
            // The bytes of an append that was never acknowledged go: the next append writes
            // from `at`, and a shorter one must not leave them behind as the file's tail.
            // Inline: io-uring 0.6 (under tokio-uring 0.5) has no `IORING_OP_FTRUNCATE`, and
            // this runs only after a broken append, dropping page-cache pages of this file.
            use std::os::fd::AsRawFd;
            // SAFETY: the descriptor is open for writing and owned by `file` for this call.
            if unsafe { libc::ftruncate(file.as_raw_fd(), at as libc::off_t) } != 0 {
                let e = io::Error::last_os_error();
                let _ = file.close().await;
                return Err(e);
            }
        }
        let mut up = LocalUpload::new(file, path, self.files.clone(), at).await?;
        // An earlier append may have reserved blocks it did not fill (it broke).
        up.trim_at_commit = true;
        Ok(Some(up))
    }

    /// Copies each part through a 1 MiB buffer on the ring (reads and writes are io_uring
    /// operations; concatenation is rare and the parts are on this disk already).
    async fn concat_partials(
        &self,
        into: &str,
        parts: &[String],
    ) -> io::Result<Option<LocalUpload>> {
        const CHUNK: usize = 1 << 20;
        let mut up = self.begin_partial(into).await?;
        for part in parts {
            let path = self.partial_path(part);
            let Some(file) = not_found_is_none(File::open(&path).await)? else {
                up.abort().await;
                return Ok(None);
            };
            let mut at = 0u64;
            let mut buf = Vec::with_capacity(CHUNK);
            let copied = loop {
                let (res, b) = file.read_at(buf, at).await;
                buf = b;
                match res {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        // The read buffer itself is written (no second copy); a new one reads on.
                        let chunk =
                            Bytes::from(std::mem::replace(&mut buf, Vec::with_capacity(CHUNK)));
                        let offset = up.written();
                        if let Err(e) = up.append_at(offset, chunk).await {
                            break Err(e);
                        }
                        at += n as u64;
                    }
                    Err(e) => break Err(e),
                }
            };
            let _ = file.close().await;
            if let Err(e) = copied {
                up.abort().await;
                return Err(e);
            }
        }
        Ok(Some(up))
    }

    async fn discard(&self, upload_id: &str) -> io::Result<bool> {
        not_found_is_none(ops::unlink(&self.partial_path(upload_id)).await).map(|r| r.is_some())
    }

    fn discard_blocking(&self, upload_id: &str) -> io::Result<bool> {
        not_found_is_none(std::fs::remove_file(self.partial_path(upload_id))).map(|r| r.is_some())
    }

    /// A directory at the path occupies the key too: no upload could be placed there, so the
    /// flow's `overwrite = false` check answers 409 before the pre-callback, as for a file.
    /// The content type is read by path (`getxattr`) only when something is there, right after
    /// the `statx` walked the same path.
    async fn head(&self, key: &Target) -> io::Result<Option<ObjectMeta>> {
        let path = self.final_path(key);
        let st = not_found_is_none(tokio_uring::fs::statx(&path).await)?;
        Ok(st.map(|st| meta_of_statx(&st, xattr::get_path(&path))))
    }

    /// Through the thread's open-file cache: the generation is read before the file is
    /// opened, so a commit or delete that completes after this read makes the entry stale.
    async fn open(&self, key: &Target) -> io::Result<Option<Object>> {
        let path = self.final_path(key);
        if self.cache_ttl.is_zero() {
            return Ok(open_object(&path).await?.map(|(object, _)| object));
        }
        let now = Instant::now();
        let generation = generation::current(&path);
        if let Some(hit) = cache::get(&path, generation, now) {
            metrics::open_file_cache(OpenCacheResult::Hit);
            return Ok(Some(hit));
        }
        metrics::open_file_cache(OpenCacheResult::Miss);
        let opened = open_object(&path).await?;
        Ok(opened.map(|(object, consistent)| {
            if consistent {
                cache::put(path, generation, now + self.cache_ttl, &object);
            }
            object
        }))
    }

    async fn list(&self, appid: &str) -> io::Result<Vec<(String, ObjectMeta)>> {
        // Directory walks have no io_uring operation, and a walk blocks: it runs on a thread of
        // its own while the ring goes on (a listing is rare, an app's tree may be large).
        let root = self.files.join(appid);
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("upgate-list".into())
            .spawn(move || {
                let _ = tx.send(walk(&root));
            })?;
        rx.await
            .unwrap_or_else(|_| Err(io::Error::other("listing thread ended without an answer")))
    }

    /// On a thread of its own, as [`ObjectStore::list`] (the cost: see the module comment).
    async fn list_page(&self, appid: &str, query: &ListQuery) -> io::Result<ListPage> {
        let root = self.files.join(appid);
        let query = query.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("upgate-list".into())
            .spawn(move || {
                let mut out = Vec::new();
                let want = query.limit.saturating_add(1);
                let walked = walk_sorted(&root, "", &query, want, &mut out);
                let _ = tx.send(walked.map(|_| ListPage::of(out, query.limit)));
            })?;
        rx.await
            .unwrap_or_else(|_| Err(io::Error::other("listing thread ended without an answer")))
    }

    /// Unlinks only what is at the path under `files/`: an upload of the same path still being
    /// received is a file under `tmp/` (or `partial/`), which a delete never touches; its
    /// commit's rename, after the delete, makes it visible.
    async fn delete(&self, key: &Target) -> io::Result<bool> {
        let path = self.final_path(key);
        let removed = match ops::unlink(&path).await {
            // A directory at the path is no object.
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Ok(None),
            other => not_found_is_none(other),
        };
        generation::bump(&path);
        removed.map(|r| r.is_some())
    }

    /// Renames `files/{appid}` into `trash/` (one atomic rename on the same filesystem: every
    /// download of the app misses from then on, and every thread's cached opens are made stale),
    /// then removes it on a thread of its own, however many files it holds.
    async fn delete_app(&self, appid: &str) -> io::Result<bool> {
        let (from, aside) = self.app_aside(appid);
        let moved = not_found_is_none(ops::rename(&from, &aside, false).await);
        self.app_moved_aside(moved?.is_some(), aside)
    }

    fn delete_app_blocking(&self, appid: &str) -> io::Result<bool> {
        let (from, aside) = self.app_aside(appid);
        let moved = not_found_is_none(std::fs::rename(&from, &aside));
        self.app_moved_aside(moved?.is_some(), aside)
    }

    /// Creates, writes and removes a probe file where bodies are written, and looks at the
    /// files directory.
    async fn ready(&self) -> io::Result<()> {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let probe = self.tmp.join(format!(".readyz-{}-{n}", std::process::id()));
        let named =
            |p: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
        let file = File::create(&probe)
            .await
            .map_err(|e| named(&self.tmp, e))?;
        let (written, _) = file.write_at(&b"ok"[..], 0).submit().await;
        let _ = file.close().await;
        let removed = tokio_uring::fs::remove_file(&probe).await;
        written.map_err(|e| named(&probe, e))?;
        removed.map_err(|e| named(&probe, e))?;
        tokio_uring::fs::statx(&self.files)
            .await
            .map(|_| ())
            .map_err(|e| named(&self.files, e))
    }

    fn head_blocking(&self, key: &Target) -> io::Result<Option<ObjectMeta>> {
        let path = self.final_path(key);
        let m = not_found_is_none(std::fs::symlink_metadata(&path))?;
        Ok(m.filter(|m| m.is_file()).map(|m| meta_of_std(&m, &path)))
    }
}

/// Opens the regular file at `path` for a download: a small one is read whole and closed, a
/// larger one stays open. The flag is false when the bytes read do not match the size `statx`
/// gave (the file changed in place meanwhile): such an object is sent, as before, but not
/// cached.
async fn open_object(path: &Path) -> io::Result<Option<(Object, bool)>> {
    use tokio_uring::buf::BoundedBuf;
    let Some(file) = not_found_is_none(File::open(path).await)? else {
        return Ok(None);
    };
    let st = match file.statx().await {
        Ok(st) if is_regular(&st) => st,
        other => {
            let _ = file.close().await;
            return other.map(|_| None);
        }
    };
    let meta = meta_of_statx(&st, xattr::get_fd(std::os::fd::AsRawFd::as_raw_fd(&file)));
    if meta.size <= SMALL_BODY {
        // One byte more than the size: a file that grew is noticed, not cut short.
        let want = meta.size as usize + 1;
        let (read, buf) = file
            .read_at(Vec::with_capacity(want).slice(..want), 0)
            .await;
        let buf = buf.into_inner();
        if matches!(read, Ok(n) if n as u64 == meta.size) {
            let _ = file.close().await;
            let body = ObjectBody::Bytes(Bytes::from(buf));
            return Ok(Some((Object { meta, body }, true)));
        }
    }
    let body = ObjectBody::File(Rc::new(file));
    let consistent = meta.size > SMALL_BODY;
    Ok(Some((Object { meta, body }, consistent)))
}

/// Removes `path` (a deleted app's tree) on a thread of its own; failures are logged.
impl LocalStore {
    /// An app's directory and a fresh name for it under `trash/`.
    fn app_aside(&self, appid: &str) -> (PathBuf, PathBuf) {
        static N: AtomicU64 = AtomicU64::new(0);
        let aside = self.trash.join(format!(
            "{appid}.{}.{}",
            crate::clock::unix_ms(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        (self.files.join(appid), aside)
    }

    /// After an app's directory was renamed to `aside` (or was not there): every thread's
    /// open-file cache forgets it, and the bytes go in the background.
    fn app_moved_aside(&self, moved: bool, aside: PathBuf) -> io::Result<bool> {
        generation::bump_all();
        if !moved {
            return Ok(false);
        }
        // Threads that remember the app's directories (`dirs.rs`) find them gone at their
        // next commit there, and make them again.
        remove_in_background(aside);
        Ok(true)
    }
}

fn remove_in_background(path: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("upgate-trash".into())
        .spawn(move || {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "removing a deleted app's files failed");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start removing a deleted app's files");
    }
}

/// Appends to `out` the files below `dir` (whose path relative to the app's root is `rel`)
/// that `query` wants, in path order, until `out` holds `want`; true once it does (blocking).
fn walk_sorted(
    dir: &Path,
    rel: &str,
    query: &ListQuery,
    want: usize,
    out: &mut Vec<(String, ObjectMeta)>,
) -> io::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        other => other?,
    };
    // (sort key, name, is a directory): a directory sorts as `name/`, as its files' paths do.
    let mut children = Vec::new();
    for entry in entries {
        let entry = entry?;
        // Uploads only ever create UTF-8 names; anything else was not put there by the node.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            children.push((format!("{name}/"), name, true));
        } else if kind.is_file() {
            children.push((name.clone(), name, false));
        }
    }
    children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (key, name, is_dir) in children {
        let full = match rel {
            "" => key,
            _ => format!("{rel}/{key}"),
        };
        // Past the prefix's range: so is every later sibling.
        if !full.starts_with(&query.prefix) && !query.prefix.starts_with(&full) {
            if full.as_str() > query.prefix.as_str() {
                break;
            }
            continue;
        }
        if is_dir {
            // Every path below `full` sorts before `after` unless `after` itself lies below.
            let before = query
                .after
                .as_deref()
                .is_some_and(|a| full.as_str() < a && !a.starts_with(&full));
            if before {
                continue;
            }
            let sub = full.trim_end_matches('/');
            if walk_sorted(&dir.join(&name), sub, query, want, out)? {
                return Ok(true);
            }
        } else if query.wants(&full) {
            let path = dir.join(&name);
            let m = match std::fs::symlink_metadata(&path) {
                // Deleted since the directory was read.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                other => other?,
            };
            out.push((full, meta_of_std(&m, &path)));
            if out.len() >= want {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The regular files below `root`, by path relative to it, sorted (blocking).
fn walk(root: &Path) -> io::Result<Vec<(String, ObjectMeta)>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            other => other?,
        };
        for entry in entries {
            let entry = entry?;
            let m = entry.metadata()?;
            if m.is_dir() {
                dirs.push(entry.path());
            } else if m.is_file() {
                let rel = entry
                    .path()
                    .strip_prefix(root)
                    .map_err(io::Error::other)?
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, meta_of_std(&m, &entry.path())));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Blocking: reads the content type by path.
fn meta_of_std(m: &std::fs::Metadata, path: &Path) -> ObjectMeta {
    ObjectMeta {
        size: m.len(),
        version: Version(m.ino().to_string()),
        modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        content_type: xattr::get_path(path),
    }
}

/// An upload body being written into its temporary file.
pub struct LocalUpload {
    file: Option<File>,
    tmp: PathBuf,
    root: PathBuf,
    written: u64,
    version: Version,
    /// Blocks may be reserved past what was written ([`UploadHandle::reserve`], here or in
    /// an earlier append of a resumed upload), which the commit gives back.
    trim_at_commit: bool,
}

impl LocalUpload {
    /// The temporary file the body is written to until the commit renames it into place.
    pub fn staged_path(&self) -> &Path {
        &self.tmp
    }

    async fn new(file: File, tmp: PathBuf, root: PathBuf, written: u64) -> io::Result<Self> {
        // fstat of a file this thread just opened reads its in-memory inode: no path walk and
        // no I/O, so it runs inline instead of a round trip through io_uring's worker pool.
        let version = match inode_of(&file) {
            Ok(ino) => Version(ino.to_string()),
            Err(e) => {
                let _ = file.close().await;
                let _ = ops::unlink(&tmp).await;
                return Err(e);
            }
        };
        Ok(LocalUpload {
            file: Some(file),
            tmp,
            root,
            written,
            version,
            trim_at_commit: false,
        })
    }

    fn file(&self) -> io::Result<&File> {
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("upload closed"))
    }

    /// Reserves the declared body size before any byte arrives (`IORING_OP_FALLOCATE`, mode
    /// 0), so a disk without room fails before `100 Continue` rather than midway, and the
    /// file's blocks are allocated once instead of extent by extent. Mode 0 sets the file's
    /// size: a body that ends short fails (the decoder's `IncompleteBody`) and its file is
    /// removed, so a committed file is exactly its body. A filesystem without `fallocate` is
    /// not an error.
    async fn preallocate(&self, len: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        match self.file()?.fallocate(0, len, 0).await {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
            other => other,
        }
    }

    /// The parent directories of `dest` below the root are created; with `fsync` the file,
    /// then each new directory's entry and the file's own are synced.
    async fn place(&self, dest: &Path, opts: &CommitOptions) -> Result<(), CommitError> {
        let parent = dest.parent().unwrap_or(&self.root);
        let placed = async {
            // A directory this thread already used needs no mkdirat (`dirs.rs`).
            let cached = dirs::known(parent);
            let mut created = Vec::new();
            if !cached {
                created = ops::mkdir_below(&self.root, parent).await?;
            }
            match ops::rename(&self.tmp, dest, opts.replace).await {
                Err(e) if cached && e.kind() == io::ErrorKind::NotFound => {
                    dirs::forget(parent);
                    created = ops::mkdir_below(&self.root, parent).await?;
                    ops::rename(&self.tmp, dest, opts.replace).await?;
                }
                other => other?,
            }
            dirs::remember(parent);
            // After the rename, before the commit returns: no thread serves a cached open of
            // what was at `dest` once the client can learn of the new object.
            generation::bump(dest);
            Ok::<_, io::Error>(created)
        }
        .await;
        let created = match placed {
            Ok(created) => created,
            Err(e) => {
                let _ = ops::unlink(&self.tmp).await;
                return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                    CommitError::Exists
                } else {
                    CommitError::Io(e)
                });
            }
        };
        if opts.fsync {
            // The file's entry lives in `parent`; each new directory's entry lives in the one
            // above it, so those are synced too, or a crash could lose the whole new branch.
            for dir in created.iter().filter_map(|d| d.parent()) {
                ops::sync_dir(dir).await.map_err(CommitError::Io)?;
            }
            ops::sync_dir(parent).await.map_err(CommitError::Io)?;
        }
        Ok(())
    }
}

impl UploadHandle for LocalUpload {
    fn written(&self) -> u64 {
        self.written
    }

    fn version(&self) -> &Version {
        &self.version
    }

    fn splice_target(&self) -> Option<std::os::fd::RawFd> {
        self.file.as_ref().map(std::os::fd::AsRawFd::as_raw_fd)
    }

    fn advance(&mut self, n: u64) {
        self.written += n;
    }

    async fn append_at(&mut self, offset: u64, data: Bytes) -> io::Result<()> {
        if offset != self.written {
            return Err(out_of_order(offset, self.written));
        }
        let len = data.len() as u64;
        let (res, _) = self.file()?.write_all_at(data, offset).await;
        res?;
        self.written += len;
        Ok(())
    }

    /// `FALLOC_FL_KEEP_SIZE` after what was written: the size stays what was written (which
    /// a restart resumes from, and a short body is measured by). As
    /// [`LocalUpload::preallocate`] for a whole body, a full disk fails before the body, and
    /// the blocks are allocated at once instead of reserved page by page as the bytes land
    /// (ext4's delayed allocation and quota accounting per page:
    /// `benches/peers/append-profile.sh` shows them in the copying worker's profile without
    /// it). Below [`PREALLOCATE_FROM`] it costs more than it saves; a filesystem without
    /// `fallocate` is not an error.
    async fn reserve(&mut self, len: u64) -> io::Result<()> {
        if len < PREALLOCATE_FROM {
            return Ok(());
        }
        self.trim_at_commit = true;
        let at = self.written;
        match self
            .file()?
            .fallocate(at, len, libc::FALLOC_FL_KEEP_SIZE)
            .await
        {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
            other => other,
        }
    }

    async fn sync(&self) -> io::Result<()> {
        self.file()?.sync_data().await
    }

    async fn commit(
        mut self,
        key: &Target,
        opts: CommitOptions,
    ) -> Result<ObjectMeta, CommitError> {
        let file = self
            .file
            .take()
            .ok_or_else(|| CommitError::Io(io::Error::other("upload closed")))?;
        if self.trim_at_commit && reserved_past_end(&file, self.written) {
            // Blocks an append reserved past the end (it broke, and the upload ended shorter)
            // are freed: truncating to its own size frees what lies past it (ext4, xfs).
            // Inline, as in `resume`: io-uring 0.6 has no `IORING_OP_FTRUNCATE`, and this
            // runs only in that rare case.
            use std::os::fd::AsRawFd;
            // SAFETY: the descriptor is open for writing and owned by `file` for this call.
            if unsafe { libc::ftruncate(file.as_raw_fd(), self.written as libc::off_t) } != 0 {
                let e = io::Error::last_os_error();
                let _ = file.close().await;
                return Err(CommitError::Io(e));
            }
        }
        // Before the rename: the type is visible with the bytes or not at all.
        let content_type = opts
            .content_type
            .as_deref()
            .and_then(mime::declared)
            .filter(|ct| xattr::set(std::os::fd::AsRawFd::as_raw_fd(&file), ct, &self.tmp))
            .map(str::to_owned);
        // fdatasync: the data and the size (which reading it back needs), not the times; an
        // extended attribute is metadata fdatasync need not write, so with one it is fsync.
        let synced = match (opts.fsync, content_type.is_some()) {
            (false, _) => Ok(()),
            (true, false) => file.sync_data().await,
            (true, true) => file.sync_all().await,
        };
        let closed = file.close().await;
        if let Err(e) = synced.and(closed) {
            let _ = ops::unlink(&self.tmp).await;
            return Err(CommitError::Io(e));
        }
        let dest = self.root.join(&key.appid).join(&key.rel);
        self.place(&dest, &opts).await?;
        Ok(ObjectMeta {
            size: self.written,
            version: self.version.clone(),
            modified: SystemTime::now(),
            content_type,
        })
    }

    async fn abort(mut self) {
        if let Some(file) = self.file.take() {
            let _ = file.close().await;
        }
        let _ = ops::unlink(&self.tmp).await;
    }
}
