//! Receiving a request body into an upload, each byte by the cheapest path the transport and
//! the store allow: bytes read with the head are written from the connection's buffer; with a
//! descriptor on both sides the rest is spliced (socket → pipe → file) or read into registered
//! buffers and written from them; otherwise it goes through the connection's buffer.

use std::io;
use std::ops::Range;
use std::os::fd::RawFd;

use bytes::Bytes;

use tokio::time::timeout;
use tokio_uring::buf::fixed::FixedBufPool;

use super::connection::BodyIoError;
use super::exchange::{wrong_state, BodyError, Exchange};
use super::write_behind::WriteBehind;
use crate::http::{Event, ExternalError, Piece, ProtocolError};
use crate::metrics::{self, BodyPath, TimeoutKind};
use crate::storage::fixed::{self, BodyBuf};
use crate::storage::mapped::Window;
use crate::storage::splice::{Pipe, PRELOAD_MAX};
use crate::storage::{ops, Upload, UploadHandle};

/// Why a splice of body bytes into a file stopped.
#[derive(Debug)]
pub enum SpliceError {
    /// Reading the body failed (the client's side).
    Body(BodyError),
    /// Writing the file failed (the node's side: full disk, I/O error).
    File(std::io::Error),
    /// The check run over each spliced piece refused it (a form's delimiter among file bytes).
    Check(String),
}

/// Runs over each piece spliced into the file, once it is there: its offset and length.
pub type SpliceCheck<'a> = &'a mut dyn FnMut(u64, u64) -> Result<(), SpliceError>;

/// How an upload body may travel to its file.
#[derive(Debug, Clone, Copy)]
pub struct BodyPlan {
    /// Splice the rest of a `Content-Length` body socket → pipe → file (`zero_copy`, and no
    /// digest to compute: spliced bytes are never seen by the node). With a demux, only the
    /// middle of a large file part is spliced, then checked in place.
    pub splice: bool,
    /// Largest body accepted: a chunked body growing past it fails with `TooLarge`.
    pub limit: u64,
}

/// Why a body could not be received into its file.
#[derive(Debug)]
pub enum ReceiveError {
    /// Reading the body failed (the client's side).
    Body(BodyError),
    /// Writing the file failed (the node's side: full disk, I/O error).
    File(io::Error),
    /// A chunked body grew past the limit.
    TooLarge(u64),
    /// The [`Demux`] found the body malformed (a form's framing): its reason.
    Demux(String),
}

/// What a [`Demux`] found in the body bytes it was shown.
#[derive(Debug)]
pub enum Demuxed {
    /// File bytes: this range of the input (written from the buffer the input lies in).
    File(Range<usize>),
    /// File bytes the demux had held back (a few, copied): written as they are.
    Held(Bytes),
    /// Bytes that are not the file's (framing, other fields): nothing to write.
    Nothing,
}

/// Separates the file's bytes from the rest of a body that carries more than the file (a
/// `multipart/form-data` form): the driver shows it every body byte in order, in whatever
/// buffer the bytes arrived (the connection's or a registered one), and writes the ranges it
/// names to the sink. A body with a demux is never spliced: its framing has to be seen.
pub trait Demux {
    /// Reads from the start of `input`; returns how many bytes it used and what they were.
    /// Called again with the rest until all of `input` is used.
    fn demux(&mut self, input: &[u8]) -> Result<(usize, Demuxed), String>;
    /// The body ended: `Err` when its framing did not end properly.
    fn finish(&mut self) -> Result<(), String>;
    /// For a body whose file bytes the driver may splice past the demux and check in place
    /// afterwards ([`Demux::check_moved`]): inside the file's bytes, what the demux held back,
    /// handed out as file bytes; `None` when every byte must be shown (the default).
    fn release(&mut self) -> Option<Bytes> {
        None
    }
    /// Checks file bytes moved past the demux after [`Demux::release`] (in windows that overlap
    /// by [`Demux::overlap`]): `Err` when they hold what would have ended the file.
    fn check_moved(&self, _bytes: &[u8]) -> Result<(), String> {
        Err("this body's bytes must all be shown".into())
    }
    /// How many bytes at the end of the last window checked by [`Demux::check_moved`] may
    /// begin what the bytes after them finish (a delimiter line cut off there): the driver
    /// takes them back from the file and shows them to the demux first.
    fn cut_off(&self, _bytes: &[u8]) -> Result<usize, String> {
        Ok(0)
    }
    /// How many bytes consecutive windows of [`Demux::check_moved`] must share.
    fn overlap(&self) -> usize {
        0
    }
    /// How many bytes at the body's end must be shown to the demux rather than moved: the
    /// end of the file and what may follow it.
    fn tail(&self) -> usize {
        0
    }
}

