//! A real application server for tests: HTTP/1.1 on 127.0.0.1 on the tools' shared app server
//! (`upgate_tools::appserver`: keep-alive, one thread per connection), recording every callback
//! it receives and answering as the test's behaviour says. The [`FlappingApp`] keeps a loop of
//! its own: it must refuse, slam and answer garbage, which no well-behaved server does.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use upgate_tools::appserver::{AppServer, Options, Reply, Request};

/// One request the app received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        super::header_of(&self.headers, name)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("callback body is JSON")
    }
}

/// How the app answers: status, body, and a delay before answering.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    pub fn ok() -> Answer {
        Answer {
            status: 200,
            body: r#"{"success":"true"}"#.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn json(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }
}

/// Bodies up to this size are recorded (callbacks are a few hundred bytes).
const MAX_BODY: usize = 16 << 20;

/// A connection with no request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running app server; stops when dropped (the port is free again at once).
pub struct CallbackApp {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    _server: AppServer,
}

impl CallbackApp {
    /// Listens on 127.0.0.1:`port` (0 for any) and answers with `behaviour`.
    pub fn start(
        port: u16,
        behaviour: impl Fn(&Received) -> Answer + Send + Sync + 'static,
    ) -> CallbackApp {
        let received = Arc::new(Mutex::new(Vec::new()));
        let options = Options {
            max_body: MAX_BODY,
            idle_timeout: Some(IDLE_TIMEOUT),
            name: "test-app",
        };
        let record = received.clone();
        let server = AppServer::start(
            SocketAddr::from(([127, 0, 0, 1], port)),
            options,
            move |req: &Request| {
                let r = Received {
                    path: req.target().to_string(),
                    headers: req
                        .head
                        .fields()
                        .map(|(n, v)| {
                            let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
                            (text(n), text(v))
                        })
                        .collect(),
                    body: req.body.as_deref().unwrap_or_default().to_vec(),
                    at: Instant::now(),
                };
                record.lock().unwrap().push(r.clone());
                let answer = behaviour(&r);
                std::thread::sleep(answer.delay);
                Reply::json(answer.status, answer.body)
            },
        )
        .expect("app binds");
        CallbackApp {
            addr: server.local_addr(),
            received,
            _server: server,
        }
    }

