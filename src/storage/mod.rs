//! Stored files: layout under `data_dir`, the body sink, and the io_uring file operations.
//!
//! ```text
//! data_dir/registry/      sled (apps, outbox)
//! data_dir/files/{appid}/{path}   committed uploads, served for download
//! data_dir/tmp/{upload_id}.part   bodies being received; emptied at startup
//! ```

pub mod fixed;
pub mod mime;
pub mod ops;
pub mod path;
pub mod sink;
pub mod splice;

use std::io;
use std::path::{Path, PathBuf};

pub use path::Target;
pub use sink::{BodySink, CommitError};

/// The file store's directories.
#[derive(Debug, Clone)]
pub struct Store {
    files: PathBuf,
    tmp: PathBuf,
}

impl Store {
    /// Creates the directories and removes temporary files left by a crash. Runs once at
    /// startup, before any runtime thread, so plain blocking calls are fine here.
    pub fn open(data_dir: &Path) -> io::Result<Store> {
        let files = data_dir.join("files");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&files)?;
        std::fs::create_dir_all(&tmp)?;
        for entry in std::fs::read_dir(&tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(Store { files, tmp })
    }

    /// Root of committed files.
    pub fn files_root(&self) -> &Path {
        &self.files
    }

    /// Where a target is stored.
    pub fn final_path(&self, t: &Target) -> PathBuf {
        self.files.join(&t.appid).join(&t.rel)
    }

    /// The temporary file of an upload.
    pub fn tmp_path(&self, upload_id: &str) -> PathBuf {
        self.tmp.join(format!("{upload_id}.part"))
    }

    /// Temporary files present now (tests and the crash checks use it).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }
}
