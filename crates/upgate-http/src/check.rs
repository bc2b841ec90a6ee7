//! Invariant checks for the protocol layer, shared by the fuzz targets (`fuzz/`), the seed
//! replay test (`tests/fuzz_corpus.rs`) and the property tests (`proptests/`).
//!
//! Every `check_*` function takes arbitrary bytes, runs the parser on them, and panics (with
//! `assert!`) when an invariant breaks. Returning normally means the input was handled as the
//! protocol layer promises, whether it was a valid request or garbage. The functions use only
//! the public API of [`crate`], so they test what the driver sees.
//!
//! | function | invariants |
//! |---|---|
//! | [`check_head`] | `find_end`/`parse_prefix`/`parse_head` never panic and agree on where a head ends; resuming `find_end` agrees with one scan; bytes after a head are never looked at; a parsed head is a prefix of the input and its fields are views of it; errors answer 4xx/5xx |
//! | [`check_chunked`] | data out ≤ bytes in; whole and byte-by-byte feeding give the same data, end position and error |
//! | [`check_conn`] | `H1Conn` fed whole, in the given splits and byte by byte yields the same [`Step`]s; only `ProtocolError` comes out; body bytes out ≤ bytes in |
//!
//! Each runs twice: with [`Limits::default`] and with [`tight_limits`], so short fuzz inputs
//! reach the size limits too.

use bytes::{Bytes, BytesMut};

use super::{
    find_end, is_tchar, parse_head, parse_length, parse_prefix, BodyDecoder, CloseMode, Decoded,
    Event, Expectation, Framing, H1Conn, HeadEnd, Limits, Method, ProtocolError, RequestHead,
    Response, Version, CONTINUE,
};

/// The statuses a [`ProtocolError`] may answer with.
pub const ERROR_STATUSES: [u16; 5] = [400, 414, 431, 501, 505];

/// The date the checks pass to `respond` (the layer never reads a clock).
pub const DATE: &str = "Thu, 01 Jan 2026 00:00:00 GMT";

/// Small limits, so that inputs of a few hundred bytes hit every limit path.
pub fn tight_limits() -> Limits {
    Limits {
        max_head_bytes: 256,
        max_headers: 8,
        max_target_bytes: 64,
        max_trailer_bytes: 64,
        max_chunk_line_bytes: 24,
    }
}

fn limit_sets() -> [Limits; 2] {
    [Limits::default(), tight_limits()]
}

/// Asserts what every protocol error must satisfy: a status from [`ERROR_STATUSES`], a
/// non-empty snake_case code and a message.
pub fn check_error(e: ProtocolError) {
    assert!(
        ERROR_STATUSES.contains(&e.status()),
        "{e:?} answers {} (not one of {ERROR_STATUSES:?})",
        e.status()
    );
    let code = e.code();
    assert!(
        !code.is_empty()
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
    );
    assert!(!e.message().is_empty());
}

