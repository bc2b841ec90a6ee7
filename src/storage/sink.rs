//! Where a body goes: a temporary file in `data_dir/tmp`, written in order, then synced,
//! renamed into place and its directory synced. Until the rename nothing is visible under
//! `data_dir/files`; a failed or abandoned upload removes its temporary file.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio_uring::fs::{File, OpenOptions};

use super::ops;

/// Why a finished body could not be stored.
#[derive(Debug)]
pub enum CommitError {
    /// The target exists and `overwrite = false` (or another upload of the path won the race).
    Exists,
    Io(io::Error),
}

/// An upload body being written.
pub struct BodySink {
    file: Option<File>,
    tmp: PathBuf,
    written: u64,
}

impl BodySink {
    /// Creates the temporary file (never an existing one).
    pub async fn create(tmp: PathBuf) -> io::Result<BodySink> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await?;
        Ok(BodySink {
            file: Some(file),
            tmp,
            written: 0,
        })
    }

    /// Reserves the declared body size before any byte arrives (`IORING_OP_FALLOCATE`, mode
    /// 0), so a disk without room fails here — before `100 Continue` — rather than midway, and
    /// the file's blocks are allocated once instead of extent by extent. Mode 0 sets the file's
    /// size to `len`: a body that ends short fails as it always did (the decoder's
    /// `IncompleteBody`) and its file is removed, so a committed file is exactly its body. A
    /// filesystem without `fallocate` is not an error.
    pub async fn preallocate(&self, len: u64) -> io::Result<()> {
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("sink closed"))?;
        if len == 0 {
            return Ok(());
        }
        match file.fallocate(0, len, 0).await {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
            other => other,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The temporary file's descriptor, for splices into it.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.file
            .as_ref()
            .map_or(-1, std::os::fd::AsRawFd::as_raw_fd)
    }

    /// Records `n` bytes written into the file by a splice.
    pub fn advance(&mut self, n: u64) {
        self.written += n;
    }

    /// Appends `data` at the current end.
    pub async fn write(&mut self, data: Bytes) -> io::Result<()> {
        let len = data.len() as u64;
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("sink closed"))?;
        let (res, _) = file.write_all_at(data, self.written).await;
        res?;
        self.written += len;
        Ok(())
    }

    /// Makes the file durable (when `fsync`) and visible at `dest`, creating directories below
    /// `root` as needed.
    pub async fn commit(
        mut self,
        root: &Path,
        dest: &Path,
        fsync: bool,
        replace: bool,
    ) -> Result<(), CommitError> {
        let file = self
            .file
            .take()
            .ok_or_else(|| CommitError::Io(io::Error::other("sink closed")))?;
        let synced = if fsync { file.sync_all().await } else { Ok(()) };
        let closed = file.close().await;
        if let Err(e) = synced.and(closed) {
            let _ = ops::unlink(&self.tmp).await;
            return Err(CommitError::Io(e));
        }
        let parent = dest.parent().unwrap_or(root);
        let placed = async {
            let created = ops::mkdir_below(root, parent).await?;
            ops::rename(&self.tmp, dest, replace).await?;
            Ok::<_, io::Error>(created)
        }
        .await;
        let created = match placed {
            Ok(created) => created,
            Err(e) => {
                let _ = ops::unlink(&self.tmp).await;
                return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                    CommitError::Exists
                } else {
                    CommitError::Io(e)
                });
            }
        };
        if fsync {
            // The file's entry lives in `parent`; each new directory's entry lives in the one
            // above it, so those are synced too, or a crash could lose the whole new branch.
            for dir in created.iter().filter_map(|d| d.parent()) {
                ops::sync_dir(dir).await.map_err(CommitError::Io)?;
            }
            ops::sync_dir(parent).await.map_err(CommitError::Io)?;
        }
        Ok(())
    }

    /// Drops the partial body.
    pub async fn abort(mut self) {
        if let Some(file) = self.file.take() {
            let _ = file.close().await;
        }
        let _ = ops::unlink(&self.tmp).await;
    }
}

/// True for "no space left" (and quota) errors, which answer 507.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}
