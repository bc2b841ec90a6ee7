//! Generations of stored paths, shared by every io_uring thread: the invalidation half of the
//! per-thread open-file cache (`cache.rs`).
//!
//! A fixed table of counters, indexed by a hash of the file's path. The store bumps a path's
//! counter **after** a change to it is complete (the rename of a commit, the unlink of a
//! delete); a reader reads the counter **before** it opens the file and keeps that value with
//! what it cached. An entry whose value differs from the counter's current one is stale.
//!
//! The order closes the race with a reader that opens the old file just before the rename: it
//! read the counter before the bump, so its entry is stale as soon as the bump is done, which is
//! before the commit returns (and so before the client is told `201`). A reader that reads the
//! counter after the bump opens after the rename and sees the new file. Paths that share a
//! counter invalidate each other: a few extra misses, never a stale hit. The table never grows
//! and needs no lock; it costs 32 KiB for the process.

use std::hash::Hasher;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped when a whole tree goes at once (an app's files, when its registration is deleted):
/// added to every path's counter, so every cached open on every thread is stale.
static ALL: AtomicU64 = AtomicU64::new(0);

/// Counters in the node's table (a power of two).
const SLOTS: usize = 4096;

static TABLE: Generations<SLOTS> = Generations::new();

/// The generation of `path` now. Read it before opening the file.
pub fn current(path: &Path) -> u64 {
    // Both only grow, so the sum changes whenever either is bumped.
    TABLE
        .current(path)
        .wrapping_add(ALL.load(Ordering::Acquire))
}

/// Marks every cached open of every path stale (a tree of unknown paths went away). Call it
/// after the change.
pub fn bump_all() {
    ALL.fetch_add(1, Ordering::AcqRel);
}

/// Marks every cached open of `path`, on every thread, stale. Call it after the change.
pub fn bump(path: &Path) {
    TABLE.bump(path)
}

/// A table of `N` generation counters (`N` a power of two).
pub struct Generations<const N: usize> {
    slots: [AtomicU64; N],
}

impl<const N: usize> Generations<N> {
    pub const fn new() -> Self {
        assert!(N.is_power_of_two());
        Generations {
            slots: [const { AtomicU64::new(0) }; N],
        }
    }

    /// The counter of `path`.
    fn index(path: &Path) -> usize {
        // SipHash with fixed keys: the same path picks the same counter on every thread.
        let mut h = std::hash::DefaultHasher::new();
        h.write(path.as_os_str().as_bytes());
        h.finish() as usize & (N - 1)
    }

    pub fn current(&self, path: &Path) -> u64 {
        // Acquire pairs with the bump's release: a reader that sees the new value also sees
        // (opens after) the change that preceded the bump.
        self.slots[Self::index(path)].load(Ordering::Acquire)
    }

    pub fn bump(&self, path: &Path) {
        self.slots[Self::index(path)].fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_changes_the_generation_of_its_slot_only() {
        let table = Generations::<64>::new();
        let a = Path::new("/data/files/app/a.bin");
        assert_eq!(table.current(a), 0);
        table.bump(a);
        assert_eq!(table.current(a), 1);
        // The same bytes name the same slot, however the path was built.
        assert_eq!(
            table.current(&Path::new("/data/files/app").join("a.bin")),
            1
        );
        // Paths in other slots keep their generation; paths that share a's slot see the bump
        // (an extra miss for them, never a stale hit).
        let mut others = 0;
        for i in 0..200 {
            let p = format!("/data/files/app/other-{i}.bin");
            let p = Path::new(&p);
            let shares = Generations::<64>::index(p) == Generations::<64>::index(a);
            assert_eq!(table.current(p), u64::from(shares), "{}", p.display());
            others += usize::from(!shares);
        }
        assert!(
            others > 150,
            "the hash spreads paths over the slots ({others} of 200 apart)"
        );
    }
}