/// `inner` lies inside `outer` in memory (a view, not a copy).
fn is_view(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

// ───────────────────────────── heads ─────────────────────────────

/// `find_end`, `parse_prefix` and `parse_head` on arbitrary bytes.
///
/// - none of them panics;
/// - `find_end`: `Complete(len)` ends at the first CRLF CRLF; resuming from a prefix's
///   `Partial { resume_at }` gives the same answer as one scan; its only error is `BadLineEnding`;
/// - `parse_prefix`: a head ends with CRLF CRLF, where `find_end` says (unless blank lines
///   precede it); the bytes after it are not looked at (alone or with another tail, the same
///   head); `parse_head` gives the same head or the same error (`BadRequestLine` when
///   incomplete);
/// - a parsed head satisfies [`check_parsed_head`]; an error satisfies [`check_error`].
pub fn check_head(data: &[u8]) {
    let end = find_end(data, 0);
    match end {
        Ok(HeadEnd::Complete(len)) => {
            assert!(
                len >= 4 && len <= data.len(),
                "Complete({len}) outside {} bytes",
                data.len()
            );
            assert_eq!(&data[len - 4..len], b"\r\n\r\n");
            assert!(
                memchr::memmem::find(&data[..len - 2], b"\r\n\r\n").is_none(),
                "Complete({len}) is not the first CRLF CRLF"
            );
        }
        Ok(HeadEnd::Partial { resume_at }) => {
            assert!(resume_at <= data.len());
            assert!(resume_at == 0 || data[resume_at - 1] == b'\n');
        }
        Err(e) => {
            check_error(e);
            assert_eq!(
                e,
                ProtocolError::BadLineEnding,
                "find_end only rejects line endings"
            );
        }
    }
    // Resuming: scan a prefix, then the whole input from where the prefix scan stopped.
    for cut in [data.len() / 3, data.len() / 2, data.len().saturating_sub(1)] {
        if let Ok(HeadEnd::Partial { resume_at }) = find_end(&data[..cut], 0) {
            assert_eq!(
                find_end(data, resume_at),
                end,
                "resume_at {resume_at} from a {cut}-byte prefix"
            );
        }
    }

    for limits in limit_sets() {
        check_parse(data, end, &limits);
    }
}

/// `parse_prefix` and `parse_head` on the same bytes, against each other and `find_end`.
fn check_parse(data: &[u8], end: Result<HeadEnd, ProtocolError>, limits: &Limits) {
    let prefix = parse_prefix(data, limits);
    let prefix_len = match &prefix {
        Ok(Some(parsed)) => {
            let len = parsed.len();
            assert!(
                len >= 4 && len <= data.len(),
                "head of {len} bytes in {}",
                data.len()
            );
            assert_eq!(
                &data[len - 4..len],
                b"\r\n\r\n",
                "a head ends with CRLF CRLF"
            );
            // The bytes after the head are not looked at: alone, or followed by anything else,
            // the head parses the same.
            let head = |bytes: &[u8]| match parse_prefix(bytes, limits) {
                Ok(Some(p)) => p.into_head(Bytes::copy_from_slice(&bytes[..len])),
                other => panic!("the head alone or with another tail gives {other:?}"),
            };
            let alone = head(&data[..len]);
            let mut other_tail = data[..len].to_vec();
            other_tail.extend_from_slice(b"\n\r\0 \r\n\r\nGET / HTTP/1.1");
            assert_eq!(head(&other_tail), alone);
            // Without leading blank lines, the one-pass parse and the line scan agree on the end.
            if !data.starts_with(b"\r\n") {
                assert_eq!(end, Ok(HeadEnd::Complete(len)), "find_end vs parse_prefix");
            }
            Some(len)
        }
        Ok(None) => None,
        Err(e) => {
            check_error(*e);
            None
        }
    };
    if let Ok(HeadEnd::Complete(len)) = end {
        if !data.starts_with(b"\r\n") {
            assert!(
                !matches!(prefix, Ok(Some(_))) || prefix_len == Some(len),
                "parse_prefix ends the head elsewhere than find_end"
            );
        }
    }

    let raw = Bytes::copy_from_slice(data);
    match parse_head(raw.clone(), limits) {
        Ok(head) => {
            assert_eq!(
                Some(head.raw().len()),
                prefix_len,
                "parse_head vs parse_prefix"
            );
            check_parsed_head(&head, &raw, limits);
        }
        Err(e) => {
            check_error(e);
            match prefix {
                Ok(None) => assert_eq!(e, ProtocolError::BadRequestLine),
                Err(pe) => assert_eq!(e, pe, "parse_head vs parse_prefix"),
                Ok(Some(_)) => panic!("parse_prefix accepted what parse_head refused: {e:?}"),
            }
        }
    }
    // The head as `find_end` delimits it.
    if let Ok(HeadEnd::Complete(len)) = end {
        let raw = Bytes::copy_from_slice(&data[..len]);
        match parse_head(raw.clone(), limits) {
            Ok(head) => check_parsed_head(&head, &raw, limits),
            Err(e) => check_error(e),
        }
    }
}

/// What a successfully parsed head promises: it is a prefix of `raw` (same memory), every
/// accessor is a view of it, the limits hold, and the framing decisions agree with the fields
/// they came from.
pub fn check_parsed_head(head: &RequestHead, raw: &Bytes, limits: &Limits) {
    // The head is the start of `raw` (the bytes after it are the body or the next request),
    // the same memory, not a copy.
    let own = head.raw();
    assert_eq!(
        own.as_ptr(),
        raw.as_ptr(),
        "the head must keep the input, not a copy"
    );
    assert!(own.len() <= raw.len() && raw.starts_with(own));
    assert!(own.ends_with(b"\r\n\r\n"), "a head ends with CRLF CRLF");
    let raw = own;

    let method = head.method_str().as_bytes();
    assert!(!method.is_empty() && method.iter().all(|&b| is_tchar(b)));
    assert!(is_view(raw, method));
    let kind = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"PUT" => Method::Put,
        b"DELETE" => Method::Delete,
        b"OPTIONS" => Method::Options,
        _ => Method::Other,
    };
    assert_eq!(head.method(), kind);

    let target = head.target();
    assert!(!target.is_empty() && target.len() <= limits.max_target_bytes);
    assert!(is_view(raw, target));
    let path = head.path();
    assert!(
        path == b"/" || is_view(target, path),
        "path must be a view of the target"
    );
    assert!(
        path.starts_with(b"/") || path.starts_with(b"?"),
        "path {path:?}"
    );
    let path_only = head.path_only();
    assert!(!path_only.contains(&b'?'), "path_only {path_only:?}");
    // `http://host?q` has an empty path, which is `/`.
    assert!(path.starts_with(path_only) || (path_only == b"/" && path.starts_with(b"?")));

    let mut n = 0;
    for (name, value) in head.fields() {
        n += 1;
        assert!(is_view(raw, name) && is_view(raw, value));
        assert!(
            !name.is_empty() && name.iter().all(|&b| is_tchar(b)),
            "field name {name:?}"
        );
        assert!(
            !value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
            "field value {value:?}"
        );
    }
    assert!(n <= limits.max_headers.max(1));

    let info = head.info();
    assert_eq!(info.version, head.version());
    let count = |name: &str| head.values(name).count();
    if info.version == Version::Http11 {
        assert_eq!(count("host"), 1, "HTTP/1.1 needs exactly one Host");
    }
    for name in [
        "host",
        "content-length",
        "transfer-encoding",
        "expect",
        "connection",
        "appid",
    ] {
        assert_eq!(head.value(name), head.values(name).next());
    }
    match info.framing {
        Framing::Chunked => {
            assert_eq!(info.version, Version::Http11);
            assert!(count("transfer-encoding") > 0 && count("content-length") == 0);
        }
        Framing::Length(len) => {
            assert_eq!(
                count("transfer-encoding"),
                0,
                "Transfer-Encoding must decide the framing"
            );
            for value in head.values("content-length") {
                for item in value.split(|&b| b == b',') {
                    let item = item.trim_ascii();
                    assert_eq!(parse_length(item), Ok(len), "Content-Length item {item:?}");
                }
            }
            if count("content-length") == 0 {
                assert_eq!(len, 0);
            }
        }
    }
    if info.expect == Expectation::Continue {
        assert_eq!(info.version, Version::Http11);
        assert!(head
            .values("expect")
            .any(|v| v.eq_ignore_ascii_case(b"100-continue")));
    }
    let close_token = head
        .values("connection")
        .flat_map(|v| v.split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
    if close_token {
        assert!(!info.keep_alive, "Connection: close must not keep alive");
    } else if info.version == Version::Http11 {
        assert!(info.keep_alive, "HTTP/1.1 keeps alive unless asked not to");
    }
}

// ───────────────────────────── chunked bodies ─────────────────────────────

/// How a chunked decode run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkedEnd {
    /// The body ended after `consumed` input bytes; the rest stays buffered.
    End {
        consumed: usize,
    },
    /// The input ran out mid-body.
    NeedData,
    Error(ProtocolError),
}

