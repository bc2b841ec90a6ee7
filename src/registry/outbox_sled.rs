//! [`OutboxJournal`] on sled, in the registry's database:
//! - tree `outbox`: `event_id` → the entry as JSON (the body as base64);
//! - tree `outbox_due`: `next_attempt_at_ms` (8 bytes, big-endian) ++ `event_id` → empty, an
//!   index ordered by due time, so [`OutboxJournal::due`] reads only the entries that are due.
//!
//! Both trees change together in one sled transaction. Flushes go through the database's
//! group-commit thread ([`SledDb`]), shared with the app store.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::outbox::{check_event_id, AppEntries};
use super::{OutboxEdit, OutboxEntry, OutboxError, OutboxJournal, SledDb};

/// The sled outbox (cheap to clone).
#[derive(Clone)]
pub struct SledOutbox {
    db: SledDb,
    entries: sled::Tree,
    due: sled::Tree,
}

impl SledOutbox {
    /// The outbox in `db` (trees `outbox` and `outbox_due`), its due index checked.
    pub fn open(db: &SledDb) -> Result<SledOutbox, OutboxError> {
        let outbox = SledOutbox {
            db: db.clone(),
            entries: db.db().open_tree("outbox")?,
            due: db.db().open_tree("outbox_due")?,
        };
        outbox.check_index()?;
        Ok(outbox)
    }

    fn put(&self, entry: &OutboxEntry) -> Result<(), OutboxError> {
        check_event_id(&entry.event_id)?;
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

    /// Empties both trees and flushes (after their entries moved to the outbox log).
    pub(super) fn clear(&self) -> Result<(), OutboxError> {
        self.entries.clear()?;
        self.due.clear()?;
        self.flush()
    }

    /// Rebuilds the due index when it does not match the entries (an older layout, or damage).
    fn check_index(&self) -> Result<(), OutboxError> {
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
        self.flush()
    }
}

impl OutboxJournal for SledOutbox {
    fn enqueue(&self, entry: &OutboxEntry) -> Result<(), OutboxError> {
        self.put(entry)?;
        self.flush()
    }

    async fn enqueue_async(&self, entry: &OutboxEntry) -> Result<(), OutboxError> {
        self.put(entry)?;
        self.flush_async().await
    }

    fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
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

    fn get(&self, event_id: &str) -> Result<Option<OutboxEntry>, OutboxError> {
        self.entries
            .get(event_id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    fn remove(&self, event_id: &str) -> Result<bool, OutboxError> {
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

    /// One transaction over the entry and its place in the due index.
    fn update(
        &self,
        event_id: &str,
        next_at_ms: u64,
        edit: OutboxEdit,
    ) -> Result<bool, OutboxError> {
        let key = event_id.as_bytes();
        let res = (&self.entries, &self.due).transaction(|(entries, due)| {
            let Some(old) = entries.get(key)? else {
                return Ok(false);
            };
            let mut entry = decode(&old).map_err(ConflictableTransactionError::Abort)?;
            due.remove(due_key(entry.next_attempt_at_ms, key))?;
            edit.apply(&mut entry, next_at_ms);
            entries.insert(key, encode(&entry))?;
            due.insert(due_key(next_at_ms, key), &[][..])?;
            Ok(true)
        });
        tx_result(res)
    }

    /// sled iterators tolerate writes: each key is visited once, whatever the loop changes.
    fn entries(&self) -> impl Iterator<Item = Result<OutboxEntry, OutboxError>> + '_ {
        self.entries.iter().values().map(|v| decode(&v?))
    }

    fn flush(&self) -> Result<(), OutboxError> {
        self.db.flush().map_err(OutboxError::Unavailable)
    }

    async fn flush_async(&self) -> Result<(), OutboxError> {
        self.db
            .flush_async()
            .await
            .map_err(OutboxError::Unavailable)
    }

    /// Counts the index: O(n).
    fn len(&self) -> usize {
        self.due.len()
    }

    fn is_empty(&self) -> bool {
        self.due.is_empty()
    }

    /// A scan of the `outbox` tree (no index by app: listing is rare).
    fn of_app(&self, appid: &str, limit: usize) -> Result<AppEntries, OutboxError> {
        let mut mine = Vec::new();
        for entry in self.entries() {
            let entry = entry?;
            if entry.appid == appid {
                mine.push(entry);
            }
        }
        Ok(AppEntries::from_unordered(appid, mine.into_iter(), limit))
    }
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

fn decode(bytes: &[u8]) -> Result<OutboxEntry, OutboxError> {
    serde_json::from_slice(bytes).map_err(|e| OutboxError::Corrupt(format!("outbox entry: {e}")))
}

fn tx_result<T>(res: Result<T, TransactionError<OutboxError>>) -> Result<T, OutboxError> {
    res.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    })
}
