//! Shared helpers for end-to-end tests: a node on 127.0.0.1:0 inside the test process, and a
//! raw-socket client that shows exactly what is on the wire.

#![allow(dead_code)]

pub mod callback_app;
pub mod certs;
pub mod etcd;
pub mod garage;
pub mod origin_node;
pub mod pair;
pub mod seeded;
pub mod tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use upgate::config::Config;
use upgate::node::Node;

/// `len` bytes that repeat nowhere a test would notice (xorshift), the same on every call: a
/// body whose stored copy must equal it byte for byte.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A free loopback port below the kernel's ephemeral range, for a service a test stops and
/// starts again on the same port (etcd, Garage). A port from the ephemeral range can be taken
/// while the service is down by any socket bound to port 0 (every node, client and callback
/// app of the tests running beside it), and the service then cannot come back; ports below
/// the range are never handed out that way. Each process starts at its own place in the span
/// and walks it, so test binaries running at once rarely try the same port.
pub fn service_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOWEST: u32 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral.saturating_sub(LOWEST).max(1000);
    let start = std::process::id().wrapping_mul(7919) % span;
    loop {
        let i = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(i < span, "no free port below the ephemeral range");
        let port = (LOWEST + (start + i * 37) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A config for tests: loopback port 0, two runtimes, a throwaway data dir.
pub fn test_config() -> Config {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(sweep_dead_test_dirs);
    let dir = std::env::temp_dir().join(format!(
        "upgate-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir,
        threads: 2,
        linger_ms: 500,
        ..Config::default()
    }
}

/// Removes the data dirs of earlier test processes that have exited (`upgate-test-<pid>-<n>`
/// with no `/proc/<pid>`), so repeated runs do not fill the temp dir. Dirs of live processes,
/// such as other test binaries running in parallel, are left alone.
fn sweep_dead_test_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("upgate-test-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Starts a whole node (router, registry, store, callback pool, outbox sender) with `config`.
pub fn start(config: Config) -> Node {
    Node::start(config).expect("node starts")
}

/// A parsed response as seen on the wire.
#[derive(Debug, Clone)]
pub struct Wire {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The first value of `name` (ASCII case-insensitive) among parsed header pairs.
pub fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Wire {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The contract's JSON `error` code.
    pub fn error_code(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_string()
    }
}

/// A client connection as the raw-socket helpers see it: bytes both ways over one TCP socket,
/// directly or through TLS ([`tls::TlsStream`]); timeouts and shutdown are the socket's.
pub trait Stream: Read + Write {
    /// The TCP socket under the bytes.
    fn tcp(&self) -> &TcpStream;
}

impl Stream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// How a test reaches the node: plain TCP to its `listen` address, or TLS to its `tls_listen`
/// address trusting the roots of `config` ([`tls::client_config`]).
#[derive(Clone)]
pub enum Dial {
    Plain(SocketAddr),
    Tls(SocketAddr, std::sync::Arc<rustls::ClientConfig>),
}

impl Dial {
    /// A fresh connection with the timeouts of [`connect`]; over TLS, after the handshake.
    pub fn connect(&self) -> Box<dyn Stream> {
        match self {
            Dial::Plain(addr) => Box::new(connect(*addr)),
            Dial::Tls(addr, config) => Box::new(
                tls::TlsStream::handshake(connect(*addr), *addr, config.clone())
                    .unwrap_or_else(|e| panic!("TLS handshake with {addr}: {e}")),
            ),
        }
    }

    /// `plain` or `TLS`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Dial::Plain(_) => "plain",
            Dial::Tls(..) => "TLS",
        }
    }
}

/// Connects with read/write timeouts so no test can hang.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads one response (head plus Content-Length body) from `s`; `buf` keeps bytes that follow.
pub fn read_response<S: Read + ?Sized>(s: &mut S, buf: &mut Vec<u8>) -> Option<Wire> {
    read_response_to(s, buf, false)
}

/// Reads one response to a request that was (`to_head`) or was not a `HEAD`: a response to
/// `HEAD` carries a Content-Length but never a body (RFC 9110 §9.3.2).
pub fn read_response_to<S: Read + ?Sized>(
    s: &mut S,
    buf: &mut Vec<u8>,
    to_head: bool,
) -> Option<Wire> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut lines = head.split("\r\n");
            let status_line = lines.next()?;
            let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let interim = (100..200).contains(&status);
            let body_len = if interim || to_head { 0 } else { len };
            while buf.len() < end + 4 + body_len {
                if !fill(s, buf) {
                    return None;
                }
            }
            let body = buf[end + 4..end + 4 + body_len].to_vec();
            buf.drain(..end + 4 + body_len);
            return Some(Wire {
                status,
                headers,
                body,
            });
        }
        if !fill(s, buf) {
            return None;
        }
    }
}

