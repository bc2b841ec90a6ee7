//! The load generator behind `upgate bench`, usable as a library (the integration tests run it
//! in-process).
//!
//! `connections` threads, one blocking keep-alive socket each, issue requests until
//! `stop` (a request count shared by all threads, or a deadline) is reached:
//!
//! - **upload**: `POST /{appid}/{prefix}/c{conn}/{n}.bin` with `Expect: 100-continue`; the body
//!   is sent only after `100 Continue`, as the patent's client does; the answer must be `201`
//!   with a JSON `size` equal to the size sent. Every request has its own path.
//! - **form**: `POST /upload/form/{appid}`, a `multipart/form-data` body (RFC 7578) whose `key`
//!   field names the same per-request path and whose last part, `file`, carries `size` bytes
//!   (what a browser's form sends); `Expect`, the answer and its `size` as for uploads. The
//!   envelope's bytes are not counted as payload.
//! - **download**: `GET /{appid}/{prefix}/f{k}.bin` for `k` cycling over `files` files, which
//!   are uploaded first (or already exist, with `setup = false`); the answer must be `200` with
//!   exactly `size` body bytes.
//! - **connect**: every request on a new connection: connect (and for an `https://` target a
//!   full TLS handshake, no session resumed), `GET /healthz` with `Connection: close`, the
//!   answer read whole. What it measures is new connections per second.
//!
//! An `https://` target is reached over TLS (rustls, the reference client's trust: `--cacert`
//! or the system's CAs), in every mode.
//!
//! Every failure is counted by kind ([`client::Failure::key`]) and its connection is replaced.
//! Latency is measured from the first byte of the request head to the last byte of the answer.

pub mod callback_app;
pub mod client;
pub mod stats;
mod tus;
pub mod watch;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use client::{Conn, Failure, Tls, Upload};
pub use stats::{Latency, Report, Tally};

/// Upload or download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Upload,
    /// Uploads as `multipart/form-data` forms to the form endpoint.
    Form,
    /// Uploads as tus 1.0: a creation, then appends of `chunk` bytes on the same connection.
    Tus,
    Download,
    /// A new connection per request (a full TLS handshake for `https://`), `GET /healthz`.
    Connect,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Upload => "upload",
            Mode::Form => "form",
            Mode::Tus => "tus",
            Mode::Download => "download",
            Mode::Connect => "connect",
        }
    }
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many requests in total (successful or not).
    Requests(u64),
    /// No new request after this long; requests in flight complete.
    Duration(Duration),
}

/// Where the node's callbacks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callbacks {
    /// No callback headers, no registration (the appid is registered already, or the target
    /// is not upgate).
    None,
    /// `callback_url_pre`/`callback_url_post` headers on every upload (the node's
    /// `callback_allow` must list the app's address).
    Carried { pre: String, post: String },
    /// Register the appid with these URLs once before the run (`POST /upload/register`, from
    /// loopback without a token), then send no callback headers.
    Register { pre: String, post: String },
}

impl Callbacks {
    /// `/pre` and `/post` of a callback app at `addr`, carried in headers.
    pub fn carried(addr: SocketAddr) -> Callbacks {
        Callbacks::Carried {
            pre: format!("http://{addr}/pre"),
            post: format!("http://{addr}/post"),
        }
    }

    /// `/pre` and `/post` of a callback app at `addr`, registered.
    pub fn registered(addr: SocketAddr) -> Callbacks {
        Callbacks::Register {
            pre: format!("http://{addr}/pre"),
            post: format!("http://{addr}/post"),
        }
    }
}

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub target: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// TLS for an `https://` target.
    pub tls: Option<Tls>,
    pub connections: usize,
    pub stop: Stop,
    /// Body size of each upload, or of each downloaded file.
    pub size: u64,
    pub mode: Mode,
    /// Tus: the bytes of each append.
    pub chunk: u64,
    pub appid: String,
    /// Path segments between the appid and the file names (no leading or trailing `/`).
    pub path_prefix: String,
    pub callbacks: Callbacks,
    /// Send `Expect: 100-continue` and wait for `100 Continue` before the body.
    pub expect: bool,
    /// Downloads: how many distinct files to cycle over.
    pub files: usize,
    /// Downloads: upload the files first (false: they exist already).
    pub setup: bool,
    /// Socket read/write timeout.
    pub timeout: Duration,
    /// Processes whose memory and CPU to report (the node, or nginx's workers).
    pub watch_pids: Vec<u32>,
    /// A name for the run, carried into the report.
    pub label: String,
}

