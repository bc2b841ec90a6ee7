//! Request heads: the fast end-of-head scan, the httparse call, and the checks httparse leaves
//! to us (version, target form, Host, line endings). A parsed head keeps header positions as
//! index ranges into one frozen `Bytes`, so names and values are views, never copies.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::Bytes;
use smallvec::SmallVec;

use super::error::ProtocolError;
use super::framing::{FieldScan, MessageInfo, Version};
use super::limits::{Limits, MAX_HEADERS_CEILING, MAX_HEAD_BYTES_CEILING};

/// Outcome of looking for the end of a head in buffered bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadEnd {
    /// The head is `buf[..len]` (including the final CRLF CRLF).
    Complete(usize),
    /// No end yet; bytes before `resume_at` need not be scanned again.
    Partial { resume_at: usize },
}

/// Finds the CRLF CRLF that ends a head, starting at `from` (a previous `resume_at`).
/// Every LF must follow a CR and every CR must precede an LF: a bare LF or a bare CR is an error
/// here, as soon as it arrives, rather than a smuggling shape later.
pub fn find_end(buf: &[u8], from: usize) -> Result<HeadEnd, ProtocolError> {
    let mut pos = from;
    while let Some(off) = memchr::memchr(b'\n', &buf[pos..]) {
        let lf = pos + off;
        if lf == 0 || buf[lf - 1] != b'\r' {
            return Err(ProtocolError::BadLineEnding);
        }
        if memchr::memchr(b'\r', &buf[pos.min(lf - 1)..lf - 1]).is_some() {
            return Err(ProtocolError::BadLineEnding);
        }
        if lf >= 3 && &buf[lf - 3..lf] == b"\r\n\r" {
            return Ok(HeadEnd::Complete(lf + 1));
        }
        pos = lf + 1;
    }
    // A CR may end the buffer (its LF has not arrived yet); anywhere else in the unfinished
    // line it is bare.
    if memchr::memchr(b'\r', &buf[pos..]).is_some_and(|i| pos + i + 1 < buf.len()) {
        return Err(ProtocolError::BadLineEnding);
    }
    Ok(HeadEnd::Partial {
        // A CR at the very end may be the start of the terminator; rescan from the last line start.
        resume_at: pos,
    })
}

/// The error for a head that has not ended within `max_head_bytes`: 414 when it is the
/// request-target that is too long (over `max_target_bytes`, or still unterminated when the
/// request-line alone overflows the head), 431 otherwise.
pub fn overflow_error(buf: &[u8], limits: &Limits) -> ProtocolError {
    let line = &buf[..memchr::memchr2(b'\r', b'\n', buf).unwrap_or(buf.len())];
    let Some(sp) = memchr::memchr(b' ', line) else {
        return ProtocolError::HeadTooLarge;
    };
    match memchr::memchr(b' ', &line[sp + 1..]) {
        Some(target_len) if target_len > limits.max_target_bytes => ProtocolError::TargetTooLong,
        Some(_) => ProtocolError::HeadTooLarge,
        None if line.len() == buf.len() => ProtocolError::TargetTooLong,
        None => ProtocolError::HeadTooLarge,
    }
}

/// Where one header field lies inside the head. Eight bytes: a head is at most
/// `MAX_HEAD_BYTES_CEILING` long, so every offset and length fits in 16 bits, and a small
/// index is cheap to move with the head.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldIdx {
    name_start: u16,
    name_len: u16,
    value_start: u16,
    value_len: u16,
}

/// Field positions of one head: inline up to a typical upload head's count (no allocation per
/// request for it), on the heap beyond.
type Fields = SmallVec<[FieldIdx; INLINE_FIELDS]>;
const INLINE_FIELDS: usize = 12;

/// Common methods, so routing is a `match`, not string compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    /// tus appends (RFC 5789).
    Patch,
    Other,
}

impl Method {
    fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }
}

/// A validated request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    raw: Bytes,
    method: Method,
    method_range: Range<u32>,
    target: Range<u32>,
    path: Range<u32>,
    fields: Fields,
    info: MessageInfo,
}

impl RequestHead {
    pub fn method(&self) -> Method {
        self.method
    }

    /// The method as sent (a token, so always ASCII).
    pub fn method_str(&self) -> &str {
        std::str::from_utf8(self.slice(&self.method_range)).unwrap_or("")
    }

    /// The request-target as sent.
    pub fn target(&self) -> &[u8] {
        self.slice(&self.target)
    }

