//! Reading HTTP/1.1 responses off a blocking connection (TCP or TLS), with deadlines: the head
//! through `httparse`, the body through the protocol layer's own decoder (`http::BodyDecoder`).

use std::io::{self, Read};
use std::time::Instant;

use bytes::BytesMut;

use upgate_http::{BodyDecoder, Decoded, Limits};

use super::transport::Conn;

/// Largest response head the client accepts.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest response body the client keeps (the node's answers are small JSON documents).
pub const MAX_BODY: usize = 1024 * 1024;

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }

    fn framing(&self) -> Result<Option<BodyDecoder>, ReadError> {
        if self.is_interim() || self.status == 204 || self.status == 304 {
            return Ok(Some(BodyDecoder::length(0)));
        }
        if let Some(te) = self.header("transfer-encoding") {
            return if te.to_ascii_lowercase().trim_end().ends_with("chunked") {
                Ok(Some(BodyDecoder::chunked()))
            } else {
                Err(ReadError::Malformed(format!("transfer-encoding {te:?}")))
            };
        }
        match self.header("content-length") {
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(|n| Some(BodyDecoder::length(n)))
                .map_err(|_| ReadError::Malformed(format!("content-length {v:?}"))),
            // Delimited by the end of the connection.
            None => Ok(None),
        }
    }
}

/// Why a response could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The deadline passed first.
    Timeout,
    /// The peer closed before a whole response.
    Closed,
    Io(io::Error),
    /// Not an HTTP/1.x response, or over the limits.
    Malformed(String),
}

/// Reads responses from one connection, which it owns (a TLS session cannot be shared between
/// a reader and a writer); bytes after a response stay buffered for the next.
pub struct ResponseReader {
    conn: Conn,
    buf: BytesMut,
}

impl ResponseReader {
    pub fn new(conn: Conn) -> Self {
        ResponseReader {
            conn,
            buf: BytesMut::with_capacity(4096),
        }
    }

    /// The connection, to send a body between two responses.
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Reads the next response head, by `deadline`.
    pub fn head(&mut self, deadline: Instant) -> Result<ResponseHead, ReadError> {
        loop {
            if let Some(head) = parse_head(&mut self.buf)? {
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Malformed("response head too large".into()));
            }
            if self.fill(deadline)? == 0 {
                return Err(ReadError::Closed);
            }
        }
    }

    /// Reads the body that belongs to `head`, by `deadline`.
    pub fn body(&mut self, head: &ResponseHead, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        let mut out = Vec::new();
        let Some(mut decoder) = head.framing()? else {
            // Until the connection ends.
            loop {
                out.extend_from_slice(&self.buf.split());
                check_size(&out)?;
                if self.fill(deadline)? == 0 {
                    return Ok(out);
                }
            }
        };
        let limits = Limits::default();
        loop {
            match decoder
                .decode(&mut self.buf, &limits)
                .map_err(|e| ReadError::Malformed(e.to_string()))?
            {
                Decoded::Data(b) => {
                    out.extend_from_slice(&b);
                    check_size(&out)?;
                }
                Decoded::End => return Ok(out),
                Decoded::NeedData => {
                    if self.fill(deadline)? == 0 {
                        return Err(ReadError::Closed);
                    }
                }
            }
        }
    }

    /// One read, waiting at most until `deadline`; 0 at end of stream.
    fn fill(&mut self, deadline: Instant) -> Result<usize, ReadError> {
        let mut chunk = [0u8; 8192];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::Timeout);
            }
            self.conn
                .set_read_timeout(Some(left))
                .map_err(ReadError::Io)?;
            match self.conn.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }
}

fn check_size(out: &[u8]) -> Result<(), ReadError> {
    if out.len() > MAX_BODY {
        Err(ReadError::Malformed("response body too large".into()))
    } else {
        Ok(())
    }
}

/// Parses a complete head at the front of `buf` and consumes it; `None` when incomplete.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<ResponseHead>, ReadError> {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut fields);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let status = resp
                .code
                .ok_or_else(|| ReadError::Malformed("no status".into()))?;
            let headers = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).trim().to_string(),
                    )
                })
                .collect();
            let _ = buf.split_to(len);
            Ok(Some(ResponseHead { status, headers }))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        // A TLS record (an alert, or a handshake) where HTTP was expected.
        Err(_) if matches!(buf[..], [21 | 22, 3, ..]) => Err(ReadError::Malformed(
            "the server answered with TLS; use an https:// URL for it".into(),
        )),
        Err(e) => Err(ReadError::Malformed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Option<ResponseHead> {
        let mut buf = BytesMut::from(bytes);
        parse_head(&mut buf).unwrap()
    }

    #[test]
    fn continue_then_final_are_two_heads() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"[..],
        );
        let first = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(first.status, 100);
        assert!(first.is_interim());
        let second = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(second.status, 201);
        assert_eq!(second.header("CONTENT-LENGTH"), Some("2"));
        assert_eq!(&buf[..], b"{}");
    }

    #[test]
    fn partial_head_is_none_and_garbage_is_malformed() {
        assert_eq!(parse(b"HTTP/1.1 403 Forbidden\r\nContent-"), None);
        let mut buf = BytesMut::from(&b"SSH-2.0-OpenSSH\r\n\r\n"[..]);
        assert!(matches!(parse_head(&mut buf), Err(ReadError::Malformed(_))));
        let mut alert = BytesMut::from(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46][..]);
        assert!(
            matches!(parse_head(&mut alert), Err(ReadError::Malformed(m)) if m.contains("https://"))
        );
    }

    #[test]
    fn framing_follows_the_head() {
        let head = |fields: &[(&str, &str)], status| ResponseHead {
            status,
            headers: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        assert_eq!(
            head(&[("Content-Length", "5")], 403).framing().unwrap(),
            Some(BodyDecoder::length(5))
        );
        assert_eq!(
            head(&[("Transfer-Encoding", "chunked")], 201)
                .framing()
                .unwrap(),
            Some(BodyDecoder::chunked())
        );
        assert_eq!(head(&[], 200).framing().unwrap(), None);
        assert_eq!(
            head(&[("Content-Length", "9")], 100).framing().unwrap(),
            Some(BodyDecoder::length(0))
        );
        assert!(head(&[("Content-Length", "x")], 200).framing().is_err());
    }
}
