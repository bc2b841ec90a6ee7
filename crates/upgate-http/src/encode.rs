//! Response bytes: the interim `100 Continue`, final responses, JSON error bodies and chunk
//! framing. The date is passed in; nothing here reads a clock.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

/// The interim response that releases a client waiting on `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A final response to be encoded by [`super::H1Conn::respond`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Extra fields. Framing fields (`Content-Length`, `Transfer-Encoding`, `Connection`,
    /// `Date`) are written by the encoder and must not be set here.
    pub headers: Vec<(&'static str, String)>,
    pub body: ResponseBody,
}

/// How the response body is carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body; `Content-Length: 0` (or none for 204/304).
    Empty,
    /// A body known in full, encoded together with the head.
    Full(Bytes),
    /// `len` bytes the caller writes after the head itself (a file being served).
    Sized(u64),
    /// A body of unknown length the caller frames with `H1Conn::encode_chunk`.
    Chunked,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: ResponseBody::Empty,
        }
    }

    /// A JSON response from an already serialised body.
    pub fn json(status: u16, body: impl Into<Bytes>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".to_string())],
            body: ResponseBody::Full(body.into()),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// How the body following a head is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length`, or no body at all.
    Length,
    /// `Transfer-Encoding: chunked` (HTTP/1.1 peers).
    Chunked,
    /// Delimited by closing the connection (HTTP/1.0 peers of a chunked response).
    Close,
}

/// Parameters of one encoding that the connection decides.
pub(crate) struct HeadParams<'a> {
    pub date: &'a str,
    pub close: bool,
    /// HTTP/1.0 client that asked for keep-alive: say so explicitly.
    pub keep_alive_10: bool,
    /// HEAD request or a status without body: write the fields, not the bytes.
    pub omit_body: bool,
    pub framing: BodyFraming,
}

/// Appends `n` in decimal (status codes and lengths; no allocation).
fn put_decimal(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

/// Encodes the status line, fields and (for `Full`) the body.
pub(crate) fn encode_response(resp: &Response, p: &HeadParams<'_>) -> Bytes {
    let body_len = match &resp.body {
        ResponseBody::Full(b) => b.len(),
        _ => 0,
    };
    let mut out = BytesMut::with_capacity(160 + body_len + resp.headers.len() * 40);
    out.put_slice(b"HTTP/1.1 ");
    put_decimal(&mut out, u64::from(resp.status));
    out.put_u8(b' ');
    out.put_slice(reason(resp.status).as_bytes());
    out.put_slice(b"\r\nServer: upgate\r\nDate: ");
    out.put_slice(p.date.as_bytes());
    out.put_slice(b"\r\n");
    for (name, value) in &resp.headers {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    let no_body_status = resp.status == 204 || resp.status == 304 || resp.status < 200;
    if !no_body_status {
        match (&resp.body, p.framing) {
            (ResponseBody::Chunked, BodyFraming::Chunked) => {
                out.put_slice(b"Transfer-Encoding: chunked\r\n")
            }
            (ResponseBody::Chunked, _) => {}
            (ResponseBody::Sized(n), _) => {
                out.put_slice(b"Content-Length: ");
                put_decimal(&mut out, *n);
                out.put_slice(b"\r\n");
            }
            _ => {
                out.put_slice(b"Content-Length: ");
                put_decimal(&mut out, body_len as u64);
                out.put_slice(b"\r\n");
            }
        }
    }
    if p.close {
        out.put_slice(b"Connection: close\r\n");
    } else if p.keep_alive_10 {
        out.put_slice(b"Connection: keep-alive\r\n");
    }
    out.put_slice(b"\r\n");
    if let (ResponseBody::Full(b), false) = (&resp.body, p.omit_body || no_body_status) {
        out.put_slice(b);
    }
    out.freeze()
}

/// An informational (1xx) response: status line and fields, no body, no `Date` (RFC 9110
/// §15.2: informational responses carry no content and need no date).
pub(crate) fn encode_informational(status: u16, fields: &[(&str, String)]) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + fields.len() * 48);
    out.put_slice(b"HTTP/1.1 ");
    put_decimal(&mut out, u64::from(status));
    out.put_u8(b' ');
    out.put_slice(reason(status).as_bytes());
    out.put_slice(b"\r\n");
    for (name, value) in fields {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

/// One chunk of a chunked body (empty input encodes nothing: the last chunk is separate).
pub fn chunk(data: &[u8]) -> Bytes {
    if data.is_empty() {
        return Bytes::new();
    }
    let mut out = BytesMut::with_capacity(data.len() + 20);
    let _ = write!(HexWriter(&mut out), "{:x}", data.len());
    out.put_slice(b"\r\n");
    out.put_slice(data);
    out.put_slice(b"\r\n");
    out.freeze()
}

/// The last chunk with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

struct HexWriter<'a>(&'a mut BytesMut);

impl std::fmt::Write for HexWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// Reason phrases for the statuses upgate sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        104 => "Upload Resumption Supported",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        460 => "Checksum Mismatch",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests;
