//! What a handler sees of one request: its head, and the choice the patent turns on: read the
//! body (sending `100 Continue` when the client waits for it) or answer without reading it.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

use super::access::AccessLog;
use super::connection::{Attached, BodyIoError, Connection};
use crate::config::Config;
use crate::http::{Event, ProtocolError, RequestHead, WrongState};
use crate::storage::ObjectBody;

/// One request in progress.
pub struct Exchange<'c> {
    pub(super) c: &'c mut Connection,
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
    /// No registered I/O buffer of this thread came free within `body_idle_timeout_ms`.
    NoBuffer,
    /// The node called the protocol out of order: a bug in the node, never the client's fault.
    WrongState(WrongState),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Protocol(e) => write!(f, "{e}"),
            BodyError::IdleTimeout => f.write_str("body idle timeout"),
            BodyError::Io(e) => write!(f, "body read failed: {e}"),
            BodyError::NoBuffer => f.write_str("no registered I/O buffer came free"),
            BodyError::WrongState(e) => write!(f, "protocol called out of order: {e}"),
        }
    }
}

impl std::error::Error for BodyError {}

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
        let interim = self.c.conn.accept_body().map_err(BodyError::WrongState)?;
        if let Some(bytes) = interim {
            self.c
                .write(Bytes::from_static(bytes))
                .await
                .map_err(BodyError::Io)?;
        }
        Ok(())
    }

    /// Writes an informational response (e.g. `104 Upload Resumption Supported`) ahead of
    /// the final one; nothing for an HTTP/1.0 client.
    pub async fn informational(
        &mut self,
        status: u16,
        fields: &[(&str, String)],
    ) -> Result<(), BodyError> {
        let interim = self
            .c
            .conn
            .informational(status, fields)
            .map_err(BodyError::WrongState)?;
        if let Some(bytes) = interim {
            self.c.write(bytes).await.map_err(BodyError::Io)?;
        }
        Ok(())
    }

    /// Reads and discards a body of at most `most` declared bytes, so that a request that
    /// should carry none (a `GET` with `Content-Length: 5`) keeps its connection, as nginx
    /// does. Returns whether the body is gone; a bigger or chunked body is left unread (the
    /// response then closes with a lingering close), and so is one whose reading fails, and
    /// one the client holds back until a `100 Continue` (it gets the final answer instead).
    pub async fn discard_body(&mut self, most: u64) -> bool {
        let info = self.head().info();
        if !info.has_body() {
            return true;
        }
        if info.expect == crate::http::Expectation::Continue {
            return false;
        }
        match info.content_length() {
            Some(n) if n <= most => {}
            _ => return false,
        }
        if self.accept_body().await.is_err() {
            return false;
        }
        loop {
            match self.next_chunk().await {
                Ok(Some(_)) => {}
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }

    /// Sends `len` bytes of a stored object from `offset` as the body of the response the
    /// handler returns (which must use `ResponseBody::Sized(len)`). For HEAD nothing is read.
    pub fn attach_body(&mut self, body: ObjectBody, offset: u64, len: u64) {
        self.c.attached = Some(Attached { body, offset, len });
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
                other => return Err(wrong_state(other)),
            }
        }
    }
}

/// An event that cannot come while a body is read (the node read out of order).
pub(super) fn wrong_state(event: Event) -> BodyError {
    tracing::debug!(?event, "body read in the wrong state");
    BodyError::WrongState(WrongState {
        op: "read body",
        state: "no body to read",
    })
}
