//! The app store: where registered applications live, behind one interface ([`AppStore`]) with
//! a sled implementation ([`super::SledApps`]) and an in-memory twin ([`super::MemoryApps`]).
//! The rules that turn a registration into a record ([`super::record`]) are the same for every
//! store; a store only keeps records, orders writes and announces them.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

use super::record::{new_secret, valid_appid, AppRecord, Registered, Registration};
use super::{Cause, EtcdApps, MemoryApps, SledApps};

/// Why an app store operation failed. No HTTP here: `error/status.rs` maps the facade's
/// [`super::RegistryError`], which every variant converts into.
#[derive(Debug)]
pub enum AppStoreError {
    /// The appid is not 1-64 of `[A-Za-z0-9_-]`.
    BadAppid,
    /// No application is registered under the appid.
    UnknownAppid,
    /// The store could not be read or written (the backend's own error is the cause).
    Unavailable(Cause),
    /// The store's remote side (etcd) cannot be reached: writes wait until it can; reads go on
    /// from this node's cache.
    Unreachable(Cause),
    /// A stored record could not be decoded.
    Corrupt(String),
}

impl fmt::Display for AppStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppStoreError::BadAppid => f.write_str("appid must be 1-64 of [A-Za-z0-9_-]"),
            AppStoreError::UnknownAppid => {
                f.write_str("no application is registered under this appid")
            }
            AppStoreError::Unavailable(e) => write!(f, "app store unavailable: {e}"),
            AppStoreError::Unreachable(e) => write!(f, "app store unreachable: {e}"),
            AppStoreError::Corrupt(what) => write!(f, "app record unreadable: {what}"),
        }
    }
}

impl std::error::Error for AppStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppStoreError::Unavailable(e) | AppStoreError::Unreachable(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

/// Whether a put may create the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Create the app when it is not registered (`POST /upload/register` by an operator).
    CreateOrUpdate,
    /// Fail with [`AppStoreError::UnknownAppid`] when it is not registered: an app managing its
    /// own record cannot resurrect it after a delete.
    UpdateOnly,
}

/// One committed change: the app's record after it, or `None` when the app was deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct AppChange {
    pub appid: String,
    pub record: Option<AppRecord>,
}

/// A subscription to an app store's changes (see [`AppStore::subscribe`]). Unbounded: a slow
/// subscriber never holds up a write.
pub struct AppChanges {
    rx: mpsc::UnboundedReceiver<AppChange>,
}

impl AppChanges {
    /// The next change; `None` once the store is gone (its last handle dropped).
    pub async fn recv(&mut self) -> Option<AppChange> {
        self.rx.recv().await
    }

    /// The next change, if one is waiting.
    pub fn try_recv(&mut self) -> Option<AppChange> {
        self.rx.try_recv().ok()
    }

    /// [`AppChanges::recv`] for a plain thread (blocks; panics on an async runtime's thread).
    pub fn blocking_recv(&mut self) -> Option<AppChange> {
        self.rx.blocking_recv()
    }
}