/// The body a chunked decoder produced from some input, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedRun {
    pub data: Vec<u8>,
    pub end: ChunkedEnd,
}

/// Decodes `data` as a chunked body, fed in pieces of `step` bytes (`usize::MAX`: whole),
/// checking the per-call invariants on the way.
pub fn decode_chunked(data: &[u8], step: usize, limits: &Limits) -> ChunkedRun {
    let mut decoder = BodyDecoder::chunked();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        let before = buf.len();
        let decoded = decoder.decode(&mut buf, limits);
        let consumed = fed - buf.len();
        assert!(buf.len() <= before, "decode must not grow the buffer");
        match decoded {
            Ok(Decoded::Data(b)) => {
                assert!(!b.is_empty(), "Data must carry bytes");
                assert_eq!(
                    &data[consumed - b.len()..consumed],
                    &b[..],
                    "Data must be the bytes just consumed"
                );
                out.extend_from_slice(&b);
            }
            Ok(Decoded::End) => {
                assert!(decoder.is_done());
                let left = buf.len();
                assert_eq!(
                    decoder.decode(&mut buf, limits),
                    Ok(Decoded::End),
                    "End is final"
                );
                assert_eq!(buf.len(), left, "a finished decoder reads nothing more");
                assert!(
                    consumed >= out.len() + 5,
                    "a chunked body has at least `0` CRLF CRLF of framing"
                );
                return ChunkedRun {
                    data: out,
                    end: ChunkedEnd::End { consumed },
                };
            }
            Ok(Decoded::NeedData) => {
                assert!(!decoder.is_done());
                if fed == data.len() {
                    return ChunkedRun {
                        data: out,
                        end: ChunkedEnd::NeedData,
                    };
                }
                let next = fed.saturating_add(step).min(data.len());
                buf.extend_from_slice(&data[fed..next]);
                fed = next;
            }
            Err(e) => {
                check_error(e);
                return ChunkedRun {
                    data: out,
                    end: ChunkedEnd::Error(e),
                };
            }
        }
        assert!(
            out.len() <= fed,
            "{} body bytes out of {fed} bytes in",
            out.len()
        );
    }
}

