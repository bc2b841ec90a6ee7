//! Every validation rule of the protocol layer, over a real loopback socket: the raw bytes go to
//! a running node, and the test checks the final status, the JSON `error` code, the
//! `Connection: close` header and that the node then closes the connection. Good requests are
//! checked too, with their statuses and keep-alive. One node serves a whole table.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use upgate::config::Config;
use upgate::http::Response;
use upgate::routes::Router;
use upgate::server::{self, Exchange, Handler, ServerHandle};

/// How long a node may take to close after a response that ends the connection.
const CLOSE_WITHIN: Duration = Duration::from_secs(3);

/// Small head limits, so the 414/431 cases need only a few KiB.
fn small_limits_config() -> Config {
    Config {
        max_head_bytes: 2048,
        max_target_bytes: 512,
        max_headers: 20,
        ..support::test_config()
    }
}

/// A request with `n` header fields of `len` value bytes each.
fn with_fields(n: usize, len: usize) -> Vec<u8> {
    let mut r = b"GET /healthz HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..n {
        r.extend_from_slice(format!("X-{i}: ").as_bytes());
        r.extend(std::iter::repeat_n(b'v', len));
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"\r\n");
    r
}

/// A GET with a target of `len` bytes.
fn with_target(len: usize) -> Vec<u8> {
    let mut r = b"GET /".to_vec();
    r.extend(std::iter::repeat_n(b'a', len - 1));
    r.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    r
}

