//! Registered (fixed) I/O buffers for body bytes that must pass through user space: chunked
//! bodies (the decoder has to see the framing), every body with `zero_copy = false`, and every
//! body with `checksum = "sha256"` (the digest has to see the bytes), and `Content-Length`
//! bodies over TLS (records decrypted in place). The socket is read with `IORING_OP_READ` into
//! a buffer registered with the thread's ring, and the body bytes are written to the file with
//! `IORING_OP_WRITE_FIXED` from that same buffer (`IORING_OP_WRITEV` for several ranges): no
//! allocation per read, no copy into a second buffer, and the kernel does not map and pin the
//! pages for each write as it does for a plain `WRITE`.
//!
//! Each io_uring thread owns one pool of [`POOL_BUFS`] × [`BUF_BYTES`] (16 × 64 KiB = 1 MiB),
//! registered with its ring once, on first use (one runtime per thread for the thread's life,
//! as `server::start` runs them). A body holds a buffer only while bytes are in transit: the
//! driver waits for the socket to be readable *before* it takes one and gives it back as soon
//! as the socket has nothing more for now, so slow or idle clients pin no buffer and 16 serve
//! many connections. When every buffer is in use, a body waits for one (bounded by
//! `body_idle_timeout_ms`) rather than allocating. If the kernel refuses the registration (a
//! non-root user over `RLIMIT_MEMLOCK`), the thread logs it once and uses plain reads into the
//! connection's buffer instead.

use std::cell::RefCell;
use std::io;
use std::ops::Range;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{opcode, types};
use tokio_uring::buf::fixed::{FixedBuf, FixedBufPool};
use tokio_uring::buf::{IoBuf, IoBufMut};

use super::ops;

/// Bytes per registered buffer: one socket read, at most.
pub const BUF_BYTES: usize = 64 * 1024;
/// Registered buffers per io_uring thread.
pub const POOL_BUFS: usize = 16;

/// A thread's pool, once its registration was tried.
enum Slot {
    Unset,
    Ready(FixedBufPool<Vec<u8>>),
    /// The kernel refused the registration; the thread uses plain reads.
    Unavailable,
}

thread_local! {
    static POOL: RefCell<Slot> = const { RefCell::new(Slot::Unset) };
}

/// This thread's pool, registered with its ring on the first call (which must run on a
/// tokio-uring runtime thread). `None` when the kernel refused the registration.
pub fn pool() -> Option<FixedBufPool<Vec<u8>>> {
    POOL.with(|slot| {
        let mut slot = slot.borrow_mut();
        match &*slot {
            Slot::Ready(pool) => return Some(pool.clone()),
            Slot::Unavailable => return None,
            Slot::Unset => {}
        }
        let pool = FixedBufPool::new((0..POOL_BUFS).map(|_| Vec::with_capacity(BUF_BYTES)));
        match pool.register() {
            Ok(()) => {
                *slot = Slot::Ready(pool.clone());
                Some(pool)
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    bytes = POOL_BUFS * BUF_BYTES,
                    "registering I/O buffers failed (RLIMIT_MEMLOCK?); this thread reads bodies \
                     without them"
                );
                *slot = Slot::Unavailable;
                None
            }
        }
    })
}

/// A registered buffer with body bytes in transit: `start..end` were read and not used yet.
pub struct BodyBuf {
    buf: FixedBuf,
    start: usize,
    end: usize,
}

impl BodyBuf {
    /// A free buffer of `pool` if there is one now.
    pub fn try_take(pool: &FixedBufPool<Vec<u8>>) -> Option<BodyBuf> {
        pool.try_next(BUF_BYTES).map(|buf| BodyBuf {
            buf,
            start: 0,
            end: 0,
        })
    }

    /// A free buffer of `pool`, waiting up to `wait` for one to come back. `None` when none did.
    pub async fn take(pool: &FixedBufPool<Vec<u8>>, wait: Duration) -> Option<BodyBuf> {
        let buf = match pool.try_next(BUF_BYTES) {
            Some(buf) => buf,
            None => {
                crate::metrics::fixed_buffer_wait();
                tokio::time::timeout(wait, pool.next(BUF_BYTES))
                    .await
                    .ok()?
            }
        };
        Some(BodyBuf {
            buf,
            start: 0,
            end: 0,
        })
    }

    /// Bytes read and not used yet.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Bytes read and not used yet, to change in place (TLS records decrypted where they lie).
    pub fn pending_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Where [`BodyBuf::pending`] starts in the buffer.
    pub fn pending_start(&self) -> usize {
        self.start
    }

