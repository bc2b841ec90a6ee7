//! The thin driver of one connection: reads into the protocol's buffer, feeds `H1Conn`, hands
//! heads to the [`Handler`], writes what the protocol encodes, and owns the head and
//! keep-alive timers. Protocol decisions stay in the protocol crate; what requests mean stays
//! above, in the handler; the connection's I/O is in `connection.rs`.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;

use tokio::time::{timeout_at, Instant};

use super::connection::Connection;
use super::exchange::Exchange;
use super::handler::Handler;
use super::transport::Transport;
use super::ThreadCtx;
use crate::error::{respond, RouteError};
use crate::http::{CloseMode, Event, ProtocolError, RequestHead};
use crate::metrics::{self, TimeoutKind};

/// Free space offered to the kernel for a read while waiting for a head.
const HEAD_READ: usize = 4096;

/// Why no head came.
enum NoHead {
    /// The peer closed, went idle past the keep-alive timeout, or the node is shutting down.
    Closed,
    Protocol(ProtocolError),
    Timeout,
}

/// Serves one connection until it closes.
pub async fn serve<H: Handler>(
    transport: Transport,
    peer: SocketAddr,
    ctx: Rc<ThreadCtx>,
    handler: Rc<H>,
) {
    let mut c = Connection::new(transport, peer, ctx);
    let mut first = true;
    loop {
        c.next_request();
        let head = match c.read_head(first).await {
            Ok(head) => head,
            Err(NoHead::Closed) => break,
            Err(NoHead::Protocol(e)) => {
                let resp = respond(&mut c.access, &e);
                c.finish(resp).await;
                break;
            }
            Err(NoHead::Timeout) => {
                metrics::timeout(TimeoutKind::Header);
                let resp = respond(&mut c.access, &RouteError::HeaderTimeout);
                c.finish(resp).await;
                break;
            }
        };
        first = false;
        let started = Instant::now();
        let (resp, head) = {
            let mut ex = Exchange::new(&mut c, head);
            // Boxed: the handler's future (the upload flow's is the largest) then lives only
            // while a request runs, instead of sizing every connection's task, idle ones too
            // (10 000 idle connections: 4.8 KiB each unboxed, 2.1 KiB boxed).
            let resp = Box::pin(handler.handle(&mut ex)).await;
            (resp, ex.into_head())
        };
        // Draining (SIGTERM/SIGINT, perhaps while the handler ran): this is the last response.
        if c.ctx.shutting_down() {
            c.conn.disable_keep_alive();
        }
        let status = resp.status;
        let sent = c.send(resp).await;
        c.log_request(Some(&head), status, started, sent.is_err());
        match sent {
            Ok(CloseMode::KeepAlive) => continue,
            Ok(mode) => {
                c.close(mode).await;
                break;
            }
            Err(_) => break,
        }
    }
    // A read abandoned by a timeout keeps the descriptor alive until it completes; shutting the
    // socket down completes it, so the close really happens now.
    let _ = c.transport.shutdown(Shutdown::Both);
}

impl Connection {
    /// Waits for the next request head. The first head must arrive within `header_timeout_ms`
    /// of the accept; later ones within `keepalive_timeout_ms` of idleness, then
    /// `header_timeout_ms` from their first byte.
    async fn read_head(&mut self, first: bool) -> Result<RequestHead, NoHead> {
        let cfg = &self.ctx.config;
        let mut head_deadline = first.then(|| Instant::now() + cfg.header_timeout());
        loop {
            match self.conn.next_event() {
                Ok(Event::Head(head)) => return Ok(head),
                Ok(Event::NeedData) => {}
                Ok(Event::Closed) => return Err(NoHead::Closed),
                Ok(other) => {
                    debug_assert!(false, "unexpected {other:?} while waiting for a head");
                    return Err(NoHead::Closed);
                }
                Err(e) => return Err(NoHead::Protocol(e)),
            }
            let in_request = self.conn.in_request();
            if in_request && head_deadline.is_none() {
                head_deadline = Some(Instant::now() + self.ctx.config.header_timeout());
            }
            let deadline = head_deadline
                .unwrap_or_else(|| Instant::now() + self.ctx.config.keepalive_timeout());
            let mut shutdown = self.ctx.shutdown.clone();
            if !in_request && *shutdown.borrow() {
                return Err(NoHead::Closed);
            }
            // A connection that has sent nothing yet is not lent a read buffer: its first bytes
            // are awaited with a poll, so an idle connection costs no buffer.
            let poll_first = first && !in_request;
            let read = tokio::select! {
                r = timeout_at(deadline, self.read_when_ready(HEAD_READ, poll_first)) => r,
                _ = shutdown.changed(), if !in_request => return Err(NoHead::Closed),
            };
            match read {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(NoHead::Closed),
                Err(_) if head_deadline.is_some() => return Err(NoHead::Timeout),
                Err(_) => {
                    metrics::timeout(TimeoutKind::Keepalive);
                    return Err(NoHead::Closed);
                }
            }
        }
    }

    /// [`Connection::read_more`], after waiting for readability with a poll when `poll_first`
    /// (the buffer is lent to the kernel only once bytes are there).
    async fn read_when_ready(&mut self, spare: usize, poll_first: bool) -> io::Result<usize> {
        if poll_first {
            self.transport.readable().await?;
        }
        self.read_more(spare).await
    }
}
