//! An adversarial battery: well over a hundred hostile requests, each sent as raw bytes on a
//! fresh loopback connection to one running node, with a real application server (a
//! `CallbackApp` on 127.0.0.1) recording every callback it receives.
//!
//! For every row the test proves what a user (or an attacker) would notice:
//! - the final status and the JSON `error` code are the contract's (`docs/protocol.md`);
//! - when the connection must end, the answer says `Connection: close` and the node really
//!   closes it (bounded wait); otherwise the same connection still serves `/healthz`;
//! - nothing reached storage: the data dir (files and `tmp/`, the sled registry aside) is the
//!   same before and after, unless the row is an upload that must succeed, and then exactly its
//!   file (and parent directories) appeared, with the bytes sent;
//! - no callback reached the application unless the row says so (requests refused on the head
//!   never cause one);
//! - the node still answers `GET /healthz` 200 on a fresh connection.
//!
//! The shapes: request smuggling (CL/TE), malformed request-lines, headers and line endings,
//! size limits (414, 431), versions (505), Host rules, path traversal on uploads and downloads,
//! the `appid` and `Expect` rules, client-carried callback URLs that must be refused by the SSRF
//! policy before any connection is attempted, and redirects from an allowed callback target,
//! which must not be followed. Two trap listeners (127.0.0.1 on a port that is not allow-listed,
//! and 127.0.0.2) must see zero connections. The node only ever talks to 127.0.0.1 / 127.0.0.2:
//! other addresses appear only as text in headers that the policy refuses without dialling.
//!
//! Two transports, one battery (contract "TLS": the same routes, limits and flow on
//! `tls_listen`). `adversarial_battery` sends every row over plain TCP, and
//! `adversarial_battery_over_tls` sends every row, and every `/healthz` check (on the row's
//! connection and on a fresh one), over TLS through a rustls client. Both build the same rows
//! from the same functions ([`all_cases`]), start the same [`Bench`] (a node with both
//! listeners, its callback app, traps and redirecting app) and run them with the same [`run`];
//! only the [`Dial`] differs. The node has both listeners in both tests, so the transport is
//! the one thing that changes between them; the plain listener also serves the set-up (the
//! registration of `app1`, which is not under test). Each test has its own node and data dir,
//! so the rows that store files (and the 409 on one of them) mean the same in both.
//!
//! No row expects anything different over TLS: none depends on TCP itself (a node that closes
//! sends `close_notify` and the socket ends; [`support::closed_by_server`] takes either, or a
//! reset), and none on the client's address (no `X-Forwarded-For`; both transports come from
//! 127.0.0.1). A row that had to differ would be adjusted in `battery`, next to the dial, with
//! its reason.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::callback_app::CallbackApp;
use support::tls::make_cert;
use support::{closed_by_server, read_response, register_form, Dial, Stream, Wire};
use upgate::config::Config;

/// Longest wait for any single read or for the node to close a connection.
const WAIT: Duration = Duration::from_secs(3);
/// The registered app; its pre/post callbacks go to the `CallbackApp`.
const APPID: &str = "app1";

// ---------------------------------------------------------------------------------------------
// Listeners that must (or may) be contacted by the node.

