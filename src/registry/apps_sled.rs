//! [`AppStore`] on sled: tree `apps`, appid → [`AppRecord`] as JSON. Writes are compare-and-swap
//! (retried against concurrent writers) and flushed before they return.

use std::io;
use std::sync::Arc;

use super::apps::{
    check_appid, decode, delete_change, next_record, put_change, ChangeLog, CAS_ATTEMPTS,
};
use super::record::{AppRecord, Registered, Registration};
use super::{AppChange, AppChanges, AppStore, AppStoreError, Put, SledDb};

/// The sled app store (cheap to clone; clones share the tree and the subscribers).
#[derive(Clone)]
pub struct SledApps {
    db: SledDb,
    tree: sled::Tree,
    /// appid → the etcd revision of the cached record (`registry = "etcd"`: the cache's
    /// order; a deleted app keeps its revision, so an older put cannot bring it back).
    revisions: sled::Tree,
    changes: Arc<ChangeLog>,
}

impl SledApps {
    /// The app store in `db` (tree `apps`).
    pub fn open(db: &SledDb) -> Result<SledApps, AppStoreError> {
        Ok(SledApps {
            tree: db.db().open_tree("apps")?,
            revisions: db.db().open_tree("apps_revision")?,
            db: db.clone(),
            changes: Arc::default(),
        })
    }

    /// Read, modify, compare-and-swap (not flushed): concurrent registrations of one appid
    /// cannot lose each other's changes or issue two different "new" secrets.
    fn apply(&self, reg: &Registration, now: u64, mode: Put) -> Result<Registered, AppStoreError> {
        check_appid(&reg.appid)?;
        let key = reg.appid.as_bytes();
        self.changes.commit(|| {
            for _ in 0..CAS_ATTEMPTS {
                let old = self.tree.get(key)?;
                let current = old.as_deref().map(decode).transpose()?;
                let out = next_record(current.as_ref(), reg, now, mode)?;
                let bytes = serde_json::to_vec(&out.record).expect("an app record serialises");
                if self.tree.compare_and_swap(key, old, Some(bytes))?.is_ok() {
                    let change = Some(put_change(&out));
                    return Ok((out, change));
                }
            }
            Err(AppStoreError::Unavailable(Box::new(io::Error::other(
                "registration kept conflicting with concurrent writers",
            ))))
        })
    }

    /// Removes `appid` (not flushed).
    fn remove(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        check_appid(appid)?;
        self.changes.commit(|| {
            let removed = self
                .tree
                .remove(appid.as_bytes())?
                .map(|v| decode(&v))
                .transpose()?;
            let change = delete_change(appid, &removed);
            Ok((removed, change))
        })
    }
}

/// The cache side of `registry = "etcd"` ([`super::EtcdApps`]): records are written as etcd
/// holds them, never made here.
impl SledApps {
    /// Sets `appid`'s record to what etcd holds at `revision` (`None`: deleted), unless the
    /// cache already holds a later one (`force`: whatever it holds, for a full reload).
    /// Announced to subscribers like any change; true when it changed the cache.
    pub(super) fn mirror(
        &self,
        appid: &str,
        record: Option<&AppRecord>,
        revision: i64,
        force: bool,
    ) -> Result<bool, AppStoreError> {
        check_appid(appid)?;
        let key = appid.as_bytes();
        self.changes.commit(|| {
            let held = self
                .revisions
                .get(key)?
                .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                .map_or(0, i64::from_be_bytes);
            if !force && held >= revision {
                return Ok((false, None));
            }
            let changed = match record {
                Some(r) => {
                    let bytes = serde_json::to_vec(r).expect("an app record serialises");
                    self.tree.insert(key, bytes.as_slice())?.as_deref() != Some(&bytes[..])
                }
                None => self.tree.remove(key)?.is_some(),
            };
            self.revisions.insert(key, &revision.to_be_bytes())?;
            // Only real changes are announced (a delete of an app the cache did not hold, or
            // the same record again, is none).
            if !changed {
                return Ok((false, None));
            }
            let change = AppChange {
                appid: appid.to_owned(),
                record: record.cloned(),
            };
            Ok((true, Some(change)))
        })
    }

    /// The sled database the cache lives in (the watch keeps its revision there too).
    pub(super) fn db(&self) -> &SledDb {
        &self.db
    }
}

impl AppStore for SledApps {
    fn get(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        check_appid(appid)?;
        self.tree
            .get(appid.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    fn appids(&self) -> Result<Vec<String>, AppStoreError> {
        self.tree
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }

    fn put(&self, reg: &Registration, now: u64, mode: Put) -> Result<Registered, AppStoreError> {
        let out = self.apply(reg, now, mode)?;
        self.flush()?;
        Ok(out)
    }

    async fn put_async(
        &self,
        reg: &Registration,
        now: u64,
        mode: Put,
    ) -> Result<Registered, AppStoreError> {
        let out = self.apply(reg, now, mode)?;
        self.flush_async().await?;
        Ok(out)
    }

    fn delete(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        let removed = self.remove(appid)?;
        self.flush()?;
        Ok(removed)
    }

    async fn delete_async(&self, appid: &str) -> Result<Option<AppRecord>, AppStoreError> {
        let removed = self.remove(appid)?;
        self.flush_async().await?;
        Ok(removed)
    }

    fn flush(&self) -> Result<(), AppStoreError> {
        self.db.flush().map_err(AppStoreError::Unavailable)
    }

    async fn flush_async(&self) -> Result<(), AppStoreError> {
        self.db
            .flush_async()
            .await
            .map_err(AppStoreError::Unavailable)
    }

    fn subscribe(&self) -> AppChanges {
        self.changes.subscribe()
    }
}
