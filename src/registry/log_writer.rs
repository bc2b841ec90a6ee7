//! The outbox log's file: opened (locked, replayed, cut back to its last whole record),
//! appended to a batch at a time, and compacted by a snapshot renamed over it. Only the group
//! commit thread of [`super::LogOutbox`] holds a [`LogFile`], so these are plain blocking calls.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::log_format::{self, Replay};

/// Whether a commit reaches the disk or only the kernel (`fsync` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `write` only: a committed record survives the process (`kill -9`), not the machine.
    Written,
    /// `write` then `fdatasync`: a committed record survives power loss.
    Synced,
}

/// The log is compacted once it is this long and four times what its live entries take.
pub(super) const COMPACT_MIN: u64 = 32 << 20;

/// The open log file.
pub(super) struct LogFile {
    file: File,
    path: PathBuf,
    /// Bytes of whole records: where the next batch goes.
    len: u64,
    durability: Durability,
}

impl LogFile {
    /// Opens (creating) the log at `path`, takes its lock (waiting up to `lock_wait` for a
    /// process that still holds it), reads every whole record, and cuts off a damaged or
    /// incomplete tail.
    pub(super) fn open(
        path: &Path,
        durability: Durability,
        lock_wait: Duration,
    ) -> io::Result<(LogFile, Replay)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        lock(&file, path, lock_wait)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let replay = log_format::decode(&bytes);
        if replay.good_len < bytes.len() as u64 {
            file.set_len(replay.good_len)?;
            file.sync_all()?;
        }
        let log = LogFile {
            file,
            path: path.to_path_buf(),
            len: replay.good_len,
            durability,
        };
        Ok((log, replay))
    }

    /// Bytes of whole records.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Appends one batch of framed records and, when synced, waits for the disk. On failure
    /// nothing of the batch counts: the file is cut back to where the batch began, so the next
    /// batch does not land after a torn one.
    pub(super) fn append(&mut self, batch: &[u8]) -> io::Result<()> {
        let done = self
            .file
            .write_all_at(batch, self.len)
            .and_then(|()| match self.durability {
                Durability::Synced => self.file.sync_data(),
                Durability::Written => Ok(()),
            });
        match done {
            Ok(()) => {
                self.len += batch.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// Replaces the log by `snapshot` (framed records of every live entry): written to a new
    /// file, synced, renamed over the log, the directory synced. A failure leaves the old log
    /// in place, whole.
    pub(super) fn compact(&mut self, snapshot: &[u8]) -> io::Result<()> {
        let tmp = self.path.with_extension("log.compacting");
        let written = (|| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            file.write_all_at(snapshot, 0)?;
            file.sync_all()?;
            // Locked before it becomes the log, so no other process can take it between.
            lock(&file, &tmp, Duration::ZERO)?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(file)
        })();
        match written {
            Ok(file) => {
                self.file = file;
                self.len = snapshot.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Forces everything written to the disk (at shutdown, whatever the durability).
    pub(super) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// An exclusive `flock` on the log: one process at a time appends to it.
fn lock(file: &File, path: &Path, wait: Duration) -> io::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        // SAFETY: flock on a descriptor this function borrows; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(e);
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another process", path.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
