//! The node's durable state besides files: registered applications (by appid) and the outbox of
//! post-upload notifications. Two interfaces, each with a sled implementation (production) and an
//! in-memory twin (tests, and the model the next backends are held to):
//!
//! - [`AppStore`]: the app registry (get, put with compare-and-swap, delete, list, signing
//!   secrets, and a subscription to every committed change);
//! - [`OutboxJournal`]: the durable queue of post-callbacks (staged → placed, due index,
//!   reschedule, delivered, flush), in production upgate's own log with a group commit
//!   ([`LogOutbox`]); [`SledOutbox`] remains to move an older version's entries into it.
//!
//! [`Registry`] is the facade the node holds: one app store and one outbox journal, with the
//! calls the handlers always made (`get`, `register_async`, `outbox()`, `flush_async`, …).
//! [`Registry::open`] puts the apps in a sled database at `<data_dir>/registry` and the outbox
//! in its log at `<data_dir>/outbox/outbox.log`; [`Registry::in_memory`] uses both twins.
//!
//! ## Layout
//!
//! | file | owns | used where |
//! |---|---|---|
//! | `mod.rs` | [`Registry`] (the facade), [`RegistryError`] | the node (`app.rs`), handlers, `notify` |
//! | `record.rs` | [`AppRecord`], [`Registration`], the create/update/rotate rules | every app store |
//! | `apps.rs` | [`AppStore`], [`AppChange`], [`AppStoreError`], [`Apps`] (enum dispatch) | the facade |
//! | `apps_sled.rs` | [`SledApps`]: tree `apps`, CAS retries, flushed writes | [`Registry::open`] |
//! | `apps_etcd.rs` | [`EtcdApps`]: apps in etcd (a transaction per change), sled as this node's cache filled by a watch, the control and watch threads | [`Registry::open_node`] with `registry = "etcd"` |
//! | `etcd_client.rs` | etcd's v3 JSON gateway over ureq: range, compare-and-put/delete, watch stream | `apps_etcd.rs` |
//! | `apps_memory.rs` | [`MemoryApps`]: a `Mutex<BTreeMap>` | [`Registry::in_memory`], tests |
//! | `outbox.rs` | [`OutboxEntry`], [`OutboxJournal`], [`OutboxError`], [`Outbox`], backoff | the facade, `upload::flow`, `notify` |
//! | `outbox_log.rs` | [`LogOutbox`]: the queue in memory, every change a record in the log, the group commit thread | [`Registry::open`] |
//! | `log_writer.rs` | `LogFile`: open + lock + replay + cut a torn tail, append, compact | the group commit thread |
//! | `log_format.rs` | a record's framing (`[len][crc32][JSON]`) and reading a log back | `outbox_log.rs`, `log_writer.rs` |
//! | `outbox_sled.rs` | [`SledOutbox`]: trees `outbox` + `outbox_due` (an older version's outbox; moved into the log at open) | [`Registry::open`] |
//! | `outbox_memory.rs` | [`MemoryOutbox`]: a map and a due set under one lock | [`Registry::in_memory`], tests |
//! | `resumables.rs` | [`ResumableRecord`], [`ResumableStore`] on sled (tree `resumable`) and in memory, [`Resumables`] | `upload::tus` |
//! | `sled_db.rs` | [`SledDb`]: the shared database, its lock wait and its flusher | the sled stores |
//! | `flusher.rs` | the group-commit flushing thread | [`SledDb`] |
//! | `tests.rs`, `behaviour_tests.rs`, `log_tests.rs` | facade and sled-only tests; the tests every journal passes; the log's own | `cargo test` |
//!
//! On disk (sled):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `apps` | appid | [`AppRecord`] as JSON |
//! | `apps_revision` | appid | etcd `mod_revision` of the cached record, i64 big-endian (`registry = "etcd"`) |
//! | `etcd_watch` | `revision` | the last etcd revision the watch applied (`registry = "etcd"`) |
//! | `outbox` | event id | [`OutboxEntry`] as JSON (with the [`OutboxFile`] it announces) |
//! | `outbox_due` | next attempt (ms, big-endian) ++ event id | empty (index) |
//! | `resumable` | upload id | [`ResumableRecord`] as JSON |
//!
//! sled calls are short and in memory, but a flush is an `fsync`: on an io_uring thread use the
//! `*_async` variants, which flush on sled's own flushing thread (the apps) or wait for the
//! log's group commit (the outbox).

