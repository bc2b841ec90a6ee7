//! A rustls client session over a blocking socket, as `Read + Write`.
//!
//! Not rustls's `StreamOwned`: its `read` first flushes any ciphertext still queued, so after
//! the node stopped reading an upload's body (a 413, a storage error) the read that should
//! fetch the node's answer would fail on the broken write instead. Here a read only reads, and
//! a write hands everything it accepted to the socket before it returns, so a stalled node
//! surfaces as the socket's write timeout, as it does over plain TCP.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::Instant;

use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use super::tls_error::{show_bytes, TlsFailure};
use super::trust::Trust;

/// An established TLS session over `io` (a `TcpStream`, or ureq's boxed one).
pub struct TlsStream<S> {
    conn: ClientConnection,
    io: S,
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("protocol", &self.conn.protocol_version())
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write> TlsStream<S> {
    /// Runs the handshake with `host` (SNI for a name; an IP address is checked against the
    /// certificate's IP entries and sends no SNI) over `io`. Each read waits at most the
    /// socket's read timeout, and the whole handshake gives up at `deadline` when one is set.
    pub fn handshake(
        trust: &Trust,
        host: &str,
        mut io: S,
        deadline: Option<Instant>,
    ) -> Result<TlsStream<S>, TlsFailure> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| TlsFailure::Other(format!("{host:?} is not a host name: {e}")))?;
        let mut conn = ClientConnection::new(trust.config.clone(), name)
            .map_err(|e| TlsFailure::Other(e.to_string()))?;
        let started = Instant::now();
        // The first bytes the server sent, to tell a plain-HTTP answer from a TLS failure.
        let mut first = Vec::new();
        let fail = |e: io::Error| io_failure(e, started);
        while conn.is_handshaking() {
            flush(&mut conn, &mut io).map_err(fail)?;
            if !conn.wants_read() {
                return Err(TlsFailure::Other("the handshake stalled".into()));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(TlsFailure::Timeout {
                    waited_ms: started.elapsed().as_millis(),
                });
            }
            let mut recorder = Recorder {
                io: &mut io,
                first: &mut first,
            };
            match conn.read_tls(&mut recorder) {
                Ok(0) => return Err(TlsFailure::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(fail(e)),
            }
            if let Err(e) = conn.process_new_packets() {
                // The alert that tells the server why, best effort.
                let _ = flush(&mut conn, &mut io);
                if !looks_like_tls(&first) {
                    return Err(TlsFailure::NotTls {
                        first_bytes: show_bytes(&first),
                    });
                }
                return Err(TlsFailure::from_rustls(&e, host, &trust.source));
            }
        }
        // TLS 1.3: the client's Finished is still queued.
        flush(&mut conn, &mut io).map_err(fail)?;
        if let Some(p) = conn.alpn_protocol() {
            if p != b"http/1.1" {
                return Err(TlsFailure::Other(format!(
                    "the server chose ALPN {:?}, not http/1.1",
                    String::from_utf8_lossy(p)
                )));
            }
        }
        Ok(TlsStream { conn, io })
    }

    /// The transport under the session (to set its timeouts).
    pub fn get_ref(&self) -> &S {
        &self.io
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    /// Plaintext, reading records as needed. `Ok(0)` after the server's `close_notify`;
    /// `UnexpectedEof` when the connection ends without one (a truncation the caller judges).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            // After an end of stream the reader above answers Ok(0) or UnexpectedEof.
            self.conn.read_tls(&mut self.io)?;
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    /// Encrypts what rustls takes of `buf` (at most its 64 KiB buffer) and writes all of it to
    /// the socket before returning, so progress counts bytes handed to the kernel.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        flush(&mut self.conn, &mut self.io)?;
        let n = self.conn.writer().write(buf)?;
        flush(&mut self.conn, &mut self.io)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        flush(&mut self.conn, &mut self.io)?;
        self.io.flush()
    }
}

/// Writes every queued TLS record to `io`.
fn flush(conn: &mut ClientConnection, io: &mut impl Write) -> io::Result<()> {
    while conn.wants_write() {
        match conn.write_tls(io) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether the server's first bytes start a TLS record: a content type (alert 21 or
/// handshake 22) and a major version of 3.
fn looks_like_tls(first: &[u8]) -> bool {
    matches!(first, [21 | 22, 3, ..] | [21 | 22] | [])
}

/// A socket error during the handshake begun at `started`.
fn io_failure(e: io::Error, started: Instant) -> TlsFailure {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe => TlsFailure::Closed,
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TlsFailure::Timeout {
            waited_ms: started.elapsed().as_millis(),
        },
        _ => TlsFailure::Other(e.to_string()),
    }
}

/// Keeps the first bytes read during the handshake.
struct Recorder<'a, S> {
    io: &'a mut S,
    first: &'a mut Vec<u8>,
}

impl<S: Read> Read for Recorder<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.io.read(buf)?;
        let room = 16usize.saturating_sub(self.first.len());
        self.first.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_record_start_is_told_from_plain_http() {
        assert!(looks_like_tls(&[22, 3, 3, 0, 90]));
        assert!(looks_like_tls(&[21, 3, 1]));
        assert!(!looks_like_tls(b"HTTP/1.1 400 Bad Request"));
        assert!(!looks_like_tls(&[22, 9]));
    }
}