    /// The bytes at `range` of the buffer (a range within the pending bytes).
    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        debug_assert!(range.start >= self.start && range.end <= self.end);
        &self.buf[range]
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Marks `n` pending bytes as used.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space after the pending bytes.
    pub fn room(&self) -> usize {
        self.buf.bytes_total() - self.end
    }

    /// Moves the pending bytes to the front, so the next read gets the room after them. What is
    /// pending between reads is a partial chunk-size or trailer line: a few bytes of framing,
    /// never body data (the decoder hands out every data byte it is given).
    pub fn compact(&mut self) {
        if self.start > 0 {
            let len = self.end - self.start;
            // `copy_within` needs the initialised view, which covers `..end`.
            self.buf.copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = len;
        }
    }

    /// Appends `bytes` after the pending ones (framing bytes carried over from the connection's
    /// own buffer). False when they do not fit.
    pub fn put(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.room() {
            return false;
        }
        // SAFETY: `end + len` is within the buffer's capacity (checked above), the source is a
        // distinct allocation, and `set_init` then covers exactly the bytes written.
        unsafe {
            let dst = self.buf.stable_mut_ptr().add(self.end);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
            self.end += bytes.len();
            self.buf.set_init(self.end);
        }
        true
    }

    /// Reads up to `max` bytes from `socket` after the pending ones (`IORING_OP_READ`);
    /// 0 means the peer closed. With `nowait` (`RWF_NOWAIT`) a socket with nothing to read
    /// answers `WouldBlock` at once instead of waiting.
    pub async fn read_from(
        mut self,
        socket: RawFd,
        max: usize,
        nowait: bool,
    ) -> (io::Result<usize>, BodyBuf) {
        let len = max.min(self.room());
        debug_assert!(len > 0, "read into a full buffer");
        // SAFETY: `end + len` is within the registered buffer; the buffer moves into the
        // operation, which keeps it (and so the memory) until the kernel completes.
        let ptr = unsafe { self.buf.stable_mut_ptr().add(self.end) };
        let flags = if nowait { libc::RWF_NOWAIT } else { 0 };
        // A plain `READ`, not `READ_FIXED`: from a socket the kernel copies into a registered
        // buffer through a bvec iterator (its generic `memcpy`), into a user pointer with its
        // string-copy routine, and the latter costs less (docs/performance.md, "TLS against
        // nginx"). Nothing is pinned either way
        // for a socket read; the registration still pays off for the `WRITE_FIXED` to the file.
        let sqe = opcode::Read::new(types::Fd(socket), ptr, len as u32)
            .rw_flags(flags)
            .build();
        let (res, mut this) = ops::submit_with(self, sqe).await;
        let res = res.map(|n| {
            let n = n as usize;
            this.end += n;
            // SAFETY: the kernel wrote `n` bytes right after the previously initialised ones.
            unsafe { this.buf.set_init(this.end) };
            n
        });
        (res, this)
    }

    /// Writes the bytes at each of `ranges` of the buffer, in order and end to end, to `file`
    /// from `offset` on, with one `IORING_OP_WRITEV` (one hand-off to io_uring's worker instead
    /// of one per range: the plaintexts of a buffer of TLS records lie between their headers
    /// and tags, a chunked body's data between its framing lines). A short write is finished
    /// range by range with [`BodyBuf::write_to`].
    pub async fn write_ranges_to(
        self,
        file: RawFd,
        ranges: Vec<Range<usize>>,
        offset: u64,
    ) -> (io::Result<()>, BodyBuf) {
        let init = self.buf.bytes_init();
        let base = self.buf.stable_ptr();
        let iov: Vec<libc::iovec> = ranges
            .iter()
            .map(|r| {
                assert!(
                    r.start <= r.end && r.end <= init,
                    "write past the bytes read"
                );
                libc::iovec {
                    // SAFETY: within the initialised part of the buffer, which the operation
                    // owns (with the iovecs) until it completes.
                    iov_base: unsafe { base.add(r.start) } as *mut libc::c_void,
                    iov_len: r.len(),
                }
            })
            .collect();
        let sqe = opcode::Writev::new(types::Fd(file), iov.as_ptr(), iov.len() as u32)
            .offset(offset)
            .build();
        let (res, (mut this, _iov)) = ops::submit_with((self, iov), sqe).await;
        let mut done = match res {
            Ok(n) => n as usize,
            Err(e) => return (Err(e), this),
        };
        let mut at = offset;
        for r in ranges {
            let len = r.len();
            if done >= len {
                done -= len;
                at += len as u64;
                continue;
            }
            let (res, b) = this
                .write_to(file, r.start + done..r.end, at + done as u64)
                .await;
            this = b;
            if res.is_err() {
                return (res, this);
            }
            done = 0;
            at += len as u64;
        }
        (Ok(()), this)
    }

