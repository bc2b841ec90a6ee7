//! Receiving a `Content-Length` body over TLS through registered buffers: TLS bytes are read
//! from the socket into a registered buffer (`READ_FIXED`), each record is decrypted where it
//! lies ([`super::tls::records`]), and the file's bytes are written from that same buffer
//! (`WRITE_FIXED`, while the next buffer is read: [`WriteBehind`]). Per body byte: the kernel's
//! copy into the buffer, the decryption in place, the kernel's copy into the page cache; no
//! copy in user space (`docs/architecture.md`, "TLS").
//!
//! Chunked bodies over TLS go through the connection's buffer instead: a chunk-size line may
//! straddle two records, whose plaintexts are not adjacent in the buffer.

use std::ops::Range;
use std::os::fd::RawFd;

use tokio::time::timeout;
use tokio_uring::buf::fixed::FixedBufPool;

use super::exchange::{BodyError, Exchange};
use super::ingest::{
    external_error, file_bytes, idle_timeout, next_buffer, write_held, Demux, ReceiveError,
};
use super::tls::records::{record_size, whole_record};
use super::tls::TlsStream;
use super::transport::Transport;
use super::write_behind::WriteBehind;
use crate::http::Piece;
use crate::metrics;
use crate::storage::Upload;

impl Exchange<'_> {
    /// Whether the rest of the body can take this path now: a TLS connection, a
    /// `Content-Length` body with bytes left, and no plaintext of it already opened (that is
    /// read the ordinary way first).
    pub(super) fn tls_fixed_ready(&self) -> bool {
        match &self.c.transport {
            Transport::Tls(tls) => {
                matches!(self.c.conn.body_remaining(), Some(rest) if rest > 0)
                    && self.c.conn.buffered() == 0
                    && !tls.session().borrow().has_plaintext()
            }
            _ => false,
        }
    }

    /// The rest of a `Content-Length` body over TLS into `file` through registered buffers,
    /// to its end. Bytes after the body (a pipelined request) go back to the connection, as
    /// plaintext or as TLS bytes not opened yet.
    // The loop's state is these values; a struct for one private call would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn tls_fixed_into(
        &mut self,
        pool: &FixedBufPool<Vec<u8>>,
        file: RawFd,
        sink: &mut Upload,
        limit: u64,
        seen: &mut dyn FnMut(&[u8]),
        mut demux: Option<&mut dyn Demux>,
        behind: &mut WriteBehind,
    ) -> Result<(), ReceiveError> {
        let Transport::Tls(tls) = &self.c.transport else {
            unreachable!("checked by tls_fixed_ready");
        };
        let tls: &TlsStream = tls;
        let idle = self.c.ctx.config.body_idle_timeout();
        let socket = tls.socket_fd();
        // TLS bytes not opened yet: the next buffer starts with them.
        let mut carry = tls.session().borrow_mut().take_unprocessed();
        let mut plain: Vec<Range<usize>> = Vec::new();
        // The largest record seen: a sender's bulk records are all this size.
        let mut record = 0;
        let mut held = Vec::new();
        // The last read got all it asked for: more is most likely waiting, so the next buffer
        // reads at once instead of waiting for readiness first (which, with the socket drained,
        // spares holding a registered buffer for a client that sends nothing).
        let mut streaming = false;
        loop {
            let wait = !whole_record(&carry) && !streaming;
            let mut buf = next_buffer(pool, socket, idle, behind, wait).await?;
            if !buf.put(&carry) {
                let e = std::io::Error::other("a TLS record larger than an I/O buffer");
                return Err(BodyError::Io(e).into());
            }
            carry.clear();
            if !whole_record(buf.pending()) {
                let want = record_aligned(buf.pending(), buf.room(), record);
                let read = timeout(idle, buf.read_from(socket, want, false));
                let n;
                (n, buf) = match behind.meanwhile(read).await {
                    Err(_) => return Err(idle_timeout()),
                    Ok((Ok(n), b)) => (n, b),
                    Ok((Err(e), _)) => return Err(BodyError::Io(e).into()),
                };
                streaming = n == want;
                if n == 0 {
                    // Cut before the body's end: the decoder names it.
                    self.c.conn.receive_eof();
                    self.c.conn.decode_external(&[]).map_err(external_error)?;
                    return Err(BodyError::Io(std::io::ErrorKind::UnexpectedEof.into()).into());
                }
                self.c.bytes_in += n as u64;
                metrics::received(n);
            }
            // Every whole record opened in place; the plaintext ranges, in order.
            let start = buf.pending_start();
            plain.clear();
            let opened = tls
                .session()
                .borrow_mut()
                .open_in_place(buf.pending_mut(), |_, r| {
                    plain.push(start + r.start..start + r.end)
                });
            let opened = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    let _ = tls.flush().await;
                    let e = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
                    return Err(BodyError::Io(e).into());
                }
            };
            record = record.max(opened.largest);
            carry.extend_from_slice(&buf.pending()[opened.used..]);
            // A KeyUpdate answer, if the peer asked for one.
            tls.flush().await.map_err(BodyError::Io)?;
            let mut pieces = Vec::new();
            let mut ended = false;
            for range in plain.drain(..) {
                if ended {
                    // Plaintext after the body: the next request's.
                    self.c.conn.receive(buf.bytes(range));
                    continue;
                }
                let mut at = range.start;
                loop {
                    let (used, piece) = self
                        .c
                        .conn
                        .decode_external(buf.bytes(at..range.end))
                        .map_err(external_error)?;
                    match piece {
                        Piece::Data(r) => {
                            let r = at + r.start..at + r.end;
                            let d = demux.as_deref_mut();
                            file_bytes(&buf, r, d, sink, limit, seen, &mut pieces, &mut held)?;
                            write_held(file, &mut held).await?;
                            at += used;
                        }
                        Piece::End => {
                            if let Some(d) = demux.as_mut() {
                                d.finish().map_err(ReceiveError::Demux)?;
                            }
                            self.c.conn.receive(buf.bytes(at + used..range.end));
                            ended = true;
                            break;
                        }
                        Piece::NeedData => break,
                    }
                    // The last byte of a body: one more call says it ended.
                    if at == range.end && self.c.conn.body_remaining() != Some(0) {
                        break;
                    }
                }
            }
            if opened.closed && !ended {
                // close_notify before the body's end.
                self.c.conn.receive_eof();
                self.c.conn.decode_external(&[]).map_err(external_error)?;
            }
            if ended {
                // TLS bytes after the body's records belong to the next request.
                tls.session().borrow_mut().receive(&carry);
            }
            if !pieces.is_empty() {
                behind
                    .submit(buf, file, pieces)
                    .await
                    .map_err(ReceiveError::File)?;
            }
            if ended {
                return Ok(());
            }
        }
    }
}

