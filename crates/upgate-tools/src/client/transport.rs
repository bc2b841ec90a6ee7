//! The client's one seam between HTTP and the network: a connection is plain TCP for an
//! `http://` URL and a rustls session for an `https://` one, and the rest of the client reads
//! and writes it without asking which.
//!
//! The one thing the choice changes is how a body leaves: over TCP the file goes to the socket
//! with `sendfile(2)`, inside the kernel; over TLS every byte must be encrypted in user space,
//! so the file is read into a buffer and written through rustls (`docs/client.md`, "HTTPS").

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::ClientError;
use super::sendfile::{copy_range, send_range, SendError};
use super::target::Target;
use super::tls::TlsStream;
use super::trust::Trust;

/// An open connection to a node.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The CAs to check an `https://` target against (`None` for `http://`, which needs none).
pub(crate) fn trust_for(
    target: &Target,
    cacert: Option<&Path>,
) -> Result<Option<Trust>, ClientError> {
    if target.https {
        Trust::load(cacert).map(Some)
    } else {
        Ok(None)
    }
}

/// Connects to `target` within `timeout` (the TCP connect, and as much again for a TLS
/// handshake), with `TCP_NODELAY` and `stall` as the write timeout. `trust` is `Some` exactly
/// for an `https://` target.
pub(crate) fn connect(
    target: &Target,
    trust: Option<&Trust>,
    timeout: Duration,
    stall: Duration,
) -> Result<Conn, ClientError> {
    let sock = connect_tcp(target, timeout)?;
    let setup = |source| ClientError::Network {
        during: "setting up the socket",
        source,
    };
    sock.set_nodelay(true)
        .and_then(|_| sock.set_write_timeout(Some(stall)))
        .map_err(setup)?;
    let Some(trust) = trust else {
        return Ok(Conn::Plain(sock));
    };
    sock.set_read_timeout(Some(timeout)).map_err(setup)?;
    let deadline = Instant::now() + timeout;
    match TlsStream::handshake(trust, target.host(), sock, Some(deadline)) {
        Ok(tls) => Ok(Conn::Tls(Box::new(tls))),
        Err(failure) => Err(ClientError::Tls {
            target: target.authority.clone(),
            failure,
        }),
    }
}

fn connect_tcp(target: &Target, timeout: Duration) -> Result<TcpStream, ClientError> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    for addr in target.addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(ClientError::Connect {
        target: target.authority.clone(),
        source: last,
    })
}

impl Conn {
    fn socket(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => t.get_ref(),
        }
    }

    /// Bounds each later read (a TLS read may take several socket reads, each bounded).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket().set_read_timeout(timeout)
    }

    /// Sends bytes `start..start + len` of `file` as (part of) a body, calling `progress` with
    /// each step's byte count: `sendfile(2)` over TCP, read + encrypt + write over TLS.
    pub fn send_file_range(
        &mut self,
        file: &File,
        start: u64,
        len: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), SendError> {
        match self {
            Conn::Plain(sock) => send_range(sock, file, start, len, progress),
            Conn::Tls(tls) => {
                copy_range(tls.as_mut(), file, start, len, progress)?;
                tls.flush().map_err(SendError::Socket)
            }
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(t) => t.flush(),
        }
    }
}