impl BenchConfig {
    /// Defaults: 1 KiB uploads, 16 connections, 1000 requests, appid `bench`, a fresh prefix.
    pub fn new(target: SocketAddr) -> BenchConfig {
        BenchConfig {
            target,
            host: target.to_string(),
            tls: None,
            connections: 16,
            stop: Stop::Requests(1000),
            size: 1024,
            mode: Mode::Upload,
            chunk: 8 << 20,
            appid: "bench".into(),
            path_prefix: fresh_prefix(),
            callbacks: Callbacks::None,
            expect: true,
            files: 16,
            setup: true,
            timeout: Duration::from_secs(120),
            watch_pids: Vec::new(),
            label: String::new(),
        }
    }
}

/// `run-<unix ms>-<pid>`: distinct across runs, so uploads never collide with earlier ones.
pub fn fresh_prefix() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("run-{ms}-{}", std::process::id())
}

/// Why a run could not be made at all (as opposed to requests that failed, which are counted).
#[derive(Debug)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

/// The largest piece of body written at once, and the pattern buffer's size.
pub const PATTERN_BYTES: usize = 1 << 20;

/// Runs the benchmark described by `cfg`.
pub fn run(cfg: &BenchConfig) -> Result<Report, BenchError> {
    if cfg.connections == 0 {
        return Err(BenchError("--connections must be at least 1".into()));
    }
    let pattern: Arc<[u8]> = client::pattern(PATTERN_BYTES.min(cfg.size.max(1) as usize)).into();
    if let Callbacks::Register { pre, post } = &cfg.callbacks {
        register(cfg, pre, post)?;
    }
    if cfg.mode == Mode::Download && cfg.setup {
        setup_files(cfg, &pattern)?;
    }

    let issued = Arc::new(AtomicU64::new(0));
    let stopped = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(cfg.connections + 1));
    let mut threads = Vec::with_capacity(cfg.connections);
    for id in 0..cfg.connections {
        let (cfg, pattern, issued, stopped, barrier) = (
            cfg.clone(),
            pattern.clone(),
            issued.clone(),
            stopped.clone(),
            barrier.clone(),
        );
        let t = std::thread::Builder::new()
            .name(format!("bench-{id}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                barrier.wait();
                let deadline = match cfg.stop {
                    Stop::Duration(d) => Some(Instant::now() + d),
                    Stop::Requests(_) => None,
                };
                connection_loop(&cfg, id, &pattern, &issued, &stopped, deadline)
            })
            .map_err(|e| BenchError(format!("cannot start thread: {e}")))?;
        threads.push(t);
    }
    let watcher = (!cfg.watch_pids.is_empty()).then(|| watch::Watcher::start(&cfg.watch_pids));
    barrier.wait();
    let started = Instant::now();
    let mut total = Tally::default();
    for t in threads {
        match t.join() {
            Ok(tally) => total.merge(tally),
            Err(_) => total.error("panic".into()),
        }
    }
    let elapsed = started.elapsed();
    let usage = watcher.map(watch::Watcher::finish);
    let latency = Latency::of(&mut total.latencies_ns);
    Ok(Report {
        label: cfg.label.clone(),
        mode: cfg.mode.name(),
        target: match cfg.tls {
            Some(_) => format!("https://{}", cfg.target),
            None => format!("http://{}", cfg.target),
        },
        connections: cfg.connections,
        size: cfg.size,
        ok: total.ok,
        bytes: total.bytes,
        errors: total.errors.values().sum(),
        error_kinds: total.errors,
        elapsed,
        latency,
        usage,
    })
}