/// How much to read into a buffer holding `pending` (the start of a record, or nothing) with
/// `room` after it, so that it ends on a record boundary when the sender's records are all
/// `record` bytes: the rest of the pending record, then as many whole records as fit. A
/// record cut at a buffer's end has to be moved to the next buffer's front, a copy of up to
/// 16 KiB per 64 KiB buffer; reading to a boundary leaves the buffer's tail unused instead.
/// The whole room while the record size or the pending record's size is not known yet.
fn record_aligned(pending: &[u8], room: usize, record: usize) -> usize {
    let first = match pending {
        [] => 0,
        _ => match record_size(pending) {
            Some(size) if size > pending.len() => size - pending.len(),
            _ => return room,
        },
    };
    if record == 0 || first > room {
        return room;
    }
    let whole = (room - first) / record;
    match first + whole * record {
        0 => room,
        want => want,
    }
}

#[cfg(test)]
mod tests {
    use super::record_aligned;

    /// TLS 1.3 AES-GCM records of 16 KiB of plaintext: 5 + 16384 + 1 + 16 bytes.
    const FULL: usize = 16406;

    #[test]
    fn reads_end_on_a_record_boundary_once_the_record_size_is_known() {
        // Nothing pending: three whole records fit in 64 KiB, not four.
        assert_eq!(record_aligned(&[], 65536, FULL), 3 * FULL);
        // A record begun: its rest, then whole records.
        let mut pending = vec![23, 3, 3, 0x40, 0x11];
        pending.resize(100, 0);
        assert_eq!(record_aligned(&pending, 65436, FULL), FULL - 100 + 2 * FULL);
        // Unknown sizes, or a record larger than the room: the whole room.
        assert_eq!(record_aligned(&[], 65536, 0), 65536);
        assert_eq!(record_aligned(&[23, 3], 65534, FULL), 65534);
        assert_eq!(record_aligned(&pending, 1000, FULL), 1000);
        // Less than one record of room: the whole room, never a read of nothing.
        assert_eq!(record_aligned(&[], 1000, FULL), 1000);
    }
}
