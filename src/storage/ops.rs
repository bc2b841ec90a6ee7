//! io_uring operations tokio-uring 0.5 does not wrap, submitted on its own ring as oneshots
//! (`UnsubmittedOneshot`): the task awaits the completion, the thread never blocks.

use std::ffi::CString;
use std::io;
use std::marker::PhantomData;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use io_uring::{cqueue, opcode, squeue, types};
use tokio_uring::{OneshotOutputTransform, UnsubmittedOneshot};

/// Turns a completion into `io::Result<u32>`, keeping `D` (buffers, paths) alive until then.
pub struct CqeResult<D>(PhantomData<D>);

impl<D> OneshotOutputTransform for CqeResult<D> {
    type Output = io::Result<u32>;
    type StoredData = D;

    fn transform_oneshot_output(self, _data: D, cqe: cqueue::Entry) -> io::Result<u32> {
        let res = cqe.result();
        if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(res as u32)
        }
    }
}

/// Submits `sqe` on the current runtime's ring; `data` lives until the kernel is done.
pub async fn submit<D: Unpin + 'static>(data: D, sqe: squeue::Entry) -> io::Result<u32> {
    UnsubmittedOneshot::new(data, CqeResult(PhantomData), sqe)
        .submit()
        .await
}

/// Like [`CqeResult`], but hands `D` back: for buffers the caller reuses (registered buffers).
pub struct CqeWithData<D>(PhantomData<D>);

impl<D> OneshotOutputTransform for CqeWithData<D> {
    type Output = (io::Result<u32>, D);
    type StoredData = D;

    fn transform_oneshot_output(self, data: D, cqe: cqueue::Entry) -> (io::Result<u32>, D) {
        let res = cqe.result();
        let res = if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(res as u32)
        };
        (res, data)
    }
}

/// Submits `sqe` on the current runtime's ring and gives `data` back with the result. If the
/// future is dropped first, `data` stays with the operation until the kernel completes it.
pub async fn submit_with<D: Unpin + 'static>(data: D, sqe: squeue::Entry) -> (io::Result<u32>, D) {
    UnsubmittedOneshot::new(data, CqeWithData(PhantomData), sqe)
        .submit()
        .await
}

/// Writes all of `data` to `fd` at `offset` (`IORING_OP_WRITE`, repeated on a short write).
pub async fn write_all_at(
    fd: std::os::fd::RawFd,
    data: bytes::Bytes,
    mut offset: u64,
) -> io::Result<()> {
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        let sqe = opcode::Write::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
            .offset(offset)
            .build();
        // The bytes move into the operation: `Bytes` keeps them in place until it completes.
        let n = submit(data.clone(), sqe).await? as usize;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the file took no bytes",
            ));
        }
        at += n;
        offset += n as u64;
    }
    Ok(())
}

/// Waits until `fd` (a socket) has bytes to read or the peer closed (`IORING_OP_POLL_ADD`).
pub async fn readable(fd: std::os::fd::RawFd) -> io::Result<()> {
    let poll = opcode::PollAdd::new(types::Fd(fd), (libc::POLLIN | libc::POLLRDHUP) as u32).build();
    submit((), poll).await.map(|_| ())
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `renameat2(from, to, RENAME_NOREPLACE)` unless `replace`: with two uploads of one path, the
/// loser of the race gets `AlreadyExists` instead of silently replacing the winner.
pub async fn rename(from: &Path, to: &Path, replace: bool) -> io::Result<()> {
    let (from, to) = (cpath(from)?, cpath(to)?);
    let flags = if replace { 0 } else { libc::RENAME_NOREPLACE };
    let sqe = opcode::RenameAt::new(
        types::Fd(libc::AT_FDCWD),
        from.as_ptr(),
        types::Fd(libc::AT_FDCWD),
        to.as_ptr(),
    )
    .flags(flags)
    .build();
    submit((from, to), sqe).await.map(|_| ())
}

/// `unlinkat(path)`.
pub async fn unlink(path: &Path) -> io::Result<()> {
    let p = cpath(path)?;
    let sqe = opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), p.as_ptr()).build();
    submit(p, sqe).await.map(|_| ())
}

/// `mkdirat(path)`; an existing directory is not an error. True when it was created.
pub async fn mkdir(path: &Path) -> io::Result<bool> {
    let p = cpath(path)?;
    let sqe = opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), p.as_ptr())
        .mode(0o755)
        .build();
    match submit(p, sqe).await {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        other => other.map(|_| true),
    }
}

/// Creates `dir` and its missing parents below `root` (which must exist). Returns the
/// directories it created, outermost first.
pub async fn mkdir_below(root: &Path, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let mut cur = root.to_path_buf();
    let mut created = Vec::new();
    for part in rel.components() {
        cur.push(part);
        if mkdir(&cur).await? {
            created.push(cur.clone());
        }
    }
    Ok(created)
}

/// `fsync` of a directory, so a rename into it survives power loss.
pub async fn sync_dir(dir: &Path) -> io::Result<()> {
    let f = tokio_uring::fs::File::open(dir).await?;
    let r = f.sync_all().await;
    let _ = f.close().await;
    r
}
