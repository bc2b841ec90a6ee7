//! What a handler sees of one request: its head, and the choice the patent turns on: read the
//! body (sending `100 Continue` when the client waits for it) or answer without reading it.

use std::fmt;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use bytes::Bytes;

use super::access::AccessLog;
use super::driver::{BodyIoError, Connection, FileBody};
use crate::config::Config;
use crate::http::{Event, ProtocolError, RequestHead, Response};
use crate::storage::splice::Pipe;

/// One request in progress.
pub struct Exchange<'c> {
    c: &'c mut Connection,
    head: RequestHead,
}

/// Why a body could not be read in full.
#[derive(Debug)]
pub enum BodyError {
    /// The body broke the protocol (bad chunk, early close).
    Protocol(ProtocolError),
    /// The client paused longer than `body_idle_timeout_ms`.
    IdleTimeout,
    /// The socket failed.
    Io(std::io::Error),
}

impl BodyError {
    /// The response to give the client, when one can still reach it.
    pub fn response(&self) -> Response {
        match self {
            BodyError::Protocol(e) => Response::from_protocol_error(*e),
            BodyError::IdleTimeout => {
                Response::error(408, "body_timeout", "the request body stalled")
            }
            BodyError::Io(_) => Response::error(
                400,
                "body_read_failed",
                "the request body could not be read",
            ),
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Protocol(e) => write!(f, "{e}"),
            BodyError::IdleTimeout => f.write_str("body idle timeout"),
            BodyError::Io(e) => write!(f, "body read failed: {e}"),
        }
    }
}

impl std::error::Error for BodyError {}

/// Why a splice of body bytes into a file stopped.
#[derive(Debug)]
pub enum SpliceError {
    /// Reading the body failed (the client's side).
    Body(BodyError),
    /// Writing the file failed (the node's side: full disk, I/O error).
    File(std::io::Error),
}

impl<'c> Exchange<'c> {
    pub(super) fn new(c: &'c mut Connection, head: RequestHead) -> Self {
        Exchange { c, head }
    }

    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    pub(super) fn into_head(self) -> RequestHead {
        self.head
    }

    /// What this request reports to the access log (route, appid, upload id, step timings).
    pub fn access(&mut self) -> &mut AccessLog {
        &mut self.c.access
    }

    /// True once SIGINT/SIGTERM started the drain.
    pub fn shutting_down(&self) -> bool {
        self.c.ctx.shutting_down()
    }

    pub fn peer(&self) -> SocketAddr {
        self.c.peer
    }

    pub fn config(&self) -> &Config {
        &self.c.ctx.config
    }

    /// Decides to read the body. Writes `100 Continue` first when the client waits for it; call
    /// this only once the request is acceptable. Without this call the body stays unread in the
    /// socket, and the response closes the connection with a lingering close.
    pub async fn accept_body(&mut self) -> Result<(), BodyError> {
        let interim = self
            .c
            .conn
            .accept_body()
            .map_err(|e| BodyError::Io(std::io::Error::other(e.to_string())))?;
        if let Some(bytes) = interim {
            self.c
                .write(Bytes::from_static(bytes))
                .await
                .map_err(BodyError::Io)?;
        }
        Ok(())
    }

    /// Sends `len` bytes of `file` from `offset` as the body of the response the handler
    /// returns (which must use `ResponseBody::Sized(len)`). For HEAD the file is not read.
    pub fn attach_file(&mut self, file: tokio_uring::fs::File, offset: u64, len: u64) {
        self.c.file_body = Some(FileBody { file, offset, len });
    }

    /// Body bytes that can be spliced now: the rest of a `Content-Length` body once nothing of
    /// it is left in the read buffer (`None` otherwise: take `next_chunk` first).
    pub fn splice_ready(&self) -> Option<u64> {
        match self.c.conn.body_remaining() {
            Some(rest) if rest > 0 && self.c.conn.buffered() == 0 => Some(rest),
            _ => None,
        }
    }

    /// Moves up to `len` body bytes socket → pipe → `file` at `offset` with io_uring splices:
    /// the bytes never enter user space. Each socket read is bounded by
    /// `body_idle_timeout_ms`. Returns the bytes moved (all of `len` unless it fails).
    pub async fn splice_into(
        &mut self,
        file: RawFd,
        mut offset: u64,
        len: u64,
    ) -> Result<u64, SpliceError> {
        let pipe = Pipe::take().map_err(SpliceError::File)?;
        let socket = self.c.socket_fd();
        let idle = self.c.ctx.config.body_idle_timeout();
        let mut moved = 0;
        while moved < len {
            let want = (len - moved).min(pipe.capacity() as u64) as usize;
            // On any failure the pipe may hold bytes: it is dropped, not returned to the pool.
            let n = match tokio::time::timeout(idle, pipe.fill_from(socket, want)).await {
                Err(_) => return Err(SpliceError::Body(BodyError::IdleTimeout)),
                Ok(Err(e)) => return Err(SpliceError::Body(BodyError::Io(e))),
                Ok(Ok(0)) => {
                    self.c.conn.receive_eof();
                    return Err(SpliceError::Body(BodyError::Protocol(
                        ProtocolError::IncompleteBody,
                    )));
                }
                Ok(Ok(n)) => n,
            };
            pipe.drain_to(file, offset, n)
                .await
                .map_err(SpliceError::File)?;
            self.c.conn.skip_body(n as u64).map_err(|e| {
                SpliceError::Body(BodyError::Io(std::io::Error::other(e.to_string())))
            })?;
            self.c.bytes_in += n as u64;
            crate::metrics::received(n);
            offset += n as u64;
            moved += n as u64;
        }
        pipe.put_back();
        Ok(moved)
    }

    /// The next piece of the body, or `None` at its end. Requires `accept_body` first.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        loop {
            match self.c.conn.next_event().map_err(BodyError::Protocol)? {
                Event::Data(bytes) => {
                    self.c.bytes_in += bytes.len() as u64;
                    return Ok(Some(bytes));
                }
                Event::EndOfMessage => return Ok(None),
                Event::NeedData => match self.c.read_body_more().await {
                    Ok(_) => {}
                    Err(BodyIoError::IdleTimeout) => return Err(BodyError::IdleTimeout),
                    Err(BodyIoError::Io(e)) => return Err(BodyError::Io(e)),
                },
                other => {
                    return Err(BodyError::Io(std::io::Error::other(format!(
                        "body read in the wrong state: {other:?}"
                    ))))
                }
            }
        }
    }
}
