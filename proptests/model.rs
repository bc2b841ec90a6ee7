//! A model of valid requests, their wire bytes, and the steps an `H1Conn` must produce for them.

use proptest::prelude::*;
use upgate::http::check::Step;
use upgate::http::{CloseMode, Framing, RequestHead, Version};

/// One chunk of a hand-encoded chunked body.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Never empty: an empty chunk is the last chunk.
    pub data: Vec<u8>,
    /// Chunk extensions as written after the size, e.g. ` ;a=b;c="d e"` (may be empty).
    pub ext: String,
    pub upper_hex: bool,
    pub leading_zeros: usize,
}

impl Chunk {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let hex = if self.upper_hex {
            format!("{:X}", self.data.len())
        } else {
            format!("{:x}", self.data.len())
        };
        out.extend(std::iter::repeat_n(b'0', self.leading_zeros));
        out.extend_from_slice(hex.as_bytes());
        out.extend_from_slice(self.ext.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\r\n");
    }
}

#[derive(Debug, Clone)]
pub struct ChunkedBody {
    pub chunks: Vec<Chunk>,
    pub last_ext: String,
    pub trailers: Vec<(String, String)>,
}

impl ChunkedBody {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for c in &self.chunks {
            c.encode(&mut out);
        }
        out.push(b'0');
        out.extend_from_slice(self.last_ext.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.trailers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    pub fn payload(&self) -> Vec<u8> {
        self.chunks
            .iter()
            .flat_map(|c| c.data.iter().copied())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub enum Body {
    /// No body; `explicit_zero` sends `Content-Length: 0`.
    Empty {
        explicit_zero: bool,
    },
    Length(Vec<u8>),
    Chunked(ChunkedBody),
}

/// A valid request.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: &'static str,
    pub path: String,
    pub http10: bool,
    /// Application fields (appid, callbacks, …), in order.
    pub extra: Vec<(String, String)>,
    pub expect: bool,
    pub close: bool,
    /// HTTP/1.0 only: `Connection: keep-alive`.
    pub keep_alive_10: bool,
    /// Write framing field names in lower case.
    pub lower: bool,
    pub body: Body,
}

impl Req {
    /// Every field as written, in order.
    pub fn fields(&self) -> Vec<(String, String)> {
        let name = |n: &str| {
            if self.lower {
                n.to_ascii_lowercase()
            } else {
                n.to_string()
            }
        };
        let mut f = Vec::new();
        if !self.http10 {
            f.push((name("Host"), "upload.example.com".to_string()));
        }
        f.extend(self.extra.iter().cloned());
        if self.expect {
            f.push((name("Expect"), "100-continue".to_string()));
        }
        if self.close {
            f.push((name("Connection"), "close".to_string()));
        } else if self.http10 && self.keep_alive_10 {
            f.push((name("Connection"), "keep-alive".to_string()));
        }
        match &self.body {
            Body::Empty {
                explicit_zero: true,
            } => f.push((name("Content-Length"), "0".to_string())),
            Body::Empty { .. } => {}
            Body::Length(b) => f.push((name("Content-Length"), b.len().to_string())),
            Body::Chunked(_) => f.push((name("Transfer-Encoding"), "chunked".to_string())),
        }
        f
    }

    pub fn encode(&self) -> Vec<u8> {
        let version = if self.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let mut out = format!("{} {} {version}\r\n", self.method, self.path).into_bytes();
        for (n, v) in self.fields() {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        match &self.body {
            Body::Empty { .. } => {}
            Body::Length(b) => out.extend_from_slice(b),
            Body::Chunked(c) => out.extend_from_slice(&c.encode()),
        }
        out
    }

    pub fn payload(&self) -> Vec<u8> {
        match &self.body {
            Body::Empty { .. } => Vec::new(),
            Body::Length(b) => b.clone(),
            Body::Chunked(c) => c.payload(),
        }
    }

    /// The body has bytes to read (a chunked body always may, even an empty one).
    fn has_body(&self) -> bool {
        match &self.body {
            Body::Empty { .. } => false,
            Body::Length(b) => !b.is_empty(),
            Body::Chunked(_) => true,
        }
    }

    /// The connection stays open after this exchange.
    pub fn persists(&self) -> bool {
        !self.close && (!self.http10 || self.keep_alive_10)
    }

    /// Asserts that `head` is this request's head.
    pub fn assert_head(&self, head: &RequestHead) {
        assert_eq!(head.method_str(), self.method);
        assert_eq!(head.target(), self.path.as_bytes());
        let version = if self.http10 {
            Version::Http10
        } else {
            Version::Http11
        };
        assert_eq!(head.version(), version);
        let got: Vec<(String, String)> = head
            .fields()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        assert_eq!(got, self.fields());
        let framing = match &self.body {
            Body::Empty { .. } => Framing::Length(0),
            Body::Length(b) => Framing::Length(b.len() as u64),
            Body::Chunked(_) => Framing::Chunked,
        };
        assert_eq!(head.info().framing, framing);
        assert_eq!(head.info().keep_alive, self.persists());
    }
}

/// Asserts that `steps` are exactly the exchanges of `reqs` that the connection reaches
/// (up to and including the first one that does not persist), then `Closed`.
pub fn assert_steps(steps: &[Step], reqs: &[Req]) {
    let mut i = 0;
    let mut next = || {
        let s = steps.get(i).cloned();
        i += 1;
        s.unwrap_or_else(|| panic!("steps end early: {steps:#?}"))
    };
    for (n, req) in reqs.iter().enumerate() {
        match next() {
            Step::Head(head) => req.assert_head(&head),
            other => panic!("request {n}: expected its head, got {other:?}"),
        }
        let cont = req.expect && !req.http10 && req.has_body();
        assert_eq!(next(), Step::Continue(cont), "request {n}");
        let payload = req.payload();
        if !payload.is_empty() {
            assert_eq!(next(), Step::Data(payload), "request {n}");
        }
        assert_eq!(next(), Step::EndOfMessage, "request {n}");
        let mode = if req.persists() {
            CloseMode::KeepAlive
        } else {
            CloseMode::Close
        };
        assert_eq!(next(), Step::Responded(mode), "request {n}");
        if !req.persists() {
            break;
        }
    }
    assert_eq!(next(), Step::Closed);
    assert_eq!(i, steps.len(), "extra steps: {steps:#?}");
}

// ───────────────────────────── strategies ─────────────────────────────

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,8}"
}

/// A field value without leading or trailing whitespace.
fn field_value() -> impl Strategy<Value = String> {
    prop_oneof!["", "[!-~]", "[!-~][ -~\t]{0,30}[!-~]"]
}

/// BWS around an extension's `;` and `=`.
fn bws() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(""), Just(" "), Just("\t"), Just(" \t ")]
}