/// Bodies whose rest is at least this much larger than the demux's tail have their file bytes
/// spliced and checked in place; smaller ones go through the registered buffers.
const SPLICE_DEMUXED_FROM: u64 = 1 << 20;

/// A demux, and the body bytes read before the receive began (while the demux found the file's
/// start), which it sees first.
pub struct Demuxing<'a> {
    pub demux: &'a mut dyn Demux,
    pub leftover: Bytes,
}

impl From<BodyError> for ReceiveError {
    fn from(e: BodyError) -> Self {
        ReceiveError::Body(e)
    }
}

impl From<SpliceError> for ReceiveError {
    fn from(e: SpliceError) -> Self {
        match e {
            SpliceError::Body(b) => ReceiveError::Body(b),
            SpliceError::File(e) => ReceiveError::File(e),
            SpliceError::Check(why) => ReceiveError::Demux(why),
        }
    }
}

pub(super) fn external_error(e: ExternalError) -> ReceiveError {
    ReceiveError::Body(match e {
        ExternalError::Protocol(e) => BodyError::Protocol(e),
        ExternalError::WrongState(e) => BodyError::WrongState(e),
    })
}

pub(super) fn idle_timeout() -> ReceiveError {
    metrics::timeout(TimeoutKind::Body);
    ReceiveError::Body(BodyError::IdleTimeout)
}