    /// Writes the bytes at `range` of the buffer to `file` at `offset`, all of them
    /// (`IORING_OP_WRITE_FIXED`, repeated on a short write). `range` is any part of what was
    /// read into the buffer, consumed or not: the decoder marks bytes used before the buffer
    /// goes to its writes.
    pub async fn write_to(
        mut self,
        file: RawFd,
        range: Range<usize>,
        mut offset: u64,
    ) -> (io::Result<()>, BodyBuf) {
        assert!(
            range.end <= self.buf.bytes_init(),
            "write past the bytes read"
        );
        let (mut at, end) = (range.start, range.end);
        while at < end {
            // SAFETY: `at..end` lies within the initialised part of the registered buffer,
            // which the operation owns until it completes.
            let ptr = unsafe { self.buf.stable_ptr().add(at) };
            let sqe = opcode::WriteFixed::new(
                types::Fd(file),
                ptr,
                (end - at) as u32,
                self.buf.buf_index(),
            )
            .offset(offset)
            .build();
            let (res, this) = ops::submit_with(self, sqe).await;
            self = this;
            match res {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::WriteZero, "the file took no bytes");
                    return (Err(e), self);
                }
                Ok(n) => {
                    at += n as usize;
                    offset += n as u64;
                }
                Err(e) => return (Err(e), self),
            }
        }
        (Ok(()), self)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn a_buffer_reads_keeps_framing_and_writes_from_itself() {
        tokio_uring::start(async {
            let pool = pool().expect("buffers register");
            let (mut tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
            let path = std::env::temp_dir().join(format!("upgate-fixed-{}", std::process::id()));
            let file = std::fs::File::create(&path).unwrap();

            let mut buf = BodyBuf::take(&pool, Duration::ZERO).await.unwrap();
            assert!(buf.put(b"1f"));
            tx.write_all(b"\r\nhello world").unwrap();
            let (n, b) = buf.read_from(rx.as_raw_fd(), 1000, false).await;
            buf = b;
            assert_eq!(n.unwrap(), 13);
            assert_eq!(buf.pending(), b"1f\r\nhello world");
            // Use the framing, write the data from the buffer itself.
            buf.consume(4);
            let at = buf.pending_start();
            let (w, b) = buf.write_to(file.as_raw_fd(), at..at + 5, 0).await;
            buf = b;
            w.unwrap();
            buf.consume(5);
            assert_eq!(buf.pending(), b" world");
            buf.compact();
            assert_eq!((buf.pending_start(), buf.pending()), (0, &b" world"[..]));
            assert_eq!(buf.room(), BUF_BYTES - 6);
            // Nothing to read: a non-blocking read says so at once.
            let (n, b) = buf.read_from(rx.as_raw_fd(), 1000, true).await;
            assert_eq!(n.unwrap_err().kind(), io::ErrorKind::WouldBlock);
            drop(b);
            assert_eq!(std::fs::read(&path).unwrap(), b"hello");
            let _ = std::fs::remove_file(&path);
        });
    }

    #[test]
    fn an_empty_pool_makes_bodies_wait_instead_of_allocating() {
        tokio_uring::start(async {
            let pool = pool().expect("buffers register");
            let mut taken = Vec::new();
            for _ in 0..POOL_BUFS {
                taken.push(BodyBuf::take(&pool, Duration::ZERO).await.unwrap());
            }
            let waits = crate::metrics::METRICS.fixed_buffer_waits.get();
            let none = BodyBuf::take(&pool, Duration::from_millis(30)).await;
            assert!(none.is_none(), "no buffer is made up");
            assert!(crate::metrics::METRICS.fixed_buffer_waits.get() > waits);
            // One comes back while another body waits: the waiter gets it.
            let back = taken.pop().unwrap();
            let waiter = BodyBuf::take(&pool, Duration::from_secs(5));
            let release = async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(back);
            };
            let (got, ()) = tokio::join!(waiter, release);
            assert!(got.is_some());
        });
    }
}
