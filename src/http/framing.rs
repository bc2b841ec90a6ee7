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

/// Scans the fields once. `fields` yields (name, value) with names as sent (any case).
pub fn scan<'a>(
    version: Version,
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<MessageInfo, ProtocolError> {
    let mut length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut codings = Codings::default();
    let mut hosts = 0usize;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect = Expectation::None;

    for (name, value) in fields {
        // Dispatch on length first: most fields are skipped after one integer compare.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                hosts += 1;
                if hosts > 1 || !valid_host(value) {
                    return Err(ProtocolError::BadHost);
                }
            }
            // One unsupported expectation in any `Expect` field makes the whole set
            // unsupported, whatever order the fields came in.
            6 if name.eq_ignore_ascii_case(b"expect") && expect != Expectation::Unsupported => {
                expect = if value.eq_ignore_ascii_case(b"100-continue") {
                    Expectation::Continue
                } else {
                    Expectation::Unsupported
                };
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in list(value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive_token = true;
                    }
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                for item in value.split(|&b| b == b',') {
                    let n = parse_length(trim(item))?;
                    match length {
                        Some(prev) if prev != n => {
                            return Err(ProtocolError::ConflictingContentLength)
                        }
                        _ => length = Some(n),
                    }
                }
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                transfer_encoding = true;
                codings.add(value)?;
            }
            _ => {}
        }
    }

    if version == Version::Http11 && hosts == 0 {
        return Err(ProtocolError::MissingHost);
    }
    let framing = if transfer_encoding {
        if version == Version::Http10 {
            return Err(ProtocolError::TransferEncodingInHttp10);
        }
        if length.is_some() {
            return Err(ProtocolError::LengthWithTransferEncoding);
        }
        codings.finish()?;
        Framing::Chunked
    } else {
        Framing::Length(length.unwrap_or(0))
    };
    if version == Version::Http10 && expect == Expectation::Continue {
        expect = Expectation::None;
    }
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive_token && !close,
    };
    Ok(MessageInfo {
        version,
        framing,
        expect,
        keep_alive,
    })
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
    value.iter().all(|&b| HOST_BYTES[b as usize])
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