/// Sends `raw` on a fresh connection (then half-closes when `eof`) and checks the rejection:
/// status, JSON error code, `Connection: close`, no interim 100, and the close.
fn expect_rejected(addr: SocketAddr, name: &str, raw: &[u8], eof: bool, status: u16, code: &str) {
    let mut s = support::connect(addr);
    s.write_all(raw)
        .unwrap_or_else(|e| panic!("{name}: write: {e}"));
    if eof {
        s.shutdown(Shutdown::Write).unwrap();
    }
    let mut buf = Vec::new();
    let wire =
        support::read_response(&mut s, &mut buf).unwrap_or_else(|| panic!("{name}: no response"));
    assert_eq!(
        wire.status,
        status,
        "{name}: {:?}",
        String::from_utf8_lossy(&wire.body)
    );
    assert_eq!(wire.error_code(), code, "{name}");
    assert_eq!(wire.json()["success"], "false", "{name}");
    assert!(
        wire.json()["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{name}"
    );
    assert_eq!(wire.header("Connection"), Some("close"), "{name}");
    assert_eq!(
        wire.header("Content-Type"),
        Some("application/json"),
        "{name}"
    );
    assert!(wire.header("Date").is_some(), "{name}");
    assert!(
        buf.is_empty(),
        "{name}: bytes after the response: {:?}",
        String::from_utf8_lossy(&buf)
    );
    assert!(
        support::closed_by_server(&mut s, CLOSE_WITHIN),
        "{name}: the node kept the connection open"
    );
}

/// (name, raw request, expected status, expected JSON error code)
type BadCase = (&'static str, Vec<u8>, u16, &'static str);

fn bad_head_cases() -> Vec<BadCase> {
    let v = |s: &[u8]| s.to_vec();
    vec![
        // Request-line
        ("method not a token", v(b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad_method"),
        ("NUL in method", v(b"GE\0T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad_method"),
        ("leading space", v(b" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad_request_line"),
        ("double space", v(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad_request_line"),
        ("space inside target", v(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad_request_line"),
        ("http/0.9 request-line", v(b"GET /\r\n\r\n"), 400, "bad_request_line"),
        ("version 1.2", v(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505, "version_not_supported"),
        ("version 2.0", v(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505, "version_not_supported"),
        ("version 0.9", v(b"GET / HTTP/0.9\r\n\r\n"), 505, "version_not_supported"),
        ("garbage version", v(b"GET / HTTP/1.x\r\nHost: a\r\n\r\n"), 400, "bad_request_line"),
        ("version without dot", v(b"GET / HTTP/11\r\nHost: a\r\n\r\n"), 400, "bad_request_line"),
        ("version with suffix", v(b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), 400, "bad_request_line"),
        ("lowercase protocol", v(b"GET / http/1.1\r\nHost: a\r\n\r\n"), 400, "bad_request_line"),
        // Request-target
        ("asterisk for GET", v(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad_target"),
        ("authority-form", v(b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example\r\n\r\n"), 400, "bad_target"),
        ("relative target", v(b"GET healthz HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad_target"),
        ("other scheme", v(b"GET ftp://a/healthz HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad_target"),
        ("NUL in target", v(b"GET /a\0 HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad_target"),
        ("control byte in target", v(b"GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad_target"),
        ("DEL in target", v(b"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad_target"),
        // Host
        ("missing host", v(b"GET /healthz HTTP/1.1\r\n\r\n"), 400, "missing_host"),
        ("repeated host", v(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400, "bad_host"),
        ("invalid host", v(b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n"), 400, "bad_host"),
        // Field names and values
        ("space before colon", v(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400, "bad_header_name"),
        ("NUL in name", v(b"GET / HTTP/1.1\r\nHost: a\r\nX\0: b\r\n\r\n"), 400, "bad_header_name"),
        ("control byte in name", v(b"GET / HTTP/1.1\r\nHost: a\r\nX\x01: b\r\n\r\n"), 400, "bad_header_name"),
        ("empty name", v(b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"), 400, "bad_header_name"),
        ("NUL in value", v(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"), 400, "bad_header_value"),
        ("control byte in value", v(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n"), 400, "bad_header_value"),
        ("DEL in value", v(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n"), 400, "bad_header_value"),
        ("obs-fold with space", v(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), 400, "obs_fold"),
        ("obs-fold with tab", v(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n"), 400, "obs_fold"),
        // Line ends
        ("bare LF", v(b"GET / HTTP/1.1\nHost: a\r\n\r\n"), 400, "bad_line_ending"),
        ("LF-only head", v(b"GET / HTTP/1.1\nHost: a\n\n"), 400, "bad_line_ending"),
        ("bare CR", v(b"GET / HTTP/1.1\rHost: a\r\n\r\n"), 400, "bad_line_ending"),
        ("bare CR in value", v(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), 400, "bad_line_ending"),
        // Sizes (limits: head 2048 bytes, target 512 bytes, 20 fields)
        ("target over max_target_bytes", with_target(600), 414, "target_too_long"),
        ("target overflowing the head", with_target(3000), 414, "target_too_long"),
        ("head too large", with_fields(3, 800), 431, "head_too_large"),
        ("too many headers", with_fields(25, 4), 431, "too_many_headers"),
        // Content-Length
        ("length with sign", v(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello"), 400, "bad_content_length"),
        ("negative length", v(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400, "bad_content_length"),
        ("hex length", v(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"), 400, "bad_content_length"),
        ("space inside length", v(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n"), 400, "bad_content_length"),
        ("length overflow", v(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n"), 400, "bad_content_length"),
        ("differing lengths", v(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"), 400, "conflicting_content_length"),
        ("differing length list", v(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello"), 400, "conflicting_content_length"),
        // Transfer-Encoding
        ("unknown coding", v(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 501, "unknown_transfer_coding"),
        ("chunked not final", v(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"), 400, "chunked_not_final"),
        ("gzip alone", v(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 400, "chunked_not_final"),
        ("chunked twice", v(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400, "chunked_not_final"),
        ("length with chunked", v(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400, "length_with_transfer_encoding"),
        ("chunked in http/1.0", v(b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400, "transfer_encoding_in_http10"),
        // Expect: an expectation other than 100-continue, with a body left unread.
        ("unsupported expectation", v(b"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 5\r\n\r\nhello"), 417, "expectation_failed"),
        ("unsupported expectation among two", v(b"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nExpect: foo\r\nContent-Length: 5\r\n\r\n"), 417, "expectation_failed"),
    ]
}

/// A good request: (name, raw, expected statuses in order, JSON error code of the last one or
/// "" for none, whether the connection stays open).
type GoodCase = (
    &'static str,
    &'static [u8],
    &'static [u16],
    &'static str,
    bool,
);

const GOOD_CASES: &[GoodCase] = &[
    ("1.1 health", b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &[200], "", true),
    ("1.1 unknown route", b"GET /no/such/route HTTP/1.1\r\nHost: a\r\n\r\n", &[404], "not_found", true),
    ("1.1 other method", b"DELETE /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &[405], "method_not_allowed", true),
    ("1.1 extension method", b"M-SEARCH /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &[405], "method_not_allowed", true),
    ("1.1 close", b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &[200], "", false),
    ("1.0 default close", b"GET /healthz HTTP/1.0\r\n\r\n", &[200], "", false),
    ("1.0 keep-alive", b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &[200], "", true),
    ("1.0 with host", b"GET /healthz HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n", &[200], "", true),
    ("absolute-form", b"GET http://upload.example.com/healthz HTTP/1.1\r\nHost: upload.example.com\r\n\r\n", &[200], "", true),
    ("absolute-form https", b"GET https://a:8443/healthz?x=1 HTTP/1.1\r\nHost: a:8443\r\n\r\n", &[200], "", true),
    ("OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &[404], "not_found", true),
    ("blank lines before the request", b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &[200], "", true),
    ("empty host", b"GET /healthz HTTP/1.1\r\nHost:\r\n\r\n", &[200], "", true),
    ("obs-text in a value", b"GET /healthz HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\t!\r\n\r\n", &[200], "", true),
    ("identical repeated length, empty body", b"GET /no HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", &[404], "not_found", true),
    // A small body where none belongs is read and dropped: the connection stays (as nginx).
    ("identical repeated length, small body dropped", b"GET /no HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", &[404], "not_found", true),
    // One held back for a 100 Continue is not asked for: answered, then a lingering close.
    ("100-continue refused: no interim 100", b"GET /no HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", &[404], "not_found", false),
    ("chunked body left unread", b"GET /no HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &[404], "not_found", false),
    ("1.0 ignores 100-continue", b"GET /healthz HTTP/1.0\r\nExpect: 100-continue\r\nConnection: keep-alive\r\n\r\n", &[200], "", true),
    ("pipelined", b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /no HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &[200, 404, 200], "", true),
    ("pipelined then close", b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &[200, 200], "", false),
];

/// Checks one good case; on keep-alive, proves the connection is reusable.
fn expect_served(addr: SocketAddr, (name, raw, statuses, code, keep_alive): &GoodCase) {
    let mut s = support::connect(addr);
    s.write_all(raw).unwrap();
    let mut buf = Vec::new();
    let mut last = None;
    for status in statuses.iter() {
        let wire = support::read_response(&mut s, &mut buf)
            .unwrap_or_else(|| panic!("{name}: no response"));
        assert_eq!(
            wire.status,
            *status,
            "{name}: {:?}",
            String::from_utf8_lossy(&wire.body)
        );
        last = Some(wire);
    }
    let wire = last.unwrap();
    if code.is_empty() {
        if wire.status == 200 {
            assert_eq!(wire.json()["status"], "ok", "{name}");
        }
    } else {
        assert_eq!(wire.error_code(), *code, "{name}");
    }
    assert!(
        buf.is_empty(),
        "{name}: unexpected bytes {:?}",
        String::from_utf8_lossy(&buf)
    );
    if *keep_alive {
        assert_ne!(wire.header("Connection"), Some("close"), "{name}");
        let http10 = raw.windows(8).any(|w| w == b"HTTP/1.0");
        if http10 {
            assert_eq!(
                wire.header("Connection"),
                Some("keep-alive"),
                "{name}: 1.0 keep-alive is echoed"
            );
        }
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let again = support::read_response(&mut s, &mut buf)
            .unwrap_or_else(|| panic!("{name}: no second response"));
        assert_eq!(again.status, 200, "{name}: connection not reusable");
    } else {
        assert_eq!(wire.header("Connection"), Some("close"), "{name}");
        assert!(
            support::closed_by_server(&mut s, CLOSE_WITHIN),
            "{name}: the node kept the connection open"
        );
    }
}

fn still_serves_health(addr: SocketAddr) {
    let (wire, _s) = support::exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(wire.status, 200);
    assert_eq!(wire.json()["status"], "ok");
}

#[test]
fn head_rules_over_a_socket() {
    let node = support::start(small_limits_config());
    let addr = node.local_addr();
    let cases = bad_head_cases();
    let started = Instant::now();
    for (name, raw, status, code) in &cases {
        expect_rejected(addr, name, raw, false, *status, code);
    }
    for case in GOOD_CASES {
        expect_served(addr, case);
    }
    // A head cut short by the client's EOF.
    expect_rejected(
        addr,
        "EOF inside a head",
        b"GET /healthz HTTP/1.1\r\nHost: a\r\n",
        true,
        400,
        "incomplete_head",
    );
    still_serves_health(addr);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the table took {:?}",
        started.elapsed()
    );
    node.shutdown();
}

/// HEAD: the length of the GET body, none of its bytes; the next pipelined response follows
/// the head directly.
#[test]
fn head_method_omits_the_body() {
    let node = support::start(support::test_config());
    let mut s = support::connect(node.local_addr());
    s.write_all(
        b"HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    let mut raw = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut chunk = [0u8; 4096];
    // Two heads and one 15-byte body.
    while raw.windows(4).filter(|w| w == b"\r\n\r\n").count() < 2 || !raw.ends_with(b"}") {
        assert!(
            Instant::now() < deadline,
            "incomplete: {:?}",
            String::from_utf8_lossy(&raw)
        );
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed early");
        raw.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Length: 15"), "{head}");
    assert!(
        rest.starts_with("HTTP/1.1 200 OK\r\n"),
        "the HEAD response carried a body: {rest:?}"
    );
    assert!(rest.ends_with("\r\n\r\n{\"status\":\"ok\"}"), "{rest}");
    node.shutdown();
}

/// A handler that reads bodies on `/echo` (answering with their size), and is the node's
/// router elsewhere: the chunked decoder's rules are only reachable once a body is accepted.
struct EchoBody(Router);

impl Handler for EchoBody {
    async fn handle(&self, ex: &mut Exchange<'_>) -> Response {
        if ex.head().path_only() != b"/echo" {
            return self.0.handle(ex).await;
        }
        if let Err(e) = ex.accept_body().await {
            return upgate::error::render(&e);
        }
        let mut n = 0;
        loop {
            match ex.next_chunk().await {
                Ok(Some(bytes)) => n += bytes.len(),
                Ok(None) => return Response::json(200, format!("{{\"bytes\":{n}}}")),
                Err(e) => return upgate::error::render(&e),
            }
        }
    }
}

fn start_echo() -> ServerHandle {
    let config = support::test_config();
    let app = upgate::app::App::open(config.clone()).expect("app opens");
    server::start(config, move || EchoBody(Router::new(app.clone()))).expect("server starts")
}

fn chunked_put(body: &[u8]) -> Vec<u8> {
    [
        &b"PUT /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        body,
    ]
    .concat()
}

#[test]
fn body_rules_over_a_socket() {
    let node = start_echo();
    let addr = node.local_addr();
    let long_ext = [&b"5;"[..], &[b'e'; 5000], b"\r\nhello\r\n0\r\n\r\n"].concat();
    let big_trailer = [&b"5\r\nhello\r\n0\r\nX: "[..], &[b't'; 9000], b"\r\n\r\n"].concat();
    let bad: Vec<(&str, Vec<u8>, bool, u16, &str)> = vec![
        (
            "0x chunk size",
            chunked_put(b"0x5\r\nhello\r\n0\r\n\r\n"),
            false,
            400,
            "bad_chunk_size",
        ),
        (
            "bad hex",
            chunked_put(b"5g\r\nhello\r\n0\r\n\r\n"),
            false,
            400,
            "bad_chunk_size",
        ),
        (
            "negative chunk size",
            chunked_put(b"-5\r\nhello\r\n0\r\n\r\n"),
            false,
            400,
            "bad_chunk_size",
        ),
        (
            "chunk size overflow",
            chunked_put(b"10000000000000000\r\nhello\r\n0\r\n\r\n"),
            false,
            400,
            "chunk_size_overflow",
        ),
        (
            "chunk line too long",
            chunked_put(&long_ext),
            false,
            400,
            "chunk_line_too_long",
        ),
        (
            "control byte in extension",
            chunked_put(b"5;a\x01\r\nhello\r\n0\r\n\r\n"),
            false,
            400,
            "bad_chunk_size",
        ),
        (
            "data longer than its size",
            chunked_put(b"3\r\nhello\r\n0\r\n\r\n"),
            false,
            400,
            "bad_chunk_end",
        ),
        (
            "bare LF after size",
            chunked_put(b"5\nhello\r\n0\r\n\r\n"),
            false,
            400,
            "bad_line_ending",
        ),
        (
            "trailers too large",
            chunked_put(&big_trailer),
            false,
            431,
            "trailers_too_large",
        ),
        (
            "bad trailer",
            chunked_put(b"0\r\nno colon\r\n\r\n"),
            false,
            400,
            "bad_trailer",
        ),
        (
            "EOF inside a chunk",
            chunked_put(b"5\r\nhel"),
            true,
            400,
            "incomplete_body",
        ),
        (
            "EOF inside a length body",
            b"PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello".to_vec(),
            true,
            400,
            "incomplete_body",
        ),
    ];
    for (name, raw, eof, status, code) in &bad {
        expect_rejected(addr, name, raw, *eof, *status, code);
    }

    // Good bodies: (name, raw, bytes read); each connection stays usable.
    let good: Vec<(&str, Vec<u8>, usize)> = vec![
        (
            "chunked",
            chunked_put(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            11,
        ),
        (
            "chunked with extensions and trailers",
            chunked_put(b"5;a=b;c\r\nhello\r\n0;x\r\nX-Sum: 1\r\n\r\n"),
            5,
        ),
        (
            "chunked upper-case hex",
            chunked_put(b"A\r\n0123456789\r\n0\r\n\r\n"),
            10,
        ),
        (
            "identical repeated length",
            b"PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
                .to_vec(),
            3,
        ),
        (
            "identical length list",
            b"PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc".to_vec(),
            3,
        ),
        (
            "http/1.0 length body",
            b"PUT /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
            2,
        ),
    ];
    for (name, raw, n) in &good {
        let mut s = support::connect(addr);
        s.write_all(raw).unwrap();
        let mut buf = Vec::new();
        let wire = support::read_response(&mut s, &mut buf)
            .unwrap_or_else(|| panic!("{name}: no response"));
        assert_eq!(
            wire.status,
            200,
            "{name}: {:?}",
            String::from_utf8_lossy(&wire.body)
        );
        assert_eq!(wire.json()["bytes"], *n, "{name}");
        assert_ne!(wire.header("Connection"), Some("close"), "{name}");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        assert_eq!(
            support::read_response(&mut s, &mut buf).map(|w| w.status),
            Some(200),
            "{name}"
        );
    }
    node.shutdown();
}

/// The interim 100 goes out only once the handler accepts the body, and only when asked.
#[test]
fn continue_only_when_expected_and_accepted() {
    let node = start_echo();
    let addr = node.local_addr();
    // Expected, accepted: 100 before the client sends its body.
    let mut s = support::connect(addr);
    s.write_all(
        b"PUT /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    let interim = support::read_response(&mut s, &mut buf).unwrap();
    assert_eq!(interim.status, 100);
    s.write_all(b"hello").unwrap();
    let fin = support::read_response(&mut s, &mut buf).unwrap();
    assert_eq!((fin.status, fin.json()["bytes"].as_u64()), (200, Some(5)));
    // Expected, empty body: no 100.
    s.write_all(
        b"PUT /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    let fin = support::read_response(&mut s, &mut buf).unwrap();
    assert_eq!((fin.status, fin.json()["bytes"].as_u64()), (200, Some(0)));
    // Not expected: no 100.
    s.write_all(b"PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
        .unwrap();
    let fin = support::read_response(&mut s, &mut buf).unwrap();
    assert_eq!((fin.status, fin.json()["bytes"].as_u64()), (200, Some(2)));
    // HTTP/1.0 asking for it: ignored.
    s.write_all(b"PUT /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
        .unwrap();
    let fin = support::read_response(&mut s, &mut buf).unwrap();
    assert_eq!((fin.status, fin.json()["bytes"].as_u64()), (200, Some(2)));
    assert_eq!(fin.header("Connection"), Some("close"));
    assert!(support::closed_by_server(&mut s, CLOSE_WITHIN));
    node.shutdown();
}
