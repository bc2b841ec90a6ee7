//! [`OutboxJournal`] in memory: the sled outbox's twin. The entries and their due order (the
//! twin of the `outbox_due` index) change together under one lock; flushing is a no-op.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::outbox::{check_event_id, AppEntries};
use super::{OutboxEdit, OutboxEntry, OutboxError, OutboxJournal};

/// The in-memory outbox (cheap to clone; clones share the queue).
#[derive(Clone, Default)]
pub struct MemoryOutbox {
    queue: Arc<Mutex<Queue>>,
}

/// The entries and their due order; also the index of [`super::LogOutbox`].
#[derive(Default)]
pub(super) struct Queue {
    pub(super) entries: BTreeMap<String, OutboxEntry>,
    /// (next attempt, event id): the order `due` reads in.
    pub(super) due: BTreeSet<(u64, String)>,
}

impl Queue {
    /// Adds `entry`, replacing one with the same event id.
    pub(super) fn insert(&mut self, entry: OutboxEntry) {
        self.remove(&entry.event_id);
        self.due
            .insert((entry.next_attempt_at_ms, entry.event_id.clone()));
        self.entries.insert(entry.event_id.clone(), entry);
    }

    pub(super) fn remove(&mut self, event_id: &str) -> Option<OutboxEntry> {
        let old = self.entries.remove(event_id)?;
        self.due
            .remove(&(old.next_attempt_at_ms, old.event_id.clone()));
        Some(old)
    }

    /// Up to `limit` entries due at `now_ms`, earliest first.
    pub(super) fn due_now(&self, now_ms: u64, limit: usize) -> Vec<OutboxEntry> {
        self.due
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .take(limit)
            .map(|(_, id)| self.entries[id].clone())
            .collect()
    }

    /// `appid`'s entries (a scan of the map, under the caller's lock).
    pub(super) fn of_app(&self, appid: &str, limit: usize) -> AppEntries {
        let mine = self.entries.values().filter(|e| e.appid == appid).cloned();
        AppEntries::from_unordered(appid, mine, limit)
    }

    /// Applies `edit` to a queued entry and moves it to `next_at_ms`; the entry as it now is,
    /// or `None` when it is not queued.
    pub(super) fn update(
        &mut self,
        event_id: &str,
        next_at_ms: u64,
        edit: &OutboxEdit,
    ) -> Option<&OutboxEntry> {
        let mut entry = self.remove(event_id)?;
        edit.apply(&mut entry, next_at_ms);
        let id = entry.event_id.clone();
        self.insert(entry);
        self.entries.get(&id)
    }
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> MemoryOutbox {
        MemoryOutbox::default()
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl OutboxJournal for MemoryOutbox {
    fn enqueue(&self, entry: &OutboxEntry) -> Result<(), OutboxError> {
        check_event_id(&entry.event_id)?;
        self.queue().insert(entry.clone());
        Ok(())
    }

    async fn enqueue_async(&self, entry: &OutboxEntry) -> Result<(), OutboxError> {
        self.enqueue(entry)
    }

    fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
        Ok(self.queue().due_now(now_ms, limit))
    }

    fn get(&self, event_id: &str) -> Result<Option<OutboxEntry>, OutboxError> {
        Ok(self.queue().entries.get(event_id).cloned())
    }

    fn remove(&self, event_id: &str) -> Result<bool, OutboxError> {
        Ok(self.queue().remove(event_id).is_some())
    }

    fn update(
        &self,
        event_id: &str,
        next_at_ms: u64,
        edit: OutboxEdit,
    ) -> Result<bool, OutboxError> {
        Ok(self.queue().update(event_id, next_at_ms, &edit).is_some())
    }

    /// A snapshot: writes made while iterating are allowed (each entry is visited once).
    fn entries(&self) -> impl Iterator<Item = Result<OutboxEntry, OutboxError>> + '_ {
        let all: Vec<OutboxEntry> = self.queue().entries.values().cloned().collect();
        all.into_iter().map(Ok)
    }

    fn flush(&self) -> Result<(), OutboxError> {
        Ok(())
    }

    async fn flush_async(&self) -> Result<(), OutboxError> {
        Ok(())
    }

    fn len(&self) -> usize {
        self.queue().entries.len()
    }

    fn of_app(&self, appid: &str, limit: usize) -> Result<AppEntries, OutboxError> {
        Ok(self.queue().of_app(appid, limit))
    }
}
