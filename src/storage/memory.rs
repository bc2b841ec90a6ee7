//! The in-memory object store: the local store's twin for tests of the whole upload flow
//! without a disk. Same semantics (nothing visible before the commit, `replace` or
//! `Exists`, versions that change when an object is replaced), plus what a test needs to
//! provoke: a capacity past which appends fail with `ENOSPC` (a full disk), and a count of
//! the uploads still open.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};

use super::mime;
use super::object::{
    out_of_order, CommitError, CommitOptions, ListPage, ListQuery, Object, ObjectBody, ObjectMeta,
    ObjectStore, UploadHandle, Version,
};
use super::path::Target;

#[derive(Default)]
struct Inner {
    objects: BTreeMap<(String, String), (Bytes, ObjectMeta)>,
    uploads: HashMap<String, BytesMut>,
    /// Bytes held by objects and open uploads.
    used: u64,
    capacity: Option<u64>,
    /// Every append fails with this OS error (a failing disk).
    failing: Option<i32>,
    next_version: u64,
}

/// Objects and uploads in memory, shared by every clone.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that holds at most `bytes` (objects and open uploads together): a disk that
    /// fills up.
    pub fn with_capacity(bytes: u64) -> Self {
        let s = Self::default();
        s.lock().capacity = Some(bytes);
        s
    }

    /// Makes every later append fail with the OS error `errno` (`libc::EIO`: a failing disk).
    pub fn fail_appends(&self, errno: i32) {
        self.lock().failing = Some(errno);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bytes of the object at `key` (tests).
    pub fn get(&self, key: &Target) -> Option<Bytes> {
        let k = (key.appid.clone(), key.rel.clone());
        self.lock().objects.get(&k).map(|(b, _)| b.clone())
    }

    /// Uploads begun and neither committed nor aborted (tests: nothing half-written left).
    pub fn open_uploads(&self) -> usize {
        self.lock().uploads.len()
    }

    /// Number of committed objects.
    pub fn len(&self) -> usize {
        self.lock().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn no_space() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOSPC)
    }
}

impl Inner {
    /// Fails as a full disk unless `n` more bytes fit.
    fn check_room(&self, n: u64) -> io::Result<()> {
        if self.capacity.is_some_and(|cap| self.used + n > cap) {
            return Err(MemoryStore::no_space());
        }
        Ok(())
    }

    fn reserve(&mut self, n: u64) -> io::Result<()> {
        self.check_room(n)?;
        self.used += n;
        Ok(())
    }

    fn version(&mut self) -> Version {
        self.next_version += 1;
        Version(format!("m{}", self.next_version))
    }
}

impl ObjectStore for MemoryStore {
    type Upload = MemoryUpload;

    async fn begin(&self, upload_id: &str, size_hint: Option<u64>) -> io::Result<MemoryUpload> {
        let mut inner = self.lock();
        if inner.uploads.contains_key(upload_id) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        // Like `fallocate`: the declared size must fit now, before `100 Continue`.
        if let Some(size) = size_hint {
            inner.check_room(size)?;
        }
        inner.uploads.insert(upload_id.to_string(), BytesMut::new());
        let version = inner.version();
        Ok(MemoryUpload {
            store: self.clone(),
            id: upload_id.to_string(),
            written: 0,
            version,
        })
    }

    async fn begin_partial(&self, upload_id: &str) -> io::Result<MemoryUpload> {
        self.begin(upload_id, None).await
    }

    async fn concat_partials(
        &self,
        into: &str,
        parts: &[String],
    ) -> io::Result<Option<MemoryUpload>> {
        let mut whole = BytesMut::new();
        {
            let inner = self.lock();
            for part in parts {
                match inner.uploads.get(part) {
                    Some(body) => whole.extend_from_slice(body),
                    None => return Ok(None),
                }
            }
        }
        let mut up = self.begin_partial(into).await?;
        up.append_at(0, whole.freeze()).await?;
        Ok(Some(up))
    }