impl Exchange<'_> {
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
    /// `body_idle_timeout_ms`. `check`, when given, runs over each piece right after it is in
    /// the file, while its bytes are still in the CPU's cache. `preload`: body bytes already
    /// read (with the head), written into the pipe first so that the first splice into the
    /// file carries them too (one io-wq hand-off fewer than writing them on their own).
    /// Returns the socket bytes moved (all of `len` unless it fails); the file then holds
    /// `preload` before them.
    async fn splice_into(
        &mut self,
        socket: RawFd,
        file: RawFd,
        mut offset: u64,
        len: u64,
        mut check: Option<SpliceCheck<'_>>,
        preload: Option<Bytes>,
    ) -> Result<u64, SpliceError> {
        let pipe = Pipe::take().map_err(SpliceError::File)?;
        let idle = self.c.ctx.config.body_idle_timeout();
        let mut moved = 0;
        let mut preloaded = 0;
        if let Some(bytes) = preload {
            pipe.preload(&bytes).map_err(SpliceError::File)?;
            preloaded = bytes.len();
        }
        while moved < len {
            let want = (len - moved).min((pipe.capacity() - preloaded) as u64) as usize;
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
            let piece = preloaded + n;
            pipe.drain_to(file, offset, piece)
                .await
                .map_err(SpliceError::File)?;
            // Checked right after its copy, not overlapped with the next one: the bytes are
            // then still in cache (performance.md, "The check right after the copy").
            if let Some(check) = check.as_mut() {
                check(offset, piece as u64)?;
            }
            self.c
                .conn
                .skip_body(n as u64)
                .map_err(|e| SpliceError::Body(BodyError::WrongState(e)))?;
            self.c.bytes_in += n as u64;
            crate::metrics::received(n);
            offset += piece as u64;
            moved += n as u64;
            preloaded = 0;
        }
        pipe.put_back();
        Ok(moved)
    }

    /// The middle of a form's file part, spliced: `held` (the demux's held-back bytes) is
    /// written, the next `moved` body bytes are spliced socket → pipe → file, and each piece is
    /// checked in place as it lands for what would have ended the file ([`Demux::check_moved`],
    /// over the file's pages mapped read-only). The demux then sees the body's tail as if it
    /// had seen these bytes, after the returned bytes: the moved bytes' end that may begin a
    /// delimiter line ([`Demux::cut_off`]), taken back out of the file. A form whose file bytes pass `limit` fails before any is
    /// spliced: every moved byte is a file byte, or the form is refused.
    #[allow(clippy::too_many_arguments)]
    async fn splice_past_demux(
        &mut self,
        socket: RawFd,
        file: RawFd,
        sink: &mut Upload,
        limit: u64,
        demux: &dyn Demux,
        held: Bytes,
        moved: u64,
    ) -> Result<Bytes, ReceiveError> {
        let from = sink.written();
        append_checked(sink, held, limit, &mut |_| {}).await?;
        if sink.written() + moved > limit {
            return Err(ReceiveError::TooLarge(limit));
        }
        // Each piece is checked as it lands, with the bytes before it that a delimiter line
        // could start in (the held bytes first), while the socket keeps filling.
        let overlap = demux.overlap() as u64;
        let mut window = Window::new(file);
        let mut check = |at: u64, len: u64| {
            let start = at.saturating_sub(overlap).max(from);
            window
                .with_range(start, at + len, |bytes| demux.check_moved(bytes))
                .map_err(SpliceError::File)?
                .map_err(SpliceError::Check)
        };
        let at = sink.written();
        let n = self
            .splice_into(socket, file, at, moved, Some(&mut check), None)
            .await?;
        // What may begin a delimiter line at the moved bytes' end is the demux's to decide
        // with the bytes that follow: taken back out of the file, shown to it first.
        let end = at + n;
        let back = window
            .with_range(end.saturating_sub(overlap).max(from), end, |bytes| {
                let k = demux.cut_off(bytes)?;
                Ok(Bytes::copy_from_slice(&bytes[bytes.len() - k..]))
            })
            .map_err(ReceiveError::File)?
            .map_err(ReceiveError::Demux)?;
        // Unmapped before the file may shrink below it.
        drop(window);
        if !back.is_empty() {
            // Inline (no `IORING_OP_FTRUNCATE` in io-uring 0.6): at most `overlap` bytes of
            // this file's last page-cache page, and only when a CR ends the moved bytes.
            let keep = (end - back.len() as u64) as libc::off_t;
            // SAFETY: `file` is the upload's open descriptor for the whole call.
            if unsafe { libc::ftruncate(file, keep) } != 0 {
                return Err(ReceiveError::File(std::io::Error::last_os_error()));
            }
        }
        sink.advance(n - back.len() as u64);
        metrics::body_bytes(BodyPath::Splice, n as usize - back.len());
        Ok(back)
    }

    /// Receives the whole body into `sink` (requires `accept_body` first), each byte by the
    /// cheapest path allowed:
    ///
    /// 1. bytes already in the connection's buffer (read with the head) are written from it;
    /// 2. with `plan.splice`, the rest of a `Content-Length` body is spliced socket → pipe →
    ///    file and never enters user space;
    /// 3. everything else (chunked bodies; all bodies without `plan.splice`) goes through the
    ///    thread's registered buffers: `READ_FIXED` from the socket, the decoder run over the
    ///    buffer in place, `WRITE_FIXED` of each data range from the same buffer
    ///    ([`crate::storage::fixed`]); plain reads into the connection's buffer only when the
    ///    kernel refused to register them.
    ///
    /// Paths 2 and 3 need a descriptor on both sides ([`Transport::raw_fd`] and
    /// [`UploadHandle::splice_target`]); without one (TLS, memory, a remote store) every byte
    /// takes path 1. `seen` is shown every body byte of paths 1 and 3, in order (the digest).
    ///
    /// [`Transport::raw_fd`]: super::Transport::raw_fd
    ///
    /// With a [`Demuxing`], every body byte is shown to its demux first and only the ranges it
    /// names are written (paths 1 and 3; never spliced).
    pub async fn receive_into(
        &mut self,
        sink: &mut Upload,
        plan: BodyPlan,
        seen: &mut dyn FnMut(&[u8]),
        mut demux: Option<Demuxing<'_>>,
    ) -> Result<(), ReceiveError> {
        if let Some(d) = demux.as_mut() {
            let leftover = std::mem::take(&mut d.leftover);
            write_demuxed(&mut *d.demux, leftover, sink, plan.limit, seen).await?;
        }
        // Body bytes read with the head, held to go into the file with the splice that follows.
        let mut preload: Option<Bytes> = None;
        loop {
            match self.c.conn.next_event().map_err(BodyError::Protocol)? {
                Event::Data(bytes) => {
                    let len = bytes.len();
                    self.c.bytes_in += len as u64;
                    if let Some(d) = demux.as_mut() {
                        write_demuxed(&mut *d.demux, bytes, sink, plan.limit, seen).await?;
                        continue;
                    }
                    if sink.written() + len as u64 > plan.limit {
                        return Err(ReceiveError::TooLarge(plan.limit));
                    }
                    seen(&bytes);
                    let spliced_next = plan.splice
                        && preload.is_none()
                        && len <= PRELOAD_MAX
                        && self.splice_ready().is_some()
                        && self.c.transport.raw_fd().is_some()
                        && sink.splice_target().is_some();
                    if spliced_next {
                        metrics::body_bytes(BodyPath::Buffered, len);
                        preload = Some(bytes);
                        continue;
                    }
                    sink.append_at(sink.written(), bytes)
                        .await
                        .map_err(ReceiveError::File)?;
                    metrics::body_bytes(BodyPath::Buffered, len);
                    continue;
                }
                Event::EndOfMessage => {
                    if let Some(d) = demux.as_mut() {
                        d.demux.finish().map_err(ReceiveError::Demux)?;
                    }
                    return Ok(());
                }
                Event::NeedData => {}
                other => return Err(wrong_state(other).into()),
            }
            let fds = self.c.transport.raw_fd().zip(sink.splice_target());
            if let (true, None, Some((socket, file)), Some(rest)) =
                (plan.splice, demux.as_ref(), fds, self.splice_ready())
            {
                let held = preload.take();
                let ahead = held.as_ref().map_or(0, |b| b.len() as u64);
                let n = self
                    .splice_into(socket, file, sink.written(), rest, None, held)
                    .await?;
                sink.advance(ahead + n);
                metrics::body_bytes(BodyPath::Splice, n as usize);
                continue;
            }
            // Not spliced after all: held bytes are written before anything else.
            if let Some(bytes) = preload.take() {
                sink.append_at(sink.written(), bytes)
                    .await
                    .map_err(ReceiveError::File)?;
            }
            if let (true, Some(d), Some((socket, file)), Some(rest)) =
                (plan.splice, demux.as_mut(), fds, self.splice_ready())
            {
                let tail = d.demux.tail() as u64;
                if rest >= tail + SPLICE_DEMUXED_FROM {
                    if let Some(held) = d.demux.release() {
                        let moved = rest - tail;
                        let back = self
                            .splice_past_demux(
                                socket, file, sink, plan.limit, &*d.demux, held, moved,
                            )
                            .await?;
                        write_demuxed(&mut *d.demux, back, sink, plan.limit, seen).await?;
                        continue;
                    }
                }
            }
            if let (true, Some(file), Some(pool)) =
                (self.tls_fixed_ready(), sink.splice_target(), fixed::pool())
            {
                let demux = demux.map(|d| d.demux);
                let mut behind = WriteBehind::default();
                let limit = plan.limit;
                let received = self
                    .tls_fixed_into(&pool, file, sink, limit, seen, demux, &mut behind)
                    .await;
                // Every write ends first: the caller closes or removes the file next.
                let written = behind.finish().await.map_err(ReceiveError::File);
                return received.and(written);
            }
            match fds.and_then(|fds| Some((fds, fixed::pool()?))) {
                Some(((socket, file), pool)) => {
                    let demux = demux.map(|d| d.demux);
                    let mut behind = WriteBehind::default();
                    let limit = plan.limit;
                    let received = self
                        .fixed_into(&pool, socket, file, sink, limit, seen, demux, &mut behind)
                        .await;
                    // Every write ends first: the caller closes or removes the file next.
                    let written = behind.finish().await.map_err(ReceiveError::File);
                    return received.and(written);
                }
                None => match self.c.read_body_more().await {
                    Ok(_) => {}
                    Err(BodyIoError::IdleTimeout) => return Err(BodyError::IdleTimeout.into()),
                    Err(BodyIoError::Io(e)) => return Err(BodyError::Io(e).into()),
                },
            }
        }
    }

    /// The rest of the body through registered buffers, to its end. A buffer is taken only
    /// once the socket is readable and given back when a non-blocking read finds it drained,
    /// so a slow client pins none between its bursts. A buffer's file bytes are written while
    /// the next buffer is read: through `behind`, which the caller finishes on every exit.
    // The loop's state is these values; a struct for one private call would only rename them.
    #[allow(clippy::too_many_arguments)]
    async fn fixed_into(
        &mut self,
        pool: &FixedBufPool<Vec<u8>>,
        socket: RawFd,
        file: RawFd,
        sink: &mut Upload,
        limit: u64,
        seen: &mut dyn FnMut(&[u8]),
        mut demux: Option<&mut dyn Demux>,
        behind: &mut WriteBehind,
    ) -> Result<(), ReceiveError> {
        let idle = self.c.ctx.config.body_idle_timeout();
        // What the decoder could not use yet from the connection's buffer: part of a
        // chunk-size or trailer line (a few bytes of framing), carried into the registered
        // buffer ahead of the next read.
        let mut carry = self
            .c
            .conn
            .take_undecoded()
            .map_err(BodyError::WrongState)?;
        // A buffer to read into at once, without waiting for the socket first.
        let mut ready: Option<BodyBuf> = None;
        let mut nowait_works = true;
        loop {
            let (mut buf, nowait) = match ready.take() {
                Some(buf) => (buf, nowait_works),
                None => {
                    let mut buf = next_buffer(pool, socket, idle, behind, true).await?;
                    if !buf.put(&carry) {
                        let e = io::Error::other("carried framing larger than an I/O buffer");
                        return Err(BodyError::Io(e).into());
                    }
                    carry.clear();
                    (buf, false)
                }
            };
            // A Content-Length body is never read past its end: nothing to hand back after it.
            let want = match self.c.conn.body_remaining() {
                Some(rest) => rest.min(buf.room() as u64) as usize,
                None => buf.room(),
            };
            let read = timeout(idle, buf.read_from(socket, want, nowait));
            (buf, _) = match behind.meanwhile(read).await {
                Err(_) => return Err(idle_timeout()),
                Ok((Ok(n), b)) => {
                    if n == 0 {
                        self.c.conn.receive_eof();
                    } else {
                        self.c.bytes_in += n as u64;
                        metrics::received(n);
                    }
                    (b, n)
                }
                Ok((Err(e), b)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Drained for now: the buffer goes back to the pool until the next poll.
                    carry.extend_from_slice(b.pending());
                    continue;
                }
                Ok((Err(e), b)) if nowait && e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    nowait_works = false;
                    ready = Some(b);
                    continue;
                }
                Ok((Err(e), _)) => return Err(BodyError::Io(e).into()),
            };
            // The file's bytes in this buffer, each with its offset in the file.
            let mut pieces = Vec::new();
            let mut held = Vec::new();
            let mut ended = false;
            loop {
                let at = buf.pending_start();
                let (used, piece) = self
                    .c
                    .conn
                    .decode_external(buf.pending())
                    .map_err(external_error)?;
                match piece {
                    Piece::Data(r) => {
                        let range = at + r.start..at + r.end;
                        let d = demux.as_deref_mut();
                        file_bytes(&buf, range, d, sink, limit, seen, &mut pieces, &mut held)?;
                        write_held(file, &mut held).await?;
                        buf.consume(used);
                    }
                    Piece::NeedData => {
                        buf.consume(used);
                        break;
                    }
                    Piece::End => {
                        buf.consume(used);
                        if let Some(d) = demux.as_mut() {
                            d.finish().map_err(ReceiveError::Demux)?;
                        }
                        // Bytes after the body (a pipelined request) go back to the connection.
                        self.c.conn.receive(buf.pending());
                        ended = true;
                        break;
                    }
                }
            }
            if pieces.is_empty() {
                if ended {
                    return Ok(());
                }
                buf.compact();
                ready = Some(buf);
                continue;
            }
            // What the decoder left (a partial framing line) starts the next buffer.
            carry.extend_from_slice(buf.pending());
            behind
                .submit(buf, file, pieces)
                .await
                .map_err(ReceiveError::File)?;
            if ended {
                return Ok(());
            }
            ready = BodyBuf::try_take(pool).map(|mut b| {
                b.put(&carry);
                carry.clear();
                b
            });
        }
    }
}

