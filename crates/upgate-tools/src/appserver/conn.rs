//! One connection on a blocking socket: bytes go into an `H1Conn`, each request's body is read
//! whole (up to `max_body`), the handler answers, the reply goes back; keep-alive until the
//! peer, the protocol or the server ends it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use upgate_http::{CloseMode, Event, H1Conn, Limits, ProtocolError, RequestHead};

use super::{Reply, Request, Shared};

/// How often a blocked read looks at the stop flag and the idle deadline.
const POLL: Duration = Duration::from_millis(200);

/// Bytes asked of each read.
const READ_CHUNK: usize = 16 * 1024;

/// After a reply that leaves request bytes unread: how long, and how much, to discard before
/// closing, so the peer reads the reply rather than a reset.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 1 << 20;

/// Why serving a connection ended early.
enum Gone {
    /// The peer closed, the socket failed, the idle timeout passed or the server stopped.
    Closed,
    /// The peer broke the protocol: answer with its error, then close.
    Protocol(ProtocolError),
}

struct Conn<'a> {
    stream: TcpStream,
    peer: SocketAddr,
    h1: H1Conn,
    buf: Vec<u8>,
    shared: &'a Shared,
}

/// Serves `stream` until it closes.
pub fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(POLL));
    let mut conn = Conn {
        stream,
        peer,
        h1: H1Conn::new(Limits::default()),
        buf: vec![0u8; READ_CHUNK],
        shared,
    };
    match conn.run() {
        Ok(()) | Err(Gone::Closed) => {}
        Err(Gone::Protocol(e)) => {
            let reply = Reply::error(e.status(), e.code(), e.message());
            if conn.send(reply).is_ok() {
                conn.linger();
            }
        }
    }
}

impl Conn<'_> {
    fn run(&mut self) -> Result<(), Gone> {
        loop {
            match self.h1.next_event().map_err(Gone::Protocol)? {
                Event::Head(head) => {
                    if self.stopping() {
                        return Ok(()); // stopped: close without answering
                    }
                    self.shared.busy.fetch_add(1, Ordering::AcqRel);
                    let done = self.exchange(head);
                    self.shared.busy.fetch_sub(1, Ordering::AcqRel);
                    match done? {
                        CloseMode::KeepAlive => {}
                        CloseMode::Close => return Ok(()),
                        CloseMode::Linger => {
                            self.linger();
                            return Ok(());
                        }
                    }
                }
                Event::NeedData => self.fill()?,
                Event::Closed => return Ok(()),
                // Bodies are read inside `exchange`, and every head is answered there.
                Event::Data(_) | Event::EndOfMessage | Event::Paused => {
                    debug_assert!(false, "unexpected event between requests");
                    return Ok(());
                }
            }
        }
    }

    /// One request: its body, the handler's reply, the reply on the wire.
    fn exchange(&mut self, head: RequestHead) -> Result<CloseMode, Gone> {
        let body = self.read_body(&head)?;
        let reply = self.shared.handler.handle(&Request {
            head,
            body,
            peer: self.peer,
        });
        if self.stopping() {
            self.h1.disable_keep_alive();
        }
        self.send(reply)
    }

    /// The whole body, `None` when it is longer than `max_body` (then it is left unread).
    fn read_body(&mut self, head: &RequestHead) -> Result<Option<Bytes>, Gone> {
        let max = self.shared.options.max_body;
        if head.info().content_length().is_some_and(|n| n > max as u64) {
            return Ok(None);
        }
        if let Ok(Some(interim)) = self.h1.accept_body() {
            self.write(interim)?;
        }
        let mut body = BytesMut::new();
        loop {
            match self.h1.next_event().map_err(Gone::Protocol)? {
                Event::Data(chunk) => {
                    if body.len() + chunk.len() > max {
                        return Ok(None);
                    }
                    body.extend_from_slice(&chunk);
                }
                Event::EndOfMessage => return Ok(Some(body.freeze())),
                Event::NeedData => self.fill()?,
                Event::Head(_) | Event::Paused | Event::Closed => {
                    debug_assert!(false, "unexpected event inside a body");
                    return Err(Gone::Closed);
                }
            }
        }
    }

    /// Writes `reply`; tells whether the connection stays open.
    fn send(&mut self, reply: Reply) -> Result<CloseMode, Gone> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let out = self
            .h1
            .respond(&reply.into_response(), &date)
            .map_err(|_| Gone::Closed)?;
        self.write(&out.bytes)?;
        Ok(out.close)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Gone> {
        self.stream.write_all(bytes).map_err(|_| Gone::Closed)
    }

    /// Reads more bytes into the connection: waits (checking the stop flag and the idle
    /// timeout every [`POLL`]) until some arrive or the peer closes.
    fn fill(&mut self) -> Result<(), Gone> {
        let idle_until = self.shared.options.idle_timeout.map(|t| Instant::now() + t);
        loop {
            match self.stream.read(&mut self.buf) {
                Ok(0) => {
                    self.h1.receive_eof();
                    return Ok(());
                }
                Ok(n) => {
                    self.h1.receive(&self.buf[..n]);
                    return Ok(());
                }
                Err(e) if is_timeout(&e) => {
                    let idle_over = idle_until.is_some_and(|t| Instant::now() >= t);
                    if idle_over || (self.stopping() && !self.h1.in_request()) {
                        return Err(Gone::Closed);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Gone::Closed),
            }
        }
    }

    /// Shuts the write side and discards what the peer still sends, for a bounded time.
    fn linger(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + LINGER;
        let mut discarded = 0;
        while Instant::now() < deadline && discarded < LINGER_BYTES {
            match self.stream.read(&mut self.buf) {
                Ok(0) => return,
                Ok(n) => discarded += n,
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
