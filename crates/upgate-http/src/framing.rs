//! One pass over the header fields into every decision the connection needs: how the body is
//! framed, whether the client expects `100 Continue`, whether the connection may be kept alive.
//! Content-Length / Transfer-Encoding smuggling rules live here and nowhere else.

use super::error::ProtocolError;

/// HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// How the request body is delimited (RFC 9112 §6.3). A request with neither header has
/// `Length(0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
}

/// What the client said in `Expect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// No `Expect` field (or `100-continue` from an HTTP/1.0 client, which RFC 9110 says to ignore).
    None,
    /// `Expect: 100-continue`: the client waits for an interim `100 Continue` before its body.
    Continue,
    /// Any other expectation; the node answers 417.
    Unsupported,
}

/// The decisions taken from one head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    pub version: Version,
    pub framing: Framing,
    pub expect: Expectation,
    /// The client allows the connection to be reused after this exchange.
    pub keep_alive: bool,
}

impl MessageInfo {
    /// The body has bytes to read (a chunked body always may).
    pub fn has_body(&self) -> bool {
        !matches!(self.framing, Framing::Length(0))
    }

    /// Declared body size, when known before the body.
    pub fn content_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
        }
    }
}

#[cfg(test)]
/// Scans the fields once. `fields` yields (name, value) with names as sent (any case).
pub fn scan<'a>(
    version: Version,
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<MessageInfo, ProtocolError> {
    let mut scanner = FieldScan::default();
    for (name, value) in fields {
        scanner.field(name, value)?;
    }
    scanner.finish(version)
}

/// The framing decisions as fields go by, so a caller that already walks the fields (the head
/// parser building its index) decides framing in the same loop instead of a second one.
#[derive(Default)]
pub struct FieldScan {
    length: Option<u64>,
    transfer_encoding: bool,
    codings: Codings,
    hosts: usize,
    close: bool,
    keep_alive_token: bool,
    expect: Option<Expectation>,
}

