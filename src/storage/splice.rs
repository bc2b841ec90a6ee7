//! Zero-copy body transfer: socket → pipe → file (the socket side with `splice(2)` when bytes
//! are queued, the file side with `IORING_OP_SPLICE` on the thread's own tokio-uring ring), so
//! body bytes never enter user space. Each transfer borrows
//! a pipe from a per-thread pool (sized with `F_SETPIPE_SZ`) and returns it empty; a pipe whose
//! transfer failed midway may still hold bytes and is closed instead.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, types};

use super::ops;

/// Pipe capacity asked for (the default `pipe-max-size` lets root and users have 1 MiB).
pub const PIPE_BYTES: usize = 1 << 20;
/// Most bytes [`Pipe::preload`] takes: below the smallest pipe (64 KiB, when `F_SETPIPE_SZ` is
/// refused), so the socket's bytes still have room beside them.
pub const PRELOAD_MAX: usize = 32 * 1024;
/// Pipes kept per thread between transfers.
const POOL_MAX: usize = 64;

thread_local! {
    static POOL: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// Bytes queued for reading on the socket `fd` (`FIONREAD`; an inline `ioctl`).
fn queued_bytes(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer given.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.max(0) as usize)
}

/// A pipe used as the kernel-side buffer of one transfer.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: plain fcntl on a descriptor we own.
        let got = unsafe {
            libc::fcntl(
                write.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                PIPE_BYTES as libc::c_int,
            )
        };
        let capacity = if got > 0 { got as usize } else { 64 * 1024 };
        Ok(Pipe {
            read,
            write,
            capacity,
        })
    }

    /// A pipe from this thread's pool, or a new one.
    pub fn take() -> io::Result<Pipe> {
        match POOL.with(|p| p.borrow_mut().pop()) {
            Some(pipe) => Ok(pipe),
            None => Pipe::new(),
        }
    }

    /// Returns an empty pipe to the pool.
    pub fn put_back(self) {
        POOL.with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOL_MAX {
                pool.push(self);
            }
        });
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Moves up to `len` bytes from `fd_in` (a socket) into the pipe; 0 means end of input.
    ///
    /// Bytes the socket already holds (`FIONREAD`) are spliced at once, on this thread, with a
    /// plain `splice(2)`: splicing queued bytes into this transfer's own pipe, which has room,
    /// cannot block. An io_uring `SPLICE` would not run inline: the kernel always hands it to
    /// an io-wq worker thread (`REQ_F_FORCE_ASYNC`), a context switch each way, which made a
    /// spliced body cost more CPU per byte than nginx's `read` + `write`. It keeps splicing
    /// while bytes keep arriving, up to `len`, so the file side (still an io_uring `SPLICE`,
    /// since a page-cache write may block) moves large chunks. Only when nothing is queued does
    /// it wait, with a poll on the ring; a socket that is readable with nothing queued is at
    /// its end or has failed, which the splice then reports without blocking.
    pub async fn fill_from(&self, fd_in: RawFd, len: usize) -> io::Result<usize> {
        let len = len.min(self.capacity);
        let mut moved = 0;
        let mut refused = 0u32;
        loop {
            let queued = queued_bytes(fd_in)?;
            if queued > 0 {
                let n = match self.splice_in(fd_in, (len - moved).min(queued)) {
                    Ok(n) => n,
                    // Queued bytes the socket will not splice now (the pipe has no free slot
                    // for the next fragment, or the bytes are not ready): what moved goes to
                    // the file first; with nothing moved, wait a moment and try again.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if moved > 0 {
                            return Ok(moved);
                        }
                        refused += 1;
                        if refused > 1000 {
                            return Err(e);
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                moved += n;
                if moved >= len || n == 0 {
                    return Ok(moved);
                }
                continue;
            }
            if moved > 0 {
                return Ok(moved);
            }
            let poll =
                opcode::PollAdd::new(types::Fd(fd_in), (libc::POLLIN | libc::POLLRDHUP) as u32)
                    .build();
            ops::submit((), poll).await?;
            if queued_bytes(fd_in)? == 0 {
                // Readable with nothing queued: the end of the input, or an error.
                return self.splice_in(fd_in, len);
            }
        }
    }

    /// One `splice(2)` from the socket into the pipe (see [`Pipe::fill_from`] for why it is
    /// only called when it cannot block).
    fn splice_in(&self, fd_in: RawFd, len: usize) -> io::Result<usize> {
        // SAFETY: splice between two descriptors this call borrows; no memory is passed.
        let n = unsafe {
            libc::splice(
                fd_in,
                std::ptr::null_mut(),
                self.write.as_raw_fd(),
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Writes `bytes` into the empty pipe (at most [`PRELOAD_MAX`], which every pipe has room
    /// for, so the write cannot block): body bytes read with the request head, moved to the
    /// file by the same splice as the socket's bytes that follow them.
    pub fn preload(&self, bytes: &[u8]) -> io::Result<()> {
        debug_assert!(bytes.len() <= PRELOAD_MAX.min(self.capacity));
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            // SAFETY: writes from a live slice into the pipe's own write end.
            let n =
                unsafe { libc::write(self.write.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            at += n as usize;
        }
        Ok(())
    }

    fn splice_to_sqe(&self, fd_out: RawFd, offset: u64, len: usize) -> io_uring::squeue::Entry {
        opcode::Splice::new(
            types::Fd(self.read.as_raw_fd()),
            -1,
            types::Fd(fd_out),
            offset as i64,
            len as u32,
        )
        .flags(libc::SPLICE_F_MOVE)
        .build()
    }

    /// Moves exactly `len` bytes from the pipe into `fd_out` (a file) at `offset`.
    pub async fn drain_to(&self, fd_out: RawFd, mut offset: u64, mut len: usize) -> io::Result<()> {
        while len > 0 {
            let n = ops::submit((), self.splice_to_sqe(fd_out, offset, len)).await? as usize;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "splice into the file moved nothing",
                ));
            }
            offset += n as u64;
            len -= n;
        }
        Ok(())
    }

    /// Moves exactly `len` bytes from the file `fd_in` at `offset` into the pipe, then on to
    /// the socket `fd_out` (downloads). The socket side waits for writability with a poll
    /// bounded by `idle`, then splices with `SPLICE_F_NONBLOCK`; a peer that stops reading for
    /// longer than `idle` ends the transfer with `TimedOut`.
    pub async fn send_file(
        &self,
        fd_in: RawFd,
        mut offset: u64,
        mut len: u64,
        fd_out: RawFd,
        idle: std::time::Duration,
    ) -> io::Result<()> {
        while len > 0 {
            let want = (len as usize).min(self.capacity) as u32;
            let sqe = opcode::Splice::new(
                types::Fd(fd_in),
                offset as i64,
                types::Fd(self.write.as_raw_fd()),
                -1,
                want,
            )
            .flags(libc::SPLICE_F_MOVE)
            .build();
            let n = ops::submit((), sqe).await? as usize;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while sent",
                ));
            }
            let mut left = n;
            while left > 0 {
                let poll = opcode::PollAdd::new(types::Fd(fd_out), libc::POLLOUT as u32).build();
                match tokio::time::timeout(idle, ops::submit((), poll)).await {
                    Err(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "peer stopped reading",
                        ))
                    }
                    Ok(r) => r?,
                };
                let sqe = opcode::Splice::new(
                    types::Fd(self.read.as_raw_fd()),
                    -1,
                    types::Fd(fd_out),
                    -1,
                    left as u32,
                )
                .flags(libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK)
                .build();
                match ops::submit((), sqe).await {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "peer closed while sent",
                        ))
                    }
                    Ok(m) => left -= m as usize,
                }
            }
            offset += n as u64;
            len -= n as u64;
        }
        Ok(())
    }
}
