//! One small application server for everything that plays the application's part: the demo
//! app ([`crate::demo`]), the load generator's callback app ([`crate::loadgen::callback_app`])
//! and the node's end-to-end tests (`tests/support/callback_app.rs`).
//!
//! HTTP/1.1 on blocking sockets with keep-alive, parsed and framed by the node's own protocol
//! crate (`upgate_http::H1Conn`), so an app speaks the same HTTP as the node: `Expect:
//! 100-continue`, chunked bodies, `HEAD`, `Connection: close`, and the contract's JSON error
//! for a request that breaks the protocol. Each connection is served by one thread from a
//! cached pool (threads are reused across connections, so a node that opens a connection per
//! callback does not pay a thread spawn each time).
//!
//! The server reads a whole request body (up to [`Options::max_body`]) and hands the request
//! to a [`Handler`], a closure `Fn(&Request) -> Reply` or a type; it records nothing by itself.
//!
//! ```no_run
//! use upgate_tools::appserver::{AppServer, Options, Reply, Request};
//!
//! let addr = "127.0.0.1:0".parse().unwrap();
//! let app = AppServer::start(addr, Options::default(), |req: &Request| match req.path() {
//!     "/pre" | "/post" => Reply::json(200, r#"{"success":"true"}"#),
//!     _ => Reply::error(404, "not_found", "no such route"),
//! })
//! .unwrap();
//! println!("listening on {}", app.local_addr());
//! ```
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`AppServer`] (start, stop), [`Options`], [`Request`], [`Reply`], [`Handler`] |
//! | `conn.rs` | one connection: bytes into `H1Conn`, requests to the handler, replies back |
//! | `pool.rs` | the acceptor and the cached pool of connection threads |

mod conn;
mod pool;

#[cfg(test)]
mod tests;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use upgate_http::{Method, RequestHead, Response, ResponseBody};

/// How an [`AppServer`] serves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest request body read; a longer one is left unread (`Request::body` is `None`, no
    /// `100 Continue` is sent) and the connection closes after the reply.
    pub max_body: usize,
    /// Close a connection after this long without a byte from the peer; `None`: keep it until
    /// the peer closes it or the server stops.
    pub idle_timeout: Option<Duration>,
    /// Thread name prefix (`<name>-accept`, `<name>-conn`).
    pub name: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_body: 1 << 20,
            idle_timeout: None,
            name: "appserver",
        }
    }
}

/// One request, its body read in full.
#[derive(Debug, Clone)]
pub struct Request {
    pub head: RequestHead,
    /// The body (empty when there is none); `None` when it was longer than
    /// [`Options::max_body`].
    pub body: Option<Bytes>,
    pub peer: SocketAddr,
}

impl Request {
    pub fn method(&self) -> Method {
        self.head.method()
    }

    /// The request-target as sent (path and query), `""` if it is not UTF-8.
    pub fn target(&self) -> &str {
        std::str::from_utf8(self.head.target()).unwrap_or("")
    }

    /// The path without its query, `""` if it is not UTF-8.
    pub fn path(&self) -> &str {
        std::str::from_utf8(self.head.path_only()).unwrap_or("")
    }

    /// The first value of header `name` (case-insensitive), trimmed; `None` if absent or not
    /// UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .value(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    }
}

/// The answer to a request. `Content-Length`, `Connection`, `Date` and `Server` are added when
/// it is written; a `HEAD` request gets the fields without the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    /// No fields, no body.
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `body` as `content_type`.
    pub fn with_body(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply::empty(status)
            .header("Content-Type", content_type)
            .body(body)
    }

    /// An already serialised JSON body.
    pub fn json(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply::with_body(status, "application/json", body)
    }

    /// The contract's error body, as the node writes it:
    /// `{"success":"false","error":<code>,"message":<message>}`.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        #[derive(serde::Serialize)]
        struct ErrorBody<'a> {
            success: &'a str,
            error: &'a str,
            message: &'a str,
        }
        let body = serde_json::to_string(&ErrorBody {
            success: "false",
            error: code,
            message,
        })
        .unwrap_or_default();
        Reply::json(status, body)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Reply {
        self.body = body.into();
        self
    }

    fn into_response(self) -> Response {
        Response {
            status: self.status,
            headers: self.headers,
            body: if self.body.is_empty() {
                ResponseBody::Empty
            } else {
                ResponseBody::Full(self.body)
            },
        }
    }
}

/// What answers requests: any `Fn(&Request) -> Reply + Send + Sync`, or a type. Called on the
/// connection's thread; it may block (sleep, call out) without holding up other connections.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Reply;
}

impl<F> Handler for F
where
    F: Fn(&Request) -> Reply + Send + Sync + 'static,
{
    fn handle(&self, req: &Request) -> Reply {
        self(req)
    }
}

/// What the acceptor and every connection thread share.
struct Shared {
    handler: Box<dyn Handler>,
    options: Options,
    stop: AtomicBool,
    /// Requests being handled or answered now (a graceful stop waits for them).
    busy: AtomicUsize,
}

/// A running app server. Dropping it stops it at once: no new connections, idle ones closed,
/// a request that arrives on an open one afterwards is not answered; the port is free again
/// when `drop` returns.
pub struct AppServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: Arc<TcpListener>,
    acceptor: Option<JoinHandle<()>>,
}

impl AppServer {
    /// Binds `addr` (port 0: any free port) and serves with `handler`.
    pub fn start(
        addr: SocketAddr,
        options: Options,
        handler: impl Handler,
    ) -> io::Result<AppServer> {
        let listener = Arc::new(TcpListener::bind(addr)?);
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            options,
            stop: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
        });
        let acceptor = {
            let (listener, shared) = (listener.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("{}-accept", shared.options.name))
                .spawn(move || pool::accept_loop(&listener, shared))?
        };
        Ok(AppServer {
            addr,
            shared,
            listener,
            acceptor: Some(acceptor),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks for as long as the server runs (until the process ends).
    pub fn wait(mut self) {
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }

    /// Stops accepting, then waits up to `grace` for the requests in progress to be answered
    /// (their connections close after the answer).
    pub fn shutdown(mut self, grace: Duration) {
        self.stop_accepting();
        let deadline = Instant::now() + grace;
        while self.shared.busy.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop_accepting(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // A listening socket that is shut down wakes its blocked `accept` with an error; the
        // acceptor then sees `stop` and returns. This handle keeps the descriptor open until
        // then.
        // SAFETY: the descriptor belongs to `self.listener`, which is alive.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        self.stop_accepting();
    }
}