/// Registered applications.
///
/// Writes (`put`, `delete`) are durable when they return: the blocking variants flush on the
/// calling thread (an `fsync` for sled), the `*_async` ones wait for a flush done elsewhere, so
/// an io_uring thread never blocks on the disk. Reads never flush. A put is a read-modify-write
/// that cannot lose a concurrent writer's change or issue two different "new" secrets for one
/// app (sled: compare-and-swap, retried).
///
/// The `async fn`s return futures that are not `Send`: the callers are io_uring threads, whose
/// futures are not `Send` either. Those methods also make the trait unusable as `dyn AppStore`:
/// the node holds the enum [`Apps`] instead, which implements the trait by delegating to the
/// store it holds (enum dispatch: one type, no boxing, and a new backend is one more variant).
#[allow(async_fn_in_trait)] // not `Send` on purpose (io_uring), see above
pub trait AppStore {
    /// The record of `appid`, if registered.
    fn get(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError>;

    /// Registered appids, in order.
    fn appids(&self) -> Result<Vec<String>, AppStoreError>;

    /// Creates or updates a registration (as `mode` allows), durably. A new app gets a secret;
    /// an existing one keeps its secret unless `rotate_secret` is set (the old one then signs
    /// for [`super::ROTATION_GRACE_SECS`] more).
    fn put(&self, reg: &Registration, now: u64, mode: Put) -> Result<Registered, AppStoreError>;

    /// [`AppStore::put`] without blocking the calling thread on the disk.
    async fn put_async(
        &self,
        reg: &Registration,
        now: u64,
        mode: Put,
    ) -> Result<Registered, AppStoreError>;

    /// Removes `appid`, durably; the removed record, or `None` when it was not registered.
    fn delete(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError>;

    /// [`AppStore::delete`] without blocking the calling thread on the disk.
    async fn delete_async(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError>;

    /// Writes everything to disk (blocks; a no-op in memory).
    fn flush(&self) -> Result<(), AppStoreError>;

    /// [`AppStore::flush`] without blocking the calling thread.
    async fn flush_async(&self) -> Result<(), AppStoreError>;

    /// Every change committed from now on, each once, in commit order.
    ///
    /// Ordering: a store's writes are serialized (one change lock per store, held only for the
    /// in-memory write, never for a flush), and each change is sent to every subscriber before
    /// the lock is released. So changes arrive in the one order they were made, across all
    /// appids; the last change received for an appid is what [`AppStore::get`] returns once
    /// writes stop.
    ///
    /// A change is sent when it becomes visible to `get`, before the writing call's flush: a
    /// crash (or a failed flush, which the writing call reports) may undo a change a subscriber
    /// has seen. Only real changes are sent: a put that fails, or a delete of an app that is not
    /// registered, sends nothing. Nothing from before the call is sent: to mirror the store,
    /// subscribe first, then read [`AppStore::appids`] and [`AppStore::get`], then apply the
    /// changes (each carries the whole record, so one that repeats a read is harmless).
    fn subscribe(&self) -> AppChanges;

    /// [`AppStore::put`] that may create: a registration.
    fn register(&self, reg: &Registration, now: u64) -> Result<Registered, AppStoreError> {
        self.put(reg, now, Put::CreateOrUpdate)
    }

    /// [`AppStore::register`] without blocking the calling thread on the disk.
    async fn register_async(
        &self,
        reg: &Registration,
        now: u64,
    ) -> Result<Registered, AppStoreError> {
        self.put_async(reg, now, Put::CreateOrUpdate).await
    }

    /// [`AppStore::put_async`] that never creates.
    async fn update_async(
        &self,
        reg: &Registration,
        now: u64,
    ) -> Result<Registered, AppStoreError> {
        self.put_async(reg, now, Put::UpdateOnly).await
    }

    /// The keys to sign `appid`'s callbacks with at `now` (unix seconds): its current secret
    /// and, during a rotation, the previous one. Empty when the app is not registered.
    fn secrets_for_signing(&self, appid: &str, now: u64) -> Result<Vec<String>, AppStoreError> {
        Ok(self
            .get(appid)?
            .map(|r| r.secrets_for_signing(now))
            .unwrap_or_default())
    }
}

/// The app store the node holds: one of the implementations, by enum dispatch (see
/// [`AppStore`] for why not `dyn`).
#[derive(Clone)]
pub enum Apps {
    /// On disk, in production ([`super::Registry::open`]).
    Sled(SledApps),
    /// In memory ([`super::Registry::in_memory`]).
    Memory(MemoryApps),
    /// In etcd, cached in sled (`registry = "etcd"`).
    Etcd(EtcdApps),
}

impl AppStore for Apps {
    fn get(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        dispatch!(Apps[Sled, Memory, Etcd], self, s => s.get(appid))
    }

    fn appids(&self) -> Result<Vec<String>, AppStoreError> {
        dispatch!(Apps[Sled, Memory, Etcd], self, s => s.appids())
    }

    fn put(&self, reg: &Registration, now: u64, mode: Put) -> Result<Registered, AppStoreError> {
        dispatch!(Apps[Sled, Memory, Etcd], self, s => s.put(reg, now, mode))
    }

    async fn put_async(
        &self,
        reg: &Registration,
        now: u64,
        mode: Put,
    ) -> Result<Registered, AppStoreError> {
        dispatch!(Apps[Sled, Memory, Etcd], self, s => s.put_async(reg, now, mode).await)
    }

    fn delete(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        dispatch!(Apps[Sled, Memory, Etcd], self, s => s.delete(appid))
    }

    async fn delete_async(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        dispatch!(Apps[Sled, Memory, Etcd], self, s => s.delete_async(appid).await)
    }

    fn flush(&self) -> Result<(), AppStoreError> {
        dispatch!(Apps[Sled, Memory, Etcd], self, s => s.flush())
    }

    async fn flush_async(&self) -> Result<(), AppStoreError> {
        dispatch!(Apps[Sled, Memory, Etcd], self, s => s.flush_async().await)
    }

    fn subscribe(&self) -> AppChanges {
        dispatch!(Apps[Sled, Memory, Etcd], self, s => s.subscribe())
    }
}

/// A store's subscribers, and the lock that orders its writes (see [`AppStore::subscribe`]).
#[derive(Default)]
pub(super) struct ChangeLog {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<AppChange>>>,
}

impl ChangeLog {
    pub(super) fn subscribe(&self) -> AppChanges {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().push(tx);
        AppChanges { rx }
    }

    /// Runs `write` under the change lock; when it reports a change, sends it to every
    /// subscriber before the lock is released (and forgets the subscribers that are gone).
    pub(super) fn commit<T>(
        &self,
        write: impl FnOnce() -> Result<(T, Option<AppChange>), AppStoreError>,
    ) -> Result<T, AppStoreError> {
        let mut subscribers = self.lock();
        let (out, change) = write()?;
        if let Some(change) = change {
            subscribers.retain(|s| s.send(change.clone()).is_ok());
        }
        Ok(out)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<mpsc::UnboundedSender<AppChange>>> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// How many times a put retries its compare-and-swap (sled) or transaction (etcd) against
/// concurrent writers.
pub(super) const CAS_ATTEMPTS: usize = 64;

/// A stored record (sled's value, etcd's value): the same JSON in every store.
pub(super) fn decode(bytes: &[u8]) -> Result<AppRecord, AppStoreError> {
    serde_json::from_slice(bytes).map_err(|e| AppStoreError::Corrupt(format!("app record: {e}")))
}

/// [`AppStoreError::BadAppid`] unless `appid` is valid.
pub(super) fn check_appid(appid: &str) -> Result<(), AppStoreError> {
    match valid_appid(appid) {
        true => Ok(()),
        false => Err(AppStoreError::BadAppid),
    }
}

/// What a put makes of the current record `old` (the rules every store shares): an update of
/// it, or a new app with a new secret, or `UnknownAppid` when `mode` may not create.
pub(super) fn next_record(
    old: Option<&AppRecord>,
    reg: &Registration,
    now: u64,
    mode: Put,
) -> Result<Registered, AppStoreError> {
    match old {
        Some(current) => {
            let mut fresh = None;
            let record = current.updated(reg, now, || {
                let s = new_secret();
                fresh = Some(s.clone());
                s
            });
            Ok(Registered {
                record,
                created: false,
                new_secret: fresh,
            })
        }
        None if mode == Put::CreateOrUpdate => {
            let secret = new_secret();
            Ok(Registered {
                record: AppRecord::create(reg, now, secret.clone()),
                created: true,
                new_secret: Some(secret),
            })
        }
        None => Err(AppStoreError::UnknownAppid),
    }
}

/// The change a successful put commits.
pub(super) fn put_change(out: &Registered) -> AppChange {
    AppChange {
        appid: out.record.appid.clone(),
        record: Some(out.record.clone()),
    }
}

/// The change a delete commits (none when nothing was removed).
pub(super) fn delete_change(appid: &str, removed: &Option<AppRecord>) -> Option<AppChange> {
    removed.as_ref().map(|_| AppChange {
        appid: appid.to_owned(),
        record: None,
    })
}
