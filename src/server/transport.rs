//! The bytes under one connection. The driver reads, writes, waits and shuts down through a
//! [`Transport`] and never names a socket type; whether the body path may splice or use
//! registered buffers is decided by one question, [`Transport::raw_fd`].
//!
//! | transport | `raw_fd` | used by |
//! |---|---|---|
//! | [`Transport::Tcp`] | the socket: splice and registered buffers | every plain connection |
//! | [`Transport::Tls`] | none: the socket's bytes are records, decrypted into the connection's buffer | connections on `tls_listen` ([`super::tls`]) |
//! | [`Transport::Memory`] | none: bytes go through the connection's buffer | tests of the whole flow without sockets |
//!
//! A closed set dispatched by `match`, not a trait object: io_uring futures are `!Send` and
//! async trait methods are not object-safe, and the enum keeps every call static on the hot
//! path (one read per 64 KiB) without boxing a future per call.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};

use bytes::{Bytes, BytesMut};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use super::memory::MemoryStream;
use super::tls::TlsStream;

/// One connection's byte stream.
pub enum Transport {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    Memory(MemoryStream),
}

impl Transport {
    /// The descriptor whose bytes are exactly the connection's bytes, when there is one: body
    /// bytes may then be spliced from it, or read into registered buffers. `None` for streams
    /// whose bytes are transformed (TLS) or not in the kernel (memory).
    pub fn raw_fd(&self) -> Option<RawFd> {
        match self {
            Transport::Tcp(s) => Some(s.as_raw_fd()),
            Transport::Tls(_) | Transport::Memory(_) => None,
        }
    }

    /// Reads once into `buf`'s spare capacity (appending after its length); 0 is end of
    /// stream. The buffer is lent for the duration (io_uring owns it while the read runs).
    pub async fn read(&self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        match self {
            Transport::Tcp(s) => {
                let len = buf.len();
                let (res, slice) = s.read(buf.slice(len..)).await;
                (res, slice.into_inner())
            }
            Transport::Tls(t) => t.read(buf).await,
            Transport::Memory(m) => m.read(buf).await,
        }
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&self, bytes: Bytes) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.write_all(bytes).await.0,
            Transport::Tls(t) => t.write_all(&bytes).await,
            Transport::Memory(m) => m.write_all(&bytes),
        }
    }

    /// Writes all of `buf` and gives it back (the caller reuses it).
    pub async fn write_all_vec(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match self {
            Transport::Tcp(s) => s.write_all(buf).await,
            Transport::Tls(t) => (t.write_all(&buf).await, buf),
            Transport::Memory(m) => (m.write_all(&buf), buf),
        }
    }

    /// Waits until bytes, end of stream or an error can be read, without lending a buffer.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => crate::storage::ops::readable(s.as_raw_fd()).await,
            Transport::Tls(t) => t.readable().await,
            Transport::Memory(m) => {
                m.readable().await;
                Ok(())
            }
        }
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.shutdown(how),
            Transport::Tls(t) => t.shutdown(how),
            Transport::Memory(m) => {
                m.shutdown(how);
                Ok(())
            }
        }
    }

    pub fn set_nodelay(&self) {
        match self {
            Transport::Tcp(s) => {
                let _ = s.set_nodelay(true);
            }
            Transport::Tls(t) => {
                let _ = t.tcp().set_nodelay(true);
            }
            Transport::Memory(_) => {}
        }
    }
}
