//! One connection's state and its I/O: the transport, the protocol state machine, the
//! response body waiting to be sent, what the access log will say, and the reads, writes and
//! closes that every request needs. The request loop is in `driver.rs`; the body paths in
//! `ingest.rs`.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use tokio::time::{timeout, Instant};

use super::access::{self, AccessLog};
use super::linger::{
    linger, LingerBounds, CLOSE_GAP, CLOSE_LINGER_MAX, CLOSE_MAX_BYTES, LINGER_GAP,
    LINGER_MAX_BYTES,
};
use super::transport::Transport;
use super::ThreadCtx;
use crate::http::{CloseMode, H1Conn, RequestHead, Response};
use crate::metrics::{self, TimeoutKind};
use crate::storage::{ObjectBody, SMALL_BODY};

/// Free space offered per read inside a body.
const BODY_READ: usize = 64 * 1024;
/// How often a response waits to see more of a file still being written (a cache miss
/// filled from the origin): at loopback speeds a 2 ms wait moves a few MiB.
const GROWING_POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// One accepted connection.
pub(super) struct Connection {
    pub(super) transport: Transport,
    pub(super) conn: H1Conn,
    /// The body of the response being prepared, when it is a stored object (downloads).
    pub(super) attached: Option<Attached>,
    pub(super) ctx: Rc<ThreadCtx>,
    pub(super) peer: SocketAddr,
    /// What the handler reports for the access log of the current request.
    pub(super) access: AccessLog,
    /// Body bytes read and response bytes written for the current request.
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
}

/// A range of a stored object sent as a response body.
pub(super) struct Attached {
    pub body: ObjectBody,
    pub offset: u64,
    pub len: u64,
}

impl Attached {
    /// The range, when it is in memory and small enough to be copied behind the head.
    fn small_bytes(&self) -> Option<Bytes> {
        match &self.body {
            ObjectBody::Bytes(b) if self.len <= SMALL_BODY => {
                let start = self.offset as usize;
                Some(b.slice(start..start + self.len as usize))
            }
            _ => None,
        }
    }
}

/// Failures of reading a body from the transport.
#[derive(Debug)]
pub(super) enum BodyIoError {
    IdleTimeout,
    Io(io::Error),
}

impl Connection {
    pub(super) fn new(transport: Transport, peer: SocketAddr, ctx: Rc<ThreadCtx>) -> Self {
        Connection {
            transport,
            conn: H1Conn::new(ctx.config.limits()),
            attached: None,
            ctx,
            peer,
            access: AccessLog::default(),
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Forgets the previous request's accounting.
    pub(super) fn next_request(&mut self) {
        self.access = AccessLog::default();
        (self.bytes_in, self.bytes_out) = (0, 0);
    }

    /// Counts the request in the metrics and writes its access-log line.
    pub(super) fn log_request(
        &self,
        head: Option<&RequestHead>,
        status: u16,
        started: Instant,
        failed: bool,
    ) {
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

    /// Reads once from the transport into the protocol's buffer; 0 means the peer closed.
    pub(super) async fn read_more(&mut self, spare: usize) -> io::Result<usize> {
        let buf = self.conn.lend_buffer(spare);
        let (res, buf) = self.transport.read(buf).await;
        self.conn.restore_buffer(buf);
        let n = res?;
        metrics::received(n);
        if n == 0 {
            self.conn.receive_eof();
        }
        Ok(n)
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
        match timeout(limit, self.transport.write_all(bytes)).await {
            Ok(res) => res.inspect(|_| self.sent(len)),
            Err(_) => Err(write_timed_out()),
        }
    }

    /// Encodes and writes a final response, and the attached body when it has one. A small
    /// body in memory (a small file the store read whole) goes in the same write as the head.
    pub(super) async fn send(&mut self, resp: Response) -> io::Result<CloseMode> {
        let out = super::date::with_date(|date| self.conn.respond(&resp, date))
            .map_err(io::Error::other)?;
        let attached = match (self.attached.take(), out.send_body) {
            (Some(a), true) => a,
            (None, true) => {
                debug_assert!(false, "a streamed response without a body source");
                self.write(out.bytes).await?;
                return Ok(CloseMode::Close);
            }
            (unsent, false) => {
                self.write(out.bytes).await?;
                if let Some(a) = unsent {
                    a.body.close().await;
                }
                return Ok(out.close);
            }
        };
        match attached.small_bytes() {
            Some(body) => {
                let mut both = BytesMut::with_capacity(out.bytes.len() + body.len());
                both.extend_from_slice(&out.bytes);
                both.extend_from_slice(&body);
                self.write(both.freeze()).await?;
            }
            None => {
                self.write(out.bytes).await?;
                self.write_attached(attached).await?;
            }
        }
        self.conn.finish_body().map_err(io::Error::other)?;
        Ok(out.close)
    }

    /// Sends an attached body: file → pipe → socket with io_uring splices when the transport
    /// has a descriptor and `zero_copy` is on; otherwise through a user-space buffer.
    async fn write_attached(&mut self, a: Attached) -> io::Result<()> {
        let Attached { body, offset, len } = a;
        let file = match body {
            ObjectBody::Bytes(b) => {
                let end = (offset + len) as usize;
                return self.write(b.slice(offset as usize..end)).await;
            }
            ObjectBody::File(file) => file,
            ObjectBody::Growing(file, progress) => {
                let sent = self.send_growing(&file, &progress, offset, len).await;
                ObjectBody::File(file).close().await;
                return sent;
            }
        };
        let sent = self.send_file(&file, offset, len).await;
        ObjectBody::File(file).close().await;
        sent
    }

    /// A file range, spliced or copied (`zero_copy`).
    async fn send_file(
        &mut self,
        file: &tokio_uring::fs::File,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        let socket = self
            .transport
            .raw_fd()
            .filter(|_| self.ctx.config.zero_copy);
        match socket {
            Some(fd) => self.splice_file(file, offset, len, fd).await,
            None => self.copy_file(file, offset, len).await,
        }
    }

    /// A file range of a file another thread is still writing: each part as soon as it is
    /// written, the same way as a whole file. The writer failing, or writing nothing for the
    /// body idle timeout, ends the response (the client sees a short body, as with any
    /// failure after the head).
    async fn send_growing(
        &mut self,
        file: &tokio_uring::fs::File,
        progress: &crate::storage::FillProgress,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        use crate::storage::FillState;
        let end = offset + len;
        let mut at = offset;
        let mut last = Instant::now();
        while at < end {
            let (written, state) = progress.available();
            let upto = written.min(end);
            if upto > at {
                self.send_file(file, at, upto - at).await?;
                at = upto;
                last = Instant::now();
                continue;
            }
            match state {
                FillState::Failed => return Err(io::Error::other("the origin fetch failed")),
                FillState::Done => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the fetched file is shorter than announced",
                    ))
                }
                FillState::Filling if last.elapsed() > self.ctx.config.body_idle_timeout() => {
                    return Err(write_timed_out())
                }
                FillState::Filling => tokio::time::sleep(GROWING_POLL).await,
            }
        }
        Ok(())
    }

