//! Every app's usage on this node, and the reservations of the uploads in flight.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::Bucket;
use crate::registry::AppRecord;

/// An app's quota settings (from its registration; all `None` for an unregistered app).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub quota_bytes: Option<u64>,
    pub max_concurrent_uploads: Option<u32>,
    pub rate_per_s: Option<f64>,
}

impl Limits {
    pub fn of(record: Option<&AppRecord>) -> Limits {
        record.map_or_else(Limits::default, |r| Limits {
            quota_bytes: r.quota_bytes,
            max_concurrent_uploads: r.max_concurrent_uploads,
            rate_per_s: r.rate_per_s,
        })
    }
}

/// One app's usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Bytes of committed files.
    pub stored: u64,
    /// Declared bytes of the uploads in flight.
    pub reserved: u64,
    /// Uploads in flight.
    pub in_flight: u32,
    bucket: Option<Bucket>,
}

/// Why an upload was refused by a quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// 403 `quota_exceeded`: the bytes would pass `quota_bytes`.
    Bytes { used: u64, asked: u64, quota: u64 },
    /// 429 `rate_limited`: `max_concurrent_uploads` uploads are in flight.
    Concurrency { limit: u32 },
    /// 429 `rate_limited`: over `rate_per_s`; a token comes back in this many ms.
    Rate { retry_after_ms: u64 },
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Bytes { used, asked, quota } => write!(
                f,
                "the app's storage quota is {quota} bytes; {used} are stored or being \
                 uploaded, and this upload needs {asked} more"
            ),
            Denied::Concurrency { limit } => write!(
                f,
                "the app already has {limit} uploads in flight on this node (its \
                 max_concurrent_uploads); retry later"
            ),
            Denied::Rate { retry_after_ms } => write!(
                f,
                "the app is starting uploads faster than its rate_per_s allows on this node; \
                 retry in {} s",
                retry_after_ms.div_ceil(1000).max(1)
            ),
        }
    }
}

impl std::error::Error for Denied {}

impl Denied {
    /// The `quota` label of `upgate_quota_refusals_total`.
    pub fn kind(&self) -> crate::metrics::QuotaKind {
        use crate::metrics::QuotaKind;
        match self {
            Denied::Bytes { .. } => QuotaKind::Bytes,
            Denied::Concurrency { .. } => QuotaKind::Concurrency,
            Denied::Rate { .. } => QuotaKind::Rate,
        }
    }
}

/// The usage of every app on this node. One lock for all apps: every operation under it is a
/// few additions, made once per upload (never per body chunk).
#[derive(Debug, Default)]
pub struct Quotas {
    apps: Mutex<HashMap<String, Usage>>,
}

/// What an admitted upload takes.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    /// The declared size (`None`: unknown until the body ends).
    pub bytes: Option<u64>,
    /// A new upload (takes a rate token); an append to a resumable upload is not.
    pub new_upload: bool,
}

