//! Body decoders: Content-Length and chunked. Pure functions of the buffered bytes; data comes
//! out as `Bytes` split off the read buffer (no copy), or — for bytes the caller keeps in a
//! buffer of its own (the driver's registered I/O buffers) — as ranges of that buffer
//! ([`BodyDecoder::decode_slice`]). Line ends are found with `memchr`.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

use super::error::ProtocolError;
use super::limits::Limits;

/// One step of decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes, in order.
    Data(Bytes),
    /// The buffered bytes are used up; more must be read.
    NeedData,
    /// The body ended; bytes after it (if any) stay in the buffer for the next message.
    End,
}

/// One step of decoding a slice the caller owns ([`BodyDecoder::decode_slice`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Body bytes: this range of the input (never empty; it ends where the step stopped).
    Data(Range<usize>),
    /// The input is used up as far as it can be; offer the unused rest again with more bytes.
    NeedData,
    /// The body ended; input after the bytes used belongs to the next message.
    End,
}

/// How far through the body the decoder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyDecoder {
    Length { remaining: u64 },
    Chunked(ChunkedState),
}

/// Where a chunked decoder stands (RFC 9112 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkedState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data.
    Data {
        remaining: u64,
    },
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer fields until an empty line.
    Trailers {
        seen: usize,
    },
    Done,
}

impl BodyDecoder {
    pub fn length(n: u64) -> Self {
        BodyDecoder::Length { remaining: n }
    }

    pub fn chunked() -> Self {
        BodyDecoder::Chunked(ChunkedState::Size)
    }

    /// The whole body has been decoded.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            BodyDecoder::Length { remaining: 0 } | BodyDecoder::Chunked(ChunkedState::Done)
        )
    }

    /// Decodes from `buf`, consuming what it returns or skips.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Decoded, ProtocolError> {
        let (used, piece) = self.decode_slice(buf, limits)?;
        Ok(match piece {
            Piece::Data(range) => {
                buf.advance(range.start);
                Decoded::Data(buf.split_to(range.len()).freeze())
            }
            Piece::NeedData => {
                buf.advance(used);
                Decoded::NeedData
            }
            Piece::End => {
                buf.advance(used);
                Decoded::End
            }
        })
    }

    /// Decodes from the front of `input` without copying or consuming it: returns how many
    /// bytes the step used up and what they held. Data comes out as a range of `input` that ends
    /// at the bytes used. The caller drops the used bytes and offers the rest again (a partial
    /// chunk-size line, the next message), followed by whatever it reads next. Same verdicts as
    /// [`BodyDecoder::decode`], which is this plus the buffer bookkeeping.
    pub fn decode_slice(
        &mut self,
        input: &[u8],
        limits: &Limits,
    ) -> Result<(usize, Piece), ProtocolError> {
        match self {
            BodyDecoder::Length { remaining } => {
                if *remaining == 0 {
                    return Ok((0, Piece::End));
                }
                if input.is_empty() {
                    return Ok((0, Piece::NeedData));
                }
                let n = (*remaining).min(input.len() as u64) as usize;
                *remaining -= n as u64;
                Ok((n, Piece::Data(0..n)))
            }
            BodyDecoder::Chunked(state) => decode_chunked(state, input, limits),
        }
    }
}

fn decode_chunked(
    state: &mut ChunkedState,
    input: &[u8],
    limits: &Limits,
) -> Result<(usize, Piece), ProtocolError> {
    let mut at = 0;
    loop {
        let buf = &input[at..];
        match state {
            ChunkedState::Size => {
                let Some((line, used)) = take_line(
                    buf,
                    limits.max_chunk_line_bytes,
                    ProtocolError::ChunkLineTooLong,
                )?
                else {
                    return Ok((at, Piece::NeedData));
                };
                let size = parse_chunk_size(line)?;
                at += used;
                *state = if size == 0 {
                    ChunkedState::Trailers { seen: 0 }
                } else {
                    ChunkedState::Data { remaining: size }
                };
            }
            ChunkedState::Data { remaining } => {
                if buf.is_empty() {
                    return Ok((at, Piece::NeedData));
                }
                let n = (*remaining).min(buf.len() as u64) as usize;
                *remaining -= n as u64;
                if *remaining == 0 {
                    *state = ChunkedState::DataEnd;
                }
                return Ok((at + n, Piece::Data(at..at + n)));
            }
            ChunkedState::DataEnd => {
                if buf.len() < 2 {
                    if buf.first().is_some_and(|&b| b != b'\r') {
                        return Err(ProtocolError::BadChunkEnd);
                    }
                    return Ok((at, Piece::NeedData));
                }
                if &buf[..2] != b"\r\n" {
                    return Err(ProtocolError::BadChunkEnd);
                }
                at += 2;
                *state = ChunkedState::Size;
            }
            ChunkedState::Trailers { seen } => {
                // Each field line counts with its CRLF, so the fields never take more than
                // `max_trailer_bytes`; the empty line that ends the section is always allowed.
                let room = limits
                    .max_trailer_bytes
                    .saturating_sub(*seen)
                    .saturating_sub(2);
                let Some((line, used)) = take_line(buf, room, ProtocolError::TrailersTooLarge)?
                else {
                    return Ok((at, Piece::NeedData));
                };
                *seen += line.len() + 2;
                at += used;
                if line.is_empty() {
                    *state = ChunkedState::Done;
                    return Ok((at, Piece::End));
                }
                check_trailer(line)?;
            }
            ChunkedState::Done => return Ok((at, Piece::End)),
        }
    }
}

/// Finds one CRLF-terminated line at the front of `buf`: the line (without the CRLF) and the
/// bytes it takes with its CRLF, or `None` when it has not arrived yet. A line over `max` bytes
/// is `too_long`; a bare LF is an error.
fn take_line(
    buf: &[u8],
    max: usize,
    too_long: ProtocolError,
) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    match memchr::memchr(b'\n', buf) {
        Some(lf) => {
            if lf + 1 > max.saturating_add(2) {
                return Err(too_long);
            }
            if lf == 0 || buf[lf - 1] != b'\r' {
                return Err(ProtocolError::BadLineEnding);
            }
            Ok(Some((&buf[..lf - 1], lf + 1)))
        }
        None if buf.len() > max.saturating_add(1) => Err(too_long),
        None => Ok(None),
    }
}

/// `chunk-size [ BWS ; chunk-ext ]`: 1*HEXDIG, then nothing or extensions (skipped, but they
/// may not hold control bytes).
fn parse_chunk_size(line: &[u8]) -> Result<u64, ProtocolError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ProtocolError::BadChunkSize);
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(d))
            .ok_or(ProtocolError::ChunkSizeOverflow)?;
    }
    let rest = &line[digits..];
    let ext_start = rest.iter().position(|&b| b != b' ' && b != b'\t');
    match ext_start {
        None if rest.is_empty() => Ok(size),
        // Whitespace after the size must introduce an extension.
        None => Err(ProtocolError::BadChunkSize),
        Some(i) if rest[i] == b';' => {
            if rest[i..]
                .iter()
                .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
            {
                return Err(ProtocolError::BadChunkSize);
            }
            Ok(size)
        }
        Some(_) => Err(ProtocolError::BadChunkSize),
    }
}

/// A trailer field: `token ":" value` with no control bytes.
fn check_trailer(line: &[u8]) -> Result<(), ProtocolError> {
    let colon = memchr::memchr(b':', line).ok_or(ProtocolError::BadTrailer)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| super::head::is_tchar(b)) {
        return Err(ProtocolError::BadTrailer);
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ProtocolError::BadTrailer);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