    async fn resume(&self, upload_id: &str, at: u64) -> io::Result<Option<MemoryUpload>> {
        let mut inner = self.lock();
        let Some(body) = inner.uploads.get_mut(upload_id) else {
            return Ok(None);
        };
        let held = body.len() as u64;
        if held < at {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("upload {upload_id} holds {held} bytes, {at} were acknowledged"),
            ));
        }
        // The bytes of an append that was never acknowledged go.
        body.truncate(at as usize);
        inner.used -= held - at;
        let version = inner.version();
        Ok(Some(MemoryUpload {
            store: self.clone(),
            id: upload_id.to_string(),
            written: at,
            version,
        }))
    }

    async fn discard(&self, upload_id: &str) -> io::Result<bool> {
        self.discard_blocking(upload_id)
    }

    fn discard_blocking(&self, upload_id: &str) -> io::Result<bool> {
        let mut inner = self.lock();
        match inner.uploads.remove(upload_id) {
            Some(body) => {
                inner.used -= body.len() as u64;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn head(&self, key: &Target) -> io::Result<Option<ObjectMeta>> {
        self.head_blocking(key)
    }

    async fn open(&self, key: &Target) -> io::Result<Option<Object>> {
        let k = (key.appid.clone(), key.rel.clone());
        Ok(self.lock().objects.get(&k).map(|(b, meta)| Object {
            meta: meta.clone(),
            body: ObjectBody::Bytes(b.clone()),
        }))
    }

    async fn list(&self, appid: &str) -> io::Result<Vec<(String, ObjectMeta)>> {
        Ok(self
            .lock()
            .objects
            .iter()
            .filter(|((a, _), _)| a == appid)
            .map(|((_, rel), (_, meta))| (rel.clone(), meta.clone()))
            .collect())
    }

    async fn list_page(&self, appid: &str, query: &ListQuery) -> io::Result<ListPage> {
        let from = (appid.to_owned(), query.prefix.clone());
        let inner = self.lock();
        let objects = inner
            .objects
            .range(from..)
            .take_while(|((a, rel), _)| a == appid && rel.starts_with(&query.prefix))
            .filter(|((_, rel), _)| query.wants(rel))
            .take(query.limit.saturating_add(1))
            .map(|((_, rel), (_, meta))| (rel.clone(), meta.clone()))
            .collect();
        Ok(ListPage::of(objects, query.limit))
    }

    async fn delete_app(&self, appid: &str) -> io::Result<bool> {
        self.delete_app_blocking(appid)
    }

    fn delete_app_blocking(&self, appid: &str) -> io::Result<bool> {
        let mut inner = self.lock();
        let keys: Vec<_> = inner
            .objects
            .keys()
            .filter(|(a, _)| a == appid)
            .cloned()
            .collect();
        for k in &keys {
            if let Some((b, _)) = inner.objects.remove(k) {
                inner.used -= b.len() as u64;
            }
        }
        Ok(!keys.is_empty())
    }

    async fn delete(&self, key: &Target) -> io::Result<bool> {
        let k = (key.appid.clone(), key.rel.clone());
        let mut inner = self.lock();
        match inner.objects.remove(&k) {
            Some((b, _)) => {
                inner.used -= b.len() as u64;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn ready(&self) -> io::Result<()> {
        Ok(())
    }

    fn head_blocking(&self, key: &Target) -> io::Result<Option<ObjectMeta>> {
        let k = (key.appid.clone(), key.rel.clone());
        Ok(self.lock().objects.get(&k).map(|(_, m)| m.clone()))
    }
}

/// An upload held in memory until its commit.
pub struct MemoryUpload {
    store: MemoryStore,
    id: String,
    written: u64,
    version: Version,
}

impl UploadHandle for MemoryUpload {
    fn written(&self) -> u64 {
        self.written
    }

    fn version(&self) -> &Version {
        &self.version
    }

    fn splice_target(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    fn advance(&mut self, _n: u64) {
        debug_assert!(false, "nothing is spliced into a memory upload");
    }

    async fn append_at(&mut self, offset: u64, data: Bytes) -> io::Result<()> {
        if offset != self.written {
            return Err(out_of_order(offset, self.written));
        }
        let mut inner = self.store.lock();
        if let Some(errno) = inner.failing {
            return Err(io::Error::from_raw_os_error(errno));
        }
        inner.reserve(data.len() as u64)?;
        let body = inner
            .uploads
            .get_mut(&self.id)
            .ok_or_else(|| io::Error::other("upload closed"))?;
        body.extend_from_slice(&data);
        self.written += data.len() as u64;
        Ok(())
    }

    /// Like `fallocate`: the room must be there now (nothing is held: the bytes are counted
    /// as they arrive).
    async fn reserve(&mut self, len: u64) -> io::Result<()> {
        self.store.lock().check_room(len)
    }

    async fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    async fn commit(self, key: &Target, opts: CommitOptions) -> Result<ObjectMeta, CommitError> {
        let mut inner = self.store.lock();
        let body = inner
            .uploads
            .remove(&self.id)
            .ok_or_else(|| CommitError::Io(io::Error::other("upload closed")))?;
        let k = (key.appid.clone(), key.rel.clone());
        if inner.objects.contains_key(&k) && !opts.replace {
            inner.used -= body.len() as u64;
            return Err(CommitError::Exists);
        }
        let meta = ObjectMeta {
            size: body.len() as u64,
            version: self.version.clone(),
            modified: SystemTime::now(),
            content_type: opts
                .content_type
                .as_deref()
                .and_then(mime::declared)
                .map(str::to_owned),
        };
        if let Some((old, _)) = inner.objects.insert(k, (body.freeze(), meta.clone())) {
            inner.used -= old.len() as u64;
        }
        Ok(meta)
    }

    async fn abort(self) {
        let mut inner = self.store.lock();
        if let Some(b) = inner.uploads.remove(&self.id) {
            inner.used -= b.len() as u64;
        }
    }
}