    /// The origin-form part of the target (path and query); for absolute-form the part after
    /// the authority, `/` when there is none.
    pub fn path(&self) -> &[u8] {
        let p = self.slice(&self.path);
        if p.is_empty() {
            b"/"
        } else {
            p
        }
    }

    /// The path without its query.
    pub fn path_only(&self) -> &[u8] {
        let p = self.path();
        match memchr::memchr(b'?', p) {
            // `http://host?q` has an empty path, which is `/` (RFC 9112 §3.2.2).
            Some(0) => b"/",
            Some(q) => &p[..q],
            None => p,
        }
    }

    pub fn version(&self) -> Version {
        self.info.version
    }

    /// Framing, expectation and keep-alive, decided once.
    pub fn info(&self) -> &MessageInfo {
        &self.info
    }

    /// Every field as (name, value), in order, names as sent.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields.iter().map(move |f| {
            (
                self.at(f.name_start, f.name_len),
                self.at(f.value_start, f.value_len),
            )
        })
    }

    /// Values of every field named `name` (ASCII case-insensitive).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The first value of `name`.
    pub fn value(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The head's bytes as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    fn at(&self, start: u16, len: u16) -> &[u8] {
        &self.raw[start as usize..start as usize + len as usize]
    }

    fn slice(&self, r: &Range<u32>) -> &[u8] {
        &self.raw[r.start as usize..r.end as usize]
    }
}

/// A head parsed in place, before its bytes are split off the read buffer: positions are
/// offsets from the start of the buffer.
#[derive(Debug)]
pub struct Parsed {
    len: usize,
    method: Method,
    method_range: Range<u32>,
    target: Range<u32>,
    path: Range<u32>,
    fields: Fields,
    info: MessageInfo,
}

impl Parsed {
    /// Bytes of the head, request-line to the empty line inclusive.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The head over its own bytes (`raw` must be the `len` bytes it was parsed from).
    pub fn into_head(self, raw: Bytes) -> RequestHead {
        debug_assert_eq!(raw.len(), self.len);
        RequestHead {
            raw,
            method: self.method,
            method_range: self.method_range,
            target: self.target,
            path: self.path,
            fields: self.fields,
            info: self.info,
        }
    }
}

/// Parses the head at the start of `buf` in one httparse pass (httparse finds its end);
/// `Ok(None)` while it is incomplete. Bytes after the head (a body, the next request) are not
/// looked at.
pub fn parse_prefix(buf: &[u8], limits: &Limits) -> Result<Option<Parsed>, ProtocolError> {
    let mut storage = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_CEILING];
    let storage = &mut storage[..limits.max_headers.clamp(1, MAX_HEADERS_CEILING)];
    let mut req = httparse::Request::new(&mut []);
    let base = buf.as_ptr() as usize;
    let range = |s: &[u8]| {
        let start = (s.as_ptr() as usize - base) as u32;
        start..start + s.len() as u32
    };

    // Empty lines before the request-line are ignored (RFC 9112 §2.2), but only CRLF ones:
    // httparse would also skip a bare LF.
    let skip = 2 * buf.chunks_exact(2).take_while(|p| *p == b"\r\n").count();
    if buf.get(skip) == Some(&b'\n') {
        return Err(ProtocolError::BadLineEnding);
    }
    let len = match req.parse_with_uninit_headers(&buf[skip..], storage) {
        Ok(httparse::Status::Complete(len)) if skip + len <= MAX_HEAD_BYTES_CEILING => skip + len,
        Ok(httparse::Status::Complete(_)) => return Err(ProtocolError::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            let rest = &buf[skip..];
            let head =
                &rest[..memchr::memmem::find(rest, b"\r\n\r\n").map_or(rest.len(), |i| i + 4)];
            // A bare CR or LF is named as such, whatever httparse stumbled on.
            find_end(head, 0)?;
            return Err(map_httparse_error(e, head));
        }
    };
    // httparse accepts bare LF line ends and refuses any CR not followed by LF, so the head has
    // only CRLF line ends exactly when the line before each field, and the last field's line
    // and the empty line, end in CR LF: one byte per field is looked at, not every byte.
    // (Before any other check: a bare LF is named as such wherever it is, as the incremental
    // scan names it when the head arrives in pieces.)
    if !buf[..len].ends_with(b"\r\n\r\n")
        || req
            .headers
            .iter()
            .any(|h| buf[h.name.as_ptr() as usize - base - 2] != b'\r')
    {
        return Err(ProtocolError::BadLineEnding);
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(ProtocolError::BadRequestLine);
    };
    let version = if minor == 1 {
        Version::Http11
    } else {
        Version::Http10
    };
    if target.len() > limits.max_target_bytes {
        return Err(ProtocolError::TargetTooLong);
    }
    let method_kind = Method::from_bytes(method.as_bytes());
    let path = target_path(target.as_bytes(), method_kind)?;
    // One walk over the fields builds the index and takes every framing decision.
    let mut scan = FieldScan::default();
    let mut fields = Fields::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        scan.field(h.name.as_bytes(), h.value)?;
        fields.push(FieldIdx {
            name_start: range(h.name.as_bytes()).start as u16,
            name_len: h.name.len() as u16,
            value_start: range(h.value).start as u16,
            value_len: h.value.len() as u16,
        });
    }
    let info = scan.finish(version)?;
    Ok(Some(Parsed {
        len,
        method: method_kind,
        method_range: range(method.as_bytes()),
        target: range(target.as_bytes()),
        path: if path.is_empty() { 0..0 } else { range(path) },
        fields,
        info,
    }))
}

