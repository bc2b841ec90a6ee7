//! The thin io_uring driver of one connection: reads into the protocol's buffer, feeds
//! `H1Conn`, hands heads to the handler, writes what the protocol encodes, and owns every
//! timer (head, keep-alive, body idle, linger). Protocol decisions stay in `crate::http`.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use super::access::{self, AccessLog};
use super::exchange::Exchange;
use super::route::Handler;
use super::ThreadCtx;
use crate::http::{CloseMode, Event, H1Conn, ProtocolError, RequestHead, Response};
use crate::metrics::{self, TimeoutKind};

/// Free space offered to the kernel for a read while waiting for a head.
const HEAD_READ: usize = 4096;
/// Free space offered per read inside a body.
const BODY_READ: usize = 64 * 1024;
/// A lingering close discards at most this much before giving up.
const LINGER_MAX_BYTES: u64 = 64 << 20;

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
                c.finish(Response::from_protocol_error(e)).await;
                break;
            }
            Err(NoHead::Timeout) => {
                metrics::timeout(TimeoutKind::Header);
                let resp = Response::error(
                    408,
                    "header_timeout",
                    "the request head did not arrive in time",
                );
                c.finish(resp).await;
                break;
            }
        };
        first = false;
        let started = Instant::now();
        let (resp, head) = {
            let mut ex = Exchange::new(&mut c, head);
            let resp = handler.handle(&mut ex).await;
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
            let read = tokio::select! {
                r = timeout_at(deadline, self.read_more(HEAD_READ)) => r,
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

    /// Closes, lingering first when the peer may still be sending: shut down our write side so
    /// it sees the response end, discard its input for a bounded time and size, then close.
    async fn close(&mut self, mode: CloseMode) {
        let _ = self.stream.shutdown(Shutdown::Write);
        if mode != CloseMode::Linger {
            return;
        }
        let deadline = Instant::now() + self.ctx.config.linger();
        let mut discarded = 0u64;
        let mut buf = Vec::with_capacity(16 * 1024);
        while discarded < LINGER_MAX_BYTES {
            let gap = Instant::now() + Duration::from_millis(1000);
            match timeout_at(deadline.min(gap), self.stream.read(buf)).await {
                Ok((Ok(n), b)) if n > 0 => {
                    discarded += n as u64;
                    buf = b;
                    buf.clear();
                }
                _ => break,
            }
        }
    }
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
