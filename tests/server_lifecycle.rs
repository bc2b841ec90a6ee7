//! The io_uring server core end to end over loopback: keep-alive, pipelining, timeouts, the
//! decide-before-body handler contract, the connection cap and graceful shutdown.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;
use upgate::http::Response;
use upgate::server::{self, Exchange, Handler};

#[test]
fn healthz_answers_json_and_curl_reuses_one_connection() {
    let node = start(test_config());
    let base = format!("http://{}", node.local_addr());
    let out = Command::new("curl")
        .args(["-sv", "--max-time", "10"])
        .arg(format!("{base}/healthz"))
        .arg(format!("{base}/nope"))
        .output()
        .expect("curl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with(r#"{"status":"ok"}"#), "stdout: {stdout}");
    assert!(
        stdout.contains(r#""error":"not_found""#),
        "stdout: {stdout}"
    );
    assert!(
        stderr.contains("Re-using existing connection"),
        "curl did not reuse the connection: {stderr}"
    );
    assert_eq!(stderr.matches("Connected to").count(), 1, "{stderr}");
    node.shutdown();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let node = start(test_config());
    let mut s = connect(node.local_addr());
    s.write_all(
        b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    let first = read_response(&mut s, &mut buf).unwrap();
    let second = read_response(&mut s, &mut buf).unwrap();
    assert_eq!(
        (first.status, first.body.as_slice()),
        (200, &br#"{"status":"ok"}"#[..])
    );
    assert_eq!(
        (second.status, second.error_code().as_str()),
        (404, "not_found")
    );
    // HEAD: the fields of the GET answer, no body bytes, then the requested close.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    buf.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("Content-Length: 15\r\n") && text.contains("Connection: close\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\n"),
        "HEAD answer carried a body: {text}"
    );
    node.shutdown();
}

#[test]
fn http10_closes_unless_keep_alive_is_asked() {
    let node = start(test_config());
    let (wire, mut s) = exchange(node.local_addr(), b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(wire.status, 200);
    assert_eq!(wire.header("connection"), Some("close"));
    assert!(closed_by_server(&mut s, Duration::from_secs(3)));

    let (wire, mut s) = exchange(
        node.local_addr(),
        b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(wire.header("connection"), Some("keep-alive"));
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let wire = read_response(&mut s, &mut Vec::new()).unwrap();
    assert_eq!(
        wire.status, 200,
        "second request on the kept-alive 1.0 connection"
    );
    node.shutdown();
}

#[test]
fn dribbled_head_gets_408_within_header_timeout_while_others_are_served() {
    let node = start(upgate::config::Config {
        header_timeout_ms: 2000,
        ..test_config()
    });
    let addr = node.local_addr();
    let mut s = connect(addr);
    let started = Instant::now();
    let mut reader = s.try_clone().unwrap();
    let answer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = reader.read_to_end(&mut buf);
        (String::from_utf8_lossy(&buf).to_string(), started.elapsed())
    });
    let dribbler = std::thread::spawn(move || {
        for b in b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Pad: aaaaaaaa\r\n\r\n" {
            if s.write_all(&[*b]).is_err() || started.elapsed() > Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    // Meanwhile fresh connections are served.
    let mut served = 0;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(300));
        let (wire, _) = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(wire.status, 200);
        served += 1;
    }
    let (text, elapsed) = answer.join().unwrap();
    dribbler.join().unwrap();
    assert_eq!(served, 5);
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Connection: close\r\n") && text.contains(r#""error":"header_timeout""#),
        "{text}"
    );
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed <= Duration::from_millis(3000),
        "408 came after {elapsed:?}, header_timeout_ms is 2000"
    );
    node.shutdown();
}

#[test]
fn idle_keep_alive_connection_is_closed_after_keepalive_timeout() {
    let node = start(upgate::config::Config {
        keepalive_timeout_ms: 400,
        ..test_config()
    });
    let (wire, mut s) = exchange(
        node.local_addr(),
        b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(wire.status, 200);
    let t = Instant::now();
    assert!(closed_by_server(&mut s, Duration::from_secs(3)));
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "closed too early: {:?}",
        t.elapsed()
    );
    node.shutdown();
}

/// A handler that decides after an await, as the pre-upload callback will: `x-decide: accept`
/// reads the body and answers its length; anything else answers 403 without reading it.
struct Decider;

impl Handler for Decider {
    async fn handle(&self, ex: &mut Exchange<'_>) -> Response {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if ex.head().value("x-decide") != Some(b"accept") {
            return Response::json(403, upgate::error::error_body("vetoed", "no"));
        }
        if let Err(e) = ex.accept_body().await {
            return upgate::error::render(&e);
        }
        let mut total = 0usize;
        let mut sum = 0u64;
        loop {
            match ex.next_chunk().await {
                Ok(Some(b)) => {
                    total += b.len();
                    sum += b.iter().map(|&x| x as u64).sum::<u64>();
                }
                Ok(None) => break,
                Err(e) => return upgate::error::render(&e),
            }
        }
        Response::json(200, format!(r#"{{"bytes":{total},"sum":{sum}}}"#))
    }
}

fn start_decider(config: upgate::config::Config) -> server::ServerHandle {
    server::start(config, || Decider).unwrap()
}

#[test]
fn continue_is_sent_only_after_the_handler_decides_then_the_body_streams() {
    let node = start_decider(test_config());
    let mut s = connect(node.local_addr());
    let body = vec![7u8; 100_000];
    let sent = Instant::now();
    s.write_all(b"PUT /f HTTP/1.1\r\nHost: a\r\nx-decide: accept\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let interim = read_response(&mut s, &mut buf).unwrap();
    assert_eq!(interim.status, 100);
    assert!(
        sent.elapsed() >= Duration::from_millis(300),
        "100 Continue before the decision"
    );
    s.write_all(&body).unwrap();
    let done = read_response(&mut s, &mut buf).unwrap();
    assert_eq!(done.status, 200);
    assert_eq!(done.json()["bytes"], 100_000);
    assert_eq!(done.json()["sum"], 700_000);
    assert_eq!(
        done.header("connection"),
        None,
        "kept alive after a fully read body"
    );
    node.shutdown();
}

#[test]
fn refusal_sends_no_continue_reads_no_body_and_the_client_still_gets_the_status() {
    let node = start_decider(test_config());
    let mut s = connect(node.local_addr());
    s.write_all(
        b"PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4000000\r\n\r\n",
    )
    .unwrap();
    // Like curl after its 1 s wait: send the body anyway, before any answer.
    let chunk = vec![1u8; 65536];
    let mut writer = s.try_clone().unwrap();
    let pusher = std::thread::spawn(move || {
        let mut sent = 0;
        while sent < 4_000_000 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
    });
    let mut buf = Vec::new();
    let wire = read_response(&mut s, &mut buf).unwrap();
    assert_eq!(
        wire.status, 403,
        "a veto answers 403, with no 100 before it"
    );
    assert_eq!(wire.error_code(), "vetoed");
    assert_eq!(wire.header("connection"), Some("close"));
    assert!(closed_by_server(&mut s, Duration::from_secs(5)));
    pusher.join().unwrap();
    node.shutdown();
}

#[test]
fn chunked_body_streams_to_the_handler() {
    let node = start_decider(test_config());
    let (wire, _s) = exchange(
        node.local_addr(),
        b"POST /f HTTP/1.1\r\nHost: a\r\nx-decide: accept\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer-A: x\r\n\r\n",
    );
    assert_eq!(wire.status, 200);
    assert_eq!(wire.json()["bytes"], 5);
    node.shutdown();
}

#[test]
fn stalled_body_gets_408_after_body_idle_timeout() {
    let node = start_decider(upgate::config::Config {
        body_idle_timeout_ms: 500,
        ..test_config()
    });
    let mut s = connect(node.local_addr());
    s.write_all(b"PUT /f HTTP/1.1\r\nHost: a\r\nx-decide: accept\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let wire = read_response(&mut s, &mut Vec::new()).unwrap();
    assert_eq!(
        (wire.status, wire.error_code().as_str()),
        (408, "body_timeout")
    );
    assert_eq!(wire.header("connection"), Some("close"));
    node.shutdown();
}

#[test]
fn connections_over_max_connections_get_503() {
    let node = start(upgate::config::Config {
        max_connections: 2,
        ..test_config()
    });
    let addr = node.local_addr();
    let mut held: Vec<_> = (0..2).map(|_| connect(addr)).collect();
    // Make sure both are accepted and counted before the third arrives.
    for s in held.iter_mut() {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(s, &mut Vec::new()).unwrap().status, 200);
    }
    let mut third = connect(addr);
    let wire = read_response(&mut third, &mut Vec::new()).expect("503 without a request");
    assert_eq!(
        (wire.status, wire.error_code().as_str()),
        (503, "too_many_connections")
    );
    assert_eq!(wire.header("retry-after"), Some("1"));
    drop(held);
    // Slots free up once the held connections close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (wire, _) = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
        if wire.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    node.shutdown();
}

/// The node as a child process on a free port with a throwaway data dir.
fn spawn_serve(extra: &[&str]) -> (std::process::Child, SocketAddr) {
    let data = test_config().data_dir;
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    spawn_node(&args)
}

fn wait_exit(
    child: &mut std::process::Child,
    within: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[test]
fn sigterm_finishes_the_request_in_flight_closes_idle_ones_and_exits_0() {
    let (mut child, addr) = spawn_serve(&[]);
    let mut idle = connect(addr);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut idle, &mut Vec::new()).unwrap().status,
        200
    );
    let mut busy = connect(addr);
    busy.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = child.id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(
        closed_by_server(&mut idle, Duration::from_secs(3)),
        "idle keep-alive connection stays open"
    );
    // The request that was in flight still gets its answer, with Connection: close.
    busy.write_all(b"st: a\r\n\r\n").unwrap();
    let wire = read_response(&mut busy, &mut Vec::new()).expect("in-flight request answered");
    assert_eq!(wire.status, 200);
    assert_eq!(wire.header("connection"), Some("close"));
    let status = wait_exit(&mut child, Duration::from_secs(5)).expect("node exits after draining");
    assert_eq!(status.code(), Some(0));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting after exit"
    );
}

#[test]
fn bad_config_file_is_an_error_naming_key_and_line() {
    let dir = test_config().data_dir;
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\nheader_timeout_ms = \"soon\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_upgate"))
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:2") && err.contains("invalid type"),
        "{err}"
    );
}
