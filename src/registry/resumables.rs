//! The state of resumable uploads (tus and IETF) between their requests: what each upload is,
//! and the offset its last acknowledged append reached. The bytes themselves are the store's
//! partial bodies (`ObjectStore::begin_partial`); a record says how many of them count.
//!
//! An upload's record is written when it is created and after every append, *after* the
//! append's bytes are synced (under `fsync = true`) and before the client hears the new offset:
//! an offset the node acknowledged is always backed by its bytes, across crashes. Records stay
//! on the node that took the upload (a client resumes where it began), so this store is local
//! even when the app registry is shared.
//!
//! [`SledResumables`] (tree `resumable` of the registry's database) and its in-memory twin
//! [`MemoryResumables`] hold the same semantics; [`Resumables`] is the closed set the node holds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{Cause, RegistryError, SledDb};

/// One resumable upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumableRecord {
    /// The upload's id: its URL's last segment and the store's partial body's name.
    pub id: String,
    pub appid: String,
    /// Where the file goes once complete (below the appid).
    pub path: String,
    /// `tus` or `resumable` (IETF).
    pub protocol: String,
    /// The upload's length, once known (tus `Upload-Defer-Length` leaves it unset at first).
    pub length: Option<u64>,
    /// Bytes acknowledged so far.
    pub offset: u64,
    pub content_type: String,
    /// The tus `Upload-Metadata` field as the client sent it (echoed by `HEAD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_metadata: Option<String>,
    /// The app's metadata from its pre-callback answer, for the post-callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// The largest length accepted (the app's or node's limit, or a shaping answer's).
    pub limit: u64,
    pub created_ms: u64,
    /// After this the upload is gone (410 until the sweep removes it, then 404).
    pub expires_ms: u64,
    /// Appends before this skip the pre-callback (the app's `valid_for_s`).
    #[serde(default)]
    pub pre_valid_until_ms: u64,
    /// A tus partial upload (`Upload-Concat: partial`): complete, it waits for a final upload
    /// instead of being stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// The IETF interop version the client spoke at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interop: Option<u32>,
}

impl ResumableRecord {
    /// True once every byte of a known length arrived.
    pub fn is_complete(&self) -> bool {
        self.length == Some(self.offset)
    }

    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_ms
    }
}

/// The calls every resumable-upload store answers.
pub trait ResumableStore {
    fn get(&self, id: &str) -> Result<Option<ResumableRecord>, RegistryError>;
    /// Writes `record` (not flushed: see [`Resumables::put_async`]).
    fn put(&self, record: &ResumableRecord) -> Result<(), RegistryError>;
    /// Removes the record; false when there was none.
    fn remove(&self, id: &str) -> Result<bool, RegistryError>;
    /// Every record (the expiry sweep; the startup clean-up).
    fn all(&self) -> Result<Vec<ResumableRecord>, RegistryError>;
}

/// The sled store: tree `resumable`, id → [`ResumableRecord`] as JSON.
#[derive(Clone)]
pub struct SledResumables {
    db: SledDb,
    tree: sled::Tree,
}

impl SledResumables {
    pub fn open(db: &SledDb) -> Result<SledResumables, RegistryError> {
        Ok(SledResumables {
            tree: db.db().open_tree("resumable").map_err(unavailable)?,
            db: db.clone(),
        })
    }
}

fn unavailable(e: sled::Error) -> RegistryError {
    RegistryError::Unavailable(Box::new(e))
}

fn decode(bytes: &[u8]) -> Result<ResumableRecord, RegistryError> {
    serde_json::from_slice(bytes)
        .map_err(|e| RegistryError::Corrupt(format!("a resumable upload's record: {e}")))
}

impl ResumableStore for SledResumables {
    fn get(&self, id: &str) -> Result<Option<ResumableRecord>, RegistryError> {
        self.tree
            .get(id.as_bytes())
            .map_err(unavailable)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn put(&self, record: &ResumableRecord) -> Result<(), RegistryError> {
        let bytes = serde_json::to_vec(record).expect("a record serialises");
        self.tree
            .insert(record.id.as_bytes(), bytes)
            .map_err(unavailable)?;
        Ok(())
    }

    fn remove(&self, id: &str) -> Result<bool, RegistryError> {
        Ok(self
            .tree
            .remove(id.as_bytes())
            .map_err(unavailable)?
            .is_some())
    }

    fn all(&self) -> Result<Vec<ResumableRecord>, RegistryError> {
        self.tree
            .iter()
            .map(|kv| decode(&kv.map_err(unavailable)?.1))
            .collect()
    }
}

/// The in-memory twin.
#[derive(Clone, Default)]
pub struct MemoryResumables {
    records: Arc<Mutex<BTreeMap<String, ResumableRecord>>>,
}

impl MemoryResumables {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ResumableRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ResumableStore for MemoryResumables {
    fn get(&self, id: &str) -> Result<Option<ResumableRecord>, RegistryError> {
        Ok(self.lock().get(id).cloned())
    }

    fn put(&self, record: &ResumableRecord) -> Result<(), RegistryError> {
        self.lock().insert(record.id.clone(), record.clone());
        Ok(())
    }

    fn remove(&self, id: &str) -> Result<bool, RegistryError> {
        Ok(self.lock().remove(id).is_some())
    }

    fn all(&self) -> Result<Vec<ResumableRecord>, RegistryError> {
        Ok(self.lock().values().cloned().collect())
    }
}

/// The node's resumable-upload store.
#[derive(Clone)]
pub enum Resumables {
    Sled(SledResumables),
    Memory(MemoryResumables),
}

impl ResumableStore for Resumables {
    fn get(&self, id: &str) -> Result<Option<ResumableRecord>, RegistryError> {
        dispatch!(Resumables, self, s => s.get(id))
    }

    fn put(&self, record: &ResumableRecord) -> Result<(), RegistryError> {
        dispatch!(Resumables, self, s => s.put(record))
    }

    fn remove(&self, id: &str) -> Result<bool, RegistryError> {
        dispatch!(Resumables, self, s => s.remove(id))
    }

    fn all(&self) -> Result<Vec<ResumableRecord>, RegistryError> {
        dispatch!(Resumables, self, s => s.all())
    }
}

impl Resumables {
    /// Writes `record`; with `durable`, flushed to disk before this returns (on sled's
    /// flushing thread: the ring is not blocked).
    pub async fn put_async(
        &self,
        record: &ResumableRecord,
        durable: bool,
    ) -> Result<(), RegistryError> {
        self.put(record)?;
        self.flushed(durable).await
    }

    /// Removes the record (flushed with `durable`); false when there was none.
    pub async fn remove_async(&self, id: &str, durable: bool) -> Result<bool, RegistryError> {
        let removed = self.remove(id)?;
        self.flushed(durable).await?;
        Ok(removed)
    }

    async fn flushed(&self, durable: bool) -> Result<(), RegistryError> {
        match self {
            Resumables::Sled(s) if durable => {
                s.db.flush_async()
                    .await
                    .map_err(|e: Cause| RegistryError::Unavailable(e))
            }
            _ => Ok(()),
        }
    }
}
