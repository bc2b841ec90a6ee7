//! The io_uring server core: one tokio-uring runtime per thread, each with its own
//! `SO_REUSEPORT` listener and one task per connection; a connection cap shared by all
//! threads; graceful shutdown (stop accepting, let in-flight requests finish within
//! `shutdown_timeout_ms`).

pub mod access;
mod date;
mod driver;
mod exchange;
mod listener;
pub mod route;

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Config;
use crate::http::Response;

pub use access::{AccessLog, Step, Timings};
pub use exchange::{BodyError, Exchange, SpliceError};
pub use route::{Handler, Router};

/// Shared by the connections of one io_uring thread.
pub struct ThreadCtx {
    pub config: Arc<Config>,
    shutdown: watch::Receiver<bool>,
    open: Arc<AtomicUsize>,
    local_open: Cell<usize>,
}

impl ThreadCtx {
    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// A running node.
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish (up to `shutdown_timeout_ms`), and
    /// returns when every runtime has stopped.
    pub fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Starts the node with the given handler factory: each runtime thread builds its own handler.
pub fn start<H, F>(config: Config, make_handler: F) -> io::Result<ServerHandle>
where
    H: Handler,
    F: Fn() -> H + Send + Sync + 'static,
{
    let count = config.thread_count();
    let listeners = listener::bind_all(config.listen, count)?;
    let addr = listeners[0].local_addr()?;
    let config = Arc::new(config);
    let make_handler = Arc::new(make_handler);
    let (tx, rx) = watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::with_capacity(count);
    for (i, std_listener) in listeners.into_iter().enumerate() {
        let config = config.clone();
        let rx = rx.clone();
        let open = open.clone();
        let make_handler = make_handler.clone();
        let thread = std::thread::Builder::new()
            .name(format!("upgate-uring-{i}"))
            .spawn(move || {
                tokio_uring::start(async move {
                    let ctx = Rc::new(ThreadCtx {
                        config,
                        shutdown: rx,
                        open,
                        local_open: Cell::new(0),
                    });
                    let handler = Rc::new(make_handler());
                    accept_loop(std_listener, ctx, handler).await;
                })
            })?;
        threads.push(thread);
    }
    Ok(ServerHandle {
        addr,
        shutdown: tx,
        threads,
    })
}

/// Accepts until shutdown, then waits for this thread's connections to finish.
async fn accept_loop<H: Handler>(
    std_listener: std::net::TcpListener,
    ctx: Rc<ThreadCtx>,
    handler: Rc<H>,
) {
    let listen_fd = std::os::fd::AsRawFd::as_raw_fd(&std_listener);
    let listener = tokio_uring::net::TcpListener::from_std(std_listener);
    let mut shutdown = ctx.shutdown.clone();
    while !*shutdown.borrow() {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE/ENFILE/ENOMEM: back off instead of spinning on an accept that fails.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if ctx.open.fetch_add(1, Ordering::AcqRel) >= ctx.config.max_connections {
            ctx.open.fetch_sub(1, Ordering::AcqRel);
            crate::metrics::connection_refused();
            tokio_uring::spawn(refuse(stream));
            continue;
        }
        crate::metrics::connection_opened();
        ctx.local_open.set(ctx.local_open.get() + 1);
        let (ctx2, handler2) = (ctx.clone(), handler.clone());
        tokio_uring::spawn(async move {
            driver::serve(stream, peer, ctx2.clone(), handler2).await;
            ctx2.local_open.set(ctx2.local_open.get() - 1);
            ctx2.open.fetch_sub(1, Ordering::AcqRel);
            crate::metrics::connection_closed();
        });
    }
    // An accept abandoned by the `select!` still holds the socket inside tokio-uring until it
    // completes, so dropping the listener alone would leave the port accepting connections that
    // nobody serves. Shutting a listening socket down stops it (Linux: the pending accept fails,
    // new connections are refused) while the descriptor is still ours.
    unsafe { libc::shutdown(listen_fd, libc::SHUT_RD) };
    drop(listener);
    let deadline = tokio::time::Instant::now() + ctx.config.shutdown_timeout();
    while ctx.local_open.get() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Over `max_connections`: answer 503 and close without reading anything.
async fn refuse(stream: tokio_uring::net::TcpStream) {
    let resp = Response::error(
        503,
        "too_many_connections",
        "the node is at its connection limit",
    )
    .header("Retry-After", "1");
    let mut conn = crate::http::H1Conn::new(Default::default());
    if let Ok(out) = date::with_date(|d| conn.respond(&resp, d)) {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(out.bytes)).await;
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
