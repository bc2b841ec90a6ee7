//! The io_uring server core: one tokio-uring runtime per thread, each with its own
//! `SO_REUSEPORT` listener and one task per connection; a connection cap shared by all
//! threads (and a second listener per thread for `tls_listen`); graceful shutdown (stop accepting, let in-flight requests finish within
//! `shutdown_timeout_ms`). It knows the [`Handler`] trait and nothing of what requests mean.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | threads, accept loops, the connection cap, shutdown |
//! | `transport.rs` | [`Transport`]: the bytes under a connection (TCP, TLS; in memory for tests) |
//! | `tls.rs` | TLS with rustls over a tokio-uring stream; the certificate and its SIGHUP reload |
//! | `memory.rs` | the in-memory transport's two ends |
//! | `connection.rs` | one connection's state and I/O: reads, writes, responses, closes |
//! | `driver.rs` | the request loop: head, handler, response, keep-alive or close |
//! | `exchange.rs` | [`Exchange`]: what a handler sees of one request; [`BodyError`] |
//! | `ingest.rs` | a request body into an upload: splice, registered buffers or buffered |
//! | `linger.rs` | the lingering close |
//! | `handler.rs`, `access.rs`, `date.rs`, `listener.rs` | the handler trait, the access log, the `Date` cache, the listeners |
//! | `affinity.rs` | `pin_threads`: a runtime's thread kept on one CPU |

pub mod access;
mod affinity;
mod connection;
mod date;
mod driver;
mod exchange;
mod handler;
mod ingest;
mod ingest_tls;
mod linger;
mod listener;
pub mod memory;
pub mod tls;
mod transport;
mod write_behind;

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
use crate::error::RouteError;

pub use access::{AccessLog, Step, Timings};
pub use exchange::{BodyError, Exchange};
pub use handler::Handler;
pub use ingest::{BodyPlan, Demux, Demuxed, Demuxing, ReceiveError, SpliceError};
pub use transport::Transport;

/// Shared by the connections of one io_uring thread.
pub struct ThreadCtx {
    pub config: Arc<Config>,
    shutdown: watch::Receiver<bool>,
    open: Arc<AtomicUsize>,
    local_open: Cell<usize>,
    /// Refused connections (503) of this thread still lingering.
    refusing: Cell<usize>,
}

impl ThreadCtx {
    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// A running node.
pub struct ServerHandle {
    addr: SocketAddr,
    /// The HTTPS listener's address and settings (`tls_listen`).
    tls: Option<(SocketAddr, Arc<tls::TlsConfig>)>,
    shutdown: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTPS listener's bound address, with `tls_listen`.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|(a, _)| *a)
    }

    /// Reads `tls_cert` and `tls_key` again (SIGHUP): new connections get the new certificate;
    /// on an error the old one stays and the error is returned.
    pub fn reload_tls(&self) -> Option<Result<(), String>> {
        self.tls.as_ref().map(|(_, t)| t.reload())
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
    // HTTPS beside HTTP: the same threads, one more listener each.
    let (mut tls_listeners, tls) = match (&config.tls_listen, &config.tls_cert, &config.tls_key) {
        (Some(at), Some(cert), Some(key)) => {
            let settings = Arc::new(tls::TlsConfig::load(cert, key).map_err(io::Error::other)?);
            let all = listener::bind_all(*at, count)?;
            let bound = all[0].local_addr()?;
            (all.into_iter().map(Some).collect(), Some((bound, settings)))
        }
        _ => (Vec::new(), None),
    };
    let config = Arc::new(config);
    let make_handler = Arc::new(make_handler);
    let (tx, rx) = watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let cpus = if config.pin_threads {
        affinity::allowed_cpus()?
    } else {
        Vec::new()
    };
    let mut threads = Vec::with_capacity(count);
    for (i, std_listener) in listeners.into_iter().enumerate() {
        let cpu = affinity::cpu_for(&cpus, i);
        let tls_listener = tls_listeners.get_mut(i).and_then(Option::take);
        let tls_settings = tls.as_ref().map(|(_, t)| t.clone());
        let config = config.clone();
        let rx = rx.clone();
        let open = open.clone();
        let make_handler = make_handler.clone();
        let thread = std::thread::Builder::new()
            .name(format!("upgate-uring-{i}"))
            .spawn(move || {
                // Before the ring exists, so its io-wq workers start on the same CPU.
                if let Some(cpu) = cpu {
                    if let Err(e) = affinity::pin_current_thread(cpu) {
                        tracing::warn!(error = %e, cpu, thread = i, "pin_threads: runtime thread not pinned");
                    }
                }
                tokio_uring::start(async move {
                    let ctx = Rc::new(ThreadCtx {
                        config,
                        shutdown: rx,
                        open,
                        local_open: Cell::new(0),
                        refusing: Cell::new(0),
                    });
                    let handler = Rc::new(make_handler());
                    let plain = accept_loop(std_listener, ctx.clone(), handler.clone(), None);
                    match (tls_listener, tls_settings) {
                        (Some(l), Some(t)) => {
                            let secure = accept_loop(l, ctx, handler, Some(t));
                            tokio::join!(plain, secure);
                        }
                        _ => plain.await,
                    }
                })
            })?;
        threads.push(thread);
    }
    Ok(ServerHandle {
        addr,
        tls,
        shutdown: tx,
        threads,
    })
}

/// Raises the soft limit on open descriptors (`RLIMIT_NOFILE`) to the hard limit: every
/// connection holds one, and the usual soft default (1024) is far below `max_connections`.
/// Returns the soft limit before and after.
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = lim.rlim_cur;
    let mut target = lim.rlim_max;
    if target == libc::RLIM_INFINITY {
        // The kernel refuses more than fs.nr_open descriptors per process.
        target = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1 << 20);
    }
    if lim.rlim_cur >= target {
        return Ok((before, before));
    }
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((before, target))
}

