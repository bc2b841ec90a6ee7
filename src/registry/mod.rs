//! The node's durable state besides files: registered applications (by appid) and the outbox of
//! post-upload notifications, in one sled database at `<data_dir>/registry`.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `apps` | appid | [`AppRecord`] as JSON |
//! | `outbox` | event id | [`OutboxEntry`] as JSON (with the [`OutboxFile`] it announces) |
//! | `outbox_due` | next attempt (ms, big-endian) ++ event id | empty (index) |
//!
//! sled calls are short and in memory, but a flush is an `fsync`: on an io_uring thread use the
//! `*_async` variants, which flush on sled's own I/O threads.

mod flusher;
mod outbox;
mod record;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flusher::Flusher;
pub use outbox::{
    backoff, backoff_jittered, backoff_jittered_within, Outbox, OutboxEntry, OutboxFile,
    BACKOFF_BASE, BACKOFF_CAP, MAX_EVENT_ID,
};
pub use record::{
    new_secret, valid_appid, AppRecord, Change, Registered, Registration, ROTATION_GRACE_SECS,
};

/// Why a registry operation failed.
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
    /// The database failed.
    Storage(sled::Error),
    /// A stored value could not be decoded.
    Corrupt(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::BadAppid => f.write_str("appid must be 1-64 of [A-Za-z0-9_-]"),
            RegistryError::UnknownAppid => {
                f.write_str("no application is registered under this appid")
            }
            RegistryError::BadEventId => f.write_str("event id must be 1-256 bytes"),
            RegistryError::Locked(path) => {
                write!(f, "{} is in use by another process", path.display())
            }
            RegistryError::Storage(e) => write!(f, "registry storage failed: {e}"),
            RegistryError::Corrupt(what) => write!(f, "registry value unreadable: {what}"),
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegistryError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl From<sled::Error> for RegistryError {
    fn from(e: sled::Error) -> Self {
        RegistryError::Storage(e)
    }
}

/// Handle on the registry (cheap to clone; every clone shares one database).
#[derive(Clone)]
pub struct Registry {
    db: sled::Db,
    apps: sled::Tree,
    outbox: Outbox,
    flusher: Flusher,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

/// How long [`Registry::open`] waits for the database lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(3);

/// How many times a registration retries its compare-and-swap against concurrent writers.
const CAS_ATTEMPTS: usize = 64;

impl Registry {
    /// Opens (or creates) `<data_dir>/registry`. One process at a time may hold it: while another
    /// holds it, this waits up to [`LOCK_WAIT`] (sled releases its file lock from a background
    /// thread, so a database closed a moment ago in this process can still be locked), then
    /// fails with [`RegistryError::Locked`].
    pub fn open(data_dir: &Path) -> Result<Registry, RegistryError> {
        let path = data_dir.join("registry");
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled::Config::new().path(&path).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                    if Instant::now() >= deadline {
                        return Err(RegistryError::Locked(path));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let apps = db.open_tree("apps")?;
        let flusher = Flusher::spawn(db.clone())
            .map_err(|e| RegistryError::Corrupt(format!("flush thread: {e}")))?;
        let outbox = Outbox::open(&db, flusher.clone())?;
        Ok(Registry {
            db,
            apps,
            outbox,
            flusher,
        })
    }

    /// TEMPORARY (replaced by the in-memory twins): a throwaway sled database.
    pub fn in_memory() -> Registry {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let apps = db.open_tree("apps").unwrap();
        let flusher = Flusher::spawn(db.clone()).unwrap();
        let outbox = Outbox::open(&db, flusher.clone()).unwrap();
        Registry {
            db,
            apps,
            outbox,
            flusher,
        }
    }

    /// The post-callback outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The record of `appid`, if registered.
    pub fn get(&self, appid: &str) -> Result<Option<AppRecord>, RegistryError> {
        if !valid_appid(appid) {
            return Err(RegistryError::BadAppid);
        }
        self.apps
            .get(appid.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Creates or updates a registration, then flushes it to disk. A new app gets a secret; an
    /// existing one keeps its secret unless `rotate_secret` is set.
    pub fn register(&self, reg: &Registration, now: u64) -> Result<Registered, RegistryError> {
        let out = self.apply(reg, now, true)?;
        self.flush()?;
        Ok(out)
    }

    /// [`Registry::register`] with the flush done on sled's I/O pool, for io_uring threads.
    pub async fn register_async(
        &self,
        reg: &Registration,
        now: u64,
    ) -> Result<Registered, RegistryError> {
        let out = self.apply(reg, now, true)?;
        self.flush_async().await?;
        Ok(out)
    }

    /// Like [`Registry::register_async`] but never creates: `UnknownAppid` when the app is gone
    /// (an app managing its own record cannot resurrect it after a delete).
    pub async fn update_async(
        &self,
        reg: &Registration,
        now: u64,
    ) -> Result<Registered, RegistryError> {
        let out = self.apply(reg, now, false)?;
        self.flush_async().await?;
        Ok(out)
    }

    /// Removes `appid` and flushes; the removed record, or `None` when it was not registered.
    pub fn delete(&self, appid: &str) -> Result<Option<AppRecord>, RegistryError> {
        let removed = self.remove(appid)?;
        self.flush()?;
        Ok(removed)
    }

    /// [`Registry::delete`] with the flush done on sled's I/O pool.
    pub async fn delete_async(&self, appid: &str) -> Result<Option<AppRecord>, RegistryError> {
        let removed = self.remove(appid)?;
        self.flush_async().await?;
        Ok(removed)
    }

    /// The keys to sign `appid`'s callbacks with at `now` (unix seconds): its current secret and,
    /// during a rotation, the previous one. Empty when the app is not registered.
    pub fn secrets_for_signing(&self, appid: &str, now: u64) -> Result<Vec<String>, RegistryError> {
        Ok(self
            .get(appid)?
            .map(|r| r.secrets_for_signing(now))
            .unwrap_or_default())
    }

    /// Registered appids, in order (for operators and tests).
    pub fn appids(&self) -> Result<Vec<String>, RegistryError> {
        self.apps
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }

    /// Writes everything to disk (an `fsync`; blocks).
    pub fn flush(&self) -> Result<(), RegistryError> {
        self.db.flush()?;
        Ok(())
    }

    /// [`Registry::flush`] on the flushing thread (group commit), awaited without blocking.
    pub async fn flush_async(&self) -> Result<(), RegistryError> {
        self.flusher.flush().await
    }

    fn remove(&self, appid: &str) -> Result<Option<AppRecord>, RegistryError> {
        if !valid_appid(appid) {
            return Err(RegistryError::BadAppid);
        }
        self.apps
            .remove(appid.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Read, modify, compare-and-swap: concurrent registrations of one appid cannot lose each
    /// other's changes or issue two different "new" secrets.
    fn apply(
        &self,
        reg: &Registration,
        now: u64,
        may_create: bool,
    ) -> Result<Registered, RegistryError> {
        if !valid_appid(&reg.appid) {
            return Err(RegistryError::BadAppid);
        }
        let key = reg.appid.as_bytes();
        for _ in 0..CAS_ATTEMPTS {
            let old = self.apps.get(key)?;
            let mut new_secret = None;
            let (record, created) = match &old {
                Some(bytes) => {
                    let current = decode(bytes)?;
                    let next = current.updated(reg, now, || {
                        let s = record::new_secret();
                        new_secret = Some(s.clone());
                        s
                    });
                    (next, false)
                }
                None if may_create => {
                    let s = record::new_secret();
                    new_secret = Some(s.clone());
                    (AppRecord::create(reg, now, s), true)
                }
                None => return Err(RegistryError::UnknownAppid),
            };
            let bytes = serde_json::to_vec(&record).expect("an app record serialises");
            match self.apps.compare_and_swap(key, old, Some(bytes))? {
                Ok(()) => {
                    return Ok(Registered {
                        record,
                        created,
                        new_secret,
                    })
                }
                Err(_) => continue,
            }
        }
        Err(RegistryError::Storage(sled::Error::Unsupported(
            "registration kept conflicting with concurrent writers".into(),
        )))
    }
}

fn decode(bytes: &[u8]) -> Result<AppRecord, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Corrupt(format!("app record: {e}")))
}
