//! An in-memory transport: the test twin of a TCP connection (quinn-proto's `Pair`, h11's
//! `ConnectionPair`). A test holds the [`MemoryPeer`] end: it sends the client's bytes, closes
//! its side, and reads what the node wrote, while the node's driver serves the
//! [`MemoryStream`] end exactly as it serves a socket (minus splice and registered buffers,
//! which need a descriptor). Both ends live on one io_uring thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

#[derive(Default)]
struct Shared {
    /// Client → node bytes not read yet.
    inbound: VecDeque<Bytes>,
    /// The client closed its sending side (the node reads end of stream once `inbound` is empty).
    client_done: bool,
    /// Node → client bytes, all of them.
    outbound: Vec<u8>,
    /// The node shut down its writing side.
    node_done: bool,
}

#[derive(Default)]
struct Pipe {
    shared: RefCell<Shared>,
    /// Woken when the client sends or closes.
    to_node: Notify,
    /// Woken when the node writes or closes.
    to_client: Notify,
}

/// The node's end.
pub struct MemoryStream(Rc<Pipe>);

/// The client's end.
#[derive(Clone)]
pub struct MemoryPeer(Rc<Pipe>);

/// A connected pair: the node serves the stream, the test drives the peer.
pub fn pair() -> (MemoryStream, MemoryPeer) {
    let pipe = Rc::new(Pipe::default());
    (MemoryStream(pipe.clone()), MemoryPeer(pipe))
}

impl MemoryStream {
    pub(super) async fn read(&self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        loop {
            {
                let mut s = self.0.shared.borrow_mut();
                let room = buf.capacity() - buf.len();
                if let Some(mut chunk) = s.inbound.pop_front() {
                    let n = chunk.len().min(room);
                    buf.extend_from_slice(&chunk.split_to(n));
                    if !chunk.is_empty() {
                        s.inbound.push_front(chunk);
                    }
                    return (Ok(n), buf);
                }
                if s.client_done {
                    return (Ok(0), buf);
                }
            }
            self.0.to_node.notified().await;
        }
    }

    pub(super) async fn readable(&self) {
        loop {
            {
                let s = self.0.shared.borrow();
                if !s.inbound.is_empty() || s.client_done {
                    return;
                }
            }
            self.0.to_node.notified().await;
        }
    }

    pub(super) fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.0.shared.borrow_mut();
        if s.node_done {
            return Err(io::Error::from(io::ErrorKind::BrokenPipe));
        }
        s.outbound.extend_from_slice(bytes);
        drop(s);
        self.0.to_client.notify_waiters();
        Ok(())
    }

    pub(super) fn shutdown(&self, how: Shutdown) {
        let mut s = self.0.shared.borrow_mut();
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            s.node_done = true;
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            // Reads end now: what the client sends later is discarded.
            s.inbound.clear();
            s.client_done = true;
        }
        drop(s);
        self.0.to_client.notify_waiters();
        self.0.to_node.notify_waiters();
    }
}

impl MemoryPeer {
    /// Sends bytes to the node.
    pub fn send(&self, bytes: impl Into<Bytes>) {
        self.0.shared.borrow_mut().inbound.push_back(bytes.into());
        self.0.to_node.notify_waiters();
    }

    /// Closes the client's sending side (the node reads end of stream).
    pub fn close(&self) {
        self.0.shared.borrow_mut().client_done = true;
        self.0.to_node.notify_waiters();
    }

    /// Everything the node wrote so far.
    pub fn received(&self) -> Vec<u8> {
        self.0.shared.borrow().outbound.clone()
    }

    /// True once the node shut down its writing side (closed the connection).
    pub fn node_closed(&self) -> bool {
        self.0.shared.borrow().node_done
    }

    /// Waits until the node wrote something new or closed (`seen`: bytes already read).
    pub async fn wait_for_more(&self, seen: usize) {
        loop {
            {
                let s = self.0.shared.borrow();
                if s.outbound.len() > seen || s.node_done {
                    return;
                }
            }
            self.0.to_client.notified().await;
        }
    }
}
