//! Download semantics over loopback: ranges, conditional requests, HEAD.

mod support;

use std::io::Write;
use std::net::SocketAddr;

use support::callback_app::CallbackApp;
use support::*;
use upgate::config::Config;

/// Stores `body` at `/app1/{name}` through a real upload.
fn stored(addr: SocketAddr, app: &CallbackApp, name: &str, body: &[u8]) {
    let mut s = connect(addr);
    let head = format!(
        "PUT /app1/{name} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\ncallback_url_pre: {}\r\nContent-Length: {}\r\n\r\n",
        app.url("/pre"),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 100);
    s.write_all(body).unwrap();
    assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 201);
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> Wire {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: n\r\n{extra}\r\n").as_bytes(),
    )
    .0
}

fn node() -> (upgate::node::Node, CallbackApp) {
    let app = CallbackApp::accepting();
    let node = start(Config {
        callback_allow: vec![app.addr.to_string()],
        ..test_config()
    });
    (node, app)
}

#[test]
fn single_ranges_answer_206_with_content_range() {
    let (node, app) = node();
    let addr = node.local_addr();
    let body: Vec<u8> = (0..100u8).collect();
    stored(addr, &app, "r.bin", &body);

    let whole = get(addr, "/app1/r.bin", "");
    assert_eq!(
        (whole.status, whole.header("accept-ranges")),
        (200, Some("bytes"))
    );
    assert_eq!(whole.body, body);

    let cases: &[(&str, &str, std::ops::Range<usize>)] = &[
        ("bytes=2-5", "bytes 2-5/100", 2..6),
        ("bytes=90-", "bytes 90-99/100", 90..100),
        ("bytes=-3", "bytes 97-99/100", 97..100),
        ("bytes=95-500", "bytes 95-99/100", 95..100),
    ];
    for (range, content_range, bytes) in cases {
        let w = get(addr, "/app1/r.bin", &format!("Range: {range}\r\n"));
        assert_eq!(w.status, 206, "{range}");
        assert_eq!(w.header("content-range"), Some(*content_range), "{range}");
        assert_eq!(w.body, &body[bytes.clone()], "{range}");
        assert_eq!(
            w.header("content-length"),
            Some(bytes.len().to_string().as_str())
        );
    }
    node.shutdown();
}

#[test]
fn unsatisfiable_multi_and_invalid_ranges() {
    let (node, app) = node();
    let addr = node.local_addr();
    stored(addr, &app, "u.bin", &[7u8; 10]);
    let w = get(addr, "/app1/u.bin", "Range: bytes=10-\r\n");
    assert_eq!(
        (w.status, w.error_code().as_str()),
        (416, "range_not_satisfiable")
    );
    assert_eq!(w.header("content-range"), Some("bytes */10"));
    // Several ranges and unparsable ones are answered whole.
    for range in ["bytes=0-1,4-5", "bytes=x-y", "pages=1-2"] {
        let w = get(addr, "/app1/u.bin", &format!("Range: {range}\r\n"));
        assert_eq!((w.status, w.body.len()), (200, 10), "{range}");
    }
    node.shutdown();
}

#[test]
fn if_range_and_conditional_requests() {
    let (node, app) = node();
    let addr = node.local_addr();
    stored(addr, &app, "c.txt", b"0123456789");
    let whole = get(addr, "/app1/c.txt", "");
    let etag = whole.header("etag").unwrap().to_string();
    let last_modified = whole.header("last-modified").unwrap().to_string();

    let w = get(
        addr,
        "/app1/c.txt",
        &format!("Range: bytes=0-1\r\nIf-Range: {etag}\r\n"),
    );
    assert_eq!((w.status, w.body.as_slice()), (206, &b"01"[..]));
    let w = get(
        addr,
        "/app1/c.txt",
        &format!("Range: bytes=0-1\r\nIf-Range: {last_modified}\r\n"),
    );
    assert_eq!(w.status, 206);
    let w = get(
        addr,
        "/app1/c.txt",
        "Range: bytes=0-1\r\nIf-Range: \"stale\"\r\n",
    );
    assert_eq!(
        (w.status, w.body.as_slice()),
        (200, &b"0123456789"[..]),
        "a stale If-Range gets the whole file"
    );
    // A matching If-None-Match wins over Range.
    let w = get(
        addr,
        "/app1/c.txt",
        &format!("Range: bytes=0-1\r\nIf-None-Match: {etag}\r\n"),
    );
    assert_eq!(w.status, 304);
    assert_eq!(w.header("etag"), Some(etag.as_str()));
    let w = get(addr, "/app1/c.txt", "If-None-Match: \"other\"\r\n");
    assert_eq!(w.status, 200);
    node.shutdown();
}

#[test]
fn both_data_paths_send_the_same_bytes() {
    for zero_copy in [true, false] {
        let app = CallbackApp::accepting();
        let node = start(Config {
            callback_allow: vec![app.addr.to_string()],
            zero_copy,
            ..test_config()
        });
        let addr = node.local_addr();
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        stored(addr, &app, "big.bin", &body);
        let w = get(addr, "/app1/big.bin", "");
        assert_eq!(w.status, 200, "zero_copy = {zero_copy}");
        assert!(w.body == body, "zero_copy = {zero_copy}: bytes differ");
        let w = get(addr, "/app1/big.bin", "Range: bytes=1000000-1000009\r\n");
        assert_eq!(
            w.body,
            &body[1_000_000..1_000_010],
            "zero_copy = {zero_copy}"
        );
        node.shutdown();
    }
}