/// A registered buffer for the next read of a body from `socket`: after the socket is
/// readable when `wait` (so a client that sends nothing pins no buffer), collecting the
/// writes that end meanwhile. When every buffer is taken, this body's own writes end first
/// (see `write_behind`), then it waits for one, bounded by `idle`.
pub(super) async fn next_buffer(
    pool: &FixedBufPool<Vec<u8>>,
    socket: RawFd,
    idle: std::time::Duration,
    behind: &mut WriteBehind,
    wait: bool,
) -> Result<BodyBuf, ReceiveError> {
    if wait {
        let poll = timeout(idle, ops::readable(socket));
        match behind.meanwhile(poll).await {
            Err(_) => return Err(idle_timeout()),
            Ok(Err(e)) => return Err(BodyError::Io(e).into()),
            Ok(Ok(())) => {}
        }
    }
    match BodyBuf::try_take(pool) {
        Some(buf) => Ok(buf),
        None => {
            behind.finish().await.map_err(ReceiveError::File)?;
            Ok(BodyBuf::take(pool, idle).await.ok_or(BodyError::NoBuffer)?)
        }
    }
}

/// The file's bytes among the body bytes at `range` of `buf`: the ranges of `buf` to write go
/// to `pieces`, the few bytes a demux held back to `held` (the caller writes them with
/// [`write_held`]), each with its offset in the file.
// The body's state is these values; a struct for two private callers would only rename them.
#[allow(clippy::too_many_arguments)]
pub(super) fn file_bytes(
    buf: &BodyBuf,
    range: Range<usize>,
    demux: Option<&mut (dyn Demux + '_)>,
    sink: &mut Upload,
    limit: u64,
    seen: &mut dyn FnMut(&[u8]),
    pieces: &mut Vec<(Range<usize>, u64)>,
    held: &mut Vec<(Bytes, u64)>,
) -> Result<(), ReceiveError> {
    let Some(d) = demux else {
        let file_at = claim(sink, limit, seen, buf.bytes(range.clone()))?;
        pieces.push((range, file_at));
        return Ok(());
    };
    demux_each(d, buf.bytes(range.clone()), |found| match found {
        Demuxed::File(f) => {
            let f = range.start + f.start..range.start + f.end;
            let at = claim(sink, limit, seen, buf.bytes(f.clone()))?;
            pieces.push((f, at));
            Ok(())
        }
        // A few bytes the demux held back: their own write.
        Demuxed::Held(b) => {
            let at = claim(sink, limit, seen, &b)?;
            held.push((b, at));
            Ok(())
        }
        Demuxed::Nothing => Ok(()),
    })
}

/// Writes (and empties) the held-back file bytes of [`file_bytes`].
pub(super) async fn write_held(
    file: RawFd,
    held: &mut Vec<(Bytes, u64)>,
) -> Result<(), ReceiveError> {
    for (bytes, offset) in held.drain(..) {
        ops::write_all_at(file, bytes, offset)
            .await
            .map_err(ReceiveError::File)?;
    }
    Ok(())
}

/// Claims `bytes`, the next file bytes of a body read into registered buffers, within `limit`:
/// shows them to `seen` and advances `sink` past them; returns their offset in the file, where
/// the caller writes them.
fn claim(
    sink: &mut Upload,
    limit: u64,
    seen: &mut dyn FnMut(&[u8]),
    bytes: &[u8],
) -> Result<u64, ReceiveError> {
    let at = sink.written();
    if at + bytes.len() as u64 > limit {
        return Err(ReceiveError::TooLarge(limit));
    }
    seen(bytes);
    sink.advance(bytes.len() as u64);
    metrics::body_bytes(BodyPath::Fixed, bytes.len());
    Ok(at)
}

/// Runs `demux` over all of `input`, handing each find to `found` (ranges relative to
/// `input`), in order.
fn demux_each(
    demux: &mut dyn Demux,
    input: &[u8],
    mut found: impl FnMut(Demuxed) -> Result<(), ReceiveError>,
) -> Result<(), ReceiveError> {
    let mut at = 0;
    let mut idle = 0;
    while at < input.len() {
        let (used, what) = demux.demux(&input[at..]).map_err(ReceiveError::Demux)?;
        match what {
            Demuxed::File(r) => found(Demuxed::File(at + r.start..at + r.end))?,
            Demuxed::Nothing if used == 0 => {
                // A state change without input (a part's end): bounded, or a bug.
                idle += 1;
                if idle > 64 {
                    return Err(ReceiveError::Demux("the form's parser stalled".into()));
                }
            }
            other => found(other)?,
        }
        if used > 0 {
            idle = 0;
        }
        at += used;
    }
    Ok(())
}

/// Shows `bytes` (body bytes in the connection's buffer) to `demux` and appends the file's
/// parts of them to `sink`.
async fn write_demuxed(
    demux: &mut dyn Demux,
    bytes: Bytes,
    sink: &mut Upload,
    limit: u64,
    seen: &mut dyn FnMut(&[u8]),
) -> Result<(), ReceiveError> {
    let mut parts = Vec::new();
    demux_each(demux, &bytes, |found| {
        match found {
            Demuxed::File(r) => parts.push(bytes.slice(r)),
            Demuxed::Held(b) => parts.push(b),
            Demuxed::Nothing => {}
        }
        Ok(())
    })?;
    for part in parts {
        append_checked(sink, part, limit, seen).await?;
    }
    Ok(())
}

/// Appends file bytes from a plain buffer, within the limit.
async fn append_checked(
    sink: &mut Upload,
    part: Bytes,
    limit: u64,
    seen: &mut dyn FnMut(&[u8]),
) -> Result<(), ReceiveError> {
    let len = part.len();
    if len == 0 {
        return Ok(());
    }
    if sink.written() + len as u64 > limit {
        return Err(ReceiveError::TooLarge(limit));
    }
    seen(&part);
    sink.append_at(sink.written(), part)
        .await
        .map_err(ReceiveError::File)?;
    metrics::body_bytes(BodyPath::Buffered, len);
    Ok(())
}
