//! One TLS session without I/O: TLS bytes in, plaintext and TLS bytes out. The handshake runs
//! in rustls' unbuffered server connection; once it is done the keys are handed to
//! [`Records`], which opens records where they lie ([`super::records`] says why). The driver
//! ([`super::stream::TlsStream`]) moves bytes between this and the socket.
//!
//! ```text
//! socket ──read──▶ incoming ──handshake (rustls)──▶ outgoing ──write──▶ socket
//!                          └─records (in place)──▶ plaintext: the reader's buffer, or
//!                                                  the body's registered buffer
//! ```

use std::mem;
use std::ops::Range;
use std::sync::Arc;

use bytes::BytesMut;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncodeTlsData, UnbufferedStatus};
use rustls::{Error, ProtocolVersion, ServerConfig};

use super::records::{Opened, Records, MAX_RECORD};

/// The smallest room a socket read gets: one whole record fits.
const READ_MIN: usize = MAX_RECORD;
/// The most TLS bytes held: a body arriving at full speed is read in pieces this large.
const READ_MAX: usize = 256 * 1024;

enum Phase {
    Handshake(Box<UnbufferedServerConnection>),
    Records(Box<Records>),
    /// Refused: the alert is in `outgoing`; nothing more is read or written.
    Failed,
}

/// What one handshake step asks for next.
enum Next {
    Again,
    NeedBytes,
    PeerClosed,
    /// rustls may send application data: the handshake is done unless it is still waiting
    /// for the client's `Finished`.
    Writable,
}

pub struct Session {
    phase: Phase,
    /// TLS bytes from the peer; `incoming[used..]` are not processed yet.
    incoming: Vec<u8>,
    used: usize,
    /// The last socket read filled all the room it had: the next one gets more.
    grow: bool,
    /// Plaintext opened beyond the reader's room, handed out first next time.
    plain: BytesMut,
    /// TLS bytes for the peer, in order.
    outgoing: Vec<u8>,
    peer_closed: bool,
    version: Option<ProtocolVersion>,
}

