//! The one sled database behind [`super::SledApps`] and [`super::SledOutbox`]: opened once per
//! process (sled holds a file lock on it), flushed by one group-commit thread for both.

use std::path::Path;
use std::time::{Duration, Instant};

use super::flusher::Flusher;
use super::{AppStoreError, Cause, OutboxError, RegistryError};

/// How long [`SledDb::open`] waits for the database lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Handle on an open sled database and its flushing thread (cheap to clone).
#[derive(Clone)]
pub struct SledDb {
    db: sled::Db,
    flusher: Flusher,
}

impl SledDb {
    /// Opens (or creates) the database at `path`. While another process holds it, this waits up
    /// to [`LOCK_WAIT`] (sled releases its file lock from a background thread, so a database
    /// closed a moment ago in this process can still be locked), then fails with
    /// [`RegistryError::Locked`].
    pub fn open(path: &Path) -> Result<SledDb, RegistryError> {
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled::Config::new().path(path).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                    if Instant::now() >= deadline {
                        return Err(RegistryError::Locked(path.to_path_buf()));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(RegistryError::Unavailable(Box::new(e))),
            }
        };
        let flusher =
            Flusher::spawn(db.clone()).map_err(|e| RegistryError::Unavailable(e.into()))?;
        Ok(SledDb { db, flusher })
    }

    pub(super) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Writes everything to disk (an `fsync`; blocks).
    pub(super) fn flush(&self) -> Result<(), Cause> {
        self.db.flush().map(drop).map_err(|e| e.into())
    }

    /// [`SledDb::flush`] on the flushing thread, awaited without blocking.
    pub(super) async fn flush_async(&self) -> Result<(), Cause> {
        self.flusher.flush().await
    }
}

// sled's errors become the stores' causes here, so that no error type names sled.

impl From<sled::Error> for AppStoreError {
    fn from(e: sled::Error) -> Self {
        AppStoreError::Unavailable(Box::new(e))
    }
}

impl From<sled::Error> for OutboxError {
    fn from(e: sled::Error) -> Self {
        OutboxError::Unavailable(Box::new(e))
    }
}
