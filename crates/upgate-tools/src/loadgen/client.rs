//! One blocking HTTP/1.1 keep-alive connection of the load generator, and the two exchanges it
//! measures: an upload (head, wait for `100 Continue`, body, completion JSON) and a download
//! (GET, body counted and discarded).
//!
//! Bodies are written from one shared pattern buffer, repeated as often as needed, so a 1 GiB
//! upload costs the generator no more memory than a 1 KiB one.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::client::tls::TlsStream;
use crate::client::transport::Conn as Transport;
use crate::client::trust::Trust;

/// Why one request failed; the key under which the report counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The TCP connect failed.
    Connect,
    /// No byte within the timeout.
    Timeout,
    /// The peer closed the connection before the response was complete.
    Closed,
    /// Another I/O error (reset, broken pipe…).
    Io,
    /// A response that is not HTTP/1.x as expected (head, framing, JSON).
    BadResponse,
    /// A final status other than the expected one, after the body was sent (or for a GET).
    Status(u16),
    /// A final status instead of `100 Continue`: refused before the body.
    Refused(u16),
    /// The completion JSON's `size` (or a download's length) differs from the size sent.
    SizeMismatch,
    /// The TLS handshake failed (an `https://` target).
    Tls,
}

impl Failure {
    /// The counter name in reports: `timeout`, `status_409`, `refused_403`…
    pub fn key(&self) -> String {
        match self {
            Failure::Connect => "connect".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Closed => "closed".into(),
            Failure::Io => "io".into(),
            Failure::BadResponse => "bad_response".into(),
            Failure::Status(s) => format!("status_{s}"),
            Failure::Refused(s) => format!("refused_{s}"),
            Failure::SizeMismatch => "size_mismatch".into(),
            Failure::Tls => "tls".into(),
        }
    }

    fn from_io(e: &io::Error) -> Failure {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::Timeout,
            io::ErrorKind::UnexpectedEof => Failure::Closed,
            _ => Failure::Io,
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::from_io(&e)
    }
}

/// What the generator needs from a response head.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
    /// The server will close after this response (`Connection: close` or HTTP/1.0).
    pub close: bool,
    /// `Location` (a resumable upload's address).
    pub location: Option<String>,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// No length: the body runs to the end of the connection.
    UntilClose,
}

/// What a connection to an `https://` target needs: the client's trust (the CAs, and whether
/// sessions resume) and the name the certificate must carry.
#[derive(Clone, Debug)]
pub struct Tls {
    pub trust: Trust,
    pub host: String,
}

/// A keep-alive connection with its read buffer (bytes `start..end` are unread).
pub struct Conn {
    /// The reference client's transport: plain TCP, or TLS over it.
    stream: Transport,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// True once the server said it will close: the caller must reconnect.
    pub closing: bool,
}

const MAX_HEADERS: usize = 64;