/// Delegates a call to the store an enum dispatch type ([`Apps`], [`Outbox`]) holds.
macro_rules! dispatch {
    ($enum:ident, $self:expr, $store:ident => $call:expr) => {
        dispatch!($enum[Sled, Memory], $self, $store => $call)
    };
    ($enum:ident[$($variant:ident),+], $self:expr, $store:ident => $call:expr) => {
        match $self {
            $($enum::$variant($store) => $call,)+
        }
    };
}

mod apps;
mod apps_etcd;
mod apps_memory;
mod apps_sled;
#[cfg(test)]
mod behaviour_tests;
pub mod etcd_client;
mod flusher;
mod log_format;
#[cfg(test)]
mod log_tests;
mod log_writer;
mod outbox;
mod outbox_log;
mod outbox_memory;
mod outbox_sled;
mod record;
mod resumables;
mod sled_db;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

pub use apps::{AppChange, AppChanges, AppStore, AppStoreError, Apps, Put};
pub use apps_etcd::{EtcdApps, EtcdSettings};
pub use apps_memory::MemoryApps;
pub use apps_sled::SledApps;
pub use outbox::{
    backoff, backoff_jittered, backoff_jittered_within, AppEntries, Outbox, OutboxEdit,
    OutboxEntry, OutboxError, OutboxFile, OutboxJournal, BACKOFF_BASE, BACKOFF_CAP, MAX_EVENT_ID,
    NEVER,
};
pub use outbox_log::{CommitHold, CommitStats, Durability, LogOutbox};
pub use outbox_memory::MemoryOutbox;
pub use outbox_sled::SledOutbox;
pub use record::{
    new_secret, valid_appid, AppRecord, Change, Downloads, Registered, Registration,
    ROTATION_GRACE_SECS,
};
pub use resumables::{
    MemoryResumables, ResumableRecord, ResumableStore, Resumables, SledResumables,
};
pub use sled_db::{SledDb, LOCK_WAIT};

/// Why a storage operation failed: the cause a backend reports (kept whole, for the log).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Where [`Registry::open`] keeps the outbox log.
pub fn outbox_log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("outbox").join("outbox.log")
}

/// Moves the entries an older version kept in sled (trees `outbox`, `outbox_due`) into the
/// log: each committed to the log first, then sled's trees cleared and flushed. A crash
/// between the two moves them again, harmlessly (a record is a whole entry).
fn migrate_sled_outbox(db: &SledDb, log: &LogOutbox) -> Result<(), RegistryError> {
    let old = SledOutbox::open(db)?;
    if old.is_empty() {
        return Ok(());
    }
    let mut moved = 0usize;
    for entry in old.entries() {
        log.enqueue(&entry?)?;
        moved += 1;
    }
    old.clear()?;
    tracing::info!(moved, "outbox entries moved from sled into the outbox log");
    Ok(())
}

