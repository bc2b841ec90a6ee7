//! The post-callback's first attempt made from the upload's own io_uring thread, instead of a
//! round trip through a callback worker (a thread wake-up each way, which with the
//! pre-callback's made the callback workers half the node's CPU under small uploads).
//!
//! Only for what needs no blocking call: a registered (unguarded) `http://` URL whose host is
//! an IP address, when the pool answers over HTTP. Anything else (a host name, which would
//! need a DNS lookup; a client-carried URL, which the guard checks; `https`; a test pool whose
//! function stands in for the app) goes to the pool, as does every retry of the outbox sender
//! and every pre-callback (`100 Continue` waits for a blocking-pool worker, by design).
//!
//! The call is the pool's: the same headers (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`, `content-type`, `User-Agent`), the same body, at most
//! [`MAX_ANSWER_BYTES`] of the answer read, the whole call bounded by the callback timeout,
//! redirects not followed. Connections are kept per thread and per address (at most
//! [`IDLE_PER_ADDR`]); one that the app closed while idle is noticed when the answer does not
//! come, and the call is made once more on a new connection (applications de-duplicate by
//! `webhook-id`, and nothing of an answer had arrived).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;
use url::{Host, Url};

use super::sign::signature_header;
use super::{Job, Outcome, MAX_ANSWER_BYTES, USER_AGENT};

/// Idle connections kept per thread and application address.
pub const IDLE_PER_ADDR: usize = 32;
/// Longest answer head read.
const MAX_HEAD: usize = 16 * 1024;
/// Room made in the answer buffer before a read.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    static IDLE: RefCell<HashMap<SocketAddr, Vec<TcpStream>>> = RefCell::new(HashMap::new());
}

/// Where a job can be sent from the ring: its address and the request line's target and
/// `Host`; `None` when it must go to the pool (see the module doc).
pub fn target(job: &Job) -> Option<(SocketAddr, String, String)> {
    if job.guard.is_some() {
        return None;
    }
    let url = Url::parse(&job.url).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let ip = match url.host()? {
        Host::Ipv4(ip) => ip.into(),
        Host::Ipv6(ip) => ip.into(),
        Host::Domain(_) => return None,
    };
    let port = url.port_or_known_default()?;
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str()?),
        None => url.host_str()?.to_owned(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    Some((SocketAddr::new(ip, port), path, host))
}

/// Makes the call to `addr` (from [`target`]), bounded by `timeout` as a whole.
pub async fn call(
    job: &Job,
    addr: SocketAddr,
    path: &str,
    host: &str,
    timeout: Duration,
) -> Outcome {
    let request = request(job, path, host);
    match tokio::time::timeout(timeout, exchange(addr, request)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::TimedOut,
    }
}

/// One request on a kept connection, or on a new one if the kept one turns out closed.
async fn exchange(addr: SocketAddr, request: Vec<u8>) -> Outcome {
    let mut request = request;
    if let Some(stream) = take_idle(addr) {
        match attempt(&stream, request).await {
            Attempted::Done(outcome, reusable) => return finish(addr, stream, outcome, reusable),
            // Closed while idle: nothing of an answer came; try once on a new connection, with
            // the same request bytes (handed back, not copied beforehand).
            Attempted::Stale(unsent) => request = unsent,
        }
    }
    let stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return Outcome::ConnectFailed(format!("connecting to {addr}: {e}")),
    };
    let _ = stream.set_nodelay(true);
    match attempt(&stream, request).await {
        Attempted::Done(outcome, reusable) => finish(addr, stream, outcome, reusable),
        Attempted::Stale(_) => {
            Outcome::Failed(format!("{addr} closed the connection before answering"))
        }
    }
}

fn finish(addr: SocketAddr, stream: TcpStream, outcome: Outcome, reusable: bool) -> Outcome {
    if reusable {
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let kept = idle.entry(addr).or_default();
            if kept.len() < IDLE_PER_ADDR {
                kept.push(stream);
            }
        });
    }
    outcome
}

fn take_idle(addr: SocketAddr) -> Option<TcpStream> {
    IDLE.with(|idle| idle.borrow_mut().get_mut(&addr).and_then(Vec::pop))
}

enum Attempted {
    /// An outcome, and whether the connection may carry another request.
    Done(Outcome, bool),
    /// The connection was closed or reset before any byte of an answer; the request's bytes
    /// come back for a retry.
    Stale(Vec<u8>),
}