impl Conn {
    /// Connects with `TCP_NODELAY` and read/write timeouts; `buf_size` is the read buffer (and
    /// the largest single read of a download body).
    ///
    /// With `tls`, the TLS handshake follows (within `timeout`); a refused one is
    /// `Failure::Tls`.
    pub fn connect(
        addr: SocketAddr,
        timeout: Duration,
        buf_size: usize,
        tls: Option<&Tls>,
    ) -> Result<Conn, Failure> {
        let stream = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(10)))
            .map_err(|e| match Failure::from_io(&e) {
                Failure::Timeout => Failure::Timeout,
                _ => Failure::Connect,
            })?;
        stream.set_nodelay(true).map_err(|_| Failure::Connect)?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|_| Failure::Connect)?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|_| Failure::Connect)?;
        let stream = match tls {
            None => Transport::Plain(stream),
            Some(tls) => {
                let deadline = Some(Instant::now() + timeout);
                match TlsStream::handshake(&tls.trust, &tls.host, stream, deadline) {
                    Ok(s) => Transport::Tls(Box::new(s)),
                    Err(_) => return Err(Failure::Tls),
                }
            }
        };
        Ok(Conn {
            stream,
            buf: vec![0; buf_size.max(16 * 1024)],
            start: 0,
            end: 0,
            closing: false,
        })
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream.write_all(bytes).map_err(Failure::from)
    }

    /// Writes `size` bytes taken from `pattern`, repeated.
    pub fn write_body(&mut self, pattern: &[u8], size: u64) -> Result<(), Failure> {
        let mut left = size;
        while left > 0 {
            let n = left.min(pattern.len() as u64) as usize;
            self.write_all(&pattern[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Reads more bytes into the buffer (compacting it first); false at EOF.
    fn fill(&mut self) -> Result<bool, Failure> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(Failure::BadResponse); // a head or line larger than the buffer
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::from(e)),
            }
        }
    }

    fn fill_or_closed(&mut self) -> Result<(), Failure> {
        if self.fill()? {
            Ok(())
        } else {
            Err(Failure::Closed)
        }
    }

    /// Reads and parses the next response head (interim `1xx` heads included).
    pub fn read_head(&mut self) -> Result<Head, Failure> {
        loop {
            let window = &self.buf[self.start..self.end];
            if let Some(at) = memchr::memmem::find(window, b"\r\n\r\n") {
                let len = at + 4;
                let head = parse_head(&window[..len])?;
                self.start += len;
                if head.close {
                    self.closing = true;
                }
                return Ok(head);
            }
            self.fill_or_closed()?;
        }
    }

    /// Reads a whole body into `out` (for small JSON answers); at most `limit` bytes.
    pub fn read_body(
        &mut self,
        head: &Head,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), Failure> {
        out.clear();
        self.body(head, &mut |chunk| {
            if out.len() + chunk.len() > limit {
                return Err(Failure::BadResponse);
            }
            out.extend_from_slice(chunk);
            Ok(())
        })
    }

    /// Reads a body and throws it away; returns its length.
    pub fn discard_body(&mut self, head: &Head) -> Result<u64, Failure> {
        let mut n = 0u64;
        self.body(head, &mut |chunk| {
            n += chunk.len() as u64;
            Ok(())
        })?;
        Ok(n)
    }

    fn body(
        &mut self,
        head: &Head,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        if (100..200).contains(&head.status) || head.status == 204 || head.status == 304 {
            return Ok(());
        }
        match head.framing {
            Framing::Length(len) => self.exact(len, sink),
            Framing::Chunked => self.chunked(sink),
            Framing::UntilClose => {
                self.closing = true;
                loop {
                    if self.start < self.end {
                        sink(&self.buf[self.start..self.end])?;
                        self.start = self.end;
                    }
                    if !self.fill()? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Passes exactly `len` bytes to `sink`: first what is buffered, then straight reads.
    fn exact(
        &mut self,
        mut len: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        while len > 0 {
            if self.start == self.end {
                self.fill_or_closed()?;
            }
            let n = ((self.end - self.start) as u64).min(len) as usize;
            sink(&self.buf[self.start..self.start + n])?;
            self.start += n;
            len -= n as u64;
        }
        Ok(())
    }

    fn line(&mut self) -> Result<Vec<u8>, Failure> {
        loop {
            let window = &self.buf[self.start..self.end];
            if let Some(at) = memchr::memmem::find(window, b"\r\n") {
                let line = window[..at].to_vec();
                self.start += at + 2;
                return Ok(line);
            }
            self.fill_or_closed()?;
        }
    }

    fn chunked(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        loop {
            let line = self.line()?;
            let digits = line.split(|&b| b == b';').next().unwrap_or(&[]);
            let text = std::str::from_utf8(digits).map_err(|_| Failure::BadResponse)?;
            let size = u64::from_str_radix(text.trim(), 16).map_err(|_| Failure::BadResponse)?;
            if size == 0 {
                // Trailer fields up to the empty line.
                while !self.line()?.is_empty() {}
                return Ok(());
            }
            self.exact(size, sink)?;
            if !self.line()?.is_empty() {
                return Err(Failure::BadResponse);
            }
        }
    }
}

fn parse_head(raw: &[u8]) -> Result<Head, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(Failure::BadResponse),
    }
    let status = resp.code.ok_or(Failure::BadResponse)?;
    let mut close = resp.version != Some(1);
    let mut framing = Framing::UntilClose;
    let mut location = None;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("location") {
            location = std::str::from_utf8(h.value).ok().map(str::to_owned);
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).map_err(|_| Failure::BadResponse)?;
            let len = text.trim().parse().map_err(|_| Failure::BadResponse)?;
            if framing != Framing::Chunked {
                framing = Framing::Length(len);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if contains_token(h.value, b"chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if contains_token(h.value, b"close") {
                close = true;
            } else if contains_token(h.value, b"keep-alive") {
                close = false;
            }
        }
    }
    Ok(Head {
        status,
        framing,
        close,
        location,
    })
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// What one upload sends.
pub struct Upload<'a> {
    /// The whole request head, ending with the blank line.
    pub head: &'a [u8],
    pub size: u64,
    /// Wait for `100 Continue` before the body (the head must carry `Expect: 100-continue`).
    pub expect: bool,
    /// The status that counts as success (201 for uploads, 200 for registration).
    pub ok_status: u16,
    /// Check the completion JSON's `size` against `size`.
    pub check_size: bool,
    /// Bytes sent before and after the `size` pattern bytes (a form's envelope), counted in the
    /// head's `Content-Length` but not in `size`.
    pub envelope: Option<(&'a [u8], &'a [u8])>,
}