/// Why a registry operation failed (the facade's error: an [`AppStoreError`] or an
/// [`OutboxError`], or the database could not be opened). Statuses are chosen in
/// `error/status.rs`.
#[derive(Debug)]
pub enum RegistryError {
    /// The appid is not 1-64 of `[A-Za-z0-9_-]`.
    BadAppid,
    /// No application is registered under the appid.
    UnknownAppid,
    /// An outbox event id is empty or too long.
    BadEventId,
    /// Another process (or a database not yet fully closed) holds the registry at this path.
    Locked(PathBuf),
    /// The storage behind the registry failed.
    Unavailable(Cause),
    /// The registry's remote side (etcd) cannot be reached: registrations wait until it can.
    Unreachable(Cause),
    /// A stored value could not be decoded.
    Corrupt(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::BadAppid => AppStoreError::BadAppid.fmt(f),
            RegistryError::UnknownAppid => AppStoreError::UnknownAppid.fmt(f),
            RegistryError::BadEventId => OutboxError::BadEventId.fmt(f),
            RegistryError::Locked(path) => {
                write!(f, "{} is in use by another process", path.display())
            }
            RegistryError::Unavailable(e) => write!(f, "registry storage failed: {e}"),
            RegistryError::Unreachable(e) => write!(f, "registry unreachable: {e}"),
            RegistryError::Corrupt(what) => write!(f, "registry value unreadable: {what}"),
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegistryError::Unavailable(e) | RegistryError::Unreachable(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl From<AppStoreError> for RegistryError {
    fn from(e: AppStoreError) -> Self {
        match e {
            AppStoreError::BadAppid => RegistryError::BadAppid,
            AppStoreError::UnknownAppid => RegistryError::UnknownAppid,
            AppStoreError::Unavailable(e) => RegistryError::Unavailable(e),
            AppStoreError::Unreachable(e) => RegistryError::Unreachable(e),
            AppStoreError::Corrupt(what) => RegistryError::Corrupt(what),
        }
    }
}

impl From<OutboxError> for RegistryError {
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::BadEventId => RegistryError::BadEventId,
            OutboxError::Unavailable(e) => RegistryError::Unavailable(e),
            OutboxError::Corrupt(what) => RegistryError::Corrupt(what),
        }
    }
}

/// Handle on the registry: an app store and an outbox journal (cheap to clone; every clone
/// shares both).
#[derive(Clone)]
pub struct Registry {
    apps: Apps,
    outbox: Outbox,
    resumables: Resumables,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// Opens (or creates) `<data_dir>/registry`, a sled database holding both the apps and the
    /// outbox. One process at a time may hold it: while another holds it, this waits up to
    /// [`LOCK_WAIT`] (sled releases its file lock from a background thread, so a database closed
    /// a moment ago in this process can still be locked), then fails with
    /// [`RegistryError::Locked`].
    pub fn open(data_dir: &Path) -> Result<Registry, RegistryError> {
        Registry::open_with(data_dir, Durability::Synced)
    }

    /// [`Registry::open`] with the outbox log's durability chosen (`fsync` in the config): the
    /// apps in sled at `<data_dir>/registry`, the outbox in its log at
    /// `<data_dir>/outbox/outbox.log`. Entries an older version kept in sled's outbox trees
    /// are moved into the log (committed there before they are cleared from sled).
    pub fn open_with(data_dir: &Path, durability: Durability) -> Result<Registry, RegistryError> {
        Registry::open_node(data_dir, durability, None)
    }

    /// [`Registry::open_with`], with the apps in etcd when `etcd` is given (`registry =
    /// "etcd"`): the sled `apps` tree is then this node's cache of them ([`EtcdApps`]).
    pub fn open_node(
        data_dir: &Path,
        durability: Durability,
        etcd: Option<&EtcdSettings>,
    ) -> Result<Registry, RegistryError> {
        let db = SledDb::open(&data_dir.join("registry"))?;
        let cache = SledApps::open(&db)?;
        let apps = match etcd {
            None => Apps::Sled(cache),
            Some(settings) => Apps::Etcd(EtcdApps::open(cache, settings)?),
        };
        let log = LogOutbox::open(&outbox_log_path(data_dir), durability, LOCK_WAIT).map_err(
            |e| match e {
                OutboxError::Unavailable(e)
                    if e.downcast_ref::<std::io::Error>().map(|e| e.kind())
                        == Some(std::io::ErrorKind::WouldBlock) =>
                {
                    RegistryError::Locked(outbox_log_path(data_dir))
                }
                e => e.into(),
            },
        )?;
        migrate_sled_outbox(&db, &log)?;
        let mut registry = Registry::new(apps, Outbox::Log(log));
        registry.resumables = Resumables::Sled(SledResumables::open(&db)?);
        Ok(registry)
    }

    /// A registry that lives in memory only (both twins): the same semantics, nothing on disk.
    pub fn in_memory() -> Registry {
        Registry::new(
            Apps::Memory(MemoryApps::new()),
            Outbox::Memory(MemoryOutbox::new()),
        )
    }

