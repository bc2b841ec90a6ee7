//! A fast application server for benchmarks: HTTP/1.1 keep-alive on blocking sockets, one
//! thread per connection from a cached pool (threads are reused across connections, so a node
//! that opens a connection per callback does not pay a thread spawn each time).
//!
//! | request | answer |
//! |---|---|
//! | `POST /pre`, `POST /post` | `200 {"success":"true"}` (the node's pre- and post-callbacks) |
//! | `GET`/`POST /auth` (and `/auth/…`) | `200`, empty (nginx `auth_request`) |
//! | `POST /nginx-post` with `{"file":…}` | `201 {"success":"true","size":<the file's size>}`: nginx's post notification; the size comes from `stat` of the body file nginx stored, so the client's size check verifies that nginx kept the whole body |
//! | anything else | `404` |

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// How many requests of each kind the app answered.
#[derive(Debug, Default)]
pub struct Counters {
    pub pre: AtomicU64,
    pub post: AtomicU64,
    pub auth: AtomicU64,
    pub nginx_post: AtomicU64,
    pub other: AtomicU64,
}

/// A running callback app; stops accepting when dropped.
pub struct CallbackApp {
    addr: SocketAddr,
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

const IDLE_WORKER_EXIT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_REQUEST: usize = 1 << 20;

impl CallbackApp {
    /// Binds `addr` (port 0 for any) and starts serving.
    pub fn start(addr: SocketAddr) -> io::Result<CallbackApp> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (counters, stop) = (counters.clone(), stop.clone());
            std::thread::Builder::new()
                .name("cbapp-accept".into())
                .spawn(move || accept_loop(listener, counters, stop))?
        };
        Ok(CallbackApp {
            addr,
            counters,
            stop,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until the acceptor ends (never, unless stopped from another handle's drop).
    pub fn wait(mut self) {
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CallbackApp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// The cached pool: `idle` counts workers waiting on the channel that no connection has been
/// promised to. The acceptor takes one of them or, when there is none, spawns a worker.
struct Pool {
    tx: Sender<TcpStream>,
    rx: Receiver<TcpStream>,
    idle: Arc<AtomicUsize>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

fn accept_loop(listener: TcpListener, counters: Arc<Counters>, stop: Arc<AtomicBool>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let pool = Pool {
        tx,
        rx,
        idle: Arc::new(AtomicUsize::new(0)),
        counters,
        stop,
    };
    for conn in listener.incoming() {
        if pool.stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(conn) = conn else { continue };
        let reserved = pool
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !reserved && spawn_worker(&pool).is_err() {
            continue; // out of threads: drop the connection
        }
        if pool.tx.send(conn).is_err() {
            break;
        }
    }
}

fn spawn_worker(pool: &Pool) -> io::Result<()> {
    let (rx, idle, counters, stop) = (
        pool.rx.clone(),
        pool.idle.clone(),
        pool.counters.clone(),
        pool.stop.clone(),
    );
    std::thread::Builder::new()
        .name("cbapp-conn".into())
        .stack_size(256 * 1024)
        .spawn(move || loop {
            match rx.recv_timeout(IDLE_WORKER_EXIT) {
                Ok(conn) => {
                    serve(conn, &counters, &stop);
                    idle.fetch_add(1, Ordering::AcqRel);
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Leave only if no connection was promised to an idle worker meanwhile.
                    if idle
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        })?;
    Ok(())
}

/// Serves one keep-alive connection until the peer closes it (or the app stops).
fn serve(mut conn: TcpStream, counters: &Counters, stop: &AtomicBool) {
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(READ_TIMEOUT));
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = 0usize;
    loop {
        // Complete head in buf[..len]?
        let head_end = memchr::memmem::find(&buf[..len], b"\r\n\r\n").map(|i| i + 4);
        let Some(head_end) = head_end else {
            if len == buf.len() {
                if buf.len() >= MAX_REQUEST {
                    return;
                }
                buf.resize(buf.len() * 2, 0);
            }
            match conn.read(&mut buf[len..]) {
                Ok(0) => return,
                Ok(n) => len += n,
                Err(e) if is_timeout(&e) => {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
            continue;
        };
        let Some(req) = Request::parse(&buf[..head_end]) else {
            let _ = conn.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        };
        if req.content_length > MAX_REQUEST {
            return;
        }
        if req.expect_continue
            && len < head_end + req.content_length
            && conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return;
        }
        let total = head_end + req.content_length;
        if buf.len() < total {
            buf.resize(total, 0);
        }
        while len < total {
            match conn.read(&mut buf[len..]) {
                Ok(0) => return,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
        let answer = respond(&req, &buf[head_end..total], counters);
        if conn.write_all(&answer).is_err() || req.close {
            return;
        }
        buf.copy_within(total..len, 0);
        len -= total;
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

struct Request {
    method: String,
    path: String,
    content_length: usize,
    expect_continue: bool,
    close: bool,
}

impl Request {
    fn parse(raw: &[u8]) -> Option<Request> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(raw), Ok(httparse::Status::Complete(_))) {
            return None;
        }
        let mut out = Request {
            method: req.method?.to_string(),
            path: req.path?.to_string(),
            content_length: 0,
            expect_continue: false,
            close: req.version != Some(1),
        };
        for h in req.headers.iter() {
            let value = std::str::from_utf8(h.value).ok()?.trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                out.content_length = value.parse().ok()?;
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return None; // callbacks are sized; chunked is not needed here
            } else if h.name.eq_ignore_ascii_case("expect") {
                out.expect_continue = value.eq_ignore_ascii_case("100-continue");
            } else if h.name.eq_ignore_ascii_case("connection") {
                if value.eq_ignore_ascii_case("close") {
                    out.close = true;
                } else if value.eq_ignore_ascii_case("keep-alive") {
                    out.close = false;
                }
            }
        }
        Some(out)
    }
}

const SUCCESS: &str = r#"{"success":"true"}"#;

fn respond(req: &Request, body: &[u8], counters: &Counters) -> Vec<u8> {
    let path = req.path.split('?').next().unwrap_or("");
    let (status, text): (&str, String) = match (req.method.as_str(), path) {
        ("POST", "/pre") => {
            counters.pre.fetch_add(1, Ordering::Relaxed);
            ("200 OK", SUCCESS.into())
        }
        ("POST", "/post") => {
            counters.post.fetch_add(1, Ordering::Relaxed);
            ("200 OK", SUCCESS.into())
        }
        ("GET" | "POST" | "HEAD", p) if p == "/auth" || p.starts_with("/auth/") => {
            counters.auth.fetch_add(1, Ordering::Relaxed);
            ("200 OK", String::new())
        }
        ("POST", "/nginx-post") => {
            counters.nginx_post.fetch_add(1, Ordering::Relaxed);
            nginx_post(body)
        }
        _ => {
            counters.other.fetch_add(1, Ordering::Relaxed);
            (
                "404 Not Found",
                r#"{"success":"false","error":"not_found"}"#.into(),
            )
        }
    };
    let connection = if req.close { "close" } else { "keep-alive" };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        text.len()
    )
    .into_bytes();
    out.extend_from_slice(text.as_bytes());
    out
}

/// nginx's post notification: `{"file": "<request_body_file>", …}`; answers with the file's size.
fn nginx_post(body: &[u8]) -> (&'static str, String) {
    #[derive(serde::Deserialize)]
    struct Notice {
        file: String,
    }
    let Ok(notice) = serde_json::from_slice::<Notice>(body) else {
        return (
            "400 Bad Request",
            r#"{"success":"false","error":"bad_json"}"#.into(),
        );
    };
    match std::fs::metadata(&notice.file) {
        Ok(m) if m.is_file() => (
            "201 Created",
            format!(r#"{{"success":"true","size":{}}}"#, m.len()),
        ),
        _ => (
            "500 Internal Server Error",
            r#"{"success":"false","error":"no_body_file"}"#.into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(addr: SocketAddr, raw: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn answers_callbacks_on_one_connection() {
        let app = CallbackApp::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let out = call(
            app.addr(),
            "POST /pre HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}\
             POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}\
             GET /auth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
        assert_eq!(out.matches(SUCCESS).count(), 2, "{out}");
        assert_eq!(app.counters.pre.load(Ordering::Relaxed), 1);
        assert_eq!(app.counters.post.load(Ordering::Relaxed), 1);
        assert_eq!(app.counters.auth.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn nginx_post_reports_the_stored_size() {
        let app = CallbackApp::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let file = std::env::temp_dir().join(format!("cbapp-test-{}", std::process::id()));
        std::fs::write(&file, vec![0u8; 1234]).unwrap();
        let body = format!(r#"{{"file":"{}"}}"#, file.display());
        let out = call(
            app.addr(),
            &format!(
                "POST /nginx-post HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        std::fs::remove_file(&file).unwrap();
        assert!(out.starts_with("HTTP/1.1 201 Created"), "{out}");
        assert!(out.ends_with(r#"{"success":"true","size":1234}"#), "{out}");
    }
}