pub fn chunk_ext() -> impl Strategy<Value = String> {
    let one = (
        bws(),
        token(),
        bws(),
        prop::option::of(prop_oneof![token(), "\"[ !#-~]{0,10}\""]),
    )
        .prop_map(|(ws, name, ws2, val)| match val {
            Some(v) => format!("{ws};{name}{ws2}={v}"),
            None => format!("{ws};{name}"),
        });
    prop::collection::vec(one, 0..3).prop_map(|v| v.concat())
}

pub fn chunk(max: usize) -> impl Strategy<Value = Chunk> {
    (
        prop::collection::vec(any::<u8>(), 1..max),
        chunk_ext(),
        any::<bool>(),
        0..3usize,
    )
        .prop_map(|(data, ext, upper_hex, leading_zeros)| Chunk {
            data,
            ext,
            upper_hex,
            leading_zeros,
        })
}

pub fn trailers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((token(), field_value()), 0..4)
}

pub fn chunked_body() -> impl Strategy<Value = ChunkedBody> {
    (
        prop::collection::vec(chunk(300), 0..5),
        chunk_ext(),
        trailers(),
    )
        .prop_map(|(chunks, last_ext, trailers)| ChunkedBody {
            chunks,
            last_ext,
            trailers,
        })
}

fn path() -> impl Strategy<Value = String> {
    (
        "[a-z0-9]{1,8}",
        prop::collection::vec("[A-Za-z0-9._~-]{1,10}", 0..4),
        prop::option::of("[a-z]{1,5}=[a-z0-9]{0,5}"),
    )
        .prop_map(|(app, segs, q)| {
            let mut p = format!("/{app}");
            for s in segs {
                p.push('/');
                p.push_str(&s);
            }
            if let Some(q) = q {
                p.push('?');
                p.push_str(&q);
            }
            p
        })
}

fn extra_fields() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("appid"),
        Just("callback_url_pre"),
        Just("callback_url_post"),
        Just("User-Agent"),
        Just("Accept"),
        Just("Content-Type"),
        Just("X-Request-Id"),
    ];
    prop::collection::vec(
        (name, field_value()).prop_map(|(n, v)| (n.to_string(), v)),
        0..6,
    )
}

/// Any valid request: HTTP/1.1 or 1.0, empty, Content-Length or (1.1 only) chunked body.
pub fn request() -> impl Strategy<Value = Req> {
    let method = prop_oneof![
        Just("POST"),
        Just("PUT"),
        Just("GET"),
        Just("HEAD"),
        Just("DELETE"),
        Just("OPTIONS"),
        Just("PATCH")
    ];
    let body = prop_oneof![
        any::<bool>().prop_map(|explicit_zero| Body::Empty { explicit_zero }),
        prop::collection::vec(any::<u8>(), 1..600).prop_map(Body::Length),
        chunked_body().prop_map(Body::Chunked),
    ];
    (
        method,
        path(),
        prop::bool::weighted(0.2),
        extra_fields(),
        any::<bool>(),
        prop::bool::weighted(0.15),
        any::<bool>(),
        any::<bool>(),
        body,
    )
        .prop_map(
            |(method, path, http10, extra, expect, close, keep_alive_10, lower, body)| {
                // HTTP/1.0 has no Transfer-Encoding: send its chunked payload with a length.
                let body = match body {
                    Body::Chunked(c) if http10 => Body::Length(c.payload()),
                    Body::Length(b) if b.is_empty() => Body::Empty {
                        explicit_zero: true,
                    },
                    b => b,
                };
                Req {
                    method,
                    path,
                    http10,
                    extra,
                    expect,
                    close,
                    keep_alive_10,
                    lower,
                    body,
                }
            },
        )
}

/// Cut positions inside a buffer of `len` bytes, from proptest indices.
pub fn cuts(indices: &[prop::sample::Index], len: usize) -> Vec<usize> {
    indices.iter().map(|i| i.index(len + 1)).collect()
}
