//! The durable queue of post-upload notifications (contract step 7): an entry is written and
//! flushed before the notification is first sent, and stays until the application answers 2xx.
//!
//! One interface ([`OutboxJournal`]), two implementations: [`super::SledOutbox`] (production; its
//! layout and transactions are documented there) and [`super::MemoryOutbox`] (its twin). The
//! node holds an [`Outbox`], which dispatches to either.
//!
//! Delivery is at-least-once: `due` does not lease entries, so one retry driver per node should
//! own the queue (or reschedule an entry to `now + timeout` before sending it); applications
//! de-duplicate by `webhook-id`.
//!
//! An entry is recorded *before* its file becomes visible (see `upload::flow::commit`), so it
//! names its file ([`OutboxFile`]): while *staged* the file may not exist yet (or ever, if the
//! node crashed before the rename), and only a file with the recorded inode and size is the
//! upload's; once *placed* (after the rename) the path alone counts. `notify` sends an entry
//! only while its file is visible, and drops at startup the entries whose file never appeared.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Cause, LogOutbox, MemoryOutbox};

/// First retry delay.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(600);
/// Longest accepted event id (bytes).
pub const MAX_EVENT_ID: usize = 256;
/// The `next_attempt_at_ms` of a dead entry: never due, so every journal's due order skips it
/// without an index of its own.
pub const NEVER: u64 = u64::MAX;

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

impl OutboxEntry {
    /// Undelivered for `notify_max_age_s`: kept and listed, but not retried until an operator
    /// or the app asks (`POST /upload/outbox/{appid}/{event_id}/retry`). A dead entry's next
    /// attempt is [`NEVER`]; that is the whole mark, so every journal and the log's record
    /// format carry it without a field of their own.
    pub fn is_dead(&self) -> bool {
        self.next_attempt_at_ms == NEVER
    }

    /// The upload id the notification's body names (its `upload_id` field), if any.
    pub fn upload_id(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Body {
            upload_id: Option<String>,
        }
        serde_json::from_slice::<Body>(&self.body)
            .ok()
            .and_then(|b| b.upload_id)
    }
}

/// One app's entries ([`OutboxJournal::of_app`]): the pending ones earliest due first, the dead
/// ones oldest first, each list cut at the limit asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppEntries {
    pub pending: Vec<OutboxEntry>,
    pub dead: Vec<OutboxEntry>,
}

impl AppEntries {
    /// Sorts and cuts lists gathered in any order.
    pub(super) fn from_unordered(
        appid: &str,
        all: impl Iterator<Item = OutboxEntry>,
        limit: usize,
    ) -> AppEntries {
        let (mut dead, mut pending): (Vec<_>, Vec<_>) = all
            .filter(|e| e.appid == appid)
            .partition(OutboxEntry::is_dead);
        pending.sort_by(|a, b| {
            (a.next_attempt_at_ms, &a.event_id).cmp(&(b.next_attempt_at_ms, &b.event_id))
        });
        dead.sort_by(|a, b| (a.created_at_ms, &a.event_id).cmp(&(b.created_at_ms, &b.event_id)));
        pending.truncate(limit);
        dead.truncate(limit);
        AppEntries { pending, dead }
    }
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

/// Why an outbox operation failed (no HTTP here; the facade's [`super::RegistryError`] takes
/// every variant).
#[derive(Debug)]
pub enum OutboxError {
    /// An event id is empty or longer than [`MAX_EVENT_ID`].
    BadEventId,
    /// The journal could not be read or written (the backend's own error is the cause).
    Unavailable(Cause),
    /// A stored entry could not be decoded.
    Corrupt(String),
}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboxError::BadEventId => f.write_str("event id must be 1-256 bytes"),
            OutboxError::Unavailable(e) => write!(f, "outbox unavailable: {e}"),
            OutboxError::Corrupt(what) => write!(f, "outbox value unreadable: {what}"),
        }
    }
}

impl std::error::Error for OutboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OutboxError::Unavailable(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

/// What [`OutboxJournal::update`] changes in a queued entry besides its next attempt. The body,
/// the URL and the event id never change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxEdit {
    /// An attempt failed: the attempt count so far and why.
    Attempted {
        attempts: u32,
        error: Option<String>,
    },
    /// The file was renamed into place (an entry without a file only moves).
    Placed,
    /// Undelivered for too long: moved to the dead list with the last error (`next_at_ms` must
    /// be [`NEVER`]: see [`OutboxEntry::is_dead`]).
    Dead {
        attempts: u32,
        error: Option<String>,
    },
    /// Asked to be attempted now (the management API): back to pending (dead or not) by its
    /// new next attempt; its attempt count and last error are kept.
    Revived,
}

