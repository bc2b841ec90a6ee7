//! The post-callback's first attempt made from the io_uring thread (`callback/ring.rs`), seen
//! by real applications on 127.0.0.1: one that closes every connection after its answer
//! without saying so (the kept connection is found closed and the call is made again on a
//! new one, once: the app sees each notification once), one that answers in chunks (the
//! answer is relayed whole), and one that keeps its connection (one connection serves every
//! upload of a client).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::callback_app::CallbackApp;
use support::*;
use upgate::config::Config;

/// A raw application: answers each request with `answer` and, with `close_after`, closes the
/// connection right after (no `Connection: close`). Records the webhook-id of every request
/// and counts connections. Stops after `SERVE_FOR`.
struct RawApp {
    addr: SocketAddr,
    webhook_ids: Arc<Mutex<Vec<String>>>,
    connections: Arc<Mutex<usize>>,
}

const SERVE_FOR: Duration = Duration::from_secs(30);

impl RawApp {
    fn start(answer: &'static [u8], close_after: bool) -> RawApp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let webhook_ids = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (ids, conns) = (webhook_ids.clone(), connections.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + SERVE_FOR;
            while Instant::now() < until {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                *conns.lock().unwrap() += 1;
                let ids = ids.clone();
                std::thread::spawn(move || {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut buf = Vec::new();
                    loop {
                        // One request: head, then Content-Length bytes.
                        let end = loop {
                            if let Some(i) = find(&buf, b"\r\n\r\n") {
                                break i + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            match s.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < end + len {
                            let mut chunk = [0u8; 4096];
                            match s.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        if let Some(id) = head.lines().find_map(|l| l.strip_prefix("webhook-id:")) {
                            ids.lock().unwrap().push(id.trim().to_string());
                        }
                        buf.drain(..end + len);
                        if s.write_all(answer).is_err() || close_after {
                            return;
                        }
                    }
                });
            }
        });
        RawApp {
            addr,
            webhook_ids,
            connections,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/post", self.addr)
    }
}

fn upload_on(s: &mut std::net::TcpStream, buf: &mut Vec<u8>, path: &str) -> Wire {
    let body = b"ring bytes";
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let first = read_response(s, buf).expect("an answer to the head");
    assert_eq!(
        first.status,
        100,
        "{:?}",
        String::from_utf8_lossy(&first.body)
    );
    s.write_all(body).unwrap();
    read_response(s, buf).expect("final answer")
}

/// A node with app1's pre-callback on an ordinary app and its post-callback on `post`.
fn node_with_post(pre: &CallbackApp, post: &str) -> upgate::node::Node {
    let node = start(Config {
        callback_allow: vec![pre.addr.to_string()],
        ..test_config()
    });
    assert_eq!(
        register_form(node.local_addr(), "app1", &pre.url("/pre"), post).status,
        200
    );
    node
}

#[test]
fn an_app_that_closes_after_each_answer_gets_each_notification_once() {
    let pre = CallbackApp::accepting();
    let app = RawApp::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n{\"success\":\"true\"}",
        true,
    );
    let node = node_with_post(&pre, &app.url());
    let mut s = connect(node.local_addr());
    let mut buf = Vec::new();
    for i in 0..4 {
        let wire = upload_on(&mut s, &mut buf, &format!("/app1/closing/{i}.bin"));
        assert_eq!(
            wire.status,
            201,
            "{:?}",
            String::from_utf8_lossy(&wire.body)
        );
        assert_eq!(wire.json()["callback"], "delivered", "upload {i}");
    }
    let mut ids = app.webhook_ids.lock().unwrap().clone();
    assert_eq!(
        ids.len(),
        4,
        "each notification reached the app once: {ids:?}"
    );
    ids.dedup();
    assert_eq!(ids.len(), 4);
    assert!(*app.connections.lock().unwrap() >= 4);
    node.shutdown();
}

#[test]
fn a_chunked_answer_is_relayed_whole_and_a_kept_connection_serves_every_upload() {
    let pre = CallbackApp::accepting();
    let app = RawApp::start(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"succe\r\nb\r\nss\":\"true\"}\r\n0\r\n\r\n",
        false,
    );
    let node = node_with_post(&pre, &app.url());
    let mut s = connect(node.local_addr());
    let mut buf = Vec::new();
    for i in 0..5 {
        let wire = upload_on(&mut s, &mut buf, &format!("/app1/chunked/{i}.bin"));
        assert_eq!(wire.status, 201);
        assert_eq!(wire.json()["callback"], "delivered");
        assert_eq!(wire.json()["app"], serde_json::json!({"success": "true"}));
    }
    assert_eq!(app.webhook_ids.lock().unwrap().len(), 5);
    assert_eq!(
        *app.connections.lock().unwrap(),
        1,
        "one kept connection served the five notifications of one client connection"
    );
    node.shutdown();
}
