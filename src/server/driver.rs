//! The thin io_uring driver of one connection: reads into the protocol's buffer, feeds
//! `H1Conn`, hands heads to the handler, writes what the protocol encodes, and owns every
//! timer (head, keep-alive, body idle, linger). Protocol decisions stay in `crate::http`.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use io_uring::{opcode::PollAdd, types};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use super::access::{self, AccessLog};
use super::exchange::Exchange;
use super::handler::Handler;
use super::ThreadCtx;
use crate::error::{respond, RouteError};
use crate::http::{CloseMode, Event, H1Conn, ProtocolError, RequestHead, Response};
use crate::metrics::{self, TimeoutKind};

/// Free space offered to the kernel for a read while waiting for a head.
const HEAD_READ: usize = 4096;
/// Free space offered per read inside a body.
const BODY_READ: usize = 64 * 1024;
/// A lingering close after an unread body discards at most this much before giving up.
const LINGER_MAX_BYTES: u64 = 64 << 20;
/// ... and closes once the peer has been silent this long.
const LINGER_GAP: Duration = Duration::from_millis(1000);
/// A close after a request read in full (`Connection: close`, HTTP/1.0, draining) lingers
/// briefly too, so bytes the peer sent after it (pipelined requests) do not turn the close into
/// a reset that destroys the response: at most this long (and `linger_ms`) …
const CLOSE_LINGER_MAX: Duration = Duration::from_millis(2000);
/// … closing once the peer has been silent this long …
const CLOSE_GAP: Duration = Duration::from_millis(300);
/// … or has sent this much.
const CLOSE_MAX_BYTES: u64 = 1 << 20;
/// A lingering close waits for the peer's first bytes with a poll and only then reads, into a
/// small buffer (thousands of connections may linger at once, after a timeout storm); a peer
/// that keeps sending gets a bigger one.
const LINGER_READ_SMALL: usize = 4096;
const LINGER_READ_BIG: usize = 64 * 1024;

/// Why no head came.
enum NoHead {
    /// The peer closed, went idle past the keep-alive timeout, or the node is shutting down.
    Closed,
    Protocol(ProtocolError),
    Timeout,
}

/// One accepted connection: the socket, the protocol state and the thread's context.
pub struct Connection {
    stream: TcpStream,
    pub(super) conn: H1Conn,
    /// The body of the response being prepared, when it is a file (downloads).
    pub(super) file_body: Option<FileBody>,
    pub(super) ctx: Rc<ThreadCtx>,
    pub(super) peer: SocketAddr,
    /// What the handler reports for the access log of the current request.
    pub(super) access: AccessLog,
    /// Body bytes read and response bytes written for the current request.
    pub(super) bytes_in: u64,
    bytes_out: u64,
}

/// Serves one connection until it closes.
pub async fn serve<H: Handler>(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Rc<ThreadCtx>,
    handler: Rc<H>,
) {
    let conn = H1Conn::new(ctx.config.limits());
    let mut c = Connection {
        stream,
        conn,
        file_body: None,
        ctx,
        peer,
        access: AccessLog::default(),
        bytes_in: 0,
        bytes_out: 0,
    };
    let mut first = true;
    loop {
        c.access = AccessLog::default();
        (c.bytes_in, c.bytes_out) = (0, 0);
        let head = match c.read_head(first).await {
            Ok(head) => head,
            Err(NoHead::Closed) => break,
            Err(NoHead::Protocol(e)) => {
                let resp = respond(&mut c.access, &e);
                c.finish(resp).await;
                break;
            }
            Err(NoHead::Timeout) => {
                metrics::timeout(TimeoutKind::Header);
                let resp = respond(&mut c.access, &RouteError::HeaderTimeout);
                c.finish(resp).await;
                break;
            }
        };
        first = false;
        let started = Instant::now();
        let (resp, head) = {
            let mut ex = Exchange::new(&mut c, head);
            // Boxed: the handler's future (the upload flow's is the largest) then lives only
            // while a request runs, instead of sizing every connection's task, idle ones too
            // (10 000 idle connections: 4.8 KiB each unboxed, 2.1 KiB boxed).
            let resp = Box::pin(handler.handle(&mut ex)).await;
            (resp, ex.into_head())
        };
        // Draining (SIGTERM/SIGINT, perhaps while the handler ran): this is the last response.
        if c.ctx.shutting_down() {
            c.conn.disable_keep_alive();
        }
        let status = resp.status;
        let sent = c.send(resp).await;
        c.log_request(Some(&head), status, started, sent.is_err());
        match sent {
            Ok(CloseMode::KeepAlive) => continue,
            Ok(mode) => {
                c.close(mode).await;
                break;
            }
            Err(_) => break,
        }
    }
    // A read abandoned by a timeout keeps the descriptor alive until it completes; shutting the
    // socket down completes it, so the close really happens now.
    let _ = c.stream.shutdown(Shutdown::Both);
}

