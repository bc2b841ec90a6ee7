//! A TLS connection on the ring: a [`Session`] between the driver and a tokio-uring socket.
//! Socket reads land in the session's incoming buffer (owned, lent to the kernel for the
//! read), are opened in place, and their plaintext is copied once into the connection's buffer;
//! writes are sealed into one buffer and sent with one `WRITE`. The handshake happens inside
//! the first read, so it counts against `header_timeout_ms`.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};

use bytes::BytesMut;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use super::session::Session;
use super::{failure_of, TlsConfig};
use crate::metrics::{self, TlsFailure, TlsVersion};

/// Plaintext sealed per `WRITE` when a large response is sent.
const SEAL_CHUNK: usize = 256 * 1024;

/// One TLS connection. Interior mutability because the driver calls through `&Transport`; no
/// borrow is held across an `.await` (one task per connection).
pub struct TlsStream {
    tcp: TcpStream,
    session: RefCell<Session>,
    /// The socket reached its end.
    ended: Cell<bool>,
    /// The handshake's end was counted (`upgate_tls_handshakes_total` or a failure).
    counted: Cell<bool>,
}

impl TlsStream {
    pub fn new(tcp: TcpStream, config: &TlsConfig) -> io::Result<TlsStream> {
        let session = Session::new(config.current()).map_err(io::Error::other)?;
        Ok(TlsStream {
            tcp,
            session: RefCell::new(session),
            ended: Cell::new(false),
            counted: Cell::new(false),
        })
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The socket, for the body path's reads of TLS bytes into registered buffers.
    pub fn socket_fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }

    /// The session, for the body path (no borrow may be held across an `.await`).
    pub fn session(&self) -> &RefCell<Session> {
        &self.session
    }

    /// Sends what the session holds for the peer: handshake messages, alerts, records.
    pub async fn flush(&self) -> io::Result<()> {
        let out = self.session.borrow_mut().take_outgoing();
        if !out.is_empty() {
            self.tcp.write_all(out).await.0?;
        }
        Ok(())
    }

    /// One socket read into the session's incoming bytes. False at the socket's end.
    async fn fill(&self) -> io::Result<bool> {
        let buf = self.session.borrow_mut().take_incoming();
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = self.tcp.read(buf.slice(len..cap)).await;
        let buf = slice.into_inner();
        let n = *res.as_ref().unwrap_or(&0);
        self.session
            .borrow_mut()
            .restore_incoming(buf, cap - len, n);
        if res? == 0 {
            self.ended.set(true);
            return Ok(false);
        }
        Ok(true)
    }

    /// Runs the session over what it holds; its plaintext into `buf`. Counts the handshake's
    /// end; on a refusal, sends the alert and returns `InvalidData`.
    async fn process(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let result = self.session.borrow_mut().process(buf);
        match result {
            Ok(n) => {
                self.count_handshake();
                Ok(n)
            }
            Err(e) => {
                self.count_failure(failure_of(&e));
                let _ = self.flush().await;
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
    }

    /// Plaintext into `buf`'s spare capacity (after its length); 0 at the end of the stream.
    pub async fn read(&self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        loop {
            match self.process(&mut buf).await {
                Ok(0) => {}
                other => return (other, buf),
            }
            if let Err(e) = self.flush().await {
                return (Err(e), buf);
            }
            // The socket ended, or the peer sent `close_notify`: the end of the stream all
            // the same (the HTTP layer knows whether a message was cut).
            if self.ended.get() || self.session.borrow().peer_closed() {
                return (Ok(0), buf);
            }
            match self.fill().await {
                Ok(true) => {}
                Ok(false) => return (Ok(0), buf),
                Err(e) => return (Err(e), buf),
            }
        }
    }

    /// Encrypts and sends all of `bytes`.
    pub async fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        for chunk in bytes.chunks(SEAL_CHUNK) {
            self.session
                .borrow_mut()
                .seal(chunk)
                .map_err(io::Error::other)?;
            self.flush().await?;
        }
        Ok(())
    }

    /// Waits until plaintext, the end of the stream or an error can be read.
    pub async fn readable(&self) -> io::Result<()> {
        let mut none = BytesMut::new();
        loop {
            // Nothing fits in `none`: what is opened is held for the next read.
            self.process(&mut none).await?;
            let ready = {
                let session = self.session.borrow();
                session.has_plaintext() || session.peer_closed()
            };
            if ready || self.ended.get() {
                return Ok(());
            }
            self.flush().await?;
            if !self.fill().await? {
                return Ok(());
            }
        }
    }

    /// Sends `close_notify` (best effort, without waiting) and shuts the socket down.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let out = {
                let mut session = self.session.borrow_mut();
                session.close();
                session.take_outgoing()
            };
            if !out.is_empty() {
                // SAFETY: a non-blocking send from a live buffer on our own socket.
                unsafe {
                    libc::send(
                        self.tcp.as_raw_fd(),
                        out.as_ptr().cast(),
                        out.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
            }
        }
        self.tcp.shutdown(how)
    }

    /// Counts a completed handshake once, by its version.
    fn count_handshake(&self) {
        if self.counted.get() {
            return;
        }
        let session = self.session.borrow();
        if session.is_handshaking() {
            return;
        }
        self.counted.set(true);
        match session.version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => metrics::tls_handshake(TlsVersion::V12),
            _ => metrics::tls_handshake(TlsVersion::V13),
        }
    }

    /// Counts a failed handshake once (errors after it are not handshake failures).
    fn count_failure(&self, reason: TlsFailure) {
        if !self.counted.get() {
            self.counted.set(true);
            metrics::tls_failure(reason);
        }
    }
}

impl Drop for TlsStream {
    /// A connection that ends (closed, timed out) in the middle of its handshake.
    fn drop(&mut self) {
        if self.session.borrow().is_handshaking() {
            self.count_failure(TlsFailure::Incomplete);
        }
    }
}