impl FieldScan {
    /// Takes one field; smuggling shapes (differing lengths, bad codings, a second Host) fail
    /// here, as soon as they are seen.
    #[inline]
    pub fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), ProtocolError> {
        // Dispatch on length first: most fields are skipped after one integer compare.
        match name.len() {
            4 if is_named(name, b"host") => {
                self.hosts += 1;
                if self.hosts > 1 || !valid_host(value) {
                    return Err(ProtocolError::BadHost);
                }
            }
            // One unsupported expectation in any `Expect` field makes the whole set
            // unsupported, whatever order the fields came in.
            6 if is_named(name, b"expect") && self.expect != Some(Expectation::Unsupported) => {
                self.expect = Some(if value.eq_ignore_ascii_case(b"100-continue") {
                    Expectation::Continue
                } else {
                    Expectation::Unsupported
                });
            }
            10 if is_named(name, b"connection") => {
                for token in list(value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        self.keep_alive_token = true;
                    }
                }
            }
            14 if is_named(name, b"content-length") => {
                for item in value.split(|&b| b == b',') {
                    let n = parse_length(trim(item))?;
                    match self.length {
                        Some(prev) if prev != n => {
                            return Err(ProtocolError::ConflictingContentLength)
                        }
                        _ => self.length = Some(n),
                    }
                }
            }
            17 if is_named(name, b"transfer-encoding") => {
                self.transfer_encoding = true;
                self.codings.add(value)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The decisions once every field was seen.
    pub fn finish(self, version: Version) -> Result<MessageInfo, ProtocolError> {
        if version == Version::Http11 && self.hosts == 0 {
            return Err(ProtocolError::MissingHost);
        }
        let framing = if self.transfer_encoding {
            if version == Version::Http10 {
                return Err(ProtocolError::TransferEncodingInHttp10);
            }
            if self.length.is_some() {
                return Err(ProtocolError::LengthWithTransferEncoding);
            }
            self.codings.finish()?;
            Framing::Chunked
        } else {
            Framing::Length(self.length.unwrap_or(0))
        };
        let expect = match (version, self.expect) {
            (_, None) | (Version::Http10, Some(Expectation::Continue)) => Expectation::None,
            (_, Some(e)) => e,
        };
        let keep_alive = match version {
            Version::Http11 => !self.close,
            Version::Http10 => self.keep_alive_token && !self.close,
        };
        Ok(MessageInfo {
            version,
            framing,
            expect,
            keep_alive,
        })
    }
}

/// The transfer codings seen so far, across every `Transfer-Encoding` field.
#[derive(Default)]
struct Codings {
    chunked_seen: bool,
    last_is_chunked: bool,
    unknown: bool,
    empty: bool,
}

impl Codings {
    fn add(&mut self, value: &[u8]) -> Result<(), ProtocolError> {
        let mut any = false;
        for token in list(value) {
            any = true;
            // A coding may carry parameters (`gzip;q=1`); only its name matters here.
            let name = trim(token.split(|&b| b == b';').next().unwrap_or(token));
            if name.eq_ignore_ascii_case(b"chunked") {
                if self.chunked_seen {
                    // chunked applied twice: the body length is ambiguous.
                    return Err(ProtocolError::ChunkedNotFinal);
                }
                self.chunked_seen = true;
                self.last_is_chunked = true;
            } else {
                self.last_is_chunked = false;
                self.unknown = true;
            }
        }
        if !any {
            self.empty = true;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), ProtocolError> {
        // RFC 9112 §6.3: a request whose final coding is not chunked has no reliable length.
        if self.empty || !self.last_is_chunked {
            return Err(ProtocolError::ChunkedNotFinal);
        }
        if self.unknown {
            return Err(ProtocolError::UnknownTransferCoding);
        }
        Ok(())
    }
}

/// Content-Length: 1*DIGIT, nothing else (no sign, no hex, no inner space), no overflow.
pub fn parse_length(digits: &[u8]) -> Result<u64, ProtocolError> {
    if digits.is_empty() {
        return Err(ProtocolError::BadContentLength);
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(ProtocolError::BadContentLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(ProtocolError::BadContentLength)?;
    }
    Ok(n)
}

/// `name == lower`, ignoring ASCII case, for a header name (a token, so it holds no CR) and a
/// lowercase target made of letters and `-`. Compares eight bytes at a time, the last word
/// overlapping the one before: with `| 0x20` on every byte an uppercase letter becomes its
/// lowercase, and the only other byte that maps onto a letter or `-` is CR (onto `-`), which a
/// token cannot hold. This runs for every field of every head.
#[inline]
fn is_named(name: &[u8], lower: &[u8]) -> bool {
    fn word(s: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or_default())
    }
    fn half(s: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(s[at..at + 4].try_into().unwrap_or_default())
    }
    let n = lower.len();
    if name.len() != n {
        return false;
    }
    if n < 4 {
        return name.eq_ignore_ascii_case(lower);
    }
    if n < 8 {
        const LOW: u32 = 0x2020_2020;
        return half(name, 0) | LOW == half(lower, 0)
            && half(name, n - 4) | LOW == half(lower, n - 4);
    }
    const LOW: u64 = 0x2020_2020_2020_2020;
    let mut at = 0;
    while at + 8 < n {
        if word(name, at) | LOW != word(lower, at) {
            return false;
        }
        at += 8;
    }
    word(name, n - 8) | LOW == word(lower, n - 8)
}

/// Elements of a comma-separated list, trimmed, empty ones skipped (RFC 9110 §5.6.1).
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `Host = uri-host [ ":" port ]`; an empty value is allowed for targets without authority.
/// Rejects whitespace, `/`, `@` and other bytes that would make the authority ambiguous.
fn valid_host(value: &[u8]) -> bool {
    // Folded without an early exit: a good Host (the only kind that matters for speed) is read
    // whole anyway, and the branch-free loop is a fraction of the cost of a per-byte branch.
    value
        .iter()
        .fold(true, |ok, &b| ok & HOST_BYTES[b as usize])
}

/// Bytes allowed in a `Host` value: unreserved, sub-delims, `:`, `[`, `]`, `%` (one load per
/// byte: this runs on every request).
static HOST_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'.' | b'-'
                    | b'_'
                    | b':'
                    | b'['
                    | b']'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        b += 1;
    }
    t
};

#[cfg(test)]
mod tests;