/// What a [`RawServer`] answers to a request for a path (`None`: close without answering).
type Answer = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A raw TCP listener that counts connections and answers each request with `answer(path)`
/// (or closes without answering when it returns `None`).
struct RawServer {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl RawServer {
    fn start(ip: &str, answer: Answer) -> RawServer {
        let listener = TcpListener::bind((ip, 0)).expect("bind a loopback listener");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, st) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        h.fetch_add(1, Ordering::SeqCst);
                        let answer = answer.clone();
                        std::thread::spawn(move || answer_one(s, &*answer));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        RawServer { addr, hits, stop }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer_one(mut s: TcpStream, answer: &(dyn Fn(&str) -> Option<String> + Send + Sync)) {
    s.set_nonblocking(false).ok();
    s.set_read_timeout(Some(WAIT)).ok();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = support::find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let path = head.split(' ').nth(1).unwrap_or("").to_string();
    if let Some(resp) = answer(&path) {
        let _ = s.write_all(resp.as_bytes());
    }
}

/// Never answers: a node that reaches it has already failed the test.
fn trap() -> Answer {
    Arc::new(|_| None)
}

/// An allowed callback target that answers with a redirect to the 127.0.0.2 trap on `port`;
/// the status is the path's last segment (`/r302` → 302). The port is the closure's, not a
/// global's: batteries running side by side in one process each have their own trap.
fn redirect_to(port: u16) -> Answer {
    Arc::new(move |path| {
        let status: u16 = path.trim_start_matches("/r").parse().unwrap_or(302);
        let body = r#"{"success":"true"}"#;
        Some(format!(
            "HTTP/1.1 {status} Redirect\r\nLocation: http://127.0.0.2:{port}/stolen\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// Rows.

/// One adversarial request and everything the node must do with it.
struct Case {
    category: &'static str,
    name: String,
    raw: Vec<u8>,
    /// Final status.
    status: u16,
    /// JSON `error` code of the final answer; `None` for a success (201), `Some("")` for an
    /// answer whose body is not checked.
    code: Option<&'static str>,
    /// The node must answer `Connection: close` and close.
    close: bool,
    /// A `100 Continue` must precede the final answer (else none may).
    interim: bool,
    /// Requests the `CallbackApp` must receive because of this row.
    app_calls: usize,
    /// Requests the redirecting callback target must receive because of this row.
    redirect_calls: usize,
    /// A file that must appear under `files/` (relative to it) with these bytes.
    stores: Option<(String, Vec<u8>)>,
}

impl Case {
    /// A request the node must refuse with `status`/`code` (`""`: body not checked) and close,
    /// with no callback made (rows that get further say so with the builders below).
    fn refused(
        category: &'static str,
        name: impl Into<String>,
        raw: Vec<u8>,
        status: u16,
        code: &'static str,
    ) -> Case {
        Case {
            category,
            name: name.into(),
            raw,
            status,
            code: Some(code),
            close: true,
            interim: false,
            app_calls: 0,
            redirect_calls: 0,
            stores: None,
        }
    }

    /// An upload that must succeed: `100 Continue`, 201, pre- and post-callback, the file
    /// `appid/rel` stored with `body`.
    fn stored(
        category: &'static str,
        name: impl Into<String>,
        raw: Vec<u8>,
        rel: &str,
        body: &[u8],
    ) -> Case {
        Case {
            category,
            name: name.into(),
            raw,
            status: 201,
            code: None,
            close: false,
            interim: true,
            app_calls: 2,
            redirect_calls: 0,
            stores: Some((rel.to_string(), body.to_vec())),
        }
    }

    /// A request the node must answer with `status` (no error body checked), keeping the
    /// connection.
    fn served(category: &'static str, name: impl Into<String>, raw: Vec<u8>, status: u16) -> Case {
        Case::refused(category, name, raw, status, "").keep_alive()
    }

    /// The connection stays usable after the answer.
    fn keep_alive(mut self) -> Case {
        self.close = false;
        self
    }

    /// A `100 Continue` comes first (the pre-callback accepted; the body then failed).
    fn after_continue(mut self) -> Case {
        self.interim = true;
        self
    }

    fn app_calls(mut self, n: usize) -> Case {
        self.app_calls = n;
        self
    }

    fn redirect_calls(mut self, n: usize) -> Case {
        self.redirect_calls = n;
        self
    }
}

/// Header lines joined with CRLF, the empty line, then `body`.
fn req(lines: &[&str], body: &[u8]) -> Vec<u8> {
    let mut r = lines.join("\r\n").into_bytes();
    r.extend_from_slice(b"\r\n\r\n");
    r.extend_from_slice(body);
    r
}

/// A well-formed upload of `body` to `target` (appid `app1`, `Expect: 100-continue`) plus
/// `extra` header lines.
fn upload(target: &str, extra: &[&str], body: &[u8]) -> Vec<u8> {
    let start = format!("PUT {target} HTTP/1.1");
    let len = format!("Content-Length: {}", body.len());
    let mut lines = vec![
        start.as_str(),
        "Host: node",
        "Expect: 100-continue",
        "appid: app1",
    ];
    lines.extend_from_slice(extra);
    lines.push(len.as_str());
    req(&lines, body)
}

/// An upload head whose framing lines are `framing` (no Content-Length added).
fn upload_framed(target: &str, framing: &[&str], body: &[u8]) -> Vec<u8> {
    let start = format!("PUT {target} HTTP/1.1");
    let mut lines = vec![
        start.as_str(),
        "Host: node",
        "Expect: 100-continue",
        "appid: app1",
    ];
    lines.extend_from_slice(framing);
    req(&lines, body)
}

/// A chunked upload to a fresh path whose body is `chunks` (raw chunked framing).
fn chunked(target: &str, chunks: &[u8]) -> Vec<u8> {
    upload_framed(target, &["Transfer-Encoding: chunked"], chunks)
}

fn get(target: &str) -> Vec<u8> {
    req(&[&format!("GET {target} HTTP/1.1"), "Host: node"], b"")
}

fn bytes(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Ports the SSRF rows refer to.
struct Ports {
    app: u16,
    trap1: u16,
    trap2: u16,
    redirect: u16,
}

#[rustfmt::skip]
fn smuggling_cases() -> Vec<Case> {
    let c = "smuggling";
    let t = "/app1/smuggle/x.txt";
    let r = |name: &str, framing: &[&str], body: &[u8], status, code| {
        Case::refused(c, name, upload_framed(t, framing, body), status, code)
    };
    vec![
        r("CL + TE", &["Content-Length: 5", "Transfer-Encoding: chunked"], b"0\r\n\r\n", 400, "length_with_transfer_encoding"),
        r("TE + CL", &["Transfer-Encoding: chunked", "Content-Length: 5"], b"0\r\n\r\n", 400, "length_with_transfer_encoding"),
        r("CL 0 + TE", &["Content-Length: 0", "Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\r\n\r\n", 400, "length_with_transfer_encoding"),
        r("TE chunked, identity", &["Transfer-Encoding: chunked, identity"], b"0\r\n\r\n", 400, "chunked_not_final"),
        r("TE chunked then TE identity", &["Transfer-Encoding: chunked", "Transfer-Encoding: identity"], b"0\r\n\r\n", 400, "chunked_not_final"),
        r("TE chunked twice", &["Transfer-Encoding: chunked, chunked"], b"0\r\n\r\n", 400, "chunked_not_final"),
        r("TE identity", &["Transfer-Encoding: identity"], b"", 400, "chunked_not_final"),
        r("TE gzip", &["Transfer-Encoding: gzip"], b"", 400, "chunked_not_final"),
        r("TE gzip, chunked", &["Transfer-Encoding: gzip, chunked"], b"0\r\n\r\n", 501, "unknown_transfer_coding"),
        r("TE xchunked", &["Transfer-Encoding: xchunked"], b"0\r\n\r\n", 400, "chunked_not_final"),
        r("TE empty", &["Transfer-Encoding: "], b"0\r\n\r\n", 400, "chunked_not_final"),
        r("TE identity + CL", &["Transfer-Encoding: identity", "Content-Length: 5"], b"hello", 400, "length_with_transfer_encoding"),
        r("TE with vertical tab", &["Transfer-Encoding: \x0bchunked"], b"0\r\n\r\n", 400, "bad_header_value"),
        r("duplicate differing CL", &["Content-Length: 5", "Content-Length: 6"], b"hello!", 400, "conflicting_content_length"),
        r("differing CL list", &["Content-Length: 5, 6"], b"hello!", 400, "conflicting_content_length"),
        r("CL +5", &["Content-Length: +5"], b"hello", 400, "bad_content_length"),
        r("CL -5", &["Content-Length: -5"], b"hello", 400, "bad_content_length"),
        r("CL space inside", &["Content-Length: 1 0"], b"helloworld", 400, "bad_content_length"),
        r("CL hex", &["Content-Length: 0x10"], b"0123456789abcdef", 400, "bad_content_length"),
        r("CL empty", &["Content-Length: "], b"hello", 400, "bad_content_length"),
        r("CL 20 digits overflow", &["Content-Length: 99999999999999999999"], b"hello", 400, "bad_content_length"),
        r("CL 2^64", &["Content-Length: 18446744073709551616"], b"hello", 400, "bad_content_length"),
        r("CL decimal point", &["Content-Length: 5.0"], b"hello", 400, "bad_content_length"),
        r("CL empty list element only", &["Content-Length: ,"], b"hello", 400, "bad_content_length"),
        Case::refused(c, "TE in HTTP/1.0",
            req(&["PUT /app1/smuggle/x.txt HTTP/1.0", "Host: node", "Expect: 100-continue", "appid: app1", "Transfer-Encoding: chunked"], b"0\r\n\r\n"),
            400, "transfer_encoding_in_http10"),
    ]
}

#[rustfmt::skip]
fn chunk_cases() -> Vec<Case> {
    let c = "chunked body";
    // These heads are fine: the pre-callback accepts, `100 Continue` goes out, then the body's
    // framing fails. The temporary file must be gone and no post-callback made.
    let r = |name: &str, path: &str, body: &[u8], code| {
        Case::refused(c, name, chunked(path, body), 400, code).after_continue().app_calls(1)
    };
    vec![
        r("chunk size overflow", "/app1/chunk/a.txt", b"10000000000000000\r\nx\r\n0\r\n\r\n", "chunk_size_overflow"),
        r("chunk size 0x prefix", "/app1/chunk/b.txt", b"0x5\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"),
        r("chunk size bad hex", "/app1/chunk/c.txt", b"zz\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"),
        r("chunk size negative", "/app1/chunk/d.txt", b"-5\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"),
        r("chunk size with sign", "/app1/chunk/e.txt", b"+5\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"),
        r("chunk line bare LF", "/app1/chunk/f.txt", b"5\nhello\r\n0\r\n\r\n", "bad_line_ending"),
        r("chunk line bare CR", "/app1/chunk/g.txt", b"5\rX\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"),
        r("chunk data not followed by CRLF", "/app1/chunk/h.txt", b"5\r\nhelloXX\r\n0\r\n\r\n", "bad_chunk_end"),
        r("NUL in chunk extension", "/app1/chunk/i.txt", b"5;a=\0\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"),
        r("malformed trailer", "/app1/chunk/j.txt", b"5\r\nhello\r\n0\r\nno colon\r\n\r\n", "bad_trailer"),
        r("bad second chunk after good data", "/app1/chunk/k.txt", b"5\r\nhello\r\nq\r\nworld\r\n0\r\n\r\n", "bad_chunk_size"),
    ]
}

#[rustfmt::skip]
fn head_syntax_cases() -> Vec<Case> {
    let c = "head syntax";
    let r = |name: &str, raw: &[u8], status, code| Case::refused(c, name, raw.to_vec(), status, code);
    let up = "PUT /app1/syntax/x.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\n";
    let with = |line: &[u8]| bytes(&[up.as_bytes(), line, b"Content-Length: 5\r\n\r\nhello"]);
    vec![
        // Line endings.
        r("bare LF in request line", b"PUT /app1/syntax/x.txt HTTP/1.1\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_line_ending"),
        r("bare CR in request line", b"PUT /app1/syntax/x.txt HTTP/1.1\rHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_line_ending"),
        r("bare CR inside request line", b"PUT /app1/syntax/x.txt\rHTTP/1.1\r\nHost: node\r\n\r\n", 400, "bad_line_ending"),
        r("bare LF after a header", &with(b"X-A: 1\nContent-Type: text/plain\r\n"), 400, "bad_line_ending"),
        r("bare CR after a header", &with(b"X-A: 1\rContent-Type: text/plain\r\n"), 400, "bad_line_ending"),
        r("bare CR inside a value", &with(b"X-A: 1\r2\r\n"), 400, "bad_line_ending"),
        r("LF-only head", b"PUT /app1/syntax/x.txt HTTP/1.1\nHost: node\nExpect: 100-continue\nappid: app1\nContent-Length: 5\n\nhello", 400, "bad_line_ending"),
        r("bare LF ends the head", &bytes(&[up.as_bytes(), b"Content-Length: 5\r\n\nhello"]), 400, "bad_line_ending"),
        // Field names.
        r("NUL in header name", &with(b"X-\0A: 1\r\n"), 400, "bad_header_name"),
        r("control byte in header name", &with(b"X-\x01A: 1\r\n"), 400, "bad_header_name"),
        r("DEL in header name", &with(b"X-\x7fA: 1\r\n"), 400, "bad_header_name"),
        r("space before colon", &with(b"Content-Type : text/plain\r\n"), 400, "bad_header_name"),
        r("space before colon on Transfer-Encoding", b"PUT /app1/syntax/x.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_header_name"),
        r("tab before colon", &with(b"appid\t: app1\r\n"), 400, "bad_header_name"),
        r("empty header name", &with(b": x\r\n"), 400, "bad_header_name"),
        r("UTF-8 in header name", &with("X-\u{e9}: 1\r\n".as_bytes()), 400, "bad_header_name"),
        // Field values.
        r("NUL in header value", &with(b"X-A: a\0b\r\n"), 400, "bad_header_value"),
        r("NUL in appid value", b"PUT /app1/syntax/x.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\0\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_header_value"),
        r("control byte in header value", &with(b"X-A: a\x01b\r\n"), 400, "bad_header_value"),
        r("ESC in header value", &with(b"X-A: a\x1bb\r\n"), 400, "bad_header_value"),
        r("DEL in header value", &with(b"X-A: a\x7fb\r\n"), 400, "bad_header_value"),
        r("NUL in callback header value", &with(b"callback_url_pre: http://127.0.0.1/\0\r\n"), 400, "bad_header_value"),
        // obs-fold.
        r("obs-fold with space", &with(b"X-A: a\r\n b\r\n"), 400, "obs_fold"),
        r("obs-fold with tab", &with(b"X-A: a\r\n\tb\r\n"), 400, "obs_fold"),
        r("obs-fold continuing Transfer-Encoding", b"PUT /app1/syntax/x.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n", 400, "obs_fold"),
        // Targets.
        r("NUL in target", b"PUT /app1/syn\0tax.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_target"),
        r("control byte in target", b"PUT /app1/syn\x01tax.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_target"),
        r("DEL in target", b"PUT /app1/syn\x7ftax.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_target"),
        r("tab in target", b"PUT /app1/syn\ttax.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_target"),
        r("raw invalid UTF-8 in target", b"PUT /app1/\xff\xfe.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_target"),
        r("space in target", b"PUT /app1/syn tax.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_request_line"),
        r("absolute-form, empty authority", b"PUT http:///app1/syntax/x.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_target"),
        r("absolute-form, ftp scheme", b"PUT ftp://node/app1/syntax/x.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_target"),
        r("absolute-form, file scheme", b"GET file:///etc/passwd HTTP/1.1\r\nHost: node\r\n\r\n", 400, "bad_target"),
        r("relative target", b"PUT app1/syntax/x.txt HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_target"),
        r("asterisk target on PUT", b"PUT * HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_target"),
        r("authority-form CONNECT", b"CONNECT 127.0.0.2:80 HTTP/1.1\r\nHost: 127.0.0.2:80\r\n\r\n", 400, "bad_target"),
        // Methods.
        r("method not a token", b"P@T /app1/syntax/x.txt HTTP/1.1\r\nHost: node\r\n\r\n", 400, "bad_method"),
        r("NUL in method", b"PU\0T /app1/syntax/x.txt HTTP/1.1\r\nHost: node\r\n\r\n", 400, "bad_method"),
        r("leading space before method", b" PUT /app1/syntax/x.txt HTTP/1.1\r\nHost: node\r\n\r\n", 400, "bad_request_line"),
    ]
}

#[rustfmt::skip]
fn version_host_cases() -> Vec<Case> {
    let c = "version and host";
    let r = |name: &str, raw: &[u8], status, code| Case::refused(c, name, raw.to_vec(), status, code);
    vec![
        r("HTTP/2.0", b"PUT /app1/v/x.txt HTTP/2.0\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 505, "version_not_supported"),
        r("HTTP/1.2", b"PUT /app1/v/x.txt HTTP/1.2\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 505, "version_not_supported"),
        r("HTTP/0.9 with version", b"GET /healthz HTTP/0.9\r\n\r\n", 505, "version_not_supported"),
        r("HTTP/0.9 simple request", b"GET /healthz\r\n\r\n", 400, "bad_request_line"),
        r("HTTP/3.0", b"GET /healthz HTTP/3.0\r\nHost: node\r\n\r\n", 505, "version_not_supported"),
        r("lowercase http/1.1", b"PUT /app1/v/x.txt http/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_request_line"),
        r("HTTP/1.10", b"GET /healthz HTTP/1.10\r\nHost: node\r\n\r\n", 400, "bad_request_line"),
        r("h2 prior-knowledge preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "version_not_supported"),
        r("missing Host in 1.1", b"PUT /app1/v/x.txt HTTP/1.1\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "missing_host"),
        r("two Host headers", b"PUT /app1/v/x.txt HTTP/1.1\r\nHost: node\r\nHost: other\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_host"),
        r("two identical Host headers", b"PUT /app1/v/x.txt HTTP/1.1\r\nHost: node\r\nHost: node\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_host"),
        r("Host with @", b"PUT /app1/v/x.txt HTTP/1.1\r\nHost: user@127.0.0.2\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_host"),
        r("Host with space", b"PUT /app1/v/x.txt HTTP/1.1\r\nHost: node other\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_host"),
        r("Host with slash", b"PUT /app1/v/x.txt HTTP/1.1\r\nHost: node/evil\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_host"),
    ]
}

#[rustfmt::skip]
fn limit_cases() -> Vec<Case> {
    let c = "limits";
    let r = |name: &str, raw: Vec<u8>, status, code| Case::refused(c, name, raw, status, code);
    let fields = |n: usize, len: usize| -> Vec<String> { (0..n).map(|i| format!("X-{i}: {}", "v".repeat(len))).collect() };
    let many_big = fields(60, 1200);
    let many = fields(101, 1);
    let long_value = format!("X-Long: {}", "v".repeat(70_000));
    let long_name = format!("X-{}: v", "n".repeat(70_000));
    // Contract defaults: max_head_bytes 65536, max_target_bytes 8192, max_headers 100.
    vec![
        r("overlong method (over the head limit)", bytes(&[&[b'A'; 70_000], b" /healthz HTTP/1.1\r\nHost: node\r\n\r\n"]), 431, "head_too_large"),
        // A long method within the head limit is still a token: the route refuses it.
        Case::refused(c, "2000-byte method", bytes(&[&[b'M'; 2000], b" /app1/limits/x.txt HTTP/1.1\r\nHost: node\r\nContent-Length: 0\r\n\r\n"]), 405, "method_not_allowed").keep_alive(),
        r("target over max_target_bytes", upload(&format!("/app1/{}", "a/".repeat(4600)), &[], b"hello"), 414, "target_too_long"),
        r("target overflowing the head", upload(&format!("/app1/{}", "a".repeat(70_000)), &[], b"hello"), 414, "target_too_long"),
        r("overlong header value", upload("/app1/limits/x.txt", &[&long_value], b"hello"), 431, "head_too_large"),
        r("overlong header name", upload("/app1/limits/x.txt", &[&long_name], b"hello"), 431, "head_too_large"),
        r("whole head over 64 KiB", upload("/app1/limits/x.txt", &many_big.iter().map(String::as_str).collect::<Vec<_>>(), b"hello"), 431, "head_too_large"),
        r("101 header fields", upload("/app1/limits/x.txt", &many.iter().map(String::as_str).collect::<Vec<_>>(), b"hello"), 431, "too_many_headers"),
        r("declared size over max_body_bytes", upload_framed("/app1/limits/big.bin", &["Content-Length: 21474836480"], b"hello"), 413, "too_large"),
    ]
}

#[rustfmt::skip]
fn upload_path_cases() -> Vec<Case> {
    let c = "upload path";
    let r = |name: &str, target: &str| Case::refused(c, name, upload(target, &[], b"hello"), 400, "bad_path");
    let over = format!("/app1/{}", "abcdefgh/".repeat(113) + "f.txt");
    assert!(over.len() > 1024 && over.len() < 8192);
    vec![
        r("..", "/app1/../x.txt"),
        r(".. at the end", "/app1/x/.."),
        r(".. climbing out", "/app1/a/../../../../etc/passwd"),
        r(".", "/app1/./x.txt"),
        r(". alone", "/app1/."),
        r("%2e%2e", "/app1/%2e%2e/x.txt"),
        r("%2E%2e", "/app1/%2E%2e/x.txt"),
        r(".%2e", "/app1/.%2e/x.txt"),
        r("%2e", "/app1/%2e/x.txt"),
        r("%2f", "/app1/a%2fb.txt"),
        r("%2F..%2F", "/app1/a%2F..%2F..%2Fb.txt"),
        r("%5c", "/app1/a%5cb.txt"),
        r("%5C..%5C", "/app1/..%5C..%5Cb.txt"),
        r("raw backslash", "/app1/a\\b.txt"),
        r("raw ..\\", "/app1/..\\..\\b.txt"),
        r("overlong UTF-8 %c0%ae", "/app1/%c0%ae%c0%ae/x.txt"),
        r("overlong UTF-8 %c0%af", "/app1/..%c0%af..%c0%afx.txt"),
        r("overlong UTF-8 %e0%80%ae", "/app1/%e0%80%ae%e0%80%ae/x.txt"),
        r("%00", "/app1/x.txt%00.jpg"),
        r("%0d%0a", "/app1/x%0d%0aSet-Cookie:a.txt"),
        r("%7f", "/app1/x%7f.txt"),
        r("bad escape %zz", "/app1/x%zz.txt"),
        r("truncated escape", "/app1/x.txt%4"),
        r("empty segment", "/app1//x.txt"),
        r("trailing slash", "/app1/dir/"),
        r("no file part (/app1/)", "/app1/"),
        r("invalid UTF-8 escape", "/app1/%ff.txt"),
        r("over 1024 bytes", &over),
        r("segment over 255 bytes", &format!("/app1/{}.txt", "s".repeat(300))),
        r("absolute-form with ..", "http://node/app1/../x.txt"),
    ]
}

#[rustfmt::skip]
fn download_path_cases() -> Vec<Case> {
    let c = "download path";
    // docs/protocol.md: "The path rules are the upload's (400 bad_path)"; a GET carries no
    // body, so the connection stays usable.
    let r = |name: &str, target: &str| Case::refused(c, name, get(target), 400, "bad_path").keep_alive();
    let over = format!("/app1/{}", "abcdefgh/".repeat(113) + "f.txt");
    vec![
        r("..", "/app1/../x.txt"),
        r(".. climbing out", "/app1/a/../../../../etc/passwd"),
        r(".", "/app1/./x.txt"),
        r("%2e%2e", "/app1/%2e%2e/%2e%2e/registry/conf"),
        r("%2E%2e", "/app1/%2E%2e/x.txt"),
        r("%2f", "/app1/..%2f..%2fregistry%2fconf"),
        r("%5c", "/app1/..%5c..%5cregistry"),
        r("raw backslash", "/app1/..\\..\\registry"),
        r("overlong UTF-8 %c0%ae", "/app1/%c0%ae%c0%ae/x.txt"),
        r("overlong UTF-8 %c0%af", "/app1/..%c0%af..%c0%afregistry"),
        r("%00", "/app1/x.txt%00"),
        r("empty segment", "/app1//x.txt"),
        r("trailing slash", "/app1/dir/"),
        r("over 1024 bytes", &over),
        // The appid segment is a directory name too: it must not climb out of files/ (before
        // the fix in storage/path.rs, this served data_dir/registry/conf, sled's config).
        r("appid segment ..", "/../registry/conf"),
        r("appid segment .. (tmp)", "/../tmp/x.part"),
        r("appid segment .", "/./app1/x.txt"),
        r("appid segment %2e%2e", "/%2e%2e/registry/conf"),
        r("appid segment with backslash", "/..\\/registry/conf"),
        r("absolute-form, appid segment ..", "http://node/../registry/conf"),
        Case::refused(c, "HEAD, appid segment ..", req(&["HEAD /../registry/conf HTTP/1.1", "Host: node"], b""), 400, "").keep_alive(),
        Case::refused(c, "unknown file", get("/app1/no/such/file.txt"), 404, "not_found").keep_alive(),
        Case::refused(c, "directory", get("/app1/expect"), 404, "not_found").keep_alive(),
    ]
}

#[rustfmt::skip]
fn appid_cases() -> Vec<Case> {
    let c = "appid";
    let r = |name: &str, raw: Vec<u8>| Case::refused(c, name, raw, 400, "bad_appid");
    let base = |appid_lines: &[&str], target: &str| {
        let start = format!("PUT {target} HTTP/1.1");
        let mut lines = vec![start.as_str(), "Host: node", "Expect: 100-continue"];
        lines.extend_from_slice(appid_lines);
        lines.push("Content-Length: 5");
        req(&lines, b"hello")
    };
    let id65 = "a".repeat(65);
    vec![
        r("appid differs from path", base(&["appid: app2"], "/app1/id/x.txt")),
        r("appid differs in case", base(&["appid: APP1"], "/app1/id/x.txt")),
        r("appid missing", base(&[], "/app1/id/x.txt")),
        r("appid repeated, same value", base(&["appid: app1", "appid: app1"], "/app1/id/x.txt")),
        r("appid repeated, differing", base(&["appid: app1", "appid: app2"], "/app1/id/x.txt")),
        r("appid empty", base(&["appid: "], "/app1/id/x.txt")),
        r("appid prefix of the segment", base(&["appid: app"], "/app1/id/x.txt")),
        r("appid ..", base(&["appid: .."], "/../id/x.txt")),
        r("appid %2e%2e", base(&["appid: %2e%2e"], "/%2e%2e/id/x.txt")),
        r("appid with a dot", base(&["appid: app.1"], "/app.1/id/x.txt")),
        r("appid with a backslash", base(&["appid: a\\b"], "/a\\b/id/x.txt")),
        r("appid of 65 bytes", base(&[&format!("appid: {id65}")], &format!("/{id65}/x.txt"))),
        Case::refused(c, "appid not registered, no callbacks", base(&["appid: ghost"], "/ghost/x.txt"), 404, "unknown_appid"),
    ]
}

#[rustfmt::skip]
fn router_cases() -> Vec<Case> {
    let c = "router";
    // Targets that are no file address at all (`/{appid}` alone, an empty first segment) go
    // through the upload's receive conditions in the contract's order: appid, then path.
    vec![
        Case::refused(c, "upload to /app1 (no file part)", upload("/app1", &[], b"hello"), 400, "bad_path"),
        Case::refused(c, "upload with an empty first segment", upload("//app1/x.txt", &[], b"hello"), 400, "bad_appid"),
        Case::refused(c, "upload to /", upload("/", &[], b"hello"), 400, "bad_appid"),
    ]
}

#[rustfmt::skip]
fn expect_cases() -> Vec<Case> {
    let c = "expect";
    let head = |expect_lines: &[&str], target: &str, version: &str| {
        let start = format!("PUT {target} {version}");
        let mut lines = vec![start.as_str(), "Host: node", "appid: app1"];
        lines.extend_from_slice(expect_lines);
        lines.push("Content-Length: 5");
        req(&lines, b"hello")
    };
    let h11 = "HTTP/1.1";
    vec![
        Case::refused(c, "no Expect", head(&[], "/app1/expect/none.txt", h11), 400, "expect_required"),
        Case::refused(c, "Expect in HTTP/1.0 is ignored", head(&["Expect: 100-continue"], "/app1/expect/h10.txt", "HTTP/1.0"), 400, "expect_required"),
        Case::refused(c, "Expect: something-else", head(&["Expect: something-else"], "/app1/expect/else.txt", h11), 417, "expectation_failed"),
        Case::refused(c, "Expect empty", head(&["Expect: "], "/app1/expect/empty.txt", h11), 417, "expectation_failed"),
        Case::refused(c, "Expect list 100-continue, foo", head(&["Expect: 100-continue, foo"], "/app1/expect/list.txt", h11), 417, "expectation_failed"),
        Case::refused(c, "two Expect fields, one unsupported", head(&["Expect: 100-continue", "Expect: foo"], "/app1/expect/two.txt", h11), 417, "expectation_failed"),
        Case::refused(c, "two Expect fields, unsupported first", head(&["Expect: foo", "Expect: 100-continue"], "/app1/expect/two2.txt", h11), 417, "expectation_failed"),
        Case::refused(c, "Expect 100-continue with parameter", head(&["Expect: 100-continue;x=1"], "/app1/expect/param.txt", h11), 417, "expectation_failed"),
        Case::stored(c, "Expect: 100-CONTINUE", head(&["Expect: 100-CONTINUE"], "/app1/expect/upper.txt", h11), "app1/expect/upper.txt", b"hello"),
        Case::stored(c, "two Expect: 100-continue fields", head(&["Expect: 100-continue", "Expect: 100-continue"], "/app1/expect/twice.txt", h11), "app1/expect/twice.txt", b"hello"),
        Case::refused(c, "target exists (overwrite = false)", head(&["Expect: 100-continue"], "/app1/expect/upper.txt", h11), 409, "exists"),
    ]
}

#[rustfmt::skip]
fn ssrf_cases(p: &Ports) -> Vec<Case> {
    let c = "callback SSRF";
    let urls = [
        ("file: scheme", "file:///etc/passwd".to_string()),
        ("gopher: scheme", format!("gopher://127.0.0.1:{}/_GET%20/", p.app)),
        ("ftp: scheme", format!("ftp://127.0.0.1:{}/", p.app)),
        ("127.0.0.2", format!("http://127.0.0.2:{}/cb", p.trap2)),
        ("[::ffff:127.0.0.2]", format!("http://[::ffff:127.0.0.2]:{}/cb", p.trap2)),
        ("[::1]", format!("http://[::1]:{}/cb", p.app)),
        ("127.0.0.1, port not allow-listed", format!("http://127.0.0.1:{}/cb", p.trap1)),
        ("decimal 2130706434", format!("http://2130706434:{}/cb", p.trap2)),
        ("octal 0177.0.0.2", format!("http://0177.0.0.2:{}/cb", p.trap2)),
        ("hex 0x7f.0.0.2", format!("http://0x7f.0.0.2:{}/cb", p.trap2)),
        ("hex 0x7f000002", format!("http://0x7f000002:{}/cb", p.trap2)),
        ("short 127.2", format!("http://127.2:{}/cb", p.trap2)),
        ("userinfo on an allowed host", format!("http://user:pw@127.0.0.1:{}/cb", p.app)),
        ("allowed host as userinfo", format!("http://127.0.0.1:{}@127.0.0.2:{}/cb", p.app, p.trap2)),
        ("link-local 169.254.169.254", "http://169.254.169.254/latest/meta-data/".to_string()),
        ("private 10.0.0.1", "http://10.0.0.1/cb".to_string()),
        ("private 192.168.1.1", "http://192.168.1.1/cb".to_string()),
        ("private 172.16.0.1", "http://172.16.0.1/cb".to_string()),
        ("CGNAT 100.64.0.1", "http://100.64.0.1/cb".to_string()),
        ("unspecified 0.0.0.0", format!("http://0.0.0.0:{}/cb", p.app)),
        ("IPv6-mapped 10.0.0.1", "http://[::ffff:10.0.0.1]/cb".to_string()),
        ("IPv6-mapped 192.168.1.1", "http://[::ffff:c0a8:101]/cb".to_string()),
        ("IPv6-mapped 169.254.169.254", "http://[::ffff:169.254.169.254]/cb".to_string()),
        ("IPv6 link-local", "http://[fe80::1]/cb".to_string()),
        ("IPv6 unique-local", "http://[fd00::1]/cb".to_string()),
        ("NAT64 of 127.0.0.2", format!("http://[64:ff9b::7f00:2]:{}/cb", p.trap2)),
        ("public literal not listed", "http://93.184.216.34/cb".to_string()),
        ("localhost not listed", format!("http://localhost:{}/cb", p.app)),
        ("relative URL", "/cb".to_string()),
        ("not a URL", "not a url".to_string()),
    ];
    let mut rows: Vec<Case> = urls.iter().map(|(what, url)| {
        let pre = format!("callback_url_pre: {url}");
        Case::refused(c, format!("pre {what}"), upload("/app1/ssrf/x.txt", &[&pre], b"hello"), 403, "callback_not_allowed")
    }).collect();
    // The post-callback header is checked on the head too, before the pre-callback is made.
    let ok_pre = format!("callback_url_pre: http://127.0.0.1:{}/carried/pre", p.app);
    let post_urls = [
        ("127.0.0.2", format!("http://127.0.0.2:{}/cb", p.trap2)),
        ("decimal 2130706434", format!("http://2130706434:{}/cb", p.trap2)),
        ("file: scheme", "file:///etc/passwd".to_string()),
        ("link-local 169.254.169.254", "http://169.254.169.254/".to_string()),
        ("userinfo", format!("http://127.0.0.1:{}@127.0.0.2:{}/cb", p.app, p.trap2)),
        ("127.0.0.1, port not allow-listed", format!("http://127.0.0.1:{}/cb", p.trap1)),
    ];
    rows.extend(post_urls.iter().map(|(what, url)| {
        let post = format!("callback_url_post: {url}");
        Case::refused(c, format!("post {what}"), upload("/app1/ssrf/y.txt", &[&ok_pre, &post], b"hello"), 403, "callback_not_allowed")
    }));
    // An unregistered appid whose only callback is refused: 404 (docs/protocol.md).
    let ghost = |url: String| {
        let pre = format!("callback_url_pre: {url}");
        req(&["PUT /ghost/x.txt HTTP/1.1", "Host: node", "Expect: 100-continue", "appid: ghost", &pre, "Content-Length: 5"], b"hello")
    };
    rows.push(Case::refused(c, "unregistered app, pre 127.0.0.2", ghost(format!("http://127.0.0.2:{}/cb", p.trap2)), 404, "unknown_appid"));
    rows.push(Case::refused(c, "unregistered app, pre file:", ghost("file:///etc/passwd".into()), 404, "unknown_appid"));
    rows
}

#[rustfmt::skip]
fn redirect_cases(p: &Ports) -> Vec<Case> {
    let c = "callback redirect";
    let mut rows: Vec<Case> = [301, 302, 303, 307, 308].iter().map(|status| {
        let pre = format!("callback_url_pre: http://127.0.0.1:{}/r{status}", p.redirect);
        Case::refused(c, format!("pre-callback answers {status} to 127.0.0.2"), upload(&format!("/app1/redirect/{status}.txt"), &[&pre], b"hello"), 502, "callback_failed")
            .redirect_calls(1)
    }).collect();
    // An unregistered app relying on the carried URL alone is treated the same.
    let pre = format!("callback_url_pre: http://127.0.0.1:{}/r307", p.redirect);
    let raw = req(&["PUT /free/redirect.txt HTTP/1.1", "Host: node", "Expect: 100-continue", "appid: free", &pre, "Content-Length: 5"], b"hello");
    rows.push(Case::refused(c, "unregistered app, pre-callback answers 307", raw, 502, "callback_failed").redirect_calls(1));
    rows
}

#[rustfmt::skip]
fn order_cases(p: &Ports) -> Vec<Case> {
    let c = "check order";
    let evil = format!("callback_url_pre: http://127.0.0.2:{}/cb", p.trap2);
    vec![
        // A malformed head beats everything.
        Case::refused(c, "bad CL + no Expect + bad appid", req(&["PUT /../x HTTP/1.1", "Host: node", "Content-Length: -1"], b""), 400, "bad_content_length"),
        // Expect before appid, path and callbacks.
        Case::refused(c, "no Expect + bad appid + bad path", req(&["PUT /../x HTTP/1.1", "Host: node", "appid: x", &evil, "Content-Length: 5"], b"hello"), 400, "expect_required"),
        // appid before path.
        Case::refused(c, "bad appid + bad path", req(&["PUT /app1/../x HTTP/1.1", "Host: node", "Expect: 100-continue", "appid: app2", "Content-Length: 5"], b"hello"), 400, "bad_appid"),
        // Path before callbacks.
        Case::refused(c, "bad path + refused callback", upload("/app1/%2e%2e/x.txt", &[&evil], b"hello"), 400, "bad_path"),
        // Callbacks before size.
        Case::refused(c, "refused callback + too large", upload_framed("/app1/order/x.txt", &[&evil, "Content-Length: 99999999999999"], b""), 403, "callback_not_allowed"),
    ]
}

#[rustfmt::skip]
fn control_cases(p: &Ports) -> Vec<Case> {
    let c = "controls";
    // Requests that must work, so the refusals above refuse the shape, not everything.
    let pre = format!("callback_url_pre: http://127.0.0.1:{}/carried/pre", p.app);
    let post = format!("callback_url_post: http://127.0.0.1:{}/carried/post", p.app);
    let free = req(&["PUT /free/ok.txt HTTP/1.1", "Host: node", "Expect: 100-continue", "appid: free", &pre, &post, "Content-Length: 5"], b"hello");
    vec![
        Case::stored(c, "plain upload", upload("/app1/ok/plain.txt", &[], b"hello"), "app1/ok/plain.txt", b"hello"),
        Case::stored(c, "chunked upload", chunked("/app1/ok/chunked.txt", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), "app1/ok/chunked.txt", b"hello world"),
        Case::stored(c, "TE CHUNKED in capitals", upload_framed("/app1/ok/caps.txt", &["Transfer-Encoding: CHUNKED"], b"3\r\nabc\r\n0\r\n\r\n"), "app1/ok/caps.txt", b"abc"),
        Case::stored(c, "identical repeated CL", upload_framed("/app1/ok/twocl.txt", &["Content-Length: 5", "Content-Length: 5"], b"hello"), "app1/ok/twocl.txt", b"hello"),
        Case::stored(c, "absolute-form target", upload("http://node/app1/ok/absolute.txt", &[], b"hello"), "app1/ok/absolute.txt", b"hello"),
        Case::stored(c, "double-encoded dots stay a name", upload("/app1/%252e%252e/x.txt", &[], b"hello"), "app1/%2e%2e/x.txt", b"hello"),
        Case::stored(c, "allowed carried callbacks", upload("/app1/ok/carried.txt", &[&pre, &post], b"hello"), "app1/ok/carried.txt", b"hello"),
        Case::stored(c, "unregistered app with allowed carried callbacks", free, "free/ok.txt", b"hello"),
        Case::served(c, "download of a stored file", get("/app1/ok/plain.txt"), 200),
    ]
}

// ---------------------------------------------------------------------------------------------
// Running a row.

/// Every path under `dir` except the sled registry, with file contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            // The node's own state (the app registry, the outbox log), not stored files.
            if rel == Path::new("registry") || rel == Path::new("outbox") {
                continue;
            }
            if p.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// What the data dir must look like after `case`, given `before`.
fn expected_after(
    before: &BTreeMap<PathBuf, Option<Vec<u8>>>,
    case: &Case,
) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut want = before.clone();
    if let Some((rel, body)) = &case.stores {
        let file = Path::new("files").join(rel);
        let mut dir = file.parent();
        while let Some(d) = dir {
            if d.as_os_str().is_empty() || d == Path::new("files") {
                break;
            }
            want.entry(d.to_path_buf()).or_insert(None);
            dir = d.parent();
        }
        want.insert(file, Some(body.clone()));
    }
    want
}

struct Ctx<'a> {
    dial: &'a Dial,
    data_dir: &'a Path,
    app: &'a CallbackApp,
    redirect: &'a RawServer,
}

/// Reads the head of a response to `HEAD` (its `Content-Length` announces no body bytes).
fn read_head<S: Read + ?Sized>(s: &mut S, buf: &mut Vec<u8>) -> Option<Wire> {
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = support::find(buf, b"\r\n\r\n") {
            break end;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    buf.drain(..end + 4);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Wire {
        status,
        headers,
        body: Vec::new(),
    })
}

fn healthz_on<S: Read + Write + ?Sized>(s: &mut S, buf: &mut Vec<u8>) -> Result<(), String> {
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n")
        .map_err(|e| format!("healthz write: {e}"))?;
    match read_response(s, buf) {
        Some(w) if w.status == 200 => Ok(()),
        Some(w) => Err(format!("healthz answered {}", w.status)),
        None => Err(format!("healthz: no answer ({})", support::last_read_end())),
    }
}

/// A fresh connection through `dial` with the battery's bounded waits.
fn open(dial: &Dial) -> Box<dyn Stream> {
    let s = dial.connect();
    s.tcp().set_read_timeout(Some(WAIT)).unwrap();
    s.tcp().set_write_timeout(Some(WAIT)).unwrap();
    s
}

fn run(ctx: &Ctx, case: &Case) -> Vec<String> {
    let mut errs = Vec::new();
    let before = snapshot(ctx.data_dir);
    let calls_before = ctx.app.received().len();
    let redirects_before = ctx.redirect.hits();

    let mut conn = open(ctx.dial);
    let s = &mut *conn;
    // The node may answer and stop reading before a large request is written: a failed write
    // is not an error as long as the answer arrives.
    let _ = s.write_all(&case.raw);
    let mut buf = Vec::new();
    let mut interim = false;
    let head_only = case.raw.starts_with(b"HEAD ");
    let wire: Option<Wire> = loop {
        let next = if head_only {
            read_head(s, &mut buf)
        } else {
            read_response(s, &mut buf)
        };
        match next {
            Some(w) if w.status == 100 => interim = true,
            other => break other,
        }
    };
    let Some(wire) = wire else {
        errs.push(format!("no final answer ({})", support::last_read_end()));
        return errs;
    };
    if wire.status != case.status {
        errs.push(format!(
            "status {} (want {}): {}",
            wire.status,
            case.status,
            String::from_utf8_lossy(&wire.body)
        ));
    }
    match case.code {
        Some(code) if !code.is_empty() => {
            let json: serde_json::Value = serde_json::from_slice(&wire.body).unwrap_or_default();
            let got = json["error"].as_str().unwrap_or("<none>");
            if got != code {
                errs.push(format!("error {got:?} (want {code:?})"));
            }
            if json["success"] != "false" {
                errs.push(format!("success {:?} (want \"false\")", json["success"]));
            }
        }
        Some(_) => {}
        None => {
            let json: serde_json::Value = serde_json::from_slice(&wire.body).unwrap_or_default();
            if json["success"] != "true" {
                errs.push(format!("success {:?} (want \"true\")", json["success"]));
            }
        }
    }
    if interim != case.interim {
        errs.push(format!(
            "100 Continue sent: {interim} (want {})",
            case.interim
        ));
    }
    let says_close = wire
        .header("Connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    if case.close {
        if !says_close {
            errs.push("no Connection: close".into());
        }
        if !closed_by_server(s, WAIT) {
            errs.push("the node kept the connection open".into());
        }
    } else if says_close {
        errs.push("unexpected Connection: close".into());
    } else if let Err(e) = healthz_on(s, &mut buf) {
        errs.push(format!("connection not reusable: {e}"));
    }
    drop(conn);

    // Storage: exactly the expected change (temporary files are removed right after the
    // answer; allow a moment for that).
    let want = expected_after(&before, case);
    let deadline = Instant::now() + WAIT;
    let mut after = snapshot(ctx.data_dir);
    while after != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        after = snapshot(ctx.data_dir);
    }
    if after != want {
        let added: Vec<_> = after.keys().filter(|k| !want.contains_key(*k)).collect();
        let missing: Vec<_> = want.keys().filter(|k| !after.contains_key(*k)).collect();
        errs.push(format!(
            "data dir changed: added {added:?}, missing {missing:?}, or contents differ"
        ));
    }

    let calls = ctx.app.received().len() - calls_before;
    if calls != case.app_calls {
        errs.push(format!("{calls} callbacks (want {})", case.app_calls));
    }
    let redirects = ctx.redirect.hits() - redirects_before;
    if redirects != case.redirect_calls {
        errs.push(format!(
            "{redirects} calls to the redirecting app (want {})",
            case.redirect_calls
        ));
    }

    // The node still serves a fresh connection on the same transport.
    if let Err(e) = healthz_on(&mut *open(ctx.dial), &mut Vec::new()) {
        errs.push(format!("node stopped serving: {e}"));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// One battery: the same node, application, traps and rows for either transport.

/// How the rows reach the node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Plain,
    Tls,
}

/// Everything a battery talks to, started and registered the same way for both transports: a
/// node with both listeners, the callback app, the two traps and the redirecting app.
struct Bench {
    node: upgate::node::Node,
    data_dir: PathBuf,
    cert_dir: PathBuf,
    /// The node's self-signed certificate: the only root the TLS client trusts.
    ca: PathBuf,
    app: CallbackApp,
    trap1: RawServer,
    trap2: RawServer,
    redirect_app: RawServer,
}

impl Bench {
    fn start() -> Bench {
        let app = CallbackApp::accepting();
        let trap1 = RawServer::start("127.0.0.1", trap());
        let trap2 = RawServer::start("127.0.0.2", trap());
        let redirect_app = RawServer::start("127.0.0.1", redirect_to(trap2.addr.port()));
        let base = support::test_config();
        let cert_dir = base.data_dir.with_extension("certs");
        let (ca, key) = make_cert(&cert_dir, "node");
        let config = Config {
            callback_allow: vec![app.addr.to_string(), redirect_app.addr.to_string()],
            callback_timeout_ms: 2000,
            tls_listen: Some("127.0.0.1:0".parse().unwrap()),
            tls_cert: Some(ca.clone()),
            tls_key: Some(key),
            ..base
        };
        let data_dir = config.data_dir.clone();
        let node = support::start(config);
        // Set-up, not under test: registration over the plain listener.
        let reg = register_form(
            node.local_addr(),
            APPID,
            &app.url("/reg/pre"),
            &app.url("/reg/post"),
        );
        assert_eq!(reg.status, 200, "{:?}", String::from_utf8_lossy(&reg.body));
        Bench {
            node,
            data_dir,
            cert_dir,
            ca,
            app,
            trap1,
            trap2,
            redirect_app,
        }
    }

    fn ports(&self) -> Ports {
        Ports {
            app: self.app.addr.port(),
            trap1: self.trap1.addr.port(),
            trap2: self.trap2.addr.port(),
            redirect: self.redirect_app.addr.port(),
        }
    }

    fn dial(&self, transport: Transport) -> Dial {
        match transport {
            Transport::Plain => Dial::Plain(self.node.local_addr()),
            Transport::Tls => Dial::Tls(
                self.node.tls_addr().expect("a TLS listener"),
                support::tls::client_config(&self.ca),
            ),
        }
    }

    fn stop(self) {
        self.node.shutdown();
        let _ = std::fs::remove_dir_all(&self.data_dir);
        let _ = std::fs::remove_dir_all(&self.cert_dir);
    }
}

/// Every row, in order (some depend on earlier ones: a 409 on a file a control row stored, a
/// download of it).
fn all_cases(ports: &Ports) -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(smuggling_cases());
    cases.extend(chunk_cases());
    cases.extend(head_syntax_cases());
    cases.extend(version_host_cases());
    cases.extend(limit_cases());
    cases.extend(appid_cases());
    cases.extend(router_cases());
    cases.extend(upload_path_cases());
    cases.extend(expect_cases());
    cases.extend(download_path_cases());
    cases.extend(ssrf_cases(ports));
    cases.extend(redirect_cases(ports));
    cases.extend(order_cases(ports));
    cases.extend(control_cases(ports));
    cases
}

/// Starts a [`Bench`], sends every row through `transport`, checks the traps, and prints one
/// line of totals.
fn battery(transport: Transport) {
    let started = Instant::now();
    let bench = Bench::start();
    let dial = bench.dial(transport);
    let cases = all_cases(&bench.ports());

    let ctx = Ctx {
        dial: &dial,
        data_dir: &bench.data_dir,
        app: &bench.app,
        redirect: &bench.redirect_app,
    };
    let mut failures = Vec::new();
    for case in &cases {
        for e in run(&ctx, case) {
            failures.push(format!("[{}] {}: {e}", case.category, case.name));
        }
    }

    // Nothing ever reached the traps; a late connection would show here too.
    std::thread::sleep(Duration::from_millis(100));
    if bench.trap1.hits() != 0 {
        failures.push(format!(
            "127.0.0.1 trap (not allow-listed) got {} connections",
            bench.trap1.hits()
        ));
    }
    if bench.trap2.hits() != 0 {
        failures.push(format!(
            "127.0.0.2 trap got {} connections",
            bench.trap2.hits()
        ));
    }
    let mut names = BTreeSet::new();
    for case in &cases {
        assert!(
            names.insert((case.category, case.name.as_str())),
            "duplicate row {:?}",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures over {}:\n{}",
        failures.len(),
        dial.name(),
        failures.join("\n")
    );
    assert!(cases.len() >= 100, "only {} rows", cases.len());

    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut by_category: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &cases {
        *by_status.entry(case.status).or_default() += 1;
        *by_category.entry(case.category).or_default() += 1;
    }
    let statuses: Vec<String> = by_status.iter().map(|(s, n)| format!("{s}×{n}")).collect();
    let categories: Vec<String> = by_category
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    println!(
        "adversarial battery ({}): {} cases sent, by expected status {}; by category {}; 0 failures, 0 stray files, 0 connections to trap listeners, node healthy after every case ({:.1} s)",
        dial.name(),
        cases.len(),
        statuses.join(" "),
        categories.join(", "),
        started.elapsed().as_secs_f64()
    );
    bench.stop();
}

#[test]
fn adversarial_battery() {
    battery(Transport::Plain);
}

#[test]
fn adversarial_battery_over_tls() {
    battery(Transport::Tls);
}
