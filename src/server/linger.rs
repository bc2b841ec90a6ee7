//! The lingering close (RFC 9112 §9.6): shut down the write side so the peer reads the whole
//! response, then discard what it still sends for a bounded time and size, then close.
//! Closing a socket that holds unread input sends a reset, which can destroy the response
//! before the peer reads it.

use std::net::Shutdown;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::{timeout_at, Instant};

use super::transport::Transport;

/// A lingering close after an unread body discards at most this much before giving up.
pub(super) const LINGER_MAX_BYTES: u64 = 64 << 20;
/// ... and closes once the peer has been silent this long.
pub(super) const LINGER_GAP: Duration = Duration::from_millis(1000);
/// A close after a request read in full (`Connection: close`, HTTP/1.0, draining) lingers
/// briefly too, so bytes the peer sent after it (pipelined requests) do not turn the close into
/// a reset that destroys the response: at most this long (and `linger_ms`) …
pub(super) const CLOSE_LINGER_MAX: Duration = Duration::from_millis(2000);
/// … closing once the peer has been silent this long …
pub(super) const CLOSE_GAP: Duration = Duration::from_millis(300);
/// … or has sent this much.
pub(super) const CLOSE_MAX_BYTES: u64 = 1 << 20;
/// A lingering close waits for the peer's first bytes with a poll and only then reads, into a
/// small buffer (thousands of connections may linger at once, after a timeout storm); a peer
/// that keeps sending gets a bigger one.
const LINGER_READ_SMALL: usize = 4096;
const LINGER_READ_BIG: usize = 64 * 1024;

/// How long and how much a lingering close may discard.
#[derive(Debug, Clone, Copy)]
pub(super) struct LingerBounds {
    /// Longest time from the shutdown of the write side to the close.
    pub total: Duration,
    /// Close once the peer has sent nothing for this long.
    pub gap: Duration,
    /// Close once this many bytes were discarded.
    pub max_bytes: u64,
}

/// Shuts down the write side of `stream` (the peer reads the response, then end of stream),
/// then reads and discards what the peer still sends until it closes, errs, pauses for
/// `gap`, or `total` or `max_bytes` run out; returns the bytes discarded. Closing a socket that
/// holds unread input sends a reset, which can destroy the response before the peer reads it;
/// after this the caller closes (a read abandoned by the deadline is completed by the caller's
/// `shutdown(Both)`).
pub(super) async fn linger(stream: &Transport, bounds: LingerBounds) -> u64 {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + bounds.total;
    let mut discarded = 0u64;
    // No buffer until the peer sends something: most lingering peers just close.
    let mut buf: Option<BytesMut> = None;
    while discarded < bounds.max_bytes {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let until = deadline.min(now + bounds.gap);
        if buf.is_none() && !matches!(timeout_at(until, stream.readable()).await, Ok(Ok(()))) {
            break;
        }
        let b = buf
            .take()
            .unwrap_or_else(|| BytesMut::with_capacity(LINGER_READ_SMALL));
        match timeout_at(until, stream.read(b)).await {
            Ok((Ok(n), mut b)) if n > 0 => {
                discarded += n as u64;
                b.clear();
                if discarded >= LINGER_READ_BIG as u64 && b.capacity() < LINGER_READ_BIG {
                    b = BytesMut::with_capacity(LINGER_READ_BIG);
                }
                buf = Some(b);
            }
            _ => break,
        }
    }
    discarded
}