/// Runs one upload exchange on `conn`; `scratch` holds the answer's body afterwards.
pub fn upload(
    conn: &mut Conn,
    up: &Upload<'_>,
    pattern: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(), Failure> {
    if up.expect {
        conn.write_all(up.head)?;
        let mut head = conn.read_head()?;
        while (100..200).contains(&head.status) && head.status != 100 {
            head = conn.read_head()?;
        }
        if head.status != 100 {
            // Refused before the body: read the answer, and never reuse the connection (the
            // node closes it, and it would not know what to do with a body sent now).
            let _ = conn.read_body(&head, scratch, 1 << 20);
            conn.closing = true;
            return Err(Failure::Refused(head.status));
        }
        write_payload(conn, up, pattern)?;
    } else if up.size <= 64 * 1024 && (up.size as usize) <= pattern.len() {
        // Head and a small body in one write.
        let (before, after) = up.envelope.unwrap_or_default();
        let mut wire =
            Vec::with_capacity(up.head.len() + before.len() + up.size as usize + after.len());
        wire.extend_from_slice(up.head);
        wire.extend_from_slice(before);
        wire.extend_from_slice(&pattern[..up.size as usize]);
        wire.extend_from_slice(after);
        conn.write_all(&wire)?;
    } else {
        conn.write_all(up.head)?;
        write_payload(conn, up, pattern)?;
    }
    let mut head = conn.read_head()?;
    while (100..200).contains(&head.status) {
        head = conn.read_head()?;
    }
    conn.read_body(&head, scratch, 1 << 20)?;
    if head.status != up.ok_status {
        conn.closing = true;
        return Err(Failure::Status(head.status));
    }
    if up.check_size {
        #[derive(serde::Deserialize)]
        struct Answer {
            size: Option<u64>,
        }
        let answer: Answer = serde_json::from_slice(scratch).map_err(|_| Failure::BadResponse)?;
        if answer.size != Some(up.size) {
            return Err(Failure::SizeMismatch);
        }
    }
    Ok(())
}

/// The body after the head: the envelope's first half, `size` pattern bytes, its second half.
fn write_payload(conn: &mut Conn, up: &Upload<'_>, pattern: &[u8]) -> Result<(), Failure> {
    match up.envelope {
        None => conn.write_body(pattern, up.size),
        Some((before, after)) => {
            conn.write_all(before)?;
            conn.write_body(pattern, up.size)?;
            conn.write_all(after)
        }
    }
}

/// Runs one GET of `head` and checks that the body has exactly `size` bytes (when given).
pub fn download(conn: &mut Conn, head_bytes: &[u8], size: Option<u64>) -> Result<u64, Failure> {
    conn.write_all(head_bytes)?;
    let head = conn.read_head()?;
    if head.status != 200 {
        let _ = conn.discard_body(&head);
        conn.closing = true;
        return Err(Failure::Status(head.status));
    }
    if let (Framing::Length(len), Some(want)) = (head.framing, size) {
        if len != want {
            conn.closing = true;
            return Err(Failure::SizeMismatch);
        }
    }
    let got = conn.discard_body(&head)?;
    match size {
        Some(want) if got != want => Err(Failure::SizeMismatch),
        _ => Ok(got),
    }
}

/// The body pattern: `len` pseudo-random non-zero bytes, repeated as the body needs. Every byte
/// value but 0 occurs, as in the compressed files (images, video, archives) users upload, so a
/// form's file part shows the node a CR every 255 bytes or so, as a real one does; a CR is
/// never followed by LF (not even across a repetition), so no form delimiter line can occur.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            // xorshift64*: cheap, and the same bytes on every run.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            ((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8).max(1)
        })
        .collect();
    for i in 0..len {
        if out[i] == b'\r' && out[(i + 1) % len] == b'\n' {
            out[(i + 1) % len] = b'\t';
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_has_cr_often_and_crlf_never() {
        for len in [1, 2, 1024, 1 << 20] {
            let p = pattern(len);
            assert_eq!(p.len(), len);
            assert!(!p.contains(&0));
            let twice = [&p[..], &p[..]].concat();
            assert!(
                !twice.windows(2).any(|w| w == b"\r\n"),
                "CRLF in a pattern of {len}"
            );
        }
        let p = pattern(1 << 20);
        let crs = p.iter().filter(|&&b| b == b'\r').count();
        assert!((3000..5000).contains(&crs), "{crs} CRs in 1 MiB");
    }

    #[test]
    fn parses_heads_and_framing() {
        let h = parse_head(b"HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!(
            (h.status, h.framing, h.close),
            (201, Framing::Length(12), false)
        );
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (h.status, h.framing, h.close),
            (200, Framing::Chunked, true)
        );
        let h = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        assert_eq!((h.framing, h.close), (Framing::UntilClose, true));
        assert_eq!(
            parse_head(b"nonsense\r\n\r\n").unwrap_err(),
            Failure::BadResponse
        );
    }

    #[test]
    fn failure_keys() {
        assert_eq!(Failure::Status(409).key(), "status_409");
        assert_eq!(Failure::Refused(403).key(), "refused_403");
        assert_eq!(
            Failure::from(io::Error::from(io::ErrorKind::WouldBlock)),
            Failure::Timeout
        );
    }
}
