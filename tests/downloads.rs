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
    let mut answer = |s: &mut std::net::TcpStream| {
        read_response(s, &mut buf)
            .unwrap_or_else(|| panic!("no answer to the upload of {name}: {}", last_read_end()))
    };
    assert_eq!(answer(&mut s).status, 100);
    s.write_all(body).unwrap();
    assert_eq!(answer(&mut s).status, 201);
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

/// One keep-alive connection of the download tests.
struct Client {
    s: std::net::TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        Client {
            s: connect(addr),
            buf: Vec::new(),
        }
    }

    fn get(&mut self, path: &str) -> Wire {
        self.get_with(path, "")
    }

    fn get_with(&mut self, path: &str, extra: &str) -> Wire {
        let req = format!("GET {path} HTTP/1.1\r\nHost: n\r\n{extra}\r\n");
        self.s.write_all(req.as_bytes()).unwrap();
        read_response(&mut self.s, &mut self.buf).unwrap_or_else(|| {
            panic!(
                "no response to GET {path} on a kept-alive connection: {} (bytes: {:?})",
                last_read_end(),
                String::from_utf8_lossy(&self.buf)
            )
        })
    }

    /// The head of a HEAD response; no byte may follow it.
    fn head(&mut self, path: &str) -> String {
        let req = format!("HEAD {path} HTTP/1.1\r\nHost: n\r\n\r\n");
        self.s.write_all(req.as_bytes()).unwrap();
        let end = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end;
            }
            let mut chunk = [0u8; 4096];
            let n = std::io::Read::read(&mut self.s, &mut chunk).unwrap();
            assert!(n > 0, "closed before the HEAD answer");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        assert!(
            self.buf.is_empty(),
            "bytes after a HEAD answer: {:?}",
            self.buf
        );
        head
    }
}

/// The body of round `round`: other bytes, and another length, each time; some rounds below
/// the small-body size (sent from memory), some above (spliced from the open file).
fn version(round: usize) -> Vec<u8> {
    let len = match round % 4 {
        0 => 5 + round,
        1 => 4096 + round,
        2 => 16 * 1024 + 1 + round * 7,
        _ => 100_000 + round * 13,
    };
    (0..len).map(|i| (i * 31 + round * 7) as u8).collect()
}

/// Removes `/app1/{rel}` through the node's own store (the node has no HTTP `DELETE`): the
/// delete path every caller of `ObjectStore::delete` takes.
fn delete(node: &upgate::node::Node, rel: &str) {
    use upgate::storage::{ObjectStore, Target};
    let store = node.app.store.clone();
    let target = Target {
        appid: "app1".into(),
        rel: rel.into(),
    };
    // On a thread of its own: after a tokio-uring runtime ran on the test's thread, its
    // blocking socket reads were seen to fail with EINTR (they have a read timeout).
    let removed = std::thread::spawn(move || {
        tokio_uring::start(async move { store.delete(&target).await.unwrap() })
    })
    .join()
    .unwrap();
    assert!(removed, "{rel} existed");
}

/// Each connection GETs the file and must see exactly `want` (or 404 for `None`).
fn all_see(clients: &mut [Client], path: &str, want: Option<&[u8]>, what: &str) {
    for (i, c) in clients.iter_mut().enumerate() {
        let w = c.get(path);
        match want {
            Some(body) => {
                assert_eq!(w.status, 200, "{what}, connection {i}");
                assert_eq!(
                    w.header("content-length"),
                    Some(body.len().to_string().as_str()),
                    "{what}, connection {i}"
                );
                assert!(w.body == body, "{what}, connection {i}: old or wrong bytes");
            }
            None => {
                assert_eq!(w.status, 404, "{what}, connection {i}");
                assert_eq!(w.error_code(), "not_found", "{what}, connection {i}");
            }
        }
    }
}