/// The chunked decoder on arbitrary bytes: whole and byte-by-byte agree on the data, on where
/// the body ends and on the error; data out never exceeds bytes in.
pub fn check_chunked(data: &[u8]) {
    for limits in limit_sets() {
        let whole = decode_chunked(data, usize::MAX, &limits);
        assert!(whole.data.len() <= data.len());
        let bytewise = decode_chunked(data, 1, &limits);
        assert_eq!(whole, bytewise, "whole vs byte-by-byte with {limits:?}");
        if let ChunkedEnd::End { consumed } = whole.end {
            assert!(consumed <= data.len());
        }
    }
}

// ───────────────────────────── connections ─────────────────────────────

/// One observable step of driving an [`H1Conn`] the way the server driver does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Head(RequestHead),
    /// `accept_body` answered: whether it asked for `100 Continue` to be written.
    Continue(bool),
    /// Body bytes; consecutive `Data` events are joined (their split depends on the reads).
    Data(Vec<u8>),
    EndOfMessage,
    /// `respond` after the end of a message, and how the connection goes on.
    Responded(CloseMode),
    Closed,
    Error(ProtocolError),
}

/// Feeds `data` to a new [`H1Conn`] in pieces cut at `splits` (positions, any order, clamped),
/// then signals EOF. Calls `accept_body` after every head and `respond(200)` after every end
/// of message, so pipelined requests are all seen. Returns the steps; panics on a broken
/// per-event invariant (see [`check_conn`]).
pub fn drive(data: &[u8], splits: &[usize], limits: &Limits) -> Vec<Step> {
    let mut cuts: Vec<usize> = splits.iter().map(|&s| s.min(data.len())).collect();
    cuts.push(data.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut d = Driver {
        conn: H1Conn::new(*limits),
        data,
        fed: 0,
        steps: Vec::new(),
        framing: None,
        body: 0,
        eof: false,
    };
    for cut in cuts {
        if cut > d.fed {
            d.conn.receive(&data[d.fed..cut]);
            d.fed = cut;
            if !d.pump() {
                return d.steps;
            }
        }
    }
    d.conn.receive_eof();
    d.eof = true;
    let stopped = !d.pump();
    assert!(stopped, "after EOF the connection must close or fail");
    d.steps
}

struct Driver<'a> {
    conn: H1Conn,
    data: &'a [u8],
    fed: usize,
    steps: Vec<Step>,
    /// Framing of the message being read.
    framing: Option<Framing>,
    /// Body bytes of the message being read.
    body: u64,
    eof: bool,
}

