//! The durable queue of post-upload notifications (contract step 7): an entry is written and
//! flushed before the notification is first sent, and stays until the application answers 2xx.
//!
//! Layout, in the registry's sled database:
//! - tree `outbox`: `event_id` → the entry as JSON (the body as base64);
//! - tree `outbox_due`: `next_attempt_at_ms` (8 bytes, big-endian) ++ `event_id` → empty, an
//!   index ordered by due time, so [`Outbox::due`] reads only the entries that are due.
//!
//! Both trees change together in one sled transaction. Delivery is at-least-once: `due` does not
//! lease entries, so one retry driver per node should own the queue (or reschedule an entry to
//! `now + timeout` before sending it); applications de-duplicate by `webhook-id`.
//!
//! An entry is recorded *before* its file becomes visible (see `upload::flow::commit`), so it
//! names its file ([`OutboxFile`]): while *staged* the file may not exist yet (or ever, if the
//! node crashed before the rename), and only a file with the recorded inode and size is the
//! upload's; once *placed* (after the rename) the path alone counts. `notify` sends an entry
//! only while its file is visible, and drops at startup the entries whose file never appeared.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::RegistryError;

/// First retry delay.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(600);
/// Longest accepted event id (bytes).
pub const MAX_EVENT_ID: usize = 256;

/// One pending post-callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The upload's event id: the `webhook-id` of every attempt.
    pub event_id: String,
    pub appid: String,
    pub url: String,
    /// The exact JSON sent on every attempt.
    #[serde(with = "base64_body")]
    pub body: Vec<u8>,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at_ms: u64,
    pub created_at_ms: u64,
    pub last_error: Option<String>,
    /// The URL came from the client (a `callback_url_post` header), not from the registry: the
    /// sender must pass it through the callback policy again on every attempt (names may
    /// resolve elsewhere by then).
    #[serde(default)]
    pub guarded: bool,
    /// The file the notification announces; `None` for entries recorded before files were
    /// tracked (sent without a check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<OutboxFile>,
}

/// The file an entry announces, and whether the rename that makes it visible is known to have
/// happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxFile {
    /// Path below `data_dir/files/<appid>/`.
    pub rel: String,
    /// Bytes, as stored.
    pub size: u64,
    /// The store's version of the upload, which the commit keeps (the local store: the
    /// temporary file's inode, which the rename keeps): while the entry is staged, an object at
    /// `rel` with another version is some other upload's. Entries recorded before the store
    /// interface call it `ino`.
    #[serde(alias = "ino")]
    pub version: crate::storage::Version,
    /// The commit returned (recorded without a flush: a crash may lose it, and the version
    /// then decides).
    #[serde(default)]
    pub placed: bool,
}

/// Handle on the outbox trees (cheap to clone).
#[derive(Clone)]
pub struct Outbox {
    db: sled::Db,
    flusher: super::flusher::Flusher,
    entries: sled::Tree,
    due: sled::Tree,
}

impl Outbox {
    pub(super) fn open(
        db: &sled::Db,
        flusher: super::flusher::Flusher,
    ) -> Result<Outbox, RegistryError> {
        let outbox = Outbox {
            db: db.clone(),
            flusher,
            entries: db.open_tree("outbox")?,
            due: db.open_tree("outbox_due")?,
        };
        outbox.check_index()?;
        Ok(outbox)
    }

    /// Records `entry` (replacing one with the same event id) and flushes it to disk.
    pub fn enqueue(&self, entry: &OutboxEntry) -> Result<(), RegistryError> {
        self.put(entry)?;
        self.db.flush()?;
        Ok(())
    }

    /// [`Outbox::enqueue`] with the flush done on sled's I/O pool, for io_uring threads.
    pub async fn enqueue_async(&self, entry: &OutboxEntry) -> Result<(), RegistryError> {
        self.put(entry)?;
        self.flusher.flush().await?;
        Ok(())
    }