    /// A registry made of any app store and outbox journal (say, apps from one backend and the
    /// outbox on the local disk).
    /// Resumable uploads' records live in memory here; [`Registry::open_with`] keeps them in
    /// its sled database.
    pub fn new(apps: Apps, outbox: Outbox) -> Registry {
        Registry {
            apps,
            outbox,
            resumables: Resumables::Memory(MemoryResumables::default()),
        }
    }

    /// The records of resumable uploads (local to this node).
    pub fn resumables(&self) -> &Resumables {
        &self.resumables
    }

    /// Whether the app store's remote side can be reached: `None` for a store with none
    /// (sled, memory), else `Err(why)` while it cannot (`/readyz`).
    pub fn remote_health(&self) -> Option<Result<(), String>> {
        match &self.apps {
            Apps::Etcd(etcd) => Some(etcd.health()),
            Apps::Sled(_) | Apps::Memory(_) => None,
        }
    }

    /// Runs `f` with the appid whenever another node's deletion of an app reaches this one
    /// (`registry = "etcd"`: see [`EtcdApps::on_deleted`]); nothing for a store of this node
    /// only, whose deletions are all made here.
    pub fn on_app_deleted(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        if let Apps::Etcd(etcd) = &self.apps {
            etcd.on_deleted(f);
        }
    }

    /// The app store.
    pub fn apps(&self) -> &Apps {
        &self.apps
    }

    /// The post-callback outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The record of `appid`, if registered.
    pub fn get(&self, appid: &str) -> Result<Option<AppRecord>, RegistryError> {
        Ok(self.apps.get(appid)?)
    }

    /// Creates or updates a registration, then flushes it to disk. A new app gets a secret; an
    /// existing one keeps its secret unless `rotate_secret` is set.
    pub fn register(&self, reg: &Registration, now: u64) -> Result<Registered, RegistryError> {
        Ok(self.apps.register(reg, now)?)
    }

    /// [`Registry::register`] with the flush done off the calling thread, for io_uring threads.
    pub async fn register_async(
        &self,
        reg: &Registration,
        now: u64,
    ) -> Result<Registered, RegistryError> {
        Ok(self.apps.register_async(reg, now).await?)
    }

    /// Like [`Registry::register_async`] but never creates: `UnknownAppid` when the app is gone
    /// (an app managing its own record cannot resurrect it after a delete).
    pub async fn update_async(
        &self,
        reg: &Registration,
        now: u64,
    ) -> Result<Registered, RegistryError> {
        Ok(self.apps.update_async(reg, now).await?)
    }

    /// Removes `appid` and flushes; the removed record, or `None` when it was not registered.
    pub fn delete(&self, appid: &str) -> Result<Option<AppRecord>, RegistryError> {
        Ok(self.apps.delete(appid)?)
    }

    /// [`Registry::delete`] with the flush done off the calling thread.
    pub async fn delete_async(&self, appid: &str) -> Result<Option<AppRecord>, RegistryError> {
        Ok(self.apps.delete_async(appid).await?)
    }

    /// The keys to sign `appid`'s callbacks with at `now` (unix seconds): its current secret and,
    /// during a rotation, the previous one. Empty when the app is not registered.
    pub fn secrets_for_signing(&self, appid: &str, now: u64) -> Result<Vec<String>, RegistryError> {
        Ok(self.apps.secrets_for_signing(appid, now)?)
    }

    /// Registered appids, in order (for operators and tests).
    pub fn appids(&self) -> Result<Vec<String>, RegistryError> {
        Ok(self.apps.appids()?)
    }

    /// Every change committed to the app store from now on (see [`AppStore::subscribe`]).
    pub fn subscribe(&self) -> AppChanges {
        self.apps.subscribe()
    }

    /// Writes everything (apps and outbox) to disk (an `fsync`; blocks).
    pub fn flush(&self) -> Result<(), RegistryError> {
        self.outbox.flush()?;
        self.apps.flush()?;
        Ok(())
    }

    /// [`Registry::flush`] on the flushing thread (group commit: on one sled database both
    /// requests are usually served by one `fsync`), awaited without blocking.
    pub async fn flush_async(&self) -> Result<(), RegistryError> {
        let (outbox, apps) = tokio::join!(self.outbox.flush_async(), self.apps.flush_async());
        outbox?;
        apps?;
        Ok(())
    }
}