/// One connection's thread: claim a request, run it, record, repeat.
fn connection_loop(
    cfg: &BenchConfig,
    id: usize,
    pattern: &[u8],
    issued: &AtomicU64,
    stopped: &AtomicBool,
    deadline: Option<Instant>,
) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<Conn> = None;
    let mut scratch = Vec::with_capacity(4096);
    let mut head = Vec::with_capacity(512);
    let mut envelope = Envelope::default();
    let mut seq = 0u64;
    let buf_size = if cfg.mode == Mode::Download && cfg.size >= 1 << 20 {
        1 << 20
    } else {
        64 * 1024
    };
    loop {
        let n = issued.fetch_add(1, Ordering::Relaxed);
        let more = match (cfg.stop, deadline) {
            (Stop::Requests(total), _) => n < total,
            (_, Some(d)) => Instant::now() < d,
            _ => false,
        };
        if !more || stopped.load(Ordering::Relaxed) {
            return tally;
        }
        let started = Instant::now();
        if conn.is_none() {
            match Conn::connect(cfg.target, cfg.timeout, buf_size, cfg.tls.as_ref()) {
                Ok(c) => conn = Some(c),
                Err(f) => {
                    tally.error(f.key());
                    // A node that refuses connections would spin the loop: pause a little.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let outcome = match cfg.mode {
            Mode::Upload | Mode::Form => {
                let path = format!("{}/c{id}/{seq}.bin", cfg.path_prefix);
                seq += 1;
                if cfg.mode == Mode::Form {
                    envelope.wrap(&path);
                    form_head(cfg, &envelope, &mut head);
                } else {
                    upload_head(cfg, &path, &mut head);
                }
                let up = Upload {
                    head: &head,
                    size: cfg.size,
                    expect: cfg.expect,
                    ok_status: 201,
                    check_size: true,
                    envelope: (cfg.mode == Mode::Form)
                        .then_some((&envelope.before[..], &envelope.after[..])),
                };
                client::upload(c, &up, pattern, &mut scratch).map(|()| cfg.size)
            }
            Mode::Tus => {
                let path = format!("{}/c{id}/{seq}.bin", cfg.path_prefix);
                seq += 1;
                tus::upload(c, cfg, &path, pattern, &mut head, &mut scratch)
            }
            Mode::Download => {
                let k = n as usize % cfg.files.max(1);
                download_head(cfg, &file_path(cfg, k), &mut head);
                client::download(c, &head, Some(cfg.size))
            }
            Mode::Connect => {
                head.clear();
                head.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: ");
                head.extend_from_slice(cfg.host.as_bytes());
                head.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
                c.closing = true;
                client::download(c, &head, None)
            }
        };
        match outcome {
            Ok(bytes) => {
                tally.ok += 1;
                tally.bytes += bytes;
                tally
                    .latencies_ns
                    .push(started.elapsed().as_nanos().min(u64::MAX as u128) as u64);
                if c.closing {
                    conn = None;
                }
            }
            Err(f) => {
                tally.error(f.key());
                conn = None;
            }
        }
    }
}

/// The path of download file `k`, after the appid.
fn file_path(cfg: &BenchConfig, k: usize) -> String {
    format!("{}/f{k}.bin", cfg.path_prefix)
}

fn upload_head(cfg: &BenchConfig, path: &str, out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    let _ = write!(
        out,
        "POST /{}/{path} HTTP/1.1\r\nHost: {}\r\nappid: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n",
        cfg.appid, cfg.host, cfg.appid, cfg.size
    );
    end_upload_head(cfg, out);
}

/// The boundary of the load generator's forms: never in the body pattern (which has no CRLF).
const BOUNDARY: &str = "----upgate-bench-7MA4YWxkTrZu0gW";

/// The bytes of a form around its file part's data.
#[derive(Default)]
struct Envelope {
    /// The `key` field and the `file` part's headers.
    before: Vec<u8>,
    /// The closing delimiter.
    after: Vec<u8>,
}

impl Envelope {
    /// The envelope of a form that stores its file at `path` (after the appid).
    fn wrap(&mut self, path: &str) {
        use std::io::Write;
        self.before.clear();
        let name = path.rsplit('/').next().unwrap_or("f.bin");
        let _ = write!(
            self.before,
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{path}\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        );
        self.after.clear();
        let _ = write!(self.after, "\r\n--{BOUNDARY}--\r\n");
    }
}

fn form_head(cfg: &BenchConfig, envelope: &Envelope, out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    let len = envelope.before.len() as u64 + cfg.size + envelope.after.len() as u64;
    let _ = write!(
        out,
        "POST /upload/form/{} HTTP/1.1\r\nHost: {}\r\nappid: {}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len}\r\n",
        cfg.appid, cfg.host, cfg.appid
    );
    end_upload_head(cfg, out);
}

/// The head's last lines: `Expect`, carried callbacks, the blank line.
fn end_upload_head(cfg: &BenchConfig, out: &mut Vec<u8>) {
    use std::io::Write;
    if cfg.expect {
        out.extend_from_slice(b"Expect: 100-continue\r\n");
    }
    if let Callbacks::Carried { pre, post } = &cfg.callbacks {
        let _ = write!(
            out,
            "callback_url_pre: {pre}\r\ncallback_url_post: {post}\r\n"
        );
    }
    out.extend_from_slice(b"\r\n");
}

fn download_head(cfg: &BenchConfig, path: &str, out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    let _ = write!(
        out,
        "GET /{}/{path} HTTP/1.1\r\nHost: {}\r\n\r\n",
        cfg.appid, cfg.host
    );
}

/// `POST /upload/register` (form) with the callback URLs.
fn register(cfg: &BenchConfig, pre: &str, post: &str) -> Result<(), BenchError> {
    let body = format!(
        "appid={}&callback_url_pre={}&callback_url_post={}",
        cfg.appid,
        form_escape(pre),
        form_escape(post)
    );
    let head = format!(
        "POST /upload/register HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        cfg.host,
        body.len()
    );
    let mut conn = Conn::connect(cfg.target, cfg.timeout, 64 * 1024, cfg.tls.as_ref())
        .map_err(|f| BenchError(format!("register: {}", f.key())))?;
    let up = Upload {
        head: head.as_bytes(),
        size: body.len() as u64,
        expect: true,
        ok_status: 200,
        check_size: false,
        envelope: None,
    };
    let mut answer = Vec::new();
    client::upload(&mut conn, &up, body.as_bytes(), &mut answer).map_err(|f| {
        BenchError(format!(
            "register {}: {} {}",
            cfg.appid,
            f.key(),
            String::from_utf8_lossy(&answer)
        ))
    })
}

fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Uploads the download files `f0..f{files}` over up to `connections` connections.
fn setup_files(cfg: &BenchConfig, pattern: &Arc<[u8]>) -> Result<(), BenchError> {
    let next = Arc::new(AtomicU64::new(0));
    let workers = cfg.connections.min(cfg.files).max(1);
    let mut threads = Vec::new();
    for _ in 0..workers {
        let (cfg, pattern, next) = (cfg.clone(), pattern.clone(), next.clone());
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let mut conn: Option<Conn> = None;
            let (mut head, mut scratch) = (Vec::new(), Vec::new());
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                if k >= cfg.files {
                    return Ok(());
                }
                if conn.is_none() {
                    conn = Some(
                        Conn::connect(cfg.target, cfg.timeout, 64 * 1024, cfg.tls.as_ref())
                            .map_err(|f| f.key())?,
                    );
                }
                let Some(c) = conn.as_mut() else { continue };
                upload_head(&cfg, &file_path(&cfg, k), &mut head);
                let up = Upload {
                    head: &head,
                    size: cfg.size,
                    expect: cfg.expect,
                    ok_status: 201,
                    check_size: true,
                    envelope: None,
                };
                client::upload(c, &up, &pattern, &mut scratch).map_err(|f: Failure| {
                    format!("{}: {}", f.key(), String::from_utf8_lossy(&scratch))
                })?;
                if c.closing {
                    conn = None;
                }
            }
        }));
    }
    for t in threads {
        t.join()
            .map_err(|_| BenchError("setup thread panicked".into()))?
            .map_err(|e| BenchError(format!("uploading the download files: {e}")))?;
    }
    Ok(())
}