    /// Accepts everything.
    pub fn accepting() -> CallbackApp {
        CallbackApp::start(0, |_| Answer::ok())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Requests received on `path`.
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `n` requests arrived on `path`, up to `within`.
    pub fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.on(path);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How a [`FlappingApp`] behaves at the moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Not listening: new connections are refused; open ones are dropped at their next request.
    Down,
    /// Accepts, then closes at once without answering.
    Slam,
    /// Answers only after the hang delay (longer than the node's callback timeout).
    Hanging,
    /// Answers bytes that are no usable HTTP answer (several kinds, in turn).
    Garbage,
    /// Answers OK after the slow delay (within the node's callback timeout).
    Slow,
    /// Answers 200 `{"success":"false"}`: a veto for a pre-callback, a delivery for a post.
    Veto,
    /// Answers OK at once.
    Ok,
}

const MODES: [Mode; 7] = [
    Mode::Down,
    Mode::Slam,
    Mode::Hanging,
    Mode::Garbage,
    Mode::Slow,
    Mode::Veto,
    Mode::Ok,
];

/// One request a [`FlappingApp`] read, the mode it met, and whether it was answered 2xx in
/// time (Ok, Slow, Veto, and the well-framed 2xx kind of Garbage).
#[derive(Debug, Clone)]
pub struct Flapped {
    pub request: Received,
    pub mode: Mode,
    pub answered_2xx: bool,
}

/// An application server whose behaviour the test switches while the node is under load:
/// refusing, hanging, answering garbage, slow, vetoing or OK. Stops when dropped.
pub struct FlappingApp {
    pub addr: SocketAddr,
    mode: Arc<std::sync::atomic::AtomicUsize>,
    log: Arc<Mutex<Vec<Flapped>>>,
    stop: Arc<AtomicBool>,
}

impl FlappingApp {
    /// Starts in [`Mode::Ok`] on 127.0.0.1; `hang` and `slow` are the delays of those modes.
    pub fn start(hang: Duration, slow: Duration) -> FlappingApp {
        let listener = bind_fixed_port();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(std::sync::atomic::AtomicUsize::new(6));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (mode, log, stop) = (mode.clone(), log.clone(), stop.clone());
            std::thread::spawn(move || {
                use std::os::fd::AsRawFd;
                let fd = listener.as_raw_fd();
                let mut listening = true;
                let garbage_kind = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                while !stop.load(Ordering::Relaxed) {
                    let now = MODES[mode.load(Ordering::Relaxed)];
                    // A listening socket bound to an explicit port stops listening on
                    // shutdown(SHUT_RD) (connections are refused) and listens again on listen().
                    if now == Mode::Down && listening {
                        // SAFETY: fd is the open listener's descriptor.
                        unsafe { libc::shutdown(fd, libc::SHUT_RD) };
                        listening = false;
                    } else if now != Mode::Down && !listening {
                        // SAFETY: as above.
                        let rc = unsafe { libc::listen(fd, 1024) };
                        assert_eq!(rc, 0, "the app listens again");
                        listening = true;
                    }
                    match listener.accept() {
                        Ok((s, _)) => {
                            let (mode, log, stop, kind) = (
                                mode.clone(),
                                log.clone(),
                                stop.clone(),
                                garbage_kind.clone(),
                            );
                            std::thread::spawn(move || {
                                serve_flapping(s, &mode, &log, &stop, &kind, hang, slow)
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            });
        }
        FlappingApp {
            addr,
            mode,
            log,
            stop,
        }
    }

    pub fn set(&self, mode: Mode) {
        let i = MODES.iter().position(|m| *m == mode).unwrap();
        self.mode.store(i, Ordering::Relaxed);
    }

    pub fn mode(&self) -> Mode {
        MODES[self.mode.load(Ordering::Relaxed)]
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every request read so far.
    pub fn log(&self) -> Vec<Flapped> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for FlappingApp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A listener on a port bound explicitly (so it keeps its port across shutdown and listen).
fn bind_fixed_port() -> TcpListener {
    for _ in 0..20 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return l;
        }
    }
    panic!("no port for the flapping app");
}

/// Reads one request (head and Content-Length body); `None` at EOF or on an error.
fn read_request<R: BufRead>(reader: &mut R) -> Option<Received> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let path = line.split(' ').nth(1).unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = super::header_of(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        path,
        headers,
        body,
        at: Instant::now(),
    })
}

fn respond(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn serve_flapping(
    s: TcpStream,
    mode: &std::sync::atomic::AtomicUsize,
    log: &Mutex<Vec<Flapped>>,
    stop: &AtomicBool,
    garbage_kind: &std::sync::atomic::AtomicUsize,
    hang: Duration,
    slow: Duration,
) {
    if MODES[mode.load(Ordering::Relaxed)] == Mode::Slam {
        return; // closed before reading anything
    }
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut writer = s;
    while !stop.load(Ordering::Relaxed) {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        let now = MODES[mode.load(Ordering::Relaxed)];
        let (delay, bytes, answered_2xx, keep) = match now {
            Mode::Down | Mode::Slam => (Duration::ZERO, Vec::new(), false, false),
            Mode::Hanging => (hang, respond(200, r#"{"success":"true"}"#), false, false),
            Mode::Garbage => match garbage_kind.fetch_add(1, Ordering::Relaxed) % 4 {
                0 => (Duration::ZERO, b"SMTP ready\r\n\r\n".to_vec(), false, false),
                1 => (Duration::ZERO, respond(200, "not json at all"), true, true),
                2 => (
                    Duration::ZERO,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n{\"succ".to_vec(),
                    false,
                    false,
                ),
                _ => (
                    Duration::ZERO,
                    b"HTTP/1.1 2OO OK\r\n\x01\x02\r\n\r\n".to_vec(),
                    false,
                    false,
                ),
            },
            Mode::Slow => (slow, respond(200, r#"{"success":"true"}"#), true, true),
            Mode::Veto => (
                Duration::ZERO,
                respond(200, r#"{"success":"false","reason":"flapping veto"}"#),
                true,
                true,
            ),
            Mode::Ok => (
                Duration::ZERO,
                respond(200, r#"{"success":"true"}"#),
                true,
                true,
            ),
        };
        log.lock().unwrap().push(Flapped {
            request,
            mode: now,
            answered_2xx,
        });
        std::thread::sleep(delay);
        if bytes.is_empty() || writer.write_all(&bytes).is_err() || !keep {
            return;
        }
    }
}
