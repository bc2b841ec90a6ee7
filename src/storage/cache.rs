//! The open-file cache of downloads: per io_uring thread, what [`super::LocalStore`]'s `open`
//! found at a path — the object's metadata and its body (a small file's bytes, or the open
//! descriptor of a larger one) — so a repeated download of the same file costs no `openat`,
//! `statx` or read (nginx's `open_file_cache`).
//!
//! - **Per thread.** One cache per runtime thread (a `thread_local!`, as the splice pipes and the
//!   registered buffers): no lock, and a descriptor is used only by the ring that opened it.
//! - **Bounded.** [`LIMITS`]: at most 1024 entries and 8 MiB of small bodies per thread;
//!   beyond them the CLOCK hand (second chance, an LRU approximation) evicts. An evicted
//!   entry's descriptor closes once no response still sends from it.
//! - **Invalidated across threads.** Each entry keeps the path's generation read before its
//!   open (`generation.rs`); the store bumps the generation after every commit and delete, so a
//!   lookup after them misses on every thread.
//! - **Short-lived.** An entry expires `open_file_cache_ttl_ms` after its open (1 s by
//!   default), so a file changed behind the node's back is served at most that long.
//!   Expired and invalidated entries are also swept once a second, closing their descriptors,
//!   so a deleted file's blocks are not held by an idle thread.
//!
//! [`OpenCache`] is the pure structure (time and generations are inputs); the functions at the
//! bottom are the thread's instance.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::generation;
use super::object::{Object, ObjectBody};

/// Bounds of one cache.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries (each may hold one descriptor).
    pub entries: usize,
    /// Bytes of small bodies kept in memory.
    pub bytes: usize,
}

/// The bounds of each thread's cache.
pub const LIMITS: Limits = Limits {
    entries: 1024,
    bytes: 8 << 20,
};

/// How often a thread with a non-empty cache sweeps expired and invalidated entries.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A bounded map from a path to what was opened there, with CLOCK eviction.
pub struct OpenCache<V> {
    index: HashMap<PathBuf, usize>,
    slots: Vec<Option<Slot<V>>>,
    /// Empty slots, reused before the vector grows.
    free: Vec<usize>,
    /// The CLOCK hand: the next slot eviction looks at.
    hand: usize,
    bytes: usize,
    limits: Limits,
}

struct Slot<V> {
    key: PathBuf,
    generation: u64,
    expires: Instant,
    bytes: usize,
    /// Set by a hit; the hand clears it once before it evicts the entry.
    referenced: bool,
    value: V,
}

impl<V: Clone> OpenCache<V> {
    pub fn new(limits: Limits) -> Self {
        OpenCache {
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            hand: 0,
            bytes: 0,
            limits,
        }
    }

