//! A part's header block: gathered across pieces (at most [`MAX_PART_HEADER_BYTES`]), then read
//! into a [`PartHead`] once its empty line arrives.
//!
//! The block is a few `name: value` lines, each ended by CRLF, and an empty line. Unlike the
//! request head it may hold raw UTF-8 (browsers put file names there as they are), so each
//! line is checked here rather than by httparse: CRLF only, no obs-fold, a token name, no
//! control bytes in the value.

use memchr::memmem;

use super::{disposition, params, MultipartError, PartHead, MAX_PART_HEADER_BYTES};
use crate::is_tchar;
use MultipartError::{BadPartHeaders, HeadersTooLarge, NoContentDisposition};

/// The header block of the part being read, so far.
#[derive(Debug, Default)]
pub(super) struct HeadBuffer {
    bytes: Vec<u8>,
}

impl HeadBuffer {
    /// Bytes gathered so far.
    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Takes header bytes from the front of `input`: how many it used, and the part's head once
    /// the block is complete. Copies at most what fits under the limit; bytes after the block
    /// are given back.
    pub(super) fn feed(
        &mut self,
        input: &[u8],
    ) -> Result<(usize, Option<PartHead>), MultipartError> {
        let old = self.bytes.len();
        let take = input.len().min(MAX_PART_HEADER_BYTES - old);
        self.bytes.extend_from_slice(&input[..take]);
        let Some(end) = block_end(&self.bytes, old) else {
            if self.bytes.len() == MAX_PART_HEADER_BYTES {
                return Err(HeadersTooLarge);
            }
            return Ok((take, None));
        };
        self.bytes.truncate(end);
        let head = parse(&self.bytes);
        self.bytes.clear();
        Ok((end - old, Some(head?)))
    }
}

/// Where the block ends (after its empty line), looking only at what `old` bytes ago could not
/// have been seen.
fn block_end(bytes: &[u8], old: usize) -> Option<usize> {
    if bytes.starts_with(b"\r\n") {
        return Some(2);
    }
    let from = old.saturating_sub(3);
    memmem::find(&bytes[from..], b"\r\n\r\n").map(|i| from + i + 4)
}

/// Reads a complete header block (ending with its empty line).
fn parse(block: &[u8]) -> Result<PartHead, MultipartError> {
    let lines = &block[..block.len() - 2];
    let (mut disposition, mut content_type) = (None, None);
    for line in lines.split(|&b| b == b'\n') {
        let Some(line) = line.strip_suffix(b"\r") else {
            // `lines` ends with LF, which leaves one empty piece at the end.
            if line.is_empty() {
                continue;
            }
            return Err(BadPartHeaders("a header line does not end with CRLF"));
        };
        let (name, value) = field(line)?;
        let slot = if name.eq_ignore_ascii_case(b"content-disposition") {
            &mut disposition
        } else if name.eq_ignore_ascii_case(b"content-type") {
            &mut content_type
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Err(BadPartHeaders(
                "Content-Disposition or Content-Type appears twice",
            ));
        }
    }
    let disposition = disposition::parse(disposition.ok_or(NoContentDisposition)?)?;
    Ok(PartHead {
        name: disposition.name,
        filename: disposition.filename,
        content_type: content_type.map(media_type).transpose()?,
    })
}

/// One `name ":" OWS value OWS` line (without its CRLF): the name and the trimmed value.
fn field(line: &[u8]) -> Result<(&[u8], &[u8]), MultipartError> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(BadPartHeaders("a folded header line (obs-fold)"));
    }
    let colon = memchr::memchr(b':', line).ok_or(BadPartHeaders("a header line has no colon"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(BadPartHeaders("a header name is not a token"));
    }
    if value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
        return Err(BadPartHeaders("a control byte in a header value"));
    }
    Ok((name, params::trim(value)))
}

/// A part's `Content-Type`: `type/subtype` and well-formed parameters, kept as sent.
fn media_type(value: &[u8]) -> Result<String, MultipartError> {
    let (media, rest) = params::leading(value);
    let token = |s: &[u8]| !s.is_empty() && s.iter().all(|&b| is_tchar(b));
    let well_formed = matches!(
        media.iter().position(|&b| b == b'/'),
        Some(slash) if token(&media[..slash]) && token(&media[slash + 1..])
    );
    if !well_formed {
        return Err(BadPartHeaders(
            "the part's Content-Type is not type/subtype",
        ));
    }
    params::parse(rest).map_err(BadPartHeaders)?;
    String::from_utf8(value.to_vec())
        .map_err(|_| BadPartHeaders("the part's Content-Type is not UTF-8"))
}