impl Session {
    pub fn new(config: Arc<ServerConfig>) -> Result<Session, Error> {
        Ok(Session {
            phase: Phase::Handshake(Box::new(UnbufferedServerConnection::new(config)?)),
            incoming: Vec::new(),
            used: 0,
            grow: false,
            plain: BytesMut::new(),
            outgoing: Vec::new(),
            peer_closed: false,
            version: None,
        })
    }

    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshake(_))
    }

    /// The negotiated version, once the handshake is done.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// The peer sent `close_notify`: no more plaintext will come.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// TLS bytes from the peer not processed yet (a partial record, or records beyond what
    /// the last reader had room for).
    pub fn unprocessed(&self) -> &[u8] {
        &self.incoming[self.used..]
    }

    /// Plaintext waiting to be taken.
    pub fn has_plaintext(&self) -> bool {
        !self.plain.is_empty()
    }

    /// The buffer for the next socket read: the unprocessed bytes at its front, room after
    /// its length (the caller reads into `len..capacity`, then gives it back with
    /// [`Session::restore_incoming`]).
    pub fn take_incoming(&mut self) -> Vec<u8> {
        let mut buf = mem::take(&mut self.incoming);
        if self.used > 0 {
            buf.drain(..self.used);
            self.used = 0;
        }
        let want = match self.grow {
            true => (buf.capacity() * 2).clamp(READ_MIN, READ_MAX),
            false => buf.capacity().max(READ_MIN),
        };
        if buf.capacity() - buf.len() < READ_MIN || buf.capacity() < want {
            buf.reserve(want.max(buf.len() + READ_MIN) - buf.len());
        }
        buf
    }

    /// Gives back the buffer of [`Session::take_incoming`] after a read of `n` bytes.
    pub fn restore_incoming(&mut self, buf: Vec<u8>, room: usize, n: usize) {
        self.grow = n == room && buf.capacity() < READ_MAX;
        self.incoming = buf;
    }

    /// Bytes from the peer, appended to the incoming ones (for callers that read elsewhere:
    /// the fuzz checks; the driver reads straight into [`Session::take_incoming`]).
    pub fn receive(&mut self, bytes: &[u8]) {
        let mut buf = self.take_incoming();
        buf.extend_from_slice(bytes);
        self.incoming = buf;
    }

    /// Hands the body path the unprocessed TLS bytes (they go to the front of a registered
    /// buffer, where [`Session::open_in_place`] opens them with what follows).
    pub fn take_unprocessed(&mut self) -> Vec<u8> {
        let rest = self.incoming[self.used..].to_vec();
        self.incoming.clear();
        self.used = 0;
        rest
    }

    /// Processes the TLS bytes held: handshake messages, then records, appending at most
    /// `out`'s spare capacity of plaintext to `out` (plaintext held from before first; more
    /// than fits is held for the next call). The number of bytes appended.
    ///
    /// On `Err` the session is refused for good; the alert for the peer is in
    /// [`Session::take_outgoing`].
    pub fn process(&mut self, out: &mut BytesMut) -> Result<usize, Error> {
        if let Phase::Failed = self.phase {
            return Err(Error::General("the TLS session was refused".into()));
        }
        let room = out.capacity() - out.len();
        let mut given = 0;
        if !self.plain.is_empty() {
            let n = self.plain.len().min(room);
            out.extend_from_slice(&self.plain.split_to(n));
            given += n;
            if !self.plain.is_empty() {
                return Ok(given);
            }
        }
        let result = self.handshake(out, room, &mut given).and_then(|()| {
            self.open_into(out, room, &mut given)?;
            Ok(given)
        });
        if let Err(e) = &result {
            self.fail(e);
        }
        result
    }

    /// Encrypts `plain` for the peer (after the handshake); the records go to the outgoing
    /// bytes.
    pub fn seal(&mut self, plain: &[u8]) -> Result<(), Error> {
        match &mut self.phase {
            Phase::Records(r) => r.seal(plain, &mut self.outgoing),
            Phase::Handshake(_) => Err(Error::HandshakeNotComplete),
            Phase::Failed => Err(Error::General("the TLS session was refused".into())),
        }
    }

    /// Queues `close_notify` (after the handshake; before it there is nothing to close).
    pub fn close(&mut self) {
        if let Phase::Records(r) = &mut self.phase {
            r.alert(None, &mut self.outgoing);
        }
    }

    pub fn wants_write(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// The TLS bytes for the peer, taken (the caller sends them in order).
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        mem::take(&mut self.outgoing)
    }

    /// For the body path: opens the whole records at the front of `buf` (a registered buffer
    /// holding TLS bytes), each decrypted in place; `plaintext` gets each record's range of
    /// `buf`. Only after the handshake with no plaintext held (the caller takes that first).
    pub fn open_in_place(
        &mut self,
        buf: &mut [u8],
        plaintext: impl FnMut(&[u8], Range<usize>),
    ) -> Result<Opened, Error> {
        let result = match &mut self.phase {
            Phase::Records(r) => r.open(buf, usize::MAX, plaintext),
            _ => Err(Error::HandshakeNotComplete),
        };
        match result {
            Ok(opened) => {
                self.peer_closed |= opened.closed;
                self.take_pending();
                Ok(opened)
            }
            Err(e) => {
                self.fail(&e);
                Err(e)
            }
        }
    }

    /// Drives rustls through the handshake as far as the bytes held allow, then hands the
    /// keys to [`Records`].
    fn handshake(
        &mut self,
        out: &mut BytesMut,
        room: usize,
        given: &mut usize,
    ) -> Result<(), Error> {
        loop {
            let Phase::Handshake(conn) = &mut self.phase else {
                return Ok(());
            };
            let UnbufferedStatus { mut discard, state } =
                conn.process_tls_records(&mut self.incoming[self.used..]);
            let next = match state {
                Err(e) => {
                    self.used += discard;
                    return Err(e);
                }
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record?;
                        discard += record.discard;
                        deliver(&mut self.plain, out, room, given, record.payload);
                    }
                    Next::Again
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    encode(&mut data, &mut self.outgoing)?;
                    Next::Again
                }
                Ok(ConnectionState::TransmitTlsData(data)) => {
                    // Sent in order with everything after it: the caller flushes `outgoing`
                    // before it reads again.
                    data.done();
                    Next::Again
                }
                Ok(ConnectionState::BlockedHandshake) => Next::NeedBytes,
                Ok(ConnectionState::WriteTraffic(_)) => Next::Writable,
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => Next::PeerClosed,
                // Early data is not enabled; any other state is one this code does not know.
                Ok(other) => {
                    return Err(Error::General(format!("unexpected TLS state {other:?}")));
                }
            };
            self.used += discard;
            match next {
                Next::Again => {}
                Next::NeedBytes => return Ok(()),
                Next::PeerClosed => {
                    self.peer_closed = true;
                    return Ok(());
                }
                Next::Writable => {
                    if conn.is_handshaking() {
                        return Ok(());
                    }
                    let Phase::Handshake(conn) = mem::replace(&mut self.phase, Phase::Failed)
                    else {
                        unreachable!("matched above")
                    };
                    self.version = conn.protocol_version();
                    let (secrets, kernel) = conn.dangerous_into_kernel_connection()?;
                    let suite = kernel.negotiated_cipher_suite();
                    let records = Records::new(suite, secrets.rx, secrets.tx, Some(kernel))?;
                    self.phase = Phase::Records(Box::new(records));
                    return Ok(());
                }
            }
        }
    }

    /// Opens the records held, their plaintext into `out` (and what does not fit, held).
    fn open_into(
        &mut self,
        out: &mut BytesMut,
        room: usize,
        given: &mut usize,
    ) -> Result<(), Error> {
        let Phase::Records(records) = &mut self.phase else {
            return Ok(());
        };
        if self.peer_closed || !self.plain.is_empty() {
            return Ok(());
        }
        let budget = room.saturating_sub(*given).max(1);
        let plain = &mut self.plain;
        let opened = records.open(&mut self.incoming[self.used..], budget, |bytes, _| {
            deliver(plain, out, room, given, bytes)
        })?;
        self.used += opened.used;
        self.peer_closed |= opened.closed;
        self.take_pending();
        Ok(())
    }

    /// Records the record layer owes the peer (a `KeyUpdate`), queued.
    fn take_pending(&mut self) {
        if let Phase::Records(r) = &mut self.phase {
            let mut pending = r.take_pending();
            self.outgoing.append(&mut pending);
        }
    }

    /// Refused: the alert for the peer is queued, and the session is done.
    fn fail(&mut self, e: &Error) {
        match &mut self.phase {
            Phase::Handshake(conn) => {
                // rustls queued its alert: one more call hands it out. The call gets the same
                // bytes as the one that failed (rustls' handshake deframer keeps positions in
                // them: an empty slice here panicked inside rustls, found by `tls_bytes`).
                let status = conn.process_tls_records(&mut self.incoming[self.used..]);
                if let Ok(ConnectionState::EncodeTlsData(mut data)) = status.state {
                    let _ = encode(&mut data, &mut self.outgoing);
                }
            }
            Phase::Records(r) => r.alert(Some(e), &mut self.outgoing),
            Phase::Failed => {}
        }
        self.phase = Phase::Failed;
    }
}

/// Plaintext to the reader's buffer while it has room, the rest held.
fn deliver(held: &mut BytesMut, out: &mut BytesMut, room: usize, given: &mut usize, bytes: &[u8]) {
    let fits = room.saturating_sub(*given).min(bytes.len());
    let fits = if held.is_empty() { fits } else { 0 };
    out.extend_from_slice(&bytes[..fits]);
    *given += fits;
    held.extend_from_slice(&bytes[fits..]);
}

/// A handshake record from rustls, appended to `out`.
fn encode<Data>(data: &mut EncodeTlsData<'_, Data>, out: &mut Vec<u8>) -> Result<(), Error> {
    let start = out.len();
    let mut want = 4096;
    loop {
        out.resize(start + want, 0);
        match data.encode(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(e)) => want = e.required_size,
            Err(e) => {
                out.truncate(start);
                return Err(Error::General(e.to_string()));
            }
        }
    }
}
