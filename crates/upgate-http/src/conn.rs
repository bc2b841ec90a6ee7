//! `H1Conn`: one server-side HTTP/1.1 connection as a pure state machine. The driver feeds it
//! bytes (`receive`, or by lending the read buffer), pulls `Event`s, and asks it for the bytes
//! to write (`accept_body`, `respond`). It owns no socket and reads no clock.

use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};

use super::decode::{BodyDecoder, Decoded, Piece};
use super::encode::{self, BodyFraming, HeadParams, Response, ResponseBody};
use super::error::{ProtocolError, WrongState};
use super::framing::{Framing, Version};
use super::head::{self, HeadEnd, Method, RequestHead};
use super::limits::Limits;
use super::state::{CloseMode, ConnState, ReadState, WriteState};

/// Up to this many buffered bytes, a head whose first line has not ended is handed to httparse
/// without searching for its end first.
const FIRST_LOOK_BYTES: usize = 4096;

/// Searchers for a possible end of head, built once.
static HEAD_END: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
static BARE_HEAD_END: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"\n\n"));

/// What the connection has for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A validated request head. The body stays unread until `accept_body`.
    Head(RequestHead),
    /// Body bytes, in order, sliced from the read buffer.
    Data(Bytes),
    /// The request body is complete.
    EndOfMessage,
    /// Read more bytes from the peer, then call again.
    NeedData,
    /// Nothing to do until the caller acts: decide on the body, or finish the response.
    Paused,
    /// No more requests: the peer closed between messages or the exchange ended in a close.
    Closed,
}

/// Why [`H1Conn::decode_external`] gave no piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalError {
    /// The body bytes broke the protocol; the connection has failed.
    Protocol(ProtocolError),
    /// Not inside a body, or bytes are still buffered here.
    WrongState(WrongState),
}

impl std::fmt::Display for ExternalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExternalError::Protocol(e) => write!(f, "{e}"),
            ExternalError::WrongState(e) => write!(f, "{e}"),
        }
    }
}

/// What `respond` produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Head (and for `ResponseBody::Full`, the body) to write.
    pub bytes: Bytes,
    /// The caller must write the `Sized`/`Chunked` body after `bytes` (false for HEAD).
    pub send_body: bool,
    pub framing: BodyFraming,
    pub close: CloseMode,
}

/// A server-side HTTP/1.1 connection.
#[derive(Debug)]
pub struct H1Conn {
    buf: BytesMut,
    state: ConnState,
    limits: Limits,
    eof: bool,
    version: Version,
    method: Method,
}

