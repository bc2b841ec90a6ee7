//! Invariants of the whole connection state machine ([`check_conn`]).

use super::*;

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