    /// Up to `limit` entries whose `next_attempt_at_ms <= now_ms`, earliest first.
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxEntry>, RegistryError> {
        let iter = match now_ms.checked_add(1) {
            Some(end) => self.due.range(..end.to_be_bytes()),
            None => self.due.iter(),
        };
        let mut out = Vec::new();
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (key, _) = item?;
            let Some(entry) = self.entries.get(&key[8..])? else {
                continue; // removed since the scan began
            };
            out.push(decode(&entry)?);
        }
        Ok(out)
    }

    /// One entry by event id.
    pub fn get(&self, event_id: &str) -> Result<Option<OutboxEntry>, RegistryError> {
        self.entries
            .get(event_id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Removes a delivered entry and flushes; false when it was not (or no longer) queued.
    pub fn delivered(&self, event_id: &str) -> Result<bool, RegistryError> {
        let removed = self.remove(event_id)?;
        self.db.flush()?;
        Ok(removed)
    }

    /// [`Outbox::delivered`] without waiting for the disk: the removal reaches it with sled's
    /// next flush (the next upload's record, or `flush_every_ms`). A crash before that sends the
    /// notification once more after restart (same webhook-id: at least once, de-duplicable),
    /// which is the only cost; the upload's answer does not wait for a second disk flush.
    pub fn delivered_lazily(&self, event_id: &str) -> Result<bool, RegistryError> {
        self.remove(event_id)
    }

    /// Records a failed attempt: the new attempt count, when to try next, and why it failed.
    /// Not flushed: losing it in a crash only makes the next attempt come earlier. False when the
    /// entry is no longer queued.
    pub fn reschedule(
        &self,
        event_id: &str,
        attempts: u32,
        next_at_ms: u64,
        error: Option<String>,
    ) -> Result<bool, RegistryError> {
        self.update(event_id, next_at_ms, |entry| {
            entry.attempts = attempts;
            entry.last_error = error.clone();
        })
    }

    /// Marks the file of `event_id` as placed (renamed into place) and moves its next attempt
    /// to `next_at_ms`. Not flushed: losing the mark in a crash leaves the inode to decide.
    /// False when the entry is no longer queued.
    pub fn placed(&self, event_id: &str, next_at_ms: u64) -> Result<bool, RegistryError> {
        self.update(event_id, next_at_ms, |entry| {
            if let Some(file) = &mut entry.file {
                file.placed = true;
            }
        })
    }

    /// Changes a queued entry with `change` and moves its next attempt to `next_at_ms`, in one
    /// transaction over the entry and its place in the due index. False when it is not queued.
    fn update(
        &self,
        event_id: &str,
        next_at_ms: u64,
        change: impl Fn(&mut OutboxEntry),
    ) -> Result<bool, RegistryError> {
        let key = event_id.as_bytes();
        let res = (&self.entries, &self.due).transaction(|(entries, due)| {
            let Some(old) = entries.get(key)? else {
                return Ok(false);
            };
            let mut entry = decode(&old).map_err(ConflictableTransactionError::Abort)?;
            due.remove(due_key(entry.next_attempt_at_ms, key))?;
            change(&mut entry);
            entry.next_attempt_at_ms = next_at_ms;
            entries.insert(key, encode(&entry))?;
            due.insert(due_key(next_at_ms, key), &[][..])?;
            Ok(true)
        });
        tx_result(res)
    }

    /// Removes an entry that must never be sent (its file is not visible), without a flush:
    /// lost in a crash, the next start drops it again. False when it was not queued.
    pub fn discard(&self, event_id: &str) -> Result<bool, RegistryError> {
        self.remove(event_id)
    }

    /// Every entry, in event id order (startup reconciliation; O(n)).
    pub fn entries(&self) -> impl Iterator<Item = Result<OutboxEntry, RegistryError>> {
        self.entries.iter().values().map(|v| decode(&v?))
    }

    /// Writes everything to disk (an `fsync`; blocks).
    pub fn flush(&self) -> Result<(), RegistryError> {
        self.db.flush()?;
        Ok(())
    }

    /// Entries queued (counts the index: O(n), for metrics and health, not per request).
    pub fn len(&self) -> usize {
        self.due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }

    /// `created_at_ms` of the oldest queued entry (scans every entry: O(n)).
    pub fn oldest_created_ms(&self) -> Result<Option<u64>, RegistryError> {
        let mut oldest: Option<u64> = None;
        for item in self.entries.iter() {
            let (_, v) = item?;
            let created = decode(&v)?.created_at_ms;
            oldest = Some(oldest.map_or(created, |o| o.min(created)));
        }
        Ok(oldest)
    }

    fn put(&self, entry: &OutboxEntry) -> Result<(), RegistryError> {
        if entry.event_id.is_empty() || entry.event_id.len() > MAX_EVENT_ID {
            return Err(RegistryError::BadEventId);
        }
        let key = entry.event_id.as_bytes();
        let value = encode(entry);
        let res = (&self.entries, &self.due).transaction(|(entries, due)| {
            if let Some(old) = entries.get(key)? {
                let old = decode(&old).map_err(ConflictableTransactionError::Abort)?;
                due.remove(due_key(old.next_attempt_at_ms, key))?;
            }
            entries.insert(key, value.as_slice())?;
            due.insert(due_key(entry.next_attempt_at_ms, key), &[][..])?;
            Ok(())
        });
        tx_result(res)
    }

    fn remove(&self, event_id: &str) -> Result<bool, RegistryError> {
        let key = event_id.as_bytes();
        let res = (&self.entries, &self.due).transaction(|(entries, due)| {
            let Some(old) = entries.remove(key)? else {
                return Ok(false);
            };
            let old = decode(&old).map_err(ConflictableTransactionError::Abort)?;
            due.remove(due_key(old.next_attempt_at_ms, key))?;
            Ok(true)
        });
        tx_result(res)
    }

    /// Rebuilds the due index when it does not match the entries (an older layout, or damage).
    fn check_index(&self) -> Result<(), RegistryError> {
        if self.entries.len() == self.due.len() {
            return Ok(());
        }
        tracing::warn!("outbox due index out of step with its entries; rebuilding it");
        self.due.clear()?;
        for item in self.entries.iter() {
            let (key, v) = item?;
            let entry = decode(&v)?;
            self.due
                .insert(due_key(entry.next_attempt_at_ms, &key), &[][..])?;
        }
        self.db.flush()?;
        Ok(())
    }
}

/// Delay before attempt `attempts + 1` after `attempts` failures: 1 s doubling per failure,
/// capped at 10 minutes.
pub fn backoff(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(16);
    (BACKOFF_BASE * (1u32 << exp)).min(BACKOFF_CAP)
}

/// [`backoff`] less up to 10 %, derived from the event id and attempt count, so retries of many
/// uploads that failed together do not arrive together. Deterministic; never above the cap.
pub fn backoff_jittered(attempts: u32, event_id: &str) -> Duration {
    backoff_jittered_within(attempts, event_id, BACKOFF_CAP)
}

/// [`backoff_jittered`] with the delay capped at `cap` (`outbox_retry_max_ms`) instead of
/// [`BACKOFF_CAP`].
pub fn backoff_jittered_within(attempts: u32, event_id: &str, cap: Duration) -> Duration {
    let base = backoff(attempts).min(cap);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
    for b in event_id.bytes().chain(attempts.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let span = base.as_millis() as u64 / 10;
    base - Duration::from_millis(if span == 0 { 0 } else { h % (span + 1) })
}

fn due_key(next_at_ms: u64, event_id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + event_id.len());
    key.extend_from_slice(&next_at_ms.to_be_bytes());
    key.extend_from_slice(event_id);
    key
}

fn encode(entry: &OutboxEntry) -> Vec<u8> {
    serde_json::to_vec(entry).expect("an outbox entry serialises")
}

fn decode(bytes: &[u8]) -> Result<OutboxEntry, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Corrupt(format!("outbox entry: {e}")))
}

fn tx_result<T>(res: Result<T, TransactionError<RegistryError>>) -> Result<T, RegistryError> {
    res.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => RegistryError::Storage(e),
    })
}

mod base64_body {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(body))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}