async fn attempt(stream: &TcpStream, request: Vec<u8>) -> Attempted {
    let (sent, request) = stream.write_all(request).await;
    if let Err(e) = sent {
        return match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => Attempted::Stale(request),
            _ => Attempted::Done(Outcome::Failed(format!("sending the request: {e}")), false),
        };
    }
    let mut answer = Answer::default();
    // One buffer for the whole answer: each read lands in its spare capacity, behind what the
    // reader has not consumed yet.
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let (start, end) = (buf.len(), buf.capacity());
        let (read, slice) = stream.read(buf.slice(start..end)).await;
        buf = slice.into_inner();
        let n = match read {
            Ok(n) => n,
            Err(e) if start == 0 && e.kind() == io::ErrorKind::ConnectionReset => {
                return Attempted::Stale(request)
            }
            Err(e) => {
                return Attempted::Done(Outcome::Failed(format!("reading the answer: {e}")), false)
            }
        };
        if n == 0 && start == 0 && answer.status.is_none() {
            return Attempted::Stale(request);
        }
        match answer.advance(&mut buf, n == 0) {
            Ok(Some(reusable)) => {
                let status = answer.status.unwrap_or(0);
                return Attempted::Done(
                    Outcome::Answered {
                        status,
                        body: answer.body,
                    },
                    reusable,
                );
            }
            Ok(None) if n == 0 => {
                return Attempted::Done(
                    Outcome::Failed("the connection closed in the middle of the answer".into()),
                    false,
                )
            }
            Ok(None) => {}
            Err(why) => return Attempted::Done(Outcome::Failed(why), false),
        }
    }
}

