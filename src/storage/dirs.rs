//! Directories known to exist below the files root, remembered per ring thread, so that a
//! commit into a directory this thread has already used costs one `renameat` instead of one
//! `mkdirat` per path level first. Only an app's deletion removes directories (its whole
//! tree, renamed aside); when a directory is gone, the rename fails with `ENOENT`, the entry is forgotten and the directories are made
//! again (see `LocalUpload::place`).

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Directories remembered per thread before the set starts over (bounds its memory).
const CAPACITY: usize = 16_384;

thread_local! {
    static KNOWN: RefCell<HashSet<PathBuf>> = RefCell::new(HashSet::new());
}

/// Whether `dir` was made or seen by this thread (and not forgotten since).
pub(super) fn known(dir: &Path) -> bool {
    KNOWN.with(|k| k.borrow().contains(dir))
}

/// Remembers that `dir` exists.
pub(super) fn remember(dir: &Path) {
    KNOWN.with(|k| {
        let mut k = k.borrow_mut();
        if k.len() >= CAPACITY {
            k.clear();
        }
        k.insert(dir.to_path_buf());
    });
}

/// Forgets `dir` (it turned out to be gone).
pub(super) fn forget(dir: &Path) {
    KNOWN.with(|k| k.borrow_mut().remove(dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_until_forgotten_and_bounded() {
        let dir = Path::new("/data/files/app1/a");
        assert!(!known(dir));
        remember(dir);
        assert!(known(dir));
        forget(dir);
        assert!(!known(dir));
        for i in 0..=CAPACITY {
            remember(&PathBuf::from(format!("/d/{i}")));
        }
        KNOWN.with(|k| assert!(k.borrow().len() <= CAPACITY));
    }
}
