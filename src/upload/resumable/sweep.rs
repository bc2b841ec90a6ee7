//! The expiry of abandoned resumable uploads: a plain thread that wakes every
//! [`interval`] and removes each upload whose last append (or creation) is older than
//! `resumable_expiry_s`: its record first (the upload is gone for the client from then on),
//! then its partial body. Counted in `upgate_resumable_expired_total`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::clock;
use crate::registry::ResumableStore;
use crate::storage::ObjectStore;

/// How often the sweep looks: a quarter of the expiry, between 1 s and a minute.
pub fn interval(expiry_s: u64) -> Duration {
    Duration::from_millis((expiry_s.saturating_mul(250)).clamp(1000, 60_000))
}

/// Starts the sweep; it ends soon after `stop` is set.
pub fn spawn(app: Arc<App>, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("resumable-sweep".into())
        .spawn(move || {
            let every = interval(app.config.resumable_expiry_s);
            let mut next = Instant::now() + every;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if Instant::now() >= next {
                    sweep(&app);
                    next = Instant::now() + every;
                }
            }
        })
}

/// Removes every expired upload now; returns how many.
pub fn sweep(app: &App) -> usize {
    let records = match app.registry.resumables().all() {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!(error = %e, "resumable uploads could not be listed for expiry");
            return 0;
        }
    };
    let now = clock::unix_ms();
    let mut removed = 0;
    for rec in records.iter().filter(|r| r.expired(now)) {
        match app.registry.resumables().remove(&rec.id) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(upload_id = %rec.id, error = %e, "expired upload not removed");
                continue;
            }
        }
        if let Err(e) = app.store.discard_blocking(&rec.id) {
            tracing::warn!(upload_id = %rec.id, error = %e, "expired upload's bytes not removed");
        }
        crate::metrics::resumable_expired();
        tracing::info!(
            upload_id = %rec.id,
            appid = %rec.appid,
            offset = rec.offset,
            "resumable upload expired"
        );
        removed += 1;
    }
    removed
}

/// At startup: removes the records whose partial body is gone. Only a completion leaves one
/// (its body renamed into place, then a crash before the record's removal reached the disk):
/// left, it would report an offset no append can resume from. Returns how many.
pub fn drop_completed(app: &App) -> Result<usize, crate::registry::RegistryError> {
    let mut removed = 0;
    for rec in app.registry.resumables().all()? {
        if !app.store.has_partial_blocking(&rec.id).unwrap_or(true) {
            app.registry.resumables().remove(&rec.id)?;
            tracing::info!(upload_id = %rec.id, "completed upload's record removed at startup");
            removed += 1;
        }
    }
    if removed > 0 {
        app.registry.flush()?;
    }
    Ok(removed)
}