/// Accepts until shutdown, then waits for this thread's connections to finish.
async fn accept_loop<H: Handler>(
    std_listener: std::net::TcpListener,
    ctx: Rc<ThreadCtx>,
    handler: Rc<H>,
    tls: Option<Arc<tls::TlsConfig>>,
) {
    let listen_fd = std::os::fd::AsRawFd::as_raw_fd(&std_listener);
    let listener = tokio_uring::net::TcpListener::from_std(std_listener);
    let mut shutdown = ctx.shutdown.clone();
    let mut failing = AcceptFailures::default();
    while !*shutdown.borrow() {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                failing.recovered();
                a
            }
            Err(e) => {
                let pause = failing.failed(&e);
                if !pause.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => break,
                    }
                }
                continue;
            }
        };
        let stream = match &tls {
            None => Transport::Tcp(stream),
            Some(settings) => match tls::TlsStream::new(stream, settings) {
                Ok(t) => Transport::Tls(Box::new(t)),
                Err(e) => {
                    tracing::warn!(error = %e, %peer, "TLS session not created");
                    continue;
                }
            },
        };
        stream.set_nodelay();
        if ctx.open.fetch_add(1, Ordering::AcqRel) >= ctx.config.max_connections {
            ctx.open.fetch_sub(1, Ordering::AcqRel);
            crate::metrics::connection_refused();
            let linger = ctx.refusing.get() < MAX_REFUSALS_LINGERING;
            ctx.refusing.set(ctx.refusing.get() + 1);
            let ctx2 = ctx.clone();
            tokio_uring::spawn(async move {
                refuse(stream, linger).await;
                ctx2.refusing.set(ctx2.refusing.get() - 1);
            });
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

/// Accept errors of one listener: the first of a burst is logged, the rest only counted (in
/// `upgate_accept_errors_total`); the end of the burst is logged with its count.
#[derive(Default)]
struct AcceptFailures {
    /// Failures since the last successful accept, when the first of them happened, and
    /// whether the burst was logged.
    burst: Option<(u64, std::time::Instant, bool)>,
}

impl AcceptFailures {
    /// Counts a failed accept and says how long to pause before the next. Out of descriptors
    /// or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), the connection stays in the kernel's
    /// queue and the next accept would fail at once: retrying in a loop would spin a core, so
    /// the loop sleeps [`ACCEPT_BACKOFF`] on the runtime's timer (the node keeps serving the
    /// connections it has; the queued ones are accepted once descriptors free up). An error
    /// tied to one connection (it was aborted before the accept) is retried at once; any other
    /// error backs off too.
    fn failed(&mut self, e: &io::Error) -> Duration {
        crate::metrics::accept_failed();
        let transient = matches!(
            e.raw_os_error(),
            Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EAGAIN)
        );
        let (count, _, logged) = self
            .burst
            .get_or_insert_with(|| (0, std::time::Instant::now(), false));
        *count += 1;
        if !transient && !*logged {
            *logged = true;
            tracing::warn!(
                error = %e,
                backoff_ms = ACCEPT_BACKOFF.as_millis() as u64,
                "accept failed; retrying after a pause (logged once per burst, \
                 counted in upgate_accept_errors_total)"
            );
        }
        if transient {
            Duration::ZERO
        } else {
            ACCEPT_BACKOFF
        }
    }

    /// An accept succeeded: ends the burst, if any.
    fn recovered(&mut self) {
        if let Some((count, since, logged)) = self.burst.take() {
            if logged {
                tracing::info!(
                    failures = count,
                    seconds = since.elapsed().as_secs_f64(),
                    "accepting again"
                );
            }
        }
    }
}

/// The pause after an accept that failed for want of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Refused connections of one thread that may linger at once; beyond, a refusal closes at once
/// after its 503 (a flood of refusals must not hold descriptors for long).
const MAX_REFUSALS_LINGERING: usize = 256;

/// Over `max_connections`: answer 503 without reading the request, then a short lingering
/// close (when `linger`), so the client reads the 503 instead of a reset caused by its unread
/// request.
async fn refuse(stream: Transport, linger: bool) {
    let resp = crate::error::respond(&mut AccessLog::default(), &RouteError::TooManyConnections);
    let mut conn = crate::http::H1Conn::new(Default::default());
    if let Ok(out) = date::with_date(|d| conn.respond(&resp, d)) {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(out.bytes)).await;
    }
    if linger {
        let bounds = linger::LingerBounds {
            total: Duration::from_secs(1),
            gap: Duration::from_millis(300),
            max_bytes: 256 * 1024,
        };
        linger::linger(&stream, bounds).await;
    } else {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    // Completes a read the linger deadline abandoned, so the descriptor closes now.
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Serves one connection over `transport` on the current tokio-uring runtime, with `handler`,
/// until it closes: the whole request path without a listener (tests drive a
/// [`memory::MemoryPeer`] against it, the quinn-proto `Pair` way). `shutdown` drains it as
/// SIGTERM drains a node.
pub async fn serve_connection<H: Handler>(
    transport: Transport,
    peer: SocketAddr,
    config: Arc<Config>,
    shutdown: watch::Receiver<bool>,
    handler: Rc<H>,
) {
    let ctx = Rc::new(ThreadCtx {
        config,
        shutdown,
        open: Arc::new(AtomicUsize::new(1)),
        local_open: Cell::new(1),
        refusing: Cell::new(0),
    });
    driver::serve(transport, peer, ctx, handler).await;
}