impl Quotas {
    pub fn new() -> Arc<Quotas> {
        Arc::new(Quotas::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Usage>> {
        self.apps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the stored bytes of every app (the startup scan).
    pub fn set_stored(&self, stored: HashMap<String, u64>) {
        let mut apps = self.lock();
        for usage in apps.values_mut() {
            usage.stored = 0;
        }
        for (appid, bytes) in stored {
            apps.entry(appid).or_default().stored = bytes;
        }
    }

    /// Admits an upload of `appid` under `limits` at `now_ms`, or says which quota refuses it.
    pub fn admit(
        self: &Arc<Self>,
        appid: &str,
        limits: Limits,
        ask: Ask,
        now_ms: u64,
    ) -> Result<Hold, Denied> {
        let mut apps = self.lock();
        let usage = apps.entry(appid.to_owned()).or_default();
        if let Some(limit) = limits.max_concurrent_uploads {
            if usage.in_flight >= limit {
                return Err(Denied::Concurrency { limit });
            }
        }
        let bytes = ask.bytes.unwrap_or(0);
        if let Some(quota) = limits.quota_bytes {
            let used = usage.stored.saturating_add(usage.reserved);
            // An upload of unknown size needs at least one byte of room.
            if used.saturating_add(bytes.max(1)) > quota {
                return Err(Denied::Bytes {
                    used,
                    asked: bytes.max(1),
                    quota,
                });
            }
        }
        match (limits.rate_per_s, ask.new_upload) {
            (Some(rate), true) => {
                let bucket = usage
                    .bucket
                    .get_or_insert_with(|| Bucket::new(rate, now_ms));
                if bucket.rate() != rate {
                    bucket.set_rate(rate);
                }
                bucket
                    .take(now_ms)
                    .map_err(|retry_after_ms| Denied::Rate { retry_after_ms })?;
            }
            (None, _) => usage.bucket = None,
            _ => {}
        }
        usage.reserved += bytes;
        usage.in_flight += 1;
        Ok(Hold {
            quotas: Arc::clone(self),
            appid: appid.to_owned(),
            reserved: bytes,
            quota: limits.quota_bytes,
            open: Mutex::new(true),
        })
    }

    /// Bytes an upload of unknown size may still bring (the room left under `quota_bytes`).
    pub fn room(&self, appid: &str, limits: Limits) -> Option<u64> {
        let quota = limits.quota_bytes?;
        let apps = self.lock();
        let used = apps
            .get(appid)
            .map_or(0, |u| u.stored.saturating_add(u.reserved));
        Some(quota.saturating_sub(used))
    }

    /// A stored file of `size` bytes went away (a delete, an app's deletion).
    pub fn removed(&self, appid: &str, size: u64) {
        if let Some(usage) = self.lock().get_mut(appid) {
            usage.stored = usage.stored.saturating_sub(size);
        }
    }

    /// All of an app's files went away (its deletion).
    pub fn forget_stored(&self, appid: &str) {
        if let Some(usage) = self.lock().get_mut(appid) {
            usage.stored = 0;
        }
    }

    /// Every app's usage, sorted by appid (metrics).
    pub fn snapshot(&self) -> Vec<(String, Usage)> {
        let mut out: Vec<(String, Usage)> = self
            .lock()
            .iter()
            .map(|(a, u)| (a.clone(), u.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// One app's usage.
    pub fn usage(&self, appid: &str) -> Usage {
        self.lock().get(appid).cloned().unwrap_or_default()
    }
}

/// One admitted upload's reservation: its declared bytes and its in-flight slot. Dropped
/// without [`Hold::commit`], it gives both back.
pub struct Hold {
    quotas: Arc<Quotas>,
    appid: String,
    reserved: u64,
    /// The app's `quota_bytes` when admitted.
    quota: Option<u64>,
    /// Still holding (not committed nor released).
    open: Mutex<bool>,
}

impl fmt::Debug for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hold")
            .field("appid", &self.appid)
            .field("reserved", &self.reserved)
            .finish()
    }
}

impl Hold {
    /// The upload is being committed with `size` bytes, replacing a file of `replaced` bytes
    /// (0 when new): its reservation becomes stored bytes, unless a body bigger than its
    /// reservation (one of unknown size) turned out too big for the quota (then nothing
    /// changes, and the caller keeps nothing). A commit that then fails calls
    /// [`Quotas::removed`].
    pub fn commit(&self, size: u64, replaced: u64) -> Result<(), Denied> {
        let quota = self.quota;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if !*open {
            return Ok(());
        }
        let mut apps = self.quotas.lock();
        let usage = apps.entry(self.appid.clone()).or_default();
        let others = usage.reserved.saturating_sub(self.reserved);
        let after = usage
            .stored
            .saturating_sub(replaced)
            .saturating_add(others)
            .saturating_add(size);
        if let Some(quota) = quota {
            if size > self.reserved && after > quota {
                return Err(Denied::Bytes {
                    used: usage.stored.saturating_add(others),
                    asked: size,
                    quota,
                });
            }
        }
        usage.reserved = others;
        usage.in_flight = usage.in_flight.saturating_sub(1);
        usage.stored = usage.stored.saturating_sub(replaced).saturating_add(size);
        *open = false;
        Ok(())
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    fn release(&self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if !*open {
            return;
        }
        *open = false;
        let mut apps = self.quotas.lock();
        if let Some(usage) = apps.get_mut(&self.appid) {
            usage.reserved = usage.reserved.saturating_sub(self.reserved);
            usage.in_flight = usage.in_flight.saturating_sub(1);
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bytes: Option<u64>, conc: Option<u32>, rate: Option<f64>) -> Limits {
        Limits {
            quota_bytes: bytes,
            max_concurrent_uploads: conc,
            rate_per_s: rate,
        }
    }

    fn ask(bytes: Option<u64>) -> Ask {
        Ask {
            bytes,
            new_upload: true,
        }
    }

    #[test]
    fn reservations_count_against_the_quota_until_released_or_committed() {
        let q = Quotas::new();
        let l = limits(Some(100), None, None);
        let a = q.admit("a", l, ask(Some(60)), 0).unwrap();
        assert!(matches!(
            q.admit("a", l, ask(Some(41)), 0),
            Err(Denied::Bytes { used: 60, .. })
        ));
        let b = q.admit("a", l, ask(Some(40)), 0).unwrap();
        drop(a); // vetoed or aborted: its 60 come back
        assert_eq!(q.usage("a").reserved, 40);
        b.commit(40, 0).unwrap();
        drop(b); // committed: dropping changes nothing more
        let u = q.usage("a");
        assert_eq!((u.stored, u.reserved, u.in_flight), (40, 0, 0));
        // Other apps are apart.
        assert!(q.admit("b", l, ask(Some(100)), 0).is_ok());
    }

    #[test]
    fn unknown_sizes_are_checked_again_at_commit() {
        let q = Quotas::new();
        let l = limits(Some(100), None, None);
        let a = q.admit("a", l, ask(None), 0).unwrap();
        let b = q.admit("a", l, ask(None), 0).unwrap();
        a.commit(70, 0).unwrap();
        assert!(matches!(b.commit(31, 0), Err(Denied::Bytes { .. })));
        drop(b);
        assert_eq!(q.usage("a").in_flight, 0);
        // An overwrite frees what it replaces.
        let c = q.admit("a", l, ask(Some(90)), 0);
        assert!(c.is_err());
        let c = q.admit("a", l, ask(Some(30)), 0).unwrap();
        c.commit(30, 70).unwrap();
        assert_eq!(q.usage("a").stored, 30);
    }

    #[test]
    fn concurrency_and_rate() {
        let q = Quotas::new();
        let l = limits(None, Some(2), None);
        let a = q.admit("a", l, ask(None), 0).unwrap();
        let _b = q.admit("a", l, ask(None), 0).unwrap();
        assert_eq!(
            q.admit("a", l, ask(None), 0).unwrap_err(),
            Denied::Concurrency { limit: 2 }
        );
        drop(a);
        assert!(q.admit("a", l, ask(None), 0).is_ok());

        let l = limits(None, None, Some(1.0));
        let holds: Vec<_> = (0..2)
            .map(|_| q.admit("r", l, ask(None), 0).unwrap())
            .collect();
        assert!(matches!(
            q.admit("r", l, ask(None), 0),
            Err(Denied::Rate {
                retry_after_ms: 1000
            })
        ));
        // Appends to a resumable upload take no token.
        let append = Ask {
            bytes: Some(5),
            new_upload: false,
        };
        assert!(q.admit("r", l, append, 0).is_ok());
        drop(holds);
        assert!(q.admit("r", l, ask(None), 1000).is_ok());
    }

    #[test]
    fn startup_scan_and_removals() {
        let q = Quotas::new();
        q.set_stored(HashMap::from([("a".to_owned(), 500)]));
        assert_eq!(q.room("a", limits(Some(600), None, None)), Some(100));
        q.removed("a", 200);
        assert_eq!(q.usage("a").stored, 300);
        q.forget_stored("a");
        assert_eq!(q.usage("a").stored, 0);
        assert_eq!(q.room("a", Limits::default()), None);
    }
}