impl OutboxEdit {
    /// `entry` edited and due at `next_at_ms`.
    pub(super) fn apply(&self, entry: &mut OutboxEntry, next_at_ms: u64) {
        match self {
            OutboxEdit::Attempted { attempts, error } => {
                entry.attempts = *attempts;
                entry.last_error = error.clone();
            }
            OutboxEdit::Placed => {
                if let Some(file) = &mut entry.file {
                    file.placed = true;
                }
            }
            OutboxEdit::Dead { attempts, error } => {
                entry.attempts = *attempts;
                entry.last_error = error.clone();
            }
            // Pending again by its new next attempt alone.
            OutboxEdit::Revived => {}
        }
        entry.next_attempt_at_ms = next_at_ms;
    }
}

/// The durable queue of post-callbacks.
///
/// Durability, which every implementation keeps (in memory, "durable" only means "kept"):
/// [`OutboxJournal::enqueue`] and [`OutboxJournal::delivered`] flush before they return; the
/// other writes do not (losing one in a crash is harmless: see each method). The next flush,
/// [`OutboxJournal::flush`] or any flushing write, makes every earlier write durable.
///
/// The `async fn`s are not `Send` (io_uring callers) and keep the trait from being used as
/// `dyn`: the node holds the enum [`Outbox`], which delegates to the journal it holds.
#[allow(async_fn_in_trait)] // not `Send` on purpose (io_uring), see above
pub trait OutboxJournal {
    /// Records `entry` (replacing one with the same event id) and flushes it to disk.
    fn enqueue(&self, entry: &OutboxEntry) -> Result<(), OutboxError>;

    /// [`OutboxJournal::enqueue`] with the flush done off the calling thread, for io_uring
    /// threads.
    async fn enqueue_async(&self, entry: &OutboxEntry) -> Result<(), OutboxError>;

    /// Up to `limit` entries whose `next_attempt_at_ms <= now_ms`, earliest first (ties in
    /// event id order).
    fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError>;

    /// One entry by event id.
    fn get(&self, event_id: &str) -> Result<Option<OutboxEntry>, OutboxError>;

    /// Removes an entry, not flushed; false when it was not queued. Callers say why:
    /// [`OutboxJournal::delivered`], [`OutboxJournal::delivered_lazily`],
    /// [`OutboxJournal::discard`].
    fn remove(&self, event_id: &str) -> Result<bool, OutboxError>;

    /// Changes a queued entry by `edit` and moves its next attempt to `next_at_ms`, atomically
    /// (the entry and its place in the due order), not flushed. False when it is not queued.
    fn update(
        &self,
        event_id: &str,
        next_at_ms: u64,
        edit: OutboxEdit,
    ) -> Result<bool, OutboxError>;

    /// Every entry, in event id order (startup reconciliation; O(n)). Writes made while
    /// iterating are allowed: each entry is visited once.
    fn entries(&self) -> impl Iterator<Item = Result<OutboxEntry, OutboxError>> + '_;

    /// Writes everything to disk (an `fsync`; blocks).
    fn flush(&self) -> Result<(), OutboxError>;

    /// [`OutboxJournal::flush`] without blocking the calling thread.
    async fn flush_async(&self) -> Result<(), OutboxError>;

    /// Entries queued (O(n) for sled: for metrics and health, not per request).
    fn len(&self) -> usize;

    /// `appid`'s entries, pending and dead, at most `limit` of each ([`AppEntries`]). Scans
    /// the journal (O(n)): for the management API, not per upload.
    fn of_app(&self, appid: &str, limit: usize) -> Result<AppEntries, OutboxError>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes a delivered entry and flushes; false when it was not (or no longer) queued.
    fn delivered(&self, event_id: &str) -> Result<bool, OutboxError> {
        let removed = self.remove(event_id)?;
        self.flush()?;
        Ok(removed)
    }

    /// [`OutboxJournal::delivered`] without waiting for the disk: the removal reaches it with
    /// the next flush (the next upload's record, or sled's `flush_every_ms`). A crash before
    /// that sends the notification once more after restart (same webhook-id: at least once,
    /// de-duplicable), which is the only cost; the upload's answer does not wait for a second
    /// disk flush.
    fn delivered_lazily(&self, event_id: &str) -> Result<bool, OutboxError> {
        self.remove(event_id)
    }

    /// Removes an entry that must never be sent (its file is not visible), without a flush:
    /// lost in a crash, the next start drops it again. False when it was not queued.
    fn discard(&self, event_id: &str) -> Result<bool, OutboxError> {
        self.remove(event_id)
    }