/// The open-file cache is per thread, and a commit or delete on one thread must stop every
/// thread from serving the old version at once: with two runtime threads and sixteen
/// keep-alive connections (spread over both by `SO_REUSEPORT`'s hash; all sixteen on one thread
/// has a chance of 2^-15), every connection reads the
/// file (caching it on its thread), the file is replaced or deleted, and every connection's
/// next read must be the new bytes or 404. 50 rounds, with lengths on both sides of the
/// small-body size.
#[test]
fn downloads_after_an_overwrite_or_a_delete_never_serve_the_old_bytes() {
    let app = CallbackApp::accepting();
    let node = start(Config {
        callback_allow: vec![app.addr.to_string()],
        overwrite: true,
        fsync: false,
        threads: 2,
        ..test_config()
    });
    let addr = node.local_addr();
    let mut clients: Vec<Client> = (0..16).map(|_| Client::new(addr)).collect();
    for round in 0..50 {
        let body = version(round);
        stored(addr, &app, "v.bin", &body);
        let what = format!("round {round}: after the commit of {} bytes", body.len());
        all_see(&mut clients, "/app1/v.bin", Some(&body), &what);
        // Every thread has it cached now; the next change must reach them all.
        all_see(&mut clients, "/app1/v.bin", Some(&body), &what);
        if round % 5 == 4 {
            delete(&node, "v.bin");
            let what = format!("round {round}: after the delete");
            all_see(&mut clients, "/app1/v.bin", None, &what);
        }
    }
    node.shutdown();
}

/// A file replaced in `data_dir/files/` behind the node's back (not through an upload) is
/// served new once `open_file_cache_ttl_ms` has passed since it was cached, on every thread.
#[test]
fn a_file_replaced_behind_the_node_is_served_new_after_the_cache_ttl() {
    let app = CallbackApp::accepting();
    let config = Config {
        callback_allow: vec![app.addr.to_string()],
        open_file_cache_ttl_ms: 300,
        threads: 2,
        ..test_config()
    };
    let file = config.data_dir.join("files/app1/b.txt");
    let node = start(config);
    let addr = node.local_addr();
    let mut clients: Vec<Client> = (0..8).map(|_| Client::new(addr)).collect();
    stored(addr, &app, "b.txt", b"the old bytes");
    all_see(
        &mut clients,
        "/app1/b.txt",
        Some(b"the old bytes"),
        "stored",
    );
    let new: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let tmp = file.with_extension("swap");
    std::fs::write(&tmp, &new).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    all_see(&mut clients, "/app1/b.txt", Some(&new), "after the TTL");
    // Changed in place, same length: the open is cached again, and the change is seen after
    // the TTL too.
    let mut in_place = new.clone();
    in_place[0] ^= 0xff;
    std::fs::write(&file, &in_place).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    all_see(
        &mut clients,
        "/app1/b.txt",
        Some(&in_place),
        "in place, after the TTL",
    );
    node.shutdown();
}

/// A small file is sent from memory once cached: HEAD, 304, 416 and ranges of it must still
/// send exactly their bytes, so the next answer on the same connection starts where it should.
/// Twice over: the first pass opens the file (on this connection's thread), the second is served
/// from the cache.
#[test]
fn head_304_416_and_ranges_of_a_cached_small_file_keep_the_connection_in_step() {
    let (node, app) = node();
    let addr = node.local_addr();
    let body: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    stored(addr, &app, "s.bin", &body);
    let mut c = Client::new(addr);
    for pass in ["opened", "cached"] {
        let whole = c.get("/app1/s.bin");
        assert_eq!((whole.status, &whole.body), (200, &body), "{pass}");
        let etag = whole.header("etag").unwrap().to_string();
        let head = c.head("/app1/s.bin");
        assert!(
            head.starts_with("HTTP/1.1 200 OK") && head.contains("Content-Length: 3000"),
            "{pass}: {head}"
        );
        let w = c.get_with("/app1/s.bin", &format!("If-None-Match: {etag}\r\n"));
        assert_eq!((w.status, w.body.len()), (304, 0), "{pass}");
        let w = c.get_with("/app1/s.bin", "Range: bytes=5000-\r\n");
        assert_eq!(w.status, 416, "{pass}");
        assert_eq!(w.header("content-range"), Some("bytes */3000"), "{pass}");
        let w = c.get_with("/app1/s.bin", "Range: bytes=10-19\r\n");
        assert_eq!((w.status, &w.body[..]), (206, &body[10..20]), "{pass}");
        assert_eq!(
            w.header("content-range"),
            Some("bytes 10-19/3000"),
            "{pass}"
        );
    }
    node.shutdown();
}
