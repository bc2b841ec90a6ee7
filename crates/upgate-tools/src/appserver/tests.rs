use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

fn echo(max_body: usize) -> AppServer {
    let options = Options {
        max_body,
        ..Options::default()
    };
    AppServer::start(
        "127.0.0.1:0".parse().unwrap(),
        options,
        |req: &Request| match &req.body {
            Some(body) => Reply::with_body(200, "text/plain", body.clone())
                .header("X-Target", req.target())
                .header(
                    "X-Peer-Is-Loopback",
                    req.peer.ip().is_loopback().to_string(),
                ),
            None => Reply::error(413, "too_large", "body too large"),
        },
    )
    .unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Everything the server sends until it closes.
fn read_all(mut s: TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads until `n` bytes or more arrived.
fn read_at_least(s: &mut TcpStream, n: usize) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < n {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => out.extend_from_slice(&buf[..k]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn answers_several_requests_on_one_connection_then_honours_close() {
    let app = echo(1024);
    let mut s = connect(app.local_addr());
    s.write_all(
        b"POST /a?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
          POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n\
          GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let out = read_all(s);
    let answers: Vec<&str> = out.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(answers.len(), 3, "{out}");
    assert!(answers[0].starts_with("200 OK\r\n"), "{out}");
    assert!(answers[0].contains("X-Target: /a?q=1\r\n"), "{out}");
    assert!(answers[0].contains("X-Peer-Is-Loopback: true\r\n"), "{out}");
    assert!(
        answers[0].ends_with("Content-Length: 3\r\n\r\nabc"),
        "{out}"
    );
    assert!(answers[1].ends_with("Content-Length: 2\r\n\r\nde"), "{out}");
    assert!(
        answers[2].ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"),
        "{out}"
    );
}

#[test]
fn sends_100_continue_only_for_a_body_within_the_limit() {
    let app = echo(8);
    let mut s = connect(app.local_addr());
    s.write_all(
        b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_at_least(&mut s, 25), "HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"wxyz").unwrap();
    assert!(read_at_least(&mut s, 1).ends_with("\r\n\r\nwxyz"));

    // Over the limit: no 100, the handler's answer, then the connection closes.
    let mut s = connect(app.local_addr());
    s.write_all(
        b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n",
    )
    .unwrap();
    let out = read_all(s);
    assert!(
        out.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
        "{out}"
    );
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(
        out.ends_with(r#"{"success":"false","error":"too_large","message":"body too large"}"#),
        "{out}"
    );
    assert!(!out.contains("100 Continue"), "{out}");
}

#[test]
fn head_gets_the_fields_without_the_body() {
    let app = echo(8);
    let mut s = connect(app.local_addr());
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = read_all(s);
    let answers: Vec<&str> = out.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(answers.len(), 2, "{out}");
    assert!(answers[0].ends_with("Content-Length: 2\r\n\r\n"), "{out}");
}

#[test]
fn a_broken_request_gets_the_contract_error_and_a_close() {
    let app = echo(8);
    let mut s = connect(app.local_addr());
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let out = read_all(s);
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(
        out.contains(r#"{"success":"false","error":"missing_host","#),
        "{out}"
    );
}

#[test]
fn drop_closes_idle_connections_and_frees_the_port() {
    let app = echo(8);
    let addr = app.local_addr();
    let s = connect(addr);
    drop(app);
    assert_eq!(read_all(s), "", "an idle connection is closed unanswered");
    let again = TcpListener::bind(addr).expect("the port is free after drop");
    drop(again);
}

#[test]
fn shutdown_waits_for_the_request_in_progress() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = {
        let seen = seen.clone();
        AppServer::start(
            "127.0.0.1:0".parse().unwrap(),
            Options::default(),
            move |req: &Request| {
                seen.lock().unwrap().push(req.path().to_string());
                std::thread::sleep(Duration::from_millis(300));
                Reply::json(200, r#"{"success":"true"}"#)
            },
        )
        .unwrap()
    };
    let mut s = connect(app.local_addr());
    s.write_all(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    while seen.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    app.shutdown(Duration::from_secs(5));
    let out = read_all(s);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(out.ends_with(r#"{"success":"true"}"#), "{out}");
}