    /// Records a failed attempt: the new attempt count, when to try next, and why it failed.
    /// Not flushed: losing it in a crash only makes the next attempt come earlier. False when
    /// the entry is no longer queued.
    fn reschedule(
        &self,
        event_id: &str,
        attempts: u32,
        next_at_ms: u64,
        error: Option<String>,
    ) -> Result<bool, OutboxError> {
        self.update(
            event_id,
            next_at_ms,
            OutboxEdit::Attempted { attempts, error },
        )
    }

    /// Marks the file of `event_id` as placed (renamed into place) and moves its next attempt
    /// to `next_at_ms`. Not flushed: losing the mark in a crash leaves the inode to decide.
    /// False when the entry is no longer queued.
    fn placed(&self, event_id: &str, next_at_ms: u64) -> Result<bool, OutboxError> {
        self.update(event_id, next_at_ms, OutboxEdit::Placed)
    }

    /// Records a last failed attempt and moves the entry to the dead list
    /// ([`OutboxEdit::Dead`]), flushed: it is no longer retried by itself, so its state must
    /// survive a crash. False when it is not queued.
    fn bury(
        &self,
        event_id: &str,
        attempts: u32,
        error: Option<String>,
    ) -> Result<bool, OutboxError> {
        let moved = self.update(event_id, NEVER, OutboxEdit::Dead { attempts, error })?;
        self.flush()?;
        Ok(moved)
    }

    /// `created_at_ms` of the oldest queued entry (scans every entry: O(n)).
    fn oldest_created_ms(&self) -> Result<Option<u64>, OutboxError> {
        let mut oldest: Option<u64> = None;
        for entry in self.entries() {
            let created = entry?.created_at_ms;
            oldest = Some(oldest.map_or(created, |o| o.min(created)));
        }
        Ok(oldest)
    }
}

/// The outbox the node holds: one of the journals, by enum dispatch (see [`OutboxJournal`]).
#[derive(Clone)]
pub enum Outbox {
    /// The log on disk, in production ([`super::Registry::open`]).
    Log(LogOutbox),
    /// In memory ([`super::Registry::in_memory`]).
    Memory(MemoryOutbox),
}

impl OutboxJournal for Outbox {
    fn enqueue(&self, entry: &OutboxEntry) -> Result<(), OutboxError> {
        dispatch!(Outbox[Log, Memory], self, o => o.enqueue(entry))
    }

    async fn enqueue_async(&self, entry: &OutboxEntry) -> Result<(), OutboxError> {
        dispatch!(Outbox[Log, Memory], self, o => o.enqueue_async(entry).await)
    }

    fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
        dispatch!(Outbox[Log, Memory], self, o => o.due(now_ms, limit))
    }

    fn get(&self, event_id: &str) -> Result<Option<OutboxEntry>, OutboxError> {
        dispatch!(Outbox[Log, Memory], self, o => o.get(event_id))
    }

    fn remove(&self, event_id: &str) -> Result<bool, OutboxError> {
        dispatch!(Outbox[Log, Memory], self, o => o.remove(event_id))
    }

    fn update(
        &self,
        event_id: &str,
        next_at_ms: u64,
        edit: OutboxEdit,
    ) -> Result<bool, OutboxError> {
        dispatch!(Outbox[Log, Memory], self, o => o.update(event_id, next_at_ms, edit))
    }

    fn entries(&self) -> impl Iterator<Item = Result<OutboxEntry, OutboxError>> + '_ {
        let entries: Box<dyn Iterator<Item = _>> =
            dispatch!(Outbox[Log, Memory], self, o => Box::new(o.entries()));
        entries
    }

    fn flush(&self) -> Result<(), OutboxError> {
        dispatch!(Outbox[Log, Memory], self, o => o.flush())
    }

    async fn flush_async(&self) -> Result<(), OutboxError> {
        dispatch!(Outbox[Log, Memory], self, o => o.flush_async().await)
    }

    fn len(&self) -> usize {
        dispatch!(Outbox[Log, Memory], self, o => o.len())
    }

    fn is_empty(&self) -> bool {
        dispatch!(Outbox[Log, Memory], self, o => o.is_empty())
    }

    fn of_app(&self, appid: &str, limit: usize) -> Result<AppEntries, OutboxError> {
        dispatch!(Outbox[Log, Memory], self, o => o.of_app(appid, limit))
    }
}

/// [`OutboxError::BadEventId`] unless `event_id` is 1 to [`MAX_EVENT_ID`] bytes.
pub(super) fn check_event_id(event_id: &str) -> Result<(), OutboxError> {
    match (1..=MAX_EVENT_ID).contains(&event_id.len()) {
        true => Ok(()),
        false => Err(OutboxError::BadEventId),
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