/// The request bytes, headed and signed as the pool's worker does.
fn request(job: &Job, path: &str, host: &str) -> Vec<u8> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n\
         content-type: application/json\r\nwebhook-id: {}\r\nwebhook-timestamp: {timestamp}\r\n",
        job.webhook_id
    );
    if !job.secrets.is_empty() {
        let signature = signature_header(&job.secrets, &job.webhook_id, timestamp, &job.body);
        head.push_str(&format!("webhook-signature: {signature}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", job.body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&job.body);
    bytes
}

/// An answer being read: its head, then its body by `Content-Length`, chunks, or the end of
/// the connection.
#[derive(Default)]
struct Answer {
    status: Option<u16>,
    framing: Option<Framing>,
    close: bool,
    body: Vec<u8>,
    /// Body bytes not kept (past [`MAX_ANSWER_BYTES`]).
    cut: bool,
}

/// What [`Answer::head`] found.
enum Head {
    /// Not all of it yet.
    Partial,
    /// A 1xx answer, skipped.
    Interim,
    /// The answer's own head.
    Final,
}

#[derive(Clone, Copy)]
enum Framing {
    /// Body bytes still to come.
    Length(usize),
    Chunked(Chunk),
    UntilClose,
}

/// Where a chunked body's decoding stands.
#[derive(Clone, Copy)]
enum Chunk {
    Size,
    Data(usize),
    DataEnd,
    Trailers,
}

impl Answer {
    /// Consumes what it can of `buf`. `Some(reusable)` once the answer is whole; `None` while
    /// more is needed; an error for a malformed answer.
    fn advance(&mut self, buf: &mut Vec<u8>, eof: bool) -> Result<Option<bool>, String> {
        loop {
            let Some(framing) = self.framing else {
                match self.head(buf)? {
                    Head::Partial => return Ok(None),
                    Head::Interim | Head::Final => continue,
                }
            };
            if self.cut {
                // Past the bound the rest is not read (as the pool's worker stops reading).
                return Ok(Some(false));
            }
            return match framing {
                Framing::Length(left) => {
                    let take = left.min(buf.len());
                    self.keep(&buf[..take]);
                    buf.drain(..take);
                    self.framing = Some(Framing::Length(left - take));
                    if left > take {
                        return Ok(self.cut.then_some(false));
                    }
                    Ok(Some(!self.close && !self.cut && buf.is_empty()))
                }
                Framing::UntilClose => {
                    self.keep(buf);
                    buf.clear();
                    Ok((eof || self.cut).then_some(false))
                }
                Framing::Chunked(state) => self.chunks(buf, state),
            };
        }
    }

    /// Parses the head when whole, and sets the body's framing; an interim (1xx) answer's
    /// head is consumed and skipped.
    fn head(&mut self, buf: &mut Vec<u8>) -> Result<Head, String> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut headers);
        let used = match parsed.parse(buf) {
            Ok(httparse::Status::Complete(used)) => used,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err("the answer's head is too long".into())
            }
            Ok(httparse::Status::Partial) => return Ok(Head::Partial),
            Err(e) => return Err(format!("malformed answer: {e}")),
        };
        let status = parsed.code.unwrap_or(0);
        let mut length = None;
        let mut chunked = false;
        let mut close = parsed.version == Some(0);
        for h in parsed.headers.iter() {
            let value = String::from_utf8_lossy(h.value);
            if h.name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .trim()
                        .parse::<usize>()
                        .map_err(|_| "bad Content-Length")?,
                );
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if h.name.eq_ignore_ascii_case("connection") {
                close = value.to_ascii_lowercase().contains("close");
            }
        }
        buf.drain(..used);
        if (100..200).contains(&status) {
            return Ok(Head::Interim); // the real answer follows
        }
        self.status = Some(status);
        self.close = close;
        self.framing = Some(if status == 204 || status == 304 {
            Framing::Length(0)
        } else if chunked {
            Framing::Chunked(Chunk::Size)
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        });
        Ok(Head::Final)
    }

    /// Decodes chunks from `buf` as far as it goes (chunk data is taken as it arrives, so an
    /// announced size never makes it buffer more); `Some` after the last chunk's trailers.
    fn chunks(&mut self, buf: &mut Vec<u8>, mut state: Chunk) -> Result<Option<bool>, String> {
        let outcome = loop {
            match state {
                Chunk::Size => {
                    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
                        if buf.len() > MAX_HEAD {
                            return Err("a chunk size line is too long".into());
                        }
                        break None;
                    };
                    let line = String::from_utf8_lossy(&buf[..eol]);
                    let text = line.split(';').next().unwrap_or("").trim().to_owned();
                    let size = usize::from_str_radix(&text, 16)
                        .map_err(|_| format!("bad chunk size {text:?}"))?;
                    buf.drain(..eol + 2);
                    state = if size == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data(size)
                    };
                }
                Chunk::Data(left) => {
                    let take = left.min(buf.len());
                    self.keep(&buf[..take]);
                    buf.drain(..take);
                    if self.cut {
                        break Some(false);
                    }
                    if take < left {
                        state = Chunk::Data(left - take);
                        break None;
                    }
                    state = Chunk::DataEnd;
                }
                Chunk::DataEnd => {
                    if buf.len() < 2 {
                        break None;
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("a chunk does not end with CR LF".into());
                    }
                    buf.drain(..2);
                    state = Chunk::Size;
                }
                Chunk::Trailers => {
                    let Some(end) = find_blank_line(buf) else {
                        if buf.len() > MAX_HEAD {
                            return Err("the answer's trailers are too long".into());
                        }
                        break None;
                    };
                    buf.drain(..end);
                    break Some(!self.close && buf.is_empty());
                }
            }
        };
        self.framing = Some(Framing::Chunked(state));
        Ok(outcome)
    }

    fn keep(&mut self, data: &[u8]) {
        let room = MAX_ANSWER_BYTES.saturating_sub(self.body.len());
        if data.len() > room {
            self.cut = true;
        }
        self.body.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// Reads an answer from `bytes` fed in two pieces (split at `split`, then the end of the
/// connection): its status, body and whether the connection could carry another request, or
/// `None` when it is incomplete, or why it is malformed. For the fuzz target and property
/// tests (`crate::checks::check_callback_answer`).
#[allow(clippy::type_complexity)]
pub fn decode_answer(bytes: &[u8], split: usize) -> Result<Option<(u16, Vec<u8>, bool)>, String> {
    let split = split.min(bytes.len());
    let mut answer = Answer::default();
    let mut buf = Vec::new();
    for (piece, eof) in [
        (&bytes[..split], false),
        (&bytes[split..], false),
        (&[][..], true),
    ] {
        buf.extend_from_slice(piece);
        if let Some(reusable) = answer.advance(&mut buf, eof)? {
            return Ok(Some((answer.status.unwrap_or(0), answer.body, reusable)));
        }
    }
    Ok(None)
}

/// Bytes up to and including the empty line that ends a trailer section starting at `rest`.
fn find_blank_line(rest: &[u8]) -> Option<usize> {
    if rest.starts_with(b"\r\n") {
        return Some(2);
    }
    rest.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(parts: &[&[u8]]) -> (Result<Option<bool>, String>, Answer) {
        let mut answer = Answer::default();
        let mut buf = Vec::new();
        let mut last = Ok(None);
        for (i, p) in parts.iter().enumerate() {
            buf.extend_from_slice(p);
            last = answer.advance(&mut buf, i + 1 == parts.len() && p.is_empty());
            if matches!(last, Ok(Some(_)) | Err(_)) {
                break;
            }
        }
        (last, answer)
    }

    #[test]
    fn a_content_length_answer_split_anywhere_is_read_whole_and_reusable() {
        let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n{\"success\":\"true\"}";
        for cut in 1..whole.len() {
            let (r, a) = read_all(&[&whole[..cut], &whole[cut..]]);
            assert_eq!(r, Ok(Some(true)), "cut at {cut}");
            assert_eq!(
                (a.status, a.body.as_slice()),
                (Some(200), &br#"{"success":"true"}"#[..])
            );
        }
    }

    #[test]
    fn a_chunked_answer_with_trailers_is_decoded() {
        let (r, a) = read_all(&[
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n",
            b"6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
        ]);
        assert_eq!(r, Ok(Some(true)));
        assert_eq!(
            (a.status, a.body.as_slice()),
            (Some(201), &b"hello world"[..])
        );
    }

    #[test]
    fn interim_answers_are_skipped_and_close_is_not_reused() {
        let (r, a) = read_all(&[
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy",
        ]);
        assert_eq!(r, Ok(Some(false)));
        assert_eq!(a.status, Some(503));
    }

    #[test]
    fn an_answer_until_close_ends_with_the_connection() {
        let (r, a) = read_all(&[b"HTTP/1.1 200 OK\r\n\r\nabc", b""]);
        assert_eq!(r, Ok(Some(false)));
        assert_eq!(a.body, b"abc");
    }

    #[test]
    fn a_long_body_is_cut_at_the_bound_and_not_reused() {
        let body = vec![b'x'; MAX_ANSWER_BYTES + 10];
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let (r, a) = read_all(&[head.as_bytes(), &body]);
        assert_eq!(r, Ok(Some(false)));
        assert_eq!(a.body.len(), MAX_ANSWER_BYTES);
    }

    #[test]
    fn garbage_is_a_failure() {
        let (r, _) = read_all(&[b"SMTP ready\r\n\r\n"]);
        assert!(r.is_err());
        let (r, _) = read_all(&[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]);
        assert!(r.is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any body, sent with a length or in chunks of any sizes, and cut anywhere between
        /// two reads, is read back exactly, and the connection stays reusable.
        #[test]
        fn any_answer_cut_anywhere_reads_back_exactly(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            chunks in proptest::collection::vec(1usize..700, 1..8),
            chunked in proptest::prelude::any::<bool>(),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let mut wire = Vec::new();
            if chunked {
                wire.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                let mut rest = &body[..];
                let mut sizes = chunks.iter().cycle();
                while !rest.is_empty() {
                    let n = (*sizes.next().unwrap()).min(rest.len());
                    wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                    wire.extend_from_slice(&rest[..n]);
                    wire.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                wire.extend_from_slice(b"0\r\n\r\n");
            } else {
                wire.extend_from_slice(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
                wire.extend_from_slice(&body);
            }
            let got = decode_answer(&wire, cut.index(wire.len() + 1));
            proptest::prop_assert_eq!(got, Ok(Some((200, body, true))));
        }
    }

    #[test]
    fn only_unguarded_http_urls_with_an_ip_host_go_from_the_ring() {
        let job = |url: &str| Job::registered(url, vec![], "evt".into(), vec![]);
        let t = target(&job("http://127.0.0.1:8080/post?x=1")).unwrap();
        assert_eq!(
            t,
            (
                "127.0.0.1:8080".parse().unwrap(),
                "/post?x=1".into(),
                "127.0.0.1:8080".into()
            )
        );
        let t = target(&job("http://[::1]/p")).unwrap();
        assert_eq!(t.0, "[::1]:80".parse().unwrap());
        assert!(target(&job("http://app.example.com/post")).is_none());
        assert!(target(&job("https://127.0.0.1/post")).is_none());
        assert!(target(&job("not a url")).is_none());
    }
}