    /// A file range file → pipe → socket (`zero_copy`).
    async fn splice_file(
        &mut self,
        file: &tokio_uring::fs::File,
        offset: u64,
        len: u64,
        socket: std::os::fd::RawFd,
    ) -> io::Result<()> {
        let pipe = crate::storage::splice::Pipe::take()?;
        let idle = self.ctx.config.body_idle_timeout();
        let file_fd = std::os::fd::AsRawFd::as_raw_fd(file);
        pipe.send_file(file_fd, offset, len, socket, idle).await?;
        // Only a transfer that ended cleanly leaves the pipe empty.
        pipe.put_back();
        self.sent(len as usize);
        Ok(())
    }

    /// A file range through a user-space buffer (`zero_copy = false`, or no descriptor).
    async fn copy_file(
        &mut self,
        file: &tokio_uring::fs::File,
        mut offset: u64,
        len: u64,
    ) -> io::Result<()> {
        use tokio_uring::buf::BoundedBuf;
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
            let (res, b) = match timeout(limit, self.transport.write_all_vec(buf)).await {
                Ok(r) => r,
                Err(_) => return Err(write_timed_out()),
            };
            res?;
            self.sent(n);
            buf = b;
        }
        Ok(())
    }

    pub(super) fn sent(&mut self, n: usize) {
        self.bytes_out += n as u64;
        metrics::sent(n);
    }

    /// Sends a response that ends the connection (no head was parsed), then closes it.
    pub(super) async fn finish(&mut self, resp: Response) {
        let (status, started) = (resp.status, Instant::now());
        let sent = self.send(resp).await;
        self.log_request(None, status, started, sent.is_err());
        if let Ok(mode) = sent {
            self.close(mode).await;
        }
    }

    /// Closes with a lingering close: after an unread body (`Linger`) for up to `linger_ms`
    /// with 1 s gaps and 64 MiB; after a request read in full (`Close`) only briefly (2 s,
    /// 300 ms gaps, 1 MiB), for bytes already in flight.
    pub(super) async fn close(&mut self, mode: CloseMode) {
        let cfg = &self.ctx.config;
        let bounds = match mode {
            CloseMode::KeepAlive => {
                let _ = self.transport.shutdown(Shutdown::Write);
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
        linger(&self.transport, bounds).await;
    }
}

pub(super) fn write_timed_out() -> io::Error {
    metrics::timeout(TimeoutKind::Write);
    io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading")
}
