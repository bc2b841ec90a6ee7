//! Writes of body bytes that run while the next registered buffer is read.
//!
//! A buffered write to a regular file is punted by io_uring to its worker threads (ext4 has no
//! non-blocking buffered write), so a body that reads a buffer, waits for its write, and only
//! then reads the next one pays a thread hand-off per buffer and never overlaps the two copies
//! (socket → buffer, buffer → page cache). Here a buffer's writes are submitted and the driver
//! goes on reading into another buffer; at most [`DEPTH`] buffers are being written at once,
//! and they are awaited oldest first. Every write is positional (its file offset was fixed
//! when it was submitted), so the order in which they complete does not matter.
//!
//! Two rules keep this safe with a pool shared by every connection of the thread:
//! - a body waits for a *free* buffer only after its own writes are done
//!   ([`WriteBehind::finish`]), so bodies never hold completed writes while waiting for each
//!   other's buffers;
//! - on every exit, error or not, the caller finishes the writes before the file is closed or
//!   removed, so no write outlives its upload.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::ops::Range;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::Poll;

use crate::storage::fixed::BodyBuf;

/// Buffers being written at once per body (each one of the thread's registered buffers).
pub const DEPTH: usize = 2;

type Outcome = (io::Result<()>, BodyBuf);

enum Write {
    Running(Pin<Box<dyn Future<Output = Outcome>>>),
    Done(io::Result<()>),
}

/// One body's writes in flight.
#[derive(Default)]
pub struct WriteBehind {
    queue: VecDeque<Write>,
}

impl WriteBehind {
    /// Submits the writes of `pieces` (a range of `buf` and its file offset each) to `file`,
    /// after waiting for the oldest write when [`DEPTH`] are running. An error of an earlier
    /// write is returned here.
    pub async fn submit(
        &mut self,
        buf: BodyBuf,
        file: RawFd,
        pieces: Vec<(Range<usize>, u64)>,
    ) -> io::Result<()> {
        while self.queue.len() >= DEPTH {
            self.oldest().await?;
        }
        let mut fut: Pin<Box<dyn Future<Output = Outcome>>> =
            Box::pin(write_pieces(buf, file, pieces));
        // Polled once now, so its first operation is queued on the ring before the next read.
        let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
        self.queue.push_back(match first {
            Poll::Ready((res, _buf)) => Write::Done(res),
            Poll::Pending => Write::Running(fut),
        });
        Ok(())
    }

    /// Runs `fut` to its end while collecting the writes that complete meanwhile, so their
    /// buffers go back to the pool at once (a write's buffer returns only when its future is
    /// polled after the kernel completed it).
    pub async fn meanwhile<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            for write in self.queue.iter_mut() {
                if let Write::Running(running) = write {
                    if let Poll::Ready((res, _buf)) = running.as_mut().poll(cx) {
                        *write = Write::Done(res);
                    }
                }
            }
            fut.as_mut().poll(cx)
        })
        .await
    }

    /// Waits for every write; the first error, if any.
    pub async fn finish(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        while !self.queue.is_empty() {
            let res = self.oldest().await;
            if first.is_ok() {
                first = res;
            }
        }
        first
    }

    /// Waits for the oldest write; its buffer goes back to the pool.
    async fn oldest(&mut self) -> io::Result<()> {
        match self.queue.pop_front() {
            None => Ok(()),
            Some(Write::Done(res)) => res,
            Some(Write::Running(fut)) => fut.await.0,
        }
    }
}

async fn write_pieces(mut buf: BodyBuf, file: RawFd, pieces: Vec<(Range<usize>, u64)>) -> Outcome {
    // Pieces that follow each other in the file go in one vectored write.
    let end_to_end = pieces
        .windows(2)
        .all(|w| w[0].1 + w[0].0.len() as u64 == w[1].1);
    if pieces.len() > 1 && end_to_end {
        let offset = pieces[0].1;
        let ranges = pieces.into_iter().map(|(r, _)| r).collect();
        return buf.write_ranges_to(file, ranges, offset).await;
    }
    for (range, offset) in pieces {
        let (res, b) = buf.write_to(file, range, offset).await;
        buf = b;
        if res.is_err() {
            return (res, buf);
        }
    }
    (Ok(()), buf)
}
