//! Body decoders: Content-Length and chunked. Pure functions of the buffered bytes; data comes
//! out as `Bytes` split off the read buffer (no copy). Line ends are found with `memchr`.

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
        match self {
            BodyDecoder::Length { remaining } => {
                if *remaining == 0 {
                    return Ok(Decoded::End);
                }
                if buf.is_empty() {
                    return Ok(Decoded::NeedData);
                }
                let n = (*remaining).min(buf.len() as u64) as usize;
                *remaining -= n as u64;
                Ok(Decoded::Data(buf.split_to(n).freeze()))
            }
            BodyDecoder::Chunked(state) => decode_chunked(state, buf, limits),
        }
    }
}

fn decode_chunked(
    state: &mut ChunkedState,
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Decoded, ProtocolError> {
    loop {
        match state {
            ChunkedState::Size => {
                let Some(line) = take_line(
                    buf,
                    limits.max_chunk_line_bytes,
                    ProtocolError::ChunkLineTooLong,
                )?
                else {
                    return Ok(Decoded::NeedData);
                };
                let size = parse_chunk_size(&line)?;
                *state = if size == 0 {
                    ChunkedState::Trailers { seen: 0 }
                } else {
                    ChunkedState::Data { remaining: size }
                };
            }
            ChunkedState::Data { remaining } => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedData);
                }
                let n = (*remaining).min(buf.len() as u64) as usize;
                *remaining -= n as u64;
                if *remaining == 0 {
                    *state = ChunkedState::DataEnd;
                }
                return Ok(Decoded::Data(buf.split_to(n).freeze()));
            }
            ChunkedState::DataEnd => {
                if buf.len() < 2 {
                    if buf.first().is_some_and(|&b| b != b'\r') {
                        return Err(ProtocolError::BadChunkEnd);
                    }
                    return Ok(Decoded::NeedData);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(ProtocolError::BadChunkEnd);
                }
                buf.advance(2);
                *state = ChunkedState::Size;
            }
            ChunkedState::Trailers { seen } => {
                // Each field line counts with its CRLF, so the fields never take more than
                // `max_trailer_bytes`; the empty line that ends the section is always allowed.
                let room = limits
                    .max_trailer_bytes
                    .saturating_sub(*seen)
                    .saturating_sub(2);
                let Some(line) = take_line(buf, room, ProtocolError::TrailersTooLarge)? else {
                    return Ok(Decoded::NeedData);
                };
                *seen += line.len() + 2;
                if line.is_empty() {
                    *state = ChunkedState::Done;
                    return Ok(Decoded::End);
                }
                check_trailer(&line)?;
            }
            ChunkedState::Done => return Ok(Decoded::End),
        }
    }
}

/// Takes one CRLF-terminated line (without the CRLF) off the buffer, or `None` when it has not
/// arrived yet. A line over `max` bytes is `too_long`; a bare LF is an error.
fn take_line(
    buf: &mut BytesMut,
    max: usize,
    too_long: ProtocolError,
) -> Result<Option<BytesMut>, ProtocolError> {
    match memchr::memchr(b'\n', buf) {
        Some(lf) => {
            if lf + 1 > max.saturating_add(2) {
                return Err(too_long);
            }
            if lf == 0 || buf[lf - 1] != b'\r' {
                return Err(ProtocolError::BadLineEnding);
            }
            let mut line = buf.split_to(lf + 1);
            line.truncate(lf - 1);
            Ok(Some(line))
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