impl Driver<'_> {
    fn consumed(&self) -> usize {
        assert!(self.conn.buffered() <= self.fed);
        self.fed - self.conn.buffered()
    }

    /// Pulls events until more input is needed (true) or the connection is finished (false).
    fn pump(&mut self) -> bool {
        // Every event but NeedData consumes input or changes state; bound the loop anyway.
        for _ in 0..4 * self.fed + 64 {
            let before = self.consumed();
            let event = self.conn.next_event();
            let consumed = self.consumed();
            assert!(consumed >= before, "consumed bytes went back");
            match event {
                Ok(Event::Head(head)) => {
                    let raw = head.raw();
                    assert!(consumed - before >= raw.len());
                    assert_eq!(
                        &self.data[consumed - raw.len()..consumed],
                        &raw[..],
                        "head is the bytes just consumed"
                    );
                    assert!(raw.len() <= self.conn.limits().max_head_bytes);
                    check_parsed_head(&head, raw, self.conn.limits());
                    let info = *head.info();
                    self.framing = Some(info.framing);
                    self.body = 0;
                    self.steps.push(Step::Head(head));
                    let cont = self
                        .conn
                        .accept_body()
                        .expect("accept_body right after a head");
                    if let Some(bytes) = cont {
                        assert_eq!(bytes, CONTINUE);
                        assert_eq!(info.expect, Expectation::Continue);
                        assert!(info.has_body());
                    }
                    self.steps.push(Step::Continue(cont.is_some()));
                }
                Ok(Event::Data(bytes)) => {
                    assert!(!bytes.is_empty(), "Data must carry bytes");
                    assert_eq!(
                        &self.data[consumed - bytes.len()..consumed],
                        &bytes[..],
                        "Data is the bytes just consumed"
                    );
                    self.body += bytes.len() as u64;
                    if let Some(Framing::Length(n)) = self.framing {
                        assert!(
                            self.body <= n,
                            "{} body bytes for Content-Length {n}",
                            self.body
                        );
                    }
                    match self.steps.last_mut() {
                        Some(Step::Data(v)) => v.extend_from_slice(&bytes),
                        _ => self.steps.push(Step::Data(bytes.to_vec())),
                    }
                }
                Ok(Event::EndOfMessage) => {
                    match self.framing.take() {
                        Some(Framing::Length(n)) => {
                            assert_eq!(self.body, n, "Content-Length body complete")
                        }
                        Some(Framing::Chunked) => {}
                        None => panic!("EndOfMessage without a head"),
                    }
                    self.steps.push(Step::EndOfMessage);
                    let out = self
                        .conn
                        .respond(&Response::new(200), DATE)
                        .expect("respond after EndOfMessage");
                    assert!(out.bytes.starts_with(b"HTTP/1.1 200 OK\r\n"));
                    assert_ne!(out.close, CloseMode::Linger, "the body was read in full");
                    self.steps.push(Step::Responded(out.close));
                }
                Ok(Event::NeedData) => {
                    assert!(!self.eof, "NeedData after EOF");
                    return true;
                }
                Ok(Event::Paused) => {
                    panic!("Paused although every head was decided and every message answered")
                }
                Ok(Event::Closed) => {
                    assert_eq!(self.conn.next_event(), Ok(Event::Closed), "Closed is final");
                    assert!(self.conn.is_closed());
                    self.steps.push(Step::Closed);
                    return false;
                }
                Err(e) => {
                    check_error(e);
                    assert_eq!(self.conn.next_event(), Err(e), "a protocol error is final");
                    let out = self
                        .conn
                        .respond(&Response::json(e.status(), "{}"), DATE)
                        .expect("one error response after a protocol error");
                    assert_ne!(out.close, CloseMode::KeepAlive, "a protocol error closes");
                    assert!(out
                        .bytes
                        .starts_with(format!("HTTP/1.1 {} ", e.status()).as_bytes()));
                    assert!(self.conn.is_closed());
                    self.steps.push(Step::Error(e));
                    return false;
                }
            }
        }
        panic!("no progress after {} events", 4 * self.fed + 64);
    }
}

/// `H1Conn` on arbitrary bytes: fed whole, cut at `splits` and byte by byte, it yields the same
/// steps (with both limit sets); every per-event invariant of [`drive`] holds; heads and body
/// bytes together never exceed the input.
pub fn check_conn(data: &[u8], splits: &[usize]) {
    let bytewise: Vec<usize> = (1..data.len()).collect();
    for limits in limit_sets() {
        let whole = drive(data, &[], &limits);
        let total: usize = whole
            .iter()
            .map(|s| match s {
                Step::Head(h) => h.raw().len(),
                Step::Data(d) => d.len(),
                _ => 0,
            })
            .sum();
        assert!(
            total <= data.len(),
            "{total} bytes of heads and bodies out of {} in",
            data.len()
        );
        let split = drive(data, splits, &limits);
        assert_eq!(whole, split, "whole vs split at {splits:?} with {limits:?}");
        if data.len() <= 4096 {
            let bytes = drive(data, &bytewise, &limits);
            assert_eq!(whole, bytes, "whole vs byte-by-byte with {limits:?}");
        }
    }
}

/// Split points for [`check_conn`] taken from the first bytes of a fuzz input: byte 0 gives
/// how many (0-15), then two bytes (little-endian) per point. Returns (splits, data).
pub fn splits_from_prefix(input: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = input.split_first() else {
        return (Vec::new(), input);
    };
    let n = usize::from(n & 0x0f).min(rest.len() / 2);
    let (points, data) = rest.split_at(2 * n);
    let splits = points
        .chunks_exact(2)
        .map(|p| usize::from(u16::from_le_bytes([p[0], p[1]])) % (data.len() + 1))
        .collect();
    (splits, data)
}