/// `http://host:port[/]` → the address to connect to and the `Host` header.
/// The address, the `Host` and whether the target is `https://`.
pub fn parse_target(url: &str) -> Result<(SocketAddr, String, bool), BenchError> {
    use std::net::ToSocketAddrs;
    let (rest, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (rest, false),
        (_, Some(rest)) => (rest, true),
        _ => {
            return Err(BenchError(format!(
                "{url}: only http:// and https:// targets are supported"
            )))
        }
    };
    let authority = rest.split('/').next().unwrap_or("");
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_string()
    } else if https {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| BenchError(format!("{url}: {e}")))?
        .next()
        .ok_or_else(|| BenchError(format!("{url}: no address")))?;
    Ok((addr, authority.to_string(), https))
}

pub use upgate_contract::parse_size;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let (a, h, https) = parse_target("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (a.to_string(), h.as_str(), https),
            ("127.0.0.1:8080".into(), "127.0.0.1:8080", false)
        );
        let (a, _, _) = parse_target("http://127.0.0.1/").unwrap();
        assert_eq!(a.port(), 80);
        let (a, _, https) = parse_target("https://127.0.0.1/").unwrap();
        assert_eq!((a.port(), https), (443, true));
        assert!(parse_target("ftp://x").is_err());
    }

    #[test]
    fn heads() {
        let mut cfg = BenchConfig::new("127.0.0.1:1".parse().unwrap());
        cfg.callbacks = Callbacks::carried("127.0.0.1:2".parse().unwrap());
        let mut out = Vec::new();
        upload_head(&cfg, "p/c0/0.bin", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("POST /bench/p/c0/0.bin HTTP/1.1\r\n"));
        assert!(text.contains("\r\nExpect: 100-continue\r\n"));
        assert!(text.contains("\r\ncallback_url_pre: http://127.0.0.1:2/pre\r\n"));
        assert!(text.contains("\r\nContent-Length: 1024\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        assert_eq!(form_escape("http://a:1/pre"), "http%3A%2F%2Fa%3A1%2Fpre");
    }
}