impl H1Conn {
    pub fn new(limits: Limits) -> Self {
        H1Conn {
            buf: BytesMut::new(),
            state: ConnState::new(),
            limits,
            eof: false,
            version: Version::Http11,
            method: Method::Get,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends bytes read from the peer.
    pub fn receive(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Lends the read buffer to the driver, with at least `spare` bytes of free capacity, so the
    /// kernel can read straight into it. Give it back with [`H1Conn::restore_buffer`].
    pub fn lend_buffer(&mut self, spare: usize) -> BytesMut {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.capacity() - buf.len() < spare {
            buf.reserve(spare);
        }
        buf
    }

    /// Takes back the lent buffer, grown by whatever the driver read into it.
    pub fn restore_buffer(&mut self, buf: BytesMut) {
        debug_assert!(self.buf.is_empty());
        self.buf = buf;
    }

    /// The peer closed its sending side.
    pub fn receive_eof(&mut self) {
        self.eof = true;
    }

    /// Bytes received but not yet turned into events.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Mid-request: some bytes of a head have arrived, or a body is being read. The driver uses
    /// it to choose between the keep-alive and the head/body timeouts.
    pub fn in_request(&self) -> bool {
        match self.state.read {
            ReadState::Idle { .. } => !self.buf.is_empty(),
            ReadState::Body(_) => true,
            _ => false,
        }
    }

    /// Body bytes the decoder still expects for a `Content-Length` body (None when chunked or
    /// not reading a body).
    pub fn body_remaining(&self) -> Option<u64> {
        match &self.state.read {
            ReadState::Body(BodyDecoder::Length { remaining }) => Some(*remaining),
            _ => None,
        }
    }

    /// Records `n` body bytes that the driver moved past this state machine (spliced from the
    /// socket straight into a file). Legal only inside a `Content-Length` body, with nothing
    /// buffered (buffered bytes must come out as `Data` first) and `n` within what remains.
    pub fn skip_body(&mut self, n: u64) -> Result<(), WrongState> {
        match &mut self.state.read {
            ReadState::Body(BodyDecoder::Length { remaining })
                if self.buf.is_empty() && n <= *remaining =>
            {
                *remaining -= n;
                Ok(())
            }
            _ => Err(WrongState {
                op: "skip_body",
                state: self.state.read_name(),
            }),
        }
    }

    /// Hands the body bytes buffered here to the caller, undecoded, so it can go on decoding
    /// from a buffer of its own with [`H1Conn::decode_external`] (they come first). Nothing is
    /// lost: the decoder has consumed only what it already returned. Legal only inside a body.
    pub fn take_undecoded(&mut self) -> Result<BytesMut, WrongState> {
        match self.state.read {
            ReadState::Body(_) => Ok(self.buf.split()),
            _ => Err(WrongState {
                op: "take_undecoded",
                state: self.state.read_name(),
            }),
        }
    }

    /// Decodes body bytes that the driver read into a buffer of its own (a registered I/O
    /// buffer) instead of this connection's, so body data can be written out from where the
    /// kernel put it. Returns how many bytes of `input` the step used and what they held:
    /// `Data` as a range of `input`, `NeedData` (offer the unused rest again with more bytes),
    /// or `End` (the message ended exactly as with [`H1Conn::next_event`]; hand any bytes after
    /// it back with [`H1Conn::receive`]). After [`H1Conn::receive_eof`], `NeedData` is
    /// `IncompleteBody`. Legal only inside a body with nothing buffered here (see
    /// [`H1Conn::take_undecoded`]).
    pub fn decode_external(&mut self, input: &[u8]) -> Result<(usize, Piece), ExternalError> {
        let ReadState::Body(decoder) = &mut self.state.read else {
            return Err(ExternalError::WrongState(WrongState {
                op: "decode_external",
                state: self.state.read_name(),
            }));
        };
        if !self.buf.is_empty() {
            return Err(ExternalError::WrongState(WrongState {
                op: "decode_external with bytes buffered",
                state: "Body",
            }));
        }
        match decoder.decode_slice(input, &self.limits) {
            Ok((used, Piece::End)) => {
                self.state.on_end_of_message();
                Ok((used, Piece::End))
            }
            Ok((_, Piece::NeedData)) if self.eof => Err(ExternalError::Protocol(
                self.fail(ProtocolError::IncompleteBody),
            )),
            Ok(step) => Ok(step),
            Err(e) => Err(ExternalError::Protocol(self.fail(e))),
        }
    }

    /// Next event from the buffered bytes.
    pub fn next_event(&mut self) -> Result<Event, ProtocolError> {
        loop {
            match &mut self.state.read {
                ReadState::Idle { .. } => {
                    if self.state.write != WriteState::Idle {
                        return Ok(Event::Paused);
                    }
                    return self.next_head();
                }
                ReadState::AwaitingDecision(_) => return Ok(Event::Paused),
                ReadState::Body(decoder) => {
                    let decoded = decoder.decode(&mut self.buf, &self.limits);
                    return match decoded {
                        Ok(Decoded::Data(b)) => Ok(Event::Data(b)),
                        Ok(Decoded::End) => {
                            self.state.on_end_of_message();
                            Ok(Event::EndOfMessage)
                        }
                        Ok(Decoded::NeedData) if self.eof => {
                            Err(self.fail(ProtocolError::IncompleteBody))
                        }
                        Ok(Decoded::NeedData) => Ok(Event::NeedData),
                        Err(e) => Err(self.fail(e)),
                    };
                }
                ReadState::Done => {
                    if !self.state.try_next_cycle() {
                        return Ok(if self.state.keep_alive {
                            Event::Paused
                        } else {
                            Event::Closed
                        });
                    }
                }
                ReadState::Closed => return Ok(Event::Closed),
                ReadState::Failed(e) => return Err(*e),
            }
        }
    }

    fn next_head(&mut self) -> Result<Event, ProtocolError> {
        let ReadState::Idle { scanned } = self.state.read else {
            unreachable!("next_head outside Idle");
        };
        if scanned == 0 {
            // RFC 9112 §2.2: ignore empty lines before a request-line.
            let blank = self
                .buf
                .chunks_exact(2)
                .take_while(|p| *p == b"\r\n")
                .count();
            if blank > 0 {
                let _ = self.buf.split_to(blank * 2);
            }
        }
        if self.buf.is_empty() {
            if self.eof {
                self.state.on_peer_closed();
                return Ok(Event::Closed);
            }
            return Ok(Event::NeedData);
        }
        // Only the first `max_head_bytes + 1` bytes are ever looked at, so the verdict on an
        // oversized head does not depend on how its bytes were split across reads.
        let max = self.limits.max_head_bytes;
        let window = self.buf.len().min(max.saturating_add(1));
        // httparse runs once the bytes hold a possible end of head (one SIMD search over the
        // new bytes), so a head dribbled in byte by byte is not re-parsed from its start on every
        // read; while the first line is incomplete and short the search is skipped, since most
        // heads arrive whole in one read (re-parsing at most 4 KiB per read stays cheap). An
        // error counts only once the head has ended, so the verdict does not depend on splits.
        let region = &self.buf[scanned.saturating_sub(3)..window];
        let ended = |r: &[u8]| HEAD_END.find(r).is_some() || BARE_HEAD_END.find(r).is_some();
        if (scanned == 0 && window <= FIRST_LOOK_BYTES) || ended(region) {
            match head::parse_prefix(&self.buf[..window], &self.limits) {
                Ok(Some(parsed)) if parsed.len() <= max => {
                    let raw = self.buf.split_to(parsed.len()).freeze();
                    let head = parsed.into_head(raw);
                    return Ok(self.on_head(head));
                }
                Ok(Some(_)) => {
                    let e = head::overflow_error(&self.buf[..window], &self.limits);
                    return Err(self.fail(e));
                }
                Ok(None) => {}
                Err(e) if ended(&self.buf[..window]) => return Err(self.fail(e)),
                Err(_) => {}
            }
        }
        // Incomplete: check the new lines now, so a bare CR or LF is refused as it arrives.
        match head::find_end(&self.buf[..window], scanned).map_err(|e| self.fail(e))? {
            HeadEnd::Complete(_) => Err(self.fail(ProtocolError::BadRequestLine)),
            HeadEnd::Partial { .. } if window > max => {
                let e = head::overflow_error(&self.buf[..window], &self.limits);
                Err(self.fail(e))
            }
            HeadEnd::Partial { .. } if self.eof => Err(self.fail(ProtocolError::IncompleteHead)),
            HeadEnd::Partial { resume_at } => {
                self.state.read = ReadState::Idle { scanned: resume_at };
                Ok(Event::NeedData)
            }
        }
    }

    /// A head was parsed: the body waits for the caller's decision.
    fn on_head(&mut self, head: RequestHead) -> Event {
        let decoder = match head.info().framing {
            Framing::Length(n) => BodyDecoder::length(n),
            Framing::Chunked => BodyDecoder::chunked(),
        };
        self.version = head.version();
        self.method = head.method();
        self.state.on_head(head.info(), decoder);
        Event::Head(head)
    }

    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        self.state.on_error(e);
        e
    }

    /// The caller decided to read the body. Returns the interim `100 Continue` to write first
    /// when the client asked for it (and the body is not empty); nothing sends it otherwise.
    pub fn accept_body(&mut self) -> Result<Option<&'static [u8]>, WrongState> {
        let send = self.state.on_accept_body()?;
        Ok(send.then_some(encode::CONTINUE))
    }

    /// Encodes an informational response (102 to 199, e.g. `104 Upload Resumption Supported`)
    /// to the request whose final response is still owed. `None` for an HTTP/1.0 client, which
    /// must get none (RFC 9110 §15.2); 100 goes through [`H1Conn::accept_body`], 101 is never
    /// sent. Field values are the caller's and must hold no CR or LF.
    pub fn informational(
        &mut self,
        status: u16,
        fields: &[(&str, String)],
    ) -> Result<Option<Bytes>, WrongState> {
        if !(102..=199).contains(&status) || !matches!(self.state.write, WriteState::Owed { .. }) {
            return Err(WrongState {
                op: "informational response",
                state: "no final response owed, or not a 1xx status from 102",
            });
        }
        if self.version != Version::Http11 {
            return Ok(None);
        }
        Ok(Some(encode::encode_informational(status, fields)))
    }

    /// Encodes the final response. Adds `Connection: close` when the connection will close:
    /// the client asked, the body was left unread, or the peer broke the protocol.
    pub fn respond(&mut self, resp: &Response, date: &str) -> Result<Outgoing, WrongState> {
        let streams = matches!(resp.body, ResponseBody::Sized(_) | ResponseBody::Chunked);
        let omit_body =
            self.method == Method::Head && matches!(self.state.write, WriteState::Owed { .. });
        let mut framing = BodyFraming::Length;
        let keep_alive_before = self.state.keep_alive;
        if matches!(resp.body, ResponseBody::Chunked) {
            framing = if self.version == Version::Http11 {
                BodyFraming::Chunked
            } else {
                // An HTTP/1.0 client cannot read chunked: delimit by closing.
                self.state.keep_alive = false;
                BodyFraming::Close
            };
        }
        let send_body = streams && !omit_body && !matches!(resp.status, 204 | 304);
        let close = self.state.on_respond(send_body).inspect_err(|_| {
            // A refused call changes nothing.
            self.state.keep_alive = keep_alive_before;
        })?;
        let keep_alive_10 = close == CloseMode::KeepAlive && self.version == Version::Http10;
        let bytes = encode::encode_response(
            resp,
            &HeadParams {
                date,
                close: close != CloseMode::KeepAlive,
                keep_alive_10,
                omit_body,
                framing,
            },
        );
        Ok(Outgoing {
            bytes,
            send_body,
            framing,
            close,
        })
    }

    /// Frames one piece of a `Chunked` response body.
    pub fn encode_chunk(&self, data: &[u8], framing: BodyFraming) -> Bytes {
        match framing {
            BodyFraming::Chunked => encode::chunk(data),
            _ => Bytes::copy_from_slice(data),
        }
    }

    /// The streamed body of the last response was written in full.
    pub fn finish_body(&mut self) -> Result<(), WrongState> {
        self.state.on_body_written()
    }

    /// Close after the current exchange, whatever the client asked (the node is draining).
    pub fn disable_keep_alive(&mut self) {
        self.state.disable_keep_alive();
    }

    /// No more requests will come from this connection.
    pub fn is_closed(&self) -> bool {
        matches!(self.state.read, ReadState::Closed | ReadState::Failed(_))
            || (self.state.read == ReadState::Done && !self.state.keep_alive)
    }
}

#[cfg(test)]
mod tests;