impl Connection {
    /// Counts the request in the metrics and writes its access-log line.
    fn log_request(&self, head: Option<&RequestHead>, status: u16, started: Instant, failed: bool) {
        metrics::request_done(self.access.route, status);
        let line = access::Line {
            peer: self.peer,
            method: head.map(|h| h.method_str()),
            path: head.map(|h| h.path_only()),
            status,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            took: started.elapsed(),
            write_failed: failed,
        };
        access::emit(&line, &self.access);
    }

    /// Waits for the next request head. The first head must arrive within `header_timeout_ms`
    /// of the accept; later ones within `keepalive_timeout_ms` of idleness, then
    /// `header_timeout_ms` from their first byte.
    async fn read_head(&mut self, first: bool) -> Result<RequestHead, NoHead> {
        let cfg = &self.ctx.config;
        let mut head_deadline = first.then(|| Instant::now() + cfg.header_timeout());
        loop {
            match self.conn.next_event() {
                Ok(Event::Head(head)) => return Ok(head),
                Ok(Event::NeedData) => {}
                Ok(Event::Closed) => return Err(NoHead::Closed),
                Ok(other) => {
                    debug_assert!(false, "unexpected {other:?} while waiting for a head");
                    return Err(NoHead::Closed);
                }
                Err(e) => return Err(NoHead::Protocol(e)),
            }
            let in_request = self.conn.in_request();
            if in_request && head_deadline.is_none() {
                head_deadline = Some(Instant::now() + self.ctx.config.header_timeout());
            }
            let deadline = head_deadline
                .unwrap_or_else(|| Instant::now() + self.ctx.config.keepalive_timeout());
            let mut shutdown = self.ctx.shutdown.clone();
            if !in_request && *shutdown.borrow() {
                return Err(NoHead::Closed);
            }
            // A connection that has sent nothing yet is not lent a read buffer: its first bytes
            // are awaited with a poll, so an idle connection costs no buffer.
            let poll_first = first && !in_request;
            let read = tokio::select! {
                r = timeout_at(deadline, self.read_when_ready(HEAD_READ, poll_first)) => r,
                _ = shutdown.changed(), if !in_request => return Err(NoHead::Closed),
            };
            match read {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(NoHead::Closed),
                Err(_) if head_deadline.is_some() => return Err(NoHead::Timeout),
                Err(_) => {
                    metrics::timeout(TimeoutKind::Keepalive);
                    return Err(NoHead::Closed);
                }
            }
        }
    }

    /// [`Connection::read_more`], after waiting for readability with a poll when `poll_first`
    /// (the buffer is lent to the kernel only once bytes are there).
    async fn read_when_ready(&mut self, spare: usize, poll_first: bool) -> io::Result<usize> {
        if poll_first {
            readable(self.socket_fd()).await?;
        }
        self.read_more(spare).await
    }

    /// Reads once from the socket into the protocol's buffer; 0 means the peer closed.
    pub(super) async fn read_more(&mut self, spare: usize) -> io::Result<usize> {
        let buf = self.conn.lend_buffer(spare);
        let len = buf.len();
        let (res, slice) = self.stream.read(buf.slice(len..)).await;
        self.conn.restore_buffer(slice.into_inner());
        let n = res?;
        metrics::received(n);
        if n == 0 {
            self.conn.receive_eof();
        }
        Ok(n)
    }