thread_local! {
    /// Why the last read of this thread's test client ended a response short: what a failing
    /// test reports (end of stream, a reset, or the read timeout), so a rare failure names its
    /// cause.
    static LAST_READ_END: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Why this thread's last read ended a response short (see [`read_response`]).
pub fn last_read_end() -> String {
    LAST_READ_END.with(|w| w.borrow().clone())
}

fn fill<S: Read + ?Sized>(s: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    // A signal to the test process (several tests' children end at once) may interrupt the
    // read: that is no end of the response, so read again, as `read_exact` would.
    let read = loop {
        match s.read(&mut chunk) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            read => break read,
        }
    };
    if let Ok(0) | Err(_) = &read {
        let why = match &read {
            Ok(_) => "end of stream".to_string(),
            Err(e) => format!("{:?}: {e}", e.kind()),
        };
        LAST_READ_END.with(|w| *w.borrow_mut() = why);
    }
    match read {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// True when the server closes the connection within `within`: the end of the stream (over
/// TLS with or without `close_notify`), a reset, or any other read error, such as a TLS alert
/// or a record cut short by the close. Only the read timeout is not a close: bytes that still
/// arrive are skipped, and the wait goes on to `within`.
pub fn closed_by_server<S: Stream + ?Sized>(s: &mut S, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    s.tcp()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut
                    || e.kind() == std::io::ErrorKind::Interrupted =>
            {
                continue
            }
            Err(_) => return true,
        }
    }
    false
}

/// Sends `request` on a fresh connection and reads one response (without a body when the
/// request is a `HEAD`).
pub fn exchange(addr: SocketAddr, request: &[u8]) -> (Wire, TcpStream) {
    let mut s = connect(addr);
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let started = Instant::now();
    let wire =
        read_response_to(&mut s, &mut buf, request.starts_with(b"HEAD ")).unwrap_or_else(|| {
            panic!(
                "no response from {addr} after {:?}: {} (bytes read: {:?})",
                started.elapsed(),
                LAST_READ_END.with(|w| w.borrow().clone()),
                String::from_utf8_lossy(&buf)
            )
        });
    (wire, s)
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Registers `appid` with pre/post callback URLs through the form API (from loopback, no token).
pub fn register_form(addr: SocketAddr, appid: &str, pre: &str, post: &str) -> Wire {
    let form = format!("appid={appid}&callback_url_pre={pre}&callback_url_post={post}");
    exchange(
        addr,
        format!(
            "POST /upload/register HTTP/1.1\r\nHost: n\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
    .0
}

/// Runs `upgate serve ARGS` as a child process and returns it with the address it printed on
/// its first line of output.
pub fn spawn_node(args: &[&std::ffi::OsStr]) -> (std::process::Child, SocketAddr) {
    spawn_node_env(args, &[])
}

/// [`spawn_node`] with extra environment variables (an origin's credentials).
pub fn spawn_node_env(
    args: &[&std::ffi::OsStr],
    env: &[(String, String)],
) -> (std::process::Child, SocketAddr) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_upgate"))
        .arg("serve")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("node starts");
    let mut out = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).unwrap();
    let addr = line
        .rsplit("http://")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

/// A node running as a child process on a config file: what the crash loops kill with SIGKILL
/// and start again on the same data.
pub struct ChildNode {
    pub child: std::process::Child,
    pub addr: SocketAddr,
}

impl ChildNode {
    pub fn spawn(config: &std::path::Path) -> ChildNode {
        let (child, addr) = spawn_node(&["--config".as_ref(), config.as_os_str()]);
        ChildNode { child, addr }
    }

    /// [`ChildNode::spawn`] with extra environment variables.
    pub fn spawn_env(config: &std::path::Path, env: &[(String, String)]) -> ChildNode {
        let (child, addr) = spawn_node_env(&["--config".as_ref(), config.as_os_str()], env);
        ChildNode { child, addr }
    }

    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

/// A tmpfs mounted for a test (a small disk to fill up); unmounted on drop. Needs root.
pub struct Tmpfs(pub std::path::PathBuf);

impl Tmpfs {
    /// A tmpfs of `size` (`mount -o size=`) as a fresh test data dir.
    pub fn mount(size: &str) -> Tmpfs {
        Tmpfs::mount_at(test_config().data_dir, size)
    }

    /// A tmpfs of `size` mounted on `dir` (created if missing).
    pub fn mount_at(dir: std::path::PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            ok.success(),
            "this test needs to mount a tmpfs (run as root)"
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A whole upload as the patent has it: the head with `Expect: 100-continue` and an `appid`
/// header, then the body if the node says 100; the final answer (or the head's refusal).
pub fn upload_expecting(addr: SocketAddr, appid: &str, path: &str, body: &[u8]) -> Wire {
    let mut s = connect(addr);
    let mut buf = Vec::new();
    let head = format!(
        "PUT /{appid}/{path} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: {appid}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let first = read_response(&mut s, &mut buf).expect("an answer to the head");
    if first.status != 100 {
        return first;
    }
    s.write_all(body).unwrap();
    read_response(&mut s, &mut buf).expect("a final answer")
}