/// Parses a complete head (as delimited by [`find_end`]).
pub fn parse(raw: Bytes, limits: &Limits) -> Result<RequestHead, ProtocolError> {
    match parse_prefix(&raw, limits)? {
        Some(parsed) => {
            let len = parsed.len();
            Ok(parsed.into_head(raw.slice(..len)))
        }
        None => Err(ProtocolError::BadRequestLine),
    }
}

/// Checks the request-target form (RFC 9112 §3.2) and returns its origin-form part.
fn target_path(target: &[u8], method: Method) -> Result<&[u8], ProtocolError> {
    match target {
        [b'/', ..] => Ok(target),
        b"*" if method == Method::Options => Ok(b""),
        _ => {
            let rest = strip_prefix_ci(target, b"http://")
                .or_else(|| strip_prefix_ci(target, b"https://"))
                .ok_or(ProtocolError::BadTarget)?;
            let slash = memchr::memchr2(b'/', b'?', rest).unwrap_or(rest.len());
            if slash == 0 {
                return Err(ProtocolError::BadTarget);
            }
            Ok(&rest[slash..])
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// httparse reports where it stopped, not why; these checks name the actual cause.
fn map_httparse_error(e: httparse::Error, raw: &[u8]) -> ProtocolError {
    use httparse::Error as E;
    match e {
        E::TooManyHeaders => ProtocolError::TooManyHeaders,
        // Token errors come from the method or the target: a request-line of the right shape
        // with a valid method puts the fault in the target.
        E::Token => request_line_error(raw, ProtocolError::BadTarget),
        E::Version | E::Status => request_line_error(raw, ProtocolError::BadRequestLine),
        E::NewLine => request_line_error(raw, ProtocolError::BadLineEnding),
        E::HeaderName => {
            if memchr::memmem::find(raw, b"\n ").is_some()
                || memchr::memmem::find(raw, b"\n\t").is_some()
            {
                ProtocolError::ObsFold
            } else {
                ProtocolError::BadHeaderName
            }
        }
        E::HeaderValue => ProtocolError::BadHeaderValue,
    }
}

/// Names what is wrong with a request-line httparse refused: its shape (`method SP target SP
/// version`, single spaces), the method, the version (well-formed `HTTP/d.d` other than 1.0 and
/// 1.1 is 505, anything else 400), or else `fallback`.
fn request_line_error(raw: &[u8], fallback: ProtocolError) -> ProtocolError {
    let line = &raw[..memchr::memchr2(b'\r', b'\n', raw).unwrap_or(raw.len())];
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return ProtocolError::BadRequestLine;
    };
    if method.is_empty() || target.is_empty() {
        return ProtocolError::BadRequestLine;
    }
    if !method.iter().all(|&b| is_tchar(b)) {
        return ProtocolError::BadMethod;
    }
    let well_formed = version.len() == 8
        && version.starts_with(b"HTTP/")
        && version[5].is_ascii_digit()
        && version[6] == b'.'
        && version[7].is_ascii_digit();
    if !well_formed {
        return ProtocolError::BadRequestLine;
    }
    if version != b"HTTP/1.0" && version != b"HTTP/1.1" {
        return ProtocolError::UnsupportedVersion;
    }
    fallback
}

/// RFC 9110 §5.6.2 token characters.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests;
