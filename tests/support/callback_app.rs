//! A real application server for tests: HTTP/1.1 on 127.0.0.1, one thread per connection,
//! recording every callback it receives and answering as the test's behaviour says.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

type Behaviour = dyn Fn(&Received) -> Answer + Send + Sync;

/// A running app server; stops when dropped.
pub struct CallbackApp {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl CallbackApp {
    /// Listens on 127.0.0.1:`port` (0 for any) and answers with `behaviour`.
    pub fn start(
        port: u16,
        behaviour: impl Fn(&Received) -> Answer + Send + Sync + 'static,
    ) -> CallbackApp {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("app binds");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let behaviour: Arc<Behaviour> = Arc::new(behaviour);
        {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let (received, behaviour, stop) =
                                (received.clone(), behaviour.clone(), stop.clone());
                            std::thread::spawn(move || serve(s, &received, &*behaviour, &stop));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        CallbackApp {
            addr,
            received,
            stop,
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

impl Drop for CallbackApp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Give the accept loop a moment to notice so the port is free for a restart.
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve(s: TcpStream, received: &Mutex<Vec<Received>>, behaviour: &Behaviour, stop: &AtomicBool) {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut writer = s;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || stop.load(Ordering::Relaxed) {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let r = Received {
            path,
            headers,
            body,
            at: Instant::now(),
        };
        received.lock().unwrap().push(r.clone());
        let answer = behaviour(&r);
        std::thread::sleep(answer.delay);
        let resp = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            answer.status,
            answer.body.len(),
            answer.body
        );
        if writer.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
