//! [`AppStore`] in memory: the sled store's twin (same rules, same change order), with nothing
//! to flush.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::apps::{check_appid, delete_change, next_record, put_change, ChangeLog};
use super::record::{AppRecord, Registered, Registration};
use super::{AppChanges, AppStore, AppStoreError, Put};

/// The in-memory app store (cheap to clone; clones share the records and the subscribers).
#[derive(Clone, Default)]
pub struct MemoryApps {
    records: Arc<Mutex<BTreeMap<String, AppRecord>>>,
    changes: Arc<ChangeLog>,
}

impl MemoryApps {
    /// An empty store.
    pub fn new() -> MemoryApps {
        MemoryApps::default()
    }

    fn records(&self) -> MutexGuard<'_, BTreeMap<String, AppRecord>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AppStore for MemoryApps {
    fn get(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        check_appid(appid)?;
        Ok(self.records().get(appid).cloned())
    }

    fn appids(&self) -> Result<Vec<String>, AppStoreError> {
        Ok(self.records().keys().cloned().collect())
    }

    /// Under the lock the read-modify-write is atomic: no compare-and-swap to retry.
    fn put(&self, reg: &Registration, now: u64, mode: Put) -> Result<Registered, AppStoreError> {
        check_appid(&reg.appid)?;
        self.changes.commit(|| {
            let mut records = self.records();
            let out = next_record(records.get(&reg.appid), reg, now, mode)?;
            records.insert(reg.appid.clone(), out.record.clone());
            let change = Some(put_change(&out));
            Ok((out, change))
        })
    }

    async fn put_async(
        &self,
        reg: &Registration,
        now: u64,
        mode: Put,
    ) -> Result<Registered, AppStoreError> {
        self.put(reg, now, mode)
    }

    fn delete(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        check_appid(appid)?;
        self.changes.commit(|| {
            let removed = self.records().remove(appid);
            let change = delete_change(appid, &removed);
            Ok((removed, change))
        })
    }

    async fn delete_async(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        self.delete(appid)
    }

    fn flush(&self) -> Result<(), AppStoreError> {
        Ok(())
    }

    async fn flush_async(&self) -> Result<(), AppStoreError> {
        Ok(())
    }

    fn subscribe(&self) -> AppChanges {
        self.changes.subscribe()
    }
}