    /// The socket's descriptor, for splices submitted on this thread's ring.
    pub(super) fn socket_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.stream)
    }

    /// Reads body bytes, bounded by `body_idle_timeout_ms` per read.
    pub(super) async fn read_body_more(&mut self) -> Result<usize, BodyIoError> {
        let idle = self.ctx.config.body_idle_timeout();
        match timeout(idle, self.read_more(BODY_READ)).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(BodyIoError::Io(e)),
            Err(_) => {
                metrics::timeout(TimeoutKind::Body);
                Err(BodyIoError::IdleTimeout)
            }
        }
    }

    /// Writes bytes, bounded so a peer that stops reading cannot hold the task forever.
    pub(super) async fn write(&mut self, bytes: Bytes) -> io::Result<()> {
        let limit = self.ctx.config.body_idle_timeout();
        let len = bytes.len();
        match timeout(limit, self.stream.write_all(bytes)).await {
            Ok((res, _)) => res.inspect(|_| self.sent(len)),
            Err(_) => Err(write_timed_out()),
        }
    }

    /// Encodes and writes a final response.
    async fn send(&mut self, resp: Response) -> io::Result<CloseMode> {
        let out = super::date::with_date(|date| self.conn.respond(&resp, date))
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.write(out.bytes).await?;
        let file = self.file_body.take();
        if out.send_body {
            let Some(file) = file else {
                debug_assert!(false, "a streamed response without a body source");
                return Ok(CloseMode::Close);
            };
            self.write_file(file).await?;
            self.conn
                .finish_body()
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        Ok(out.close)
    }

    /// Sends a file range file → pipe → socket with io_uring splices (`zero_copy`).
    async fn splice_file(&mut self, body: FileBody) -> io::Result<()> {
        let FileBody { file, offset, len } = body;
        let pipe = crate::storage::splice::Pipe::take()?;
        let idle = self.ctx.config.body_idle_timeout();
        let file_fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let sent = pipe
            .send_file(file_fd, offset, len, self.socket_fd(), idle)
            .await;
        let _ = file.close().await;
        sent?;
        // Only a transfer that ended cleanly leaves the pipe empty.
        pipe.put_back();
        self.sent(len as usize);
        Ok(())
    }

    /// Copies a file range to the socket through a user-space buffer (`zero_copy = false`).
    async fn write_file(&mut self, body: FileBody) -> io::Result<()> {
        if self.ctx.config.zero_copy {
            return self.splice_file(body).await;
        }
        let FileBody {
            file,
            mut offset,
            len,
        } = body;
        let end = offset + len;
        let mut buf = Vec::with_capacity((len as usize).min(256 * 1024));
        while offset < end {
            buf.clear();
            let want = ((end - offset) as usize).min(buf.capacity());
            let (res, b) = file.read_at(buf.slice(..want), offset).await;
            let n = res?;
            buf = b.into_inner();
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while sent",
                ));
            }
            offset += n as u64;
            let limit = self.ctx.config.body_idle_timeout();
            let (res, b) = match timeout(limit, self.stream.write_all(buf)).await {
                Ok(r) => r,
                Err(_) => return Err(write_timed_out()),
            };
            res?;
            self.sent(n);
            buf = b;
        }
        let _ = file.close().await;
        Ok(())
    }

    fn sent(&mut self, n: usize) {
        self.bytes_out += n as u64;
        metrics::sent(n);
    }

    /// Sends a response that ends the connection (no head was parsed), then closes it.
    async fn finish(&mut self, resp: Response) {
        let (status, started) = (resp.status, Instant::now());
        let sent = self.send(resp).await;
        self.log_request(None, status, started, sent.is_err());
        if let Ok(mode) = sent {
            self.close(mode).await;
        }
    }

    /// Closes with a lingering close: shut down our write side so the peer sees the response
    /// end, discard its input for a bounded time and size, then close. After an unread body
    /// (`Linger`) for up to `linger_ms` with 1 s gaps and 64 MiB; after a request read in full
    /// (`Close`) only briefly (2 s, 300 ms gaps, 1 MiB), for bytes already in flight.
    async fn close(&mut self, mode: CloseMode) {
        let cfg = &self.ctx.config;
        let bounds = match mode {
            CloseMode::KeepAlive => {
                let _ = self.stream.shutdown(Shutdown::Write);
                return;
            }
            CloseMode::Linger => LingerBounds {
                total: cfg.linger(),
                gap: LINGER_GAP,
                max_bytes: LINGER_MAX_BYTES,
            },
            CloseMode::Close => LingerBounds {
                total: cfg.linger().min(CLOSE_LINGER_MAX),
                gap: CLOSE_GAP,
                max_bytes: CLOSE_MAX_BYTES,
            },
        };
        linger(&self.stream, bounds).await;
    }
}

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
pub(super) async fn linger(stream: &TcpStream, bounds: LingerBounds) -> u64 {
    let _ = stream.shutdown(Shutdown::Write);
    let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
    let deadline = Instant::now() + bounds.total;
    let mut discarded = 0u64;
    // No buffer until the peer sends something: most lingering peers just close.
    let mut buf: Option<Vec<u8>> = None;
    while discarded < bounds.max_bytes {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let until = deadline.min(now + bounds.gap);
        if buf.is_none() && !matches!(timeout_at(until, readable(fd)).await, Ok(Ok(()))) {
            break;
        }
        let b = buf
            .take()
            .unwrap_or_else(|| Vec::with_capacity(LINGER_READ_SMALL));
        match timeout_at(until, stream.read(b)).await {
            Ok((Ok(n), mut b)) if n > 0 => {
                discarded += n as u64;
                b.clear();
                if discarded >= LINGER_READ_BIG as u64 && b.capacity() < LINGER_READ_BIG {
                    b = Vec::with_capacity(LINGER_READ_BIG);
                }
                buf = Some(b);
            }
            _ => break,
        }
    }
    discarded
}

/// Waits until `fd` (a socket) is readable, has reached end of stream or failed, without
/// lending a buffer to the kernel (an io_uring poll).
async fn readable(fd: std::os::fd::RawFd) -> io::Result<()> {
    let events = (libc::POLLIN | libc::POLLRDHUP) as u32;
    let poll = PollAdd::new(types::Fd(fd), events).build();
    crate::storage::ops::submit((), poll).await.map(|_| ())
}

fn write_timed_out() -> io::Error {
    metrics::timeout(TimeoutKind::Write);
    io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading")
}

/// A file range sent as a response body.
pub struct FileBody {
    pub file: tokio_uring::fs::File,
    pub offset: u64,
    pub len: u64,
}

/// Failures of reading a body from the socket.
#[derive(Debug)]
pub enum BodyIoError {
    IdleTimeout,
    Io(io::Error),
}