    /// Entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes of the entries held, as given to [`OpenCache::insert`].
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The value cached at `key` if it was opened at `generation` (the path's generation now)
    /// and has not expired at `now`. A stale or expired entry is dropped.
    pub fn get(&mut self, key: &Path, generation: u64, now: Instant) -> Option<V> {
        let i = *self.index.get(key)?;
        let slot = self.slots[i].as_mut()?;
        if slot.generation != generation || now >= slot.expires {
            self.remove_at(i);
            return None;
        }
        slot.referenced = true;
        Some(slot.value.clone())
    }

    /// Caches `value` (weighing `bytes`), opened when `key` had `generation`, until `expires`.
    /// Replaces an entry at the same key; evicts others until the bounds hold. A value larger
    /// than the byte bound is not cached (false).
    pub fn insert(
        &mut self,
        key: PathBuf,
        generation: u64,
        expires: Instant,
        value: V,
        bytes: usize,
    ) -> bool {
        if self.limits.entries == 0 || bytes > self.limits.bytes {
            return false;
        }
        if let Some(&i) = self.index.get(&key) {
            self.remove_at(i);
        }
        while self.index.len() >= self.limits.entries || self.bytes + bytes > self.limits.bytes {
            if !self.evict_one() {
                return false;
            }
        }
        let slot = Slot {
            key: key.clone(),
            generation,
            expires,
            bytes,
            referenced: true,
            value,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.index.insert(key, i);
        self.bytes += bytes;
        true
    }

    /// Drops every entry that expired at `now` or whose generation is no longer
    /// `generation_of` its key. Returns how many were dropped.
    pub fn sweep(&mut self, now: Instant, generation_of: impl Fn(&Path) -> u64) -> usize {
        let mut dropped = 0;
        for i in 0..self.slots.len() {
            let stale = match &self.slots[i] {
                Some(s) => now >= s.expires || s.generation != generation_of(&s.key),
                None => false,
            };
            if stale {
                self.remove_at(i);
                dropped += 1;
            }
        }
        dropped
    }

    /// CLOCK: passes over entries hit since the hand's last visit (clearing their mark) and
    /// evicts the first one that was not. False when there was nothing to evict.
    fn evict_one(&mut self) -> bool {
        // One turn of the hand clears every mark, so the second finds a victim at the latest.
        for _ in 0..2 * self.slots.len() {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let i = self.hand;
            self.hand += 1;
            match &mut self.slots[i] {
                Some(s) if s.referenced => s.referenced = false,
                Some(_) => {
                    self.remove_at(i);
                    return true;
                }
                None => {}
            }
        }
        debug_assert!(
            self.index.is_empty(),
            "a full turn of the hand found no victim"
        );
        false
    }

    fn remove_at(&mut self, i: usize) {
        if let Some(slot) = self.slots[i].take() {
            self.index.remove(&slot.key);
            self.bytes -= slot.bytes;
            self.free.push(i);
            // `slot.value` drops here: a cached descriptor closes with its last reference.
        }
    }
}

// ── this thread's cache ─────────────────────────────────────────────────────────────────────

thread_local! {
    static CACHE: RefCell<OpenCache<Object>> = RefCell::new(OpenCache::new(LIMITS));
    static SWEEPING: Cell<bool> = const { Cell::new(false) };
}

/// The object this thread cached at `path`, if it is still current: opened at `generation`
/// (read before this lookup's own open would be) and not expired at `now`.
pub fn get(path: &Path, generation: u64, now: Instant) -> Option<Object> {
    CACHE.with(|c| c.borrow_mut().get(path, generation, now))
}

/// Caches `object`, opened at `path` after reading `generation`, until `expires`. Nothing is
/// cached when the generation moved meanwhile: a commit or delete raced with the open, and the
/// entry would be stale at once.
pub fn put(path: PathBuf, generation: u64, expires: Instant, object: &Object) {
    if generation::current(&path) != generation {
        return;
    }
    let bytes = match &object.body {
        ObjectBody::Bytes(b) => b.len(),
        ObjectBody::File(_) | ObjectBody::Growing(..) => 0,
    };
    let cached = CACHE.with(|c| {
        c.borrow_mut()
            .insert(path, generation, expires, object.clone(), bytes)
    });
    if cached {
        start_sweeper();
    }
}

/// Entries this thread holds.
#[cfg(test)]
pub fn thread_len() -> usize {
    CACHE.with(|c| c.borrow().len())
}

/// Spawns this thread's sweeper unless it runs: every [`SWEEP_EVERY`] it drops expired and
/// invalidated entries (closing their descriptors), and it ends when the cache is empty.
fn start_sweeper() {
    if SWEEPING.with(|s| s.replace(true)) {
        return;
    }
    /// Clears the flag however the task ends (a runtime that stops drops it).
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = SWEEPING.try_with(|s| s.set(false));
        }
    }
    tokio_uring::spawn(async {
        let _running = Running;
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            let empty = CACHE.with(|c| {
                let mut c = c.borrow_mut();
                c.sweep(Instant::now(), generation::current);
                c.is_empty()
            });
            if empty {
                break;
            }
        }
    });
}

#[cfg(test)]
mod tests;
