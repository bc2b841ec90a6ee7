use super::*;
use crate::encode::CONTINUE;
use ProtocolError::*;

const DATE: &str = "Thu, 01 Jan 2026 00:00:00 GMT";

/// An event with its payload reduced to what a test compares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Head(&'static str, &'static str),
    Data(&'static str),
    End,
    Need,
    Paused,
    Closed,
    Err(ProtocolError),
}

/// Pulls events until the connection needs the caller (NeedData, Paused, Closed or an error).
fn pull(c: &mut H1Conn) -> Vec<Ev> {
    let leak = |b: &[u8]| -> &'static str {
        Box::leak(String::from_utf8_lossy(b).into_owned().into_boxed_str())
    };
    let mut out = Vec::new();
    for _ in 0..1000 {
        let ev = match c.next_event() {
            Ok(Event::Head(h)) => Ev::Head(leak(h.method_str().as_bytes()), leak(h.target())),
            Ok(Event::Data(d)) => Ev::Data(leak(&d)),
            Ok(Event::EndOfMessage) => Ev::End,
            Ok(Event::NeedData) => Ev::Need,
            Ok(Event::Paused) => Ev::Paused,
            Ok(Event::Closed) => Ev::Closed,
            Err(e) => Ev::Err(e),
        };
        let stop = matches!(ev, Ev::Need | Ev::Paused | Ev::Closed | Ev::Err(_));
        out.push(ev);
        if stop {
            return out;
        }
    }
    panic!("no pause after 1000 events: {out:?}");
}

fn conn_with(bytes: &[u8]) -> H1Conn {
    let mut c = H1Conn::new(Limits::default());
    c.receive(bytes);
    c
}

fn text(out: &Outgoing) -> String {
    String::from_utf8_lossy(&out.bytes).into_owned()
}

fn json() -> Response {
    Response::json(200, &br#"{"status":"ok"}"#[..])
}

use Ev::{Closed as C, End as E, Need as N, Paused as P};

#[test]
fn get_then_keep_alive() {
    let mut c = conn_with(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/healthz"), P]);
    assert_eq!(pull(&mut c), [P], "stays paused until the response");
    assert!(!c.is_closed());
    let out = c.respond(&json(), DATE).unwrap();
    assert_eq!(out.close, CloseMode::KeepAlive);
    assert!(!out.send_body);
    assert_eq!(out.framing, BodyFraming::Length);
    assert_eq!(
        text(&out),
        format!("HTTP/1.1 200 OK\r\nServer: upgate\r\nDate: {DATE}\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{{\"status\":\"ok\"}}")
    );
    assert_eq!(pull(&mut c), [N]);
    c.receive_eof();
    assert_eq!(pull(&mut c), [C]);
    assert!(c.is_closed());
}

/// The patent's flow: the head pauses the connection, the body waits for the decision, the
/// interim 100 comes only from `accept_body`, then Data…, EndOfMessage, the response, and the
/// next pipelined head.
#[test]
fn upload_with_expect_then_pipelined_head() {
    let mut c = conn_with(
        b"POST /app1/f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\nhello",
    );
    assert_eq!(pull(&mut c), [Ev::Head("POST", "/app1/f"), P]);
    assert_eq!(pull(&mut c), [P], "no body before the decision");
    assert_eq!(c.buffered(), 5, "early body bytes stay buffered");
    assert!(!c.in_request(), "waiting on the caller, not on the peer");
    assert_eq!(c.body_remaining(), None);
    assert_eq!(c.accept_body(), Ok(Some(CONTINUE)));
    assert!(c.in_request());
    assert_eq!(c.body_remaining(), Some(10));
    assert_eq!(pull(&mut c), [Ev::Data("hello"), N]);
    assert_eq!(c.body_remaining(), Some(5));
    c.receive(b"worldGET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(pull(&mut c), [Ev::Data("world"), E, P]);
    assert_eq!(pull(&mut c), [P], "the next head waits for this response");
    let out = c.respond(&Response::new(201), DATE).unwrap();
    assert_eq!(out.close, CloseMode::KeepAlive);
    assert!(!text(&out).contains("100 Continue"));
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/next"), P]);
    assert_eq!(
        c.respond(&Response::new(404), DATE).unwrap().close,
        CloseMode::KeepAlive
    );
    assert_eq!(pull(&mut c), [N]);
}

#[test]
fn pipelined_requests_in_one_read() {
    let mut c = conn_with(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\
          PUT /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\nT: 1\r\n\r\n\
          GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\n\r\n",
    );
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/1"), P]);
    assert_eq!(
        c.respond(&json(), DATE).unwrap().close,
        CloseMode::KeepAlive
    );
    assert_eq!(pull(&mut c), [Ev::Head("POST", "/2"), P]);
    assert_eq!(c.accept_body(), Ok(None), "no Expect: no 100");
    assert_eq!(pull(&mut c), [Ev::Data("abc"), E, P]);
    assert_eq!(
        c.respond(&json(), DATE).unwrap().close,
        CloseMode::KeepAlive
    );
    assert_eq!(pull(&mut c), [Ev::Head("PUT", "/3"), P]);
    assert_eq!(c.accept_body(), Ok(None));
    assert_eq!(pull(&mut c), [Ev::Data("xy"), E, P]);
    assert_eq!(
        c.respond(&json(), DATE).unwrap().close,
        CloseMode::KeepAlive
    );
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/4"), P]);
    let out = c.respond(&json(), DATE).unwrap();
    assert_eq!(out.close, CloseMode::Close);
    assert!(text(&out).contains("\r\nConnection: close\r\n"));
    assert_eq!(pull(&mut c), [C], "nothing after Connection: close is read");
    assert!(c.is_closed());
}

#[test]
fn head_response_omits_the_body() {
    let mut c = conn_with(b"HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(pull(&mut c), [Ev::Head("HEAD", "/healthz"), P]);
    let out = c.respond(&json(), DATE).unwrap();
    assert!(
        text(&out).ends_with("Content-Length: 15\r\n\r\n"),
        "{}",
        text(&out)
    );
    assert!(!out.send_body);
    assert_eq!(out.close, CloseMode::KeepAlive);

    // A streamed body is not sent either, and the connection is free at once.
    c.receive(b"HEAD /f HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(pull(&mut c), [Ev::Head("HEAD", "/f"), P]);
    let sized = Response {
        status: 200,
        headers: vec![],
        body: ResponseBody::Sized(1000),
    };
    let out = c.respond(&sized, DATE).unwrap();
    assert!(text(&out).ends_with("Content-Length: 1000\r\n\r\n"));
    assert!(!out.send_body);
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/g"), P]);
    // The next GET gets its body: HEAD-ness does not leak into the next exchange.
    assert!(text(&c.respond(&json(), DATE).unwrap()).ends_with("{\"status\":\"ok\"}"));
}

#[test]
fn http10_keep_alive_is_echoed() {
    let mut c =
        conn_with(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n");
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/"), P]);
    let out = c.respond(&json(), DATE).unwrap();
    assert_eq!(out.close, CloseMode::KeepAlive);
    assert!(text(&out).contains("\r\nConnection: keep-alive\r\n"));
    assert!(text(&out).starts_with("HTTP/1.1 200 OK\r\n"));
    // Without keep-alive, an HTTP/1.0 exchange closes.
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/2"), P]);
    let out = c.respond(&json(), DATE).unwrap();
    assert_eq!(out.close, CloseMode::Close);
    assert!(text(&out).contains("\r\nConnection: close\r\n"));
    assert!(!text(&out).contains("keep-alive"));
    assert_eq!(pull(&mut c), [C]);
}

#[test]
fn http11_keep_alive_is_not_echoed() {
    let mut c = conn_with(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/"), P]);
    let out = c.respond(&json(), DATE).unwrap();
    assert_eq!(out.close, CloseMode::KeepAlive);
    assert!(!text(&out).contains("Connection:"));
}

/// Responding without reading a non-empty body: `Connection: close`, Linger, Closed.
#[test]
fn respond_before_accept_body_lingers() {
    let cases: &[(&str, &[u8])] = &[
        (
            "length body",
            b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        ),
        (
            "length body not arrived",
            b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
        ),
        (
            "expect, body withheld",
            b"PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        ),
        (
            "chunked body",
            b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "http/1.0 keep-alive body",
            b"POST /u HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
        ),
    ];
    for (name, raw) in cases {
        let mut c = conn_with(raw);
        assert!(matches!(pull(&mut c)[..], [Ev::Head(..), P]), "{name}");
        let out = c.respond(&Response::json(403, "{}"), DATE).unwrap();
        assert_eq!(out.close, CloseMode::Linger, "{name}");
        assert!(text(&out).contains("\r\nConnection: close\r\n"), "{name}");
        assert!(!text(&out).contains("100 Continue"), "{name}");
        assert_eq!(pull(&mut c), [C], "{name}");
        assert!(c.is_closed(), "{name}");
        assert_eq!(
            c.accept_body(),
            Err(WrongState {
                op: "accept_body",
                state: "Closed"
            }),
            "{name}"
        );
    }
}

/// An empty body is read in full by definition: refusing it keeps the connection.
#[test]
fn respond_before_accept_with_empty_body_keeps_alive() {
    let mut c = conn_with(b"POST /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\nGET /n HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(pull(&mut c), [Ev::Head("POST", "/u"), P]);
    let out = c.respond(&Response::json(403, "{}"), DATE).unwrap();
    assert_eq!(out.close, CloseMode::KeepAlive);
    assert!(!text(&out).contains("Connection:"));
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/n"), P]);
}

#[test]
fn respond_mid_body_lingers() {
    let mut c = conn_with(b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello");
    assert_eq!(pull(&mut c), [Ev::Head("POST", "/u"), P]);
    assert_eq!(c.accept_body(), Ok(None));
    assert_eq!(pull(&mut c), [Ev::Data("hello"), N]);
    let out = c.respond(&Response::json(413, "{}"), DATE).unwrap();
    assert_eq!(out.close, CloseMode::Linger);
    assert!(text(&out).contains("\r\nConnection: close\r\n"));
    assert_eq!(pull(&mut c), [C]);
}

/// All of a body decoded but EndOfMessage not yet pulled: nothing is left in flight.
#[test]
fn respond_after_last_data_keeps_alive() {
    let mut c = conn_with(b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(pull(&mut c)[0], Ev::Head("POST", "/u"));
    c.accept_body().unwrap();
    assert_eq!(
        c.next_event(),
        Ok(Event::Data(Bytes::from_static(b"hello")))
    );
    assert_eq!(
        c.respond(&json(), DATE).unwrap().close,
        CloseMode::KeepAlive
    );
    assert_eq!(pull(&mut c), [N]);
}

#[test]
fn accept_body_returns_continue_only_when_expected_and_non_empty() {
    type Case = (&'static str, &'static [u8], Option<&'static [u8]>);
    let cases: &[Case] = &[
        ("expect and length", b"PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", Some(CONTINUE)),
        ("expect and chunked", b"PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n", Some(CONTINUE)),
        ("expect, empty body", b"PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n", None),
        ("expect, no body fields", b"PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", None),
        ("no expect", b"PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n", None),
        ("http/1.0 expect is ignored", b"PUT /u HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", None),
        ("unsupported expectation", b"PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n", None),
    ];
    for (name, raw, want) in cases {
        let mut c = conn_with(raw);
        assert!(matches!(pull(&mut c)[..], [Ev::Head(..), P]), "{name}");
        assert_eq!(c.accept_body(), Ok(*want), "{name}");
        assert_eq!(
            c.accept_body(),
            Err(WrongState {
                op: "accept_body",
                state: "Body"
            }),
            "{name}: a second accept_body never repeats the 100"
        );
    }
}

/// The interim 100 is not carried over to the next request on the connection.
#[test]
fn expect_does_not_leak_into_the_next_request() {
    let mut c = conn_with(
        b"PUT /1 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx\
          PUT /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\ny",
    );
    assert_eq!(pull(&mut c), [Ev::Head("PUT", "/1"), P]);
    assert_eq!(c.accept_body(), Ok(Some(CONTINUE)));
    assert_eq!(pull(&mut c), [Ev::Data("x"), E, P]);
    c.respond(&Response::new(201), DATE).unwrap();
    assert_eq!(pull(&mut c), [Ev::Head("PUT", "/2"), P]);
    assert_eq!(c.accept_body(), Ok(None));
}

#[test]
fn wrong_state_for_misuse() {
    type Setup = fn() -> H1Conn;
    type Op = fn(&mut H1Conn) -> Result<(), WrongState>;
    let accept: Op = |c| c.accept_body().map(drop);
    let respond: Op = |c| c.respond(&json(), DATE).map(drop);
    let finish: Op = |c| c.finish_body();
    fn fresh() -> H1Conn {
        H1Conn::new(Limits::default())
    }
    fn head_read() -> H1Conn {
        let mut c = conn_with(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx");
        pull(&mut c);
        c
    }
    fn body_done() -> H1Conn {
        let mut c = head_read();
        c.accept_body().unwrap();
        assert_eq!(pull(&mut c), [Ev::Data("x"), E, P]);
        c
    }
    fn responded() -> H1Conn {
        let mut c = body_done();
        c.respond(&json(), DATE).unwrap();
        c
    }
    fn lingered() -> H1Conn {
        let mut c = head_read();
        c.respond(&json(), DATE).unwrap();
        c
    }
    fn streaming() -> H1Conn {
        let mut c = body_done();
        let sized = Response {
            status: 200,
            headers: vec![],
            body: ResponseBody::Sized(3),
        };
        assert!(c.respond(&sized, DATE).unwrap().send_body);
        c
    }
    let cases: &[(&str, Setup, Op, &str, &str)] = &[
        (
            "accept_body before any head",
            fresh,
            accept,
            "accept_body",
            "Idle",
        ),
        (
            "accept_body after the end",
            body_done,
            accept,
            "accept_body",
            "Done",
        ),
        (
            "accept_body after the response",
            responded,
            accept,
            "accept_body",
            "Done",
        ),
        (
            "accept_body after a lingering response",
            lingered,
            accept,
            "accept_body",
            "Closed",
        ),
        ("respond twice", responded, respond, "respond", "Done"),
        (
            "respond after lingering",
            lingered,
            respond,
            "respond",
            "Closed",
        ),
        (
            "respond while streaming",
            streaming,
            respond,
            "respond",
            "Done",
        ),
        (
            "finish_body with nothing streamed",
            body_done,
            finish,
            "finish_body",
            "Done",
        ),
        (
            "finish_body after a full response",
            responded,
            finish,
            "finish_body",
            "Done",
        ),
        (
            "finish_body before any head",
            fresh,
            finish,
            "finish_body",
            "Idle",
        ),
    ];
    for (name, setup, op, want_op, want_state) in cases {
        let mut c = setup();
        let before = format!("{:?}", c);
        assert_eq!(
            op(&mut c),
            Err(WrongState {
                op: want_op,
                state: want_state
            }),
            "{name}"
        );
        assert_eq!(
            format!("{:?}", c),
            before,
            "{name}: a refused call changes nothing"
        );
    }
}

#[test]
fn streamed_body_holds_the_next_request() {
    let mut c = conn_with(b"GET /f HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/f"), P]);
    let sized = Response {
        status: 200,
        headers: vec![],
        body: ResponseBody::Sized(3),
    };
    let out = c.respond(&sized, DATE).unwrap();
    assert!(out.send_body);
    assert_eq!(out.close, CloseMode::KeepAlive);
    assert_eq!(pull(&mut c), [P], "the next head waits for the body");
    c.finish_body().unwrap();
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/g"), P]);
}

#[test]
fn chunked_response_framing_by_version() {
    let chunked = Response {
        status: 200,
        headers: vec![],
        body: ResponseBody::Chunked,
    };
    let mut c = conn_with(b"GET /f HTTP/1.1\r\nHost: a\r\n\r\n");
    pull(&mut c);
    let out = c.respond(&chunked, DATE).unwrap();
    assert_eq!(
        (out.framing, out.close, out.send_body),
        (BodyFraming::Chunked, CloseMode::KeepAlive, true)
    );
    assert!(text(&out).contains("\r\nTransfer-Encoding: chunked\r\n"));
    assert_eq!(&c.encode_chunk(b"abc", out.framing)[..], b"3\r\nabc\r\n");
    c.finish_body().unwrap();

    // HTTP/1.0 cannot read chunked: the body is delimited by closing, even with keep-alive.
    let mut c = conn_with(b"GET /f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    pull(&mut c);
    let out = c.respond(&chunked, DATE).unwrap();
    assert_eq!(
        (out.framing, out.close, out.send_body),
        (BodyFraming::Close, CloseMode::Close, true)
    );
    assert!(!text(&out).contains("Transfer-Encoding"));
    assert!(text(&out).contains("\r\nConnection: close\r\n"));
    assert_eq!(&c.encode_chunk(b"abc", out.framing)[..], b"abc");
}

#[test]
fn disable_keep_alive_closes_after_the_exchange() {
    let mut c = conn_with(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    pull(&mut c);
    c.disable_keep_alive();
    let out = c.respond(&json(), DATE).unwrap();
    assert_eq!(out.close, CloseMode::Close);
    assert!(text(&out).contains("\r\nConnection: close\r\n"));
    assert_eq!(pull(&mut c), [C]);
}

/// 408 on a slow head, or any answer before a head: always closes, lingering.
#[test]
fn unsolicited_response_lingers() {
    for partial in [&b""[..], b"GET / HT"] {
        let mut c = conn_with(partial);
        assert_eq!(pull(&mut c), [N]);
        assert_eq!(c.in_request(), !partial.is_empty());
        let out = c.respond(&Response::json(408, "{}"), DATE).unwrap();
        assert_eq!(out.close, CloseMode::Linger);
        assert!(text(&out).starts_with("HTTP/1.1 408 Request Timeout\r\n"));
        assert!(text(&out).contains("\r\nConnection: close\r\n"));
        assert_eq!(pull(&mut c), [C]);
    }
}

#[test]
fn blank_lines_before_a_request_are_ignored() {
    let mut c = conn_with(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/"), P]);
    c.respond(&json(), DATE).unwrap();
    c.receive(b"\r\n");
    assert_eq!(pull(&mut c), [N]);
    assert_eq!(c.buffered(), 0);
    assert!(!c.in_request(), "blank lines alone do not start a request");
    c.receive(b"\n");
    assert_eq!(
        pull(&mut c),
        [Ev::Err(BadLineEnding)],
        "a bare LF is not a blank line"
    );
}

#[test]
fn eof_handling() {
    let cases: &[(&str, &[u8], &[Ev])] = &[
        ("between requests", b"", &[C]),
        ("after blank lines", b"\r\n", &[C]),
        (
            "inside a head",
            b"GET / HTTP/1.1\r\nHost",
            &[Ev::Err(IncompleteHead)],
        ),
        ("inside a lone CR", b"\r", &[Ev::Err(IncompleteHead)]),
    ];
    for (name, raw, want) in cases {
        let mut c = conn_with(raw);
        c.receive_eof();
        assert_eq!(pull(&mut c), *want, "{name}");
    }
    // Inside a body: the data that came is delivered, then the error.
    let mut c = conn_with(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc");
    c.receive_eof();
    assert_eq!(pull(&mut c), [Ev::Head("POST", "/"), P]);
    c.accept_body().unwrap();
    assert_eq!(pull(&mut c), [Ev::Data("abc"), Ev::Err(IncompleteBody)]);
    let out = c
        .respond(&Response::json(IncompleteBody.status(), "{}"), DATE)
        .unwrap();
    assert_eq!(out.close, CloseMode::Linger);
    // A complete body before the EOF is fine, and the EOF then ends the connection.
    let mut c = conn_with(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
    );
    c.receive_eof();
    assert_eq!(pull(&mut c), [Ev::Head("POST", "/"), P]);
    c.accept_body().unwrap();
    assert_eq!(pull(&mut c), [Ev::Data("a"), E, P]);
    assert_eq!(
        c.respond(&json(), DATE).unwrap().close,
        CloseMode::KeepAlive
    );
    assert_eq!(pull(&mut c), [C]);
}

#[test]
fn lent_buffer_round_trip() {
    let mut c = H1Conn::new(Limits::default());
    let mut buf = c.lend_buffer(4096);
    assert!(buf.capacity() - buf.len() >= 4096);
    buf.extend_from_slice(b"GET / HTTP/1.1\r\nHo");
    c.restore_buffer(buf);
    assert_eq!(pull(&mut c), [N]);
    let mut buf = c.lend_buffer(16);
    assert_eq!(
        &buf[..],
        b"GET / HTTP/1.1\r\nHo",
        "the lent buffer keeps what was unread"
    );
    buf.extend_from_slice(b"st: a\r\n\r\n");
    c.restore_buffer(buf);
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/"), P]);
}

/// Every malformed input: a specific error with its status, then one response that says
/// `Connection: close` and lingers, then Closed. The error is sticky until then.
#[test]
fn malformed_input_fails_with_status_and_close() {
    let small = Limits {
        max_head_bytes: 96,
        max_headers: 4,
        max_target_bytes: 16,
        max_trailer_bytes: 16,
        max_chunk_line_bytes: 8,
    };
    let long_target = [&b"GET /"[..], &[b'a'; 100], b" HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
    let mid_target = [&b"GET /"[..], &[b'a'; 20], b" HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
    let big_field = [
        &b"GET / HTTP/1.1\r\nHost: a\r\nX: "[..],
        &[b'b'; 100],
        b"\r\n\r\n",
    ]
    .concat();
    let cases: Vec<(&str, Vec<u8>, ProtocolError, u16)> = vec![
        ("target overflowing the head", long_target, TargetTooLong, 414),
        ("target over max_target_bytes", mid_target, TargetTooLong, 414),
        ("head too large", big_field, HeadTooLarge, 431),
        ("too many headers", b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n".to_vec(), TooManyHeaders, 431),
        ("version 2.0", b"GET / HTTP/2.0\r\n\r\n".to_vec(), UnsupportedVersion, 505),
        ("garbage version", b"GET / HTTP/1.x\r\n\r\n".to_vec(), BadRequestLine, 400),
        ("bad method", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), BadMethod, 400),
        ("star for GET", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), BadTarget, 400),
        ("missing host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), MissingHost, 400),
        ("two hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n".to_vec(), BadHost, 400),
        ("NUL in value", b"GET / HTTP/1.1\r\nHost: a\0\r\n\r\n".to_vec(), BadHeaderValue, 400),
        ("space before colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n".to_vec(), BadHeaderName, 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n".to_vec(), ObsFold, 400),
        ("bare LF", b"GET / HTTP/1.1\nHost: a\r\n\r\n".to_vec(), BadLineEnding, 400),
        ("bare CR", b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n".to_vec(), BadLineEnding, 400),
        ("signed length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n".to_vec(), BadContentLength, 400),
        ("differing lengths", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(), ConflictingContentLength, 400),
        ("length and chunked", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), LengthWithTransferEncoding, 400),
        ("gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), ChunkedNotFinal, 400),
        ("gzip, chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(), UnknownTransferCoding, 501),
        ("chunked in 1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), TransferEncodingInHttp10, 400),
    ];
    for (name, raw, want, status) in cases {
        let mut c = H1Conn::new(small);
        c.receive(&raw);
        assert_eq!(pull(&mut c), [Ev::Err(want)], "{name}");
        assert_eq!(want.status(), status, "{name}");
        assert_eq!(pull(&mut c), [Ev::Err(want)], "{name}: the error is sticky");
        assert!(c.is_closed(), "{name}");
        let out = c
            .respond(
                &Response::json(want.status(), format!("{{\"error\":\"{}\"}}", want.code())),
                DATE,
            )
            .unwrap();
        assert_eq!(out.close, CloseMode::Linger, "{name}");
        let wire = text(&out);
        assert!(
            wire.starts_with(&format!("HTTP/1.1 {status} ")),
            "{name}: {wire}"
        );
        assert!(wire.contains("\r\nConnection: close\r\n"), "{name}");
        assert!(
            wire.contains(&format!("\"error\":\"{}\"", want.code())),
            "{name}"
        );
        assert_eq!(pull(&mut c), [C], "{name}");
    }
}

/// Body errors come after the decision, as events of the body.
#[test]
fn malformed_body_fails_after_accept() {
    let small = Limits {
        max_trailer_bytes: 16,
        max_chunk_line_bytes: 32,
        ..Limits::default()
    };
    let cases: &[(&str, &[u8], ProtocolError)] = &[
        ("0x size", b"0x5\r\nhello\r\n0\r\n\r\n", BadChunkSize),
        ("bad hex", b"5z\r\nhello\r\n0\r\n\r\n", BadChunkSize),
        ("overflow", b"fffffffffffffffff\r\n", ChunkSizeOverflow),
        (
            "size line too long",
            b"5;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            ChunkLineTooLong,
        ),
        ("data without CRLF", b"5\r\nhelloX", BadChunkEnd),
        (
            "trailers too large",
            b"0\r\nX: aaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
            TrailersTooLarge,
        ),
        ("bad trailer", b"0\r\nnocolon\r\n\r\n", BadTrailer),
    ];
    for (name, body, want) in cases {
        let mut c = H1Conn::new(small);
        c.receive(b"PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
        c.receive(body);
        assert_eq!(pull(&mut c), [Ev::Head("PUT", "/u"), P], "{name}");
        assert_eq!(c.accept_body(), Ok(Some(CONTINUE)), "{name}");
        let evs = pull(&mut c);
        assert_eq!(evs.last(), Some(&Ev::Err(*want)), "{name}: {evs:?}");
        let out = c
            .respond(
                &Response::json(want.status(), format!("{{\"error\":\"{}\"}}", want.code())),
                DATE,
            )
            .unwrap();
        assert_eq!(out.close, CloseMode::Linger, "{name}");
        assert!(text(&out).contains("\r\nConnection: close\r\n"), "{name}");
        assert_eq!(pull(&mut c), [C], "{name}");
    }
}

#[test]
fn head_size_limit_is_exact() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let at = |max| Limits {
        max_head_bytes: max,
        ..Limits::default()
    };
    let mut c = H1Conn::new(at(raw.len()));
    c.receive(raw);
    assert_eq!(pull(&mut c), [Ev::Head("GET", "/"), P]);
    let mut c = H1Conn::new(at(raw.len() - 1));
    c.receive(raw);
    assert_eq!(pull(&mut c), [Ev::Err(HeadTooLarge)]);
    let mut c = H1Conn::new(at(raw.len() - 1));
    c.receive(&raw[..raw.len() - 1]);
    assert_eq!(pull(&mut c), [N]);
    c.receive(b"\n");
    assert_eq!(pull(&mut c), [Ev::Err(HeadTooLarge)]);
    // A partial head is refused as soon as it passes the limit, without waiting for its end.
    let mut c = H1Conn::new(at(32));
    c.receive(b"GET / HTTP/1.1\r\nHost: aaaaaaaaaa");
    assert_eq!(pull(&mut c), [N]);
    c.receive(b"a");
    assert_eq!(pull(&mut c), [Ev::Err(HeadTooLarge)]);
    // Body bytes after a head do not count against it.
    let mut c = H1Conn::new(at(1024));
    c.receive(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4096\r\n\r\n");
    c.receive(&[b'x'; 4096]);
    assert_eq!(pull(&mut c), [Ev::Head("POST", "/"), P]);
}

// ---- Whole versus split feeding (h11's "run both ways") ----

/// One step of a scripted exchange: what the connection said and what the script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rec {
    Head(String, Vec<u8>),
    Continue(bool),
    Data(Vec<u8>),
    End,
    Err(ProtocolError),
    Sent(u16, CloseMode),
    Closed,
}

/// Drives a connection through `chunks` (then EOF) with a fixed policy: POST/PUT bodies are
/// accepted, other requests answered at once; every end of message gets a 200.
fn drive(chunks: &[&[u8]], limits: Limits) -> Vec<Rec> {
    let mut c = H1Conn::new(limits);
    let mut out: Vec<Rec> = Vec::new();
    let mut chunks = chunks.iter();
    let mut eof = false;
    let respond = |c: &mut H1Conn, out: &mut Vec<Rec>, resp: &Response| {
        let o = c.respond(resp, DATE).expect("respond is allowed");
        out.push(Rec::Sent(resp.status, o.close));
    };
    for _ in 0..100_000 {
        match c.next_event() {
            Ok(Event::Head(h)) => {
                out.push(Rec::Head(h.method_str().to_string(), h.target().to_vec()));
                if matches!(h.method(), Method::Post | Method::Put) {
                    out.push(Rec::Continue(c.accept_body().unwrap().is_some()));
                } else {
                    respond(&mut c, &mut out, &Response::new(200));
                }
            }
            Ok(Event::Data(d)) => {
                assert!(!d.is_empty());
                match out.last_mut() {
                    Some(Rec::Data(prev)) => prev.extend_from_slice(&d),
                    _ => out.push(Rec::Data(d.to_vec())),
                }
            }
            Ok(Event::EndOfMessage) => {
                out.push(Rec::End);
                respond(&mut c, &mut out, &Response::new(200));
            }
            Ok(Event::NeedData) => match chunks.next() {
                Some(chunk) => c.receive(chunk),
                None if !eof => {
                    eof = true;
                    c.receive_eof();
                }
                None => panic!("NeedData after EOF: {out:?}"),
            },
            Ok(Event::Paused) => panic!("paused with nothing to decide: {out:?}"),
            Ok(Event::Closed) => {
                out.push(Rec::Closed);
                assert!(c.is_closed());
                return out;
            }
            Err(e) => {
                out.push(Rec::Err(e));
                assert!([400, 414, 431, 501, 505].contains(&e.status()));
                respond(&mut c, &mut out, &Response::json(e.status(), "{}"));
            }
        }
    }
    panic!("no end: {out:?}");
}

fn whole_and_split_agree(input: &[u8], limits: Limits) -> Vec<Rec> {
    let whole = drive(&[input], limits);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(
        drive(&bytes, limits),
        whole,
        "byte by byte: {:?}",
        String::from_utf8_lossy(input)
    );
    for size in [2, 3, 7, 64] {
        let pieces: Vec<&[u8]> = input.chunks(size).collect();
        assert_eq!(
            drive(&pieces, limits),
            whole,
            "pieces of {size}: {:?}",
            String::from_utf8_lossy(input)
        );
    }
    whole
}

#[test]
fn pipelined_transcript_is_independent_of_splits() {
    use CloseMode::*;
    let input = b"\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n\
        POST /b HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello\
        PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n\
        HEAD /d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\
        GET /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz";
    let want = vec![
        Rec::Head("GET".into(), b"/a".to_vec()),
        Rec::Sent(200, KeepAlive),
        Rec::Head("POST".into(), b"/b".to_vec()),
        Rec::Continue(true),
        Rec::Data(b"hello".to_vec()),
        Rec::End,
        Rec::Sent(200, KeepAlive),
        Rec::Head("PUT".into(), b"/c".to_vec()),
        Rec::Continue(false),
        Rec::Data(b"abcde".to_vec()),
        Rec::End,
        Rec::Sent(200, KeepAlive),
        Rec::Head("HEAD".into(), b"/d".to_vec()),
        Rec::Sent(200, KeepAlive),
        // A GET with a body the script does not read: lingering close.
        Rec::Head("GET".into(), b"/e".to_vec()),
        Rec::Sent(200, Linger),
        Rec::Closed,
    ];
    assert_eq!(whole_and_split_agree(input, Limits::default()), want);
}

#[test]
fn error_transcripts_are_independent_of_splits() {
    use CloseMode::*;
    let small = Limits {
        max_head_bytes: 64,
        max_headers: 3,
        max_target_bytes: 12,
        max_trailer_bytes: 16,
        max_chunk_line_bytes: 8,
    };
    let ok = Rec::Head("GET".into(), b"/".to_vec());
    let cases: Vec<(&str, Vec<u8>, ProtocolError)> = vec![
        (
            "second head bad",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost : a\r\n\r\n".to_vec(),
            BadHeaderName,
        ),
        (
            "second head has bare CR",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\rHost: a\r\n\r\n".to_vec(),
            BadLineEnding,
        ),
        (
            "second head too large",
            [
                &b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nX: "[..],
                &[b'x'; 80],
            ]
            .concat(),
            HeadTooLarge,
        ),
        (
            "second target too long",
            [&b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /"[..], &[b'x'; 80]].concat(),
            TargetTooLong,
        ),
        (
            "second head cut by EOF",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n".to_vec(),
            IncompleteHead,
        ),
        (
            "second head huge with bare LF late",
            [
                &b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nX: "[..],
                &[b'x'; 80],
                b"\n",
            ]
            .concat(),
            HeadTooLarge,
        ),
    ];
    for (name, input, err) in cases {
        let want = vec![
            ok.clone(),
            Rec::Sent(200, KeepAlive),
            Rec::Err(err),
            Rec::Sent(err.status(), Linger),
            Rec::Closed,
        ];
        assert_eq!(whole_and_split_agree(&input, small), want, "{name}");
    }
    let body_cases: Vec<(&str, &[u8], ProtocolError)> = vec![
        ("bad chunk size", b"0x1\r\na\r\n0\r\n\r\n", BadChunkSize),
        (
            "chunk line too long",
            b"1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            ChunkLineTooLong,
        ),
        (
            "trailers too large",
            b"0\r\nA: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
            TrailersTooLarge,
        ),
        ("cut by EOF", b"5\r\nab", IncompleteBody),
    ];
    for (name, body, err) in body_cases {
        let input = [
            &b"PUT /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            body,
        ]
        .concat();
        let got = whole_and_split_agree(&input, small);
        assert_eq!(
            got[..2],
            [
                Rec::Head("PUT".into(), b"/u".to_vec()),
                Rec::Continue(false)
            ],
            "{name}"
        );
        assert_eq!(
            got[got.len() - 3..],
            [Rec::Err(err), Rec::Sent(err.status(), Linger), Rec::Closed],
            "{name}"
        );
    }
}

/// Deterministic mutations of valid traffic: never a panic, only `ProtocolError`s with their
/// statuses, and the same transcript however the bytes are split.
#[test]
fn mutated_traffic_never_panics_and_splits_agree() {
    let seeds: &[&[u8]] = &[
        b"GET /a?b=c HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\nHEAD / HTTP/1.0\r\n\r\n",
        b"POST /app1/f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
        b"PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;e=1\r\nbody\r\n0\r\nT: 1\r\n\r\n",
    ];
    let interesting = b"\r\n :\0\t;,0fF9x\x7f\xff-+";
    let limits = Limits {
        max_head_bytes: 96,
        max_headers: 4,
        max_target_bytes: 24,
        max_trailer_bytes: 12,
        max_chunk_line_bytes: 10,
    };
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..1500 {
        let seed = seeds[round % seeds.len()];
        let mut input = seed.to_vec();
        for _ in 0..=(next() % 3) {
            let at = (next() % input.len() as u64) as usize;
            let byte = interesting[(next() % interesting.len() as u64) as usize];
            match next() % 3 {
                0 => input[at] = byte,
                1 => input.insert(at, byte),
                _ => {
                    input.remove(at);
                }
            }
            if input.is_empty() {
                input.push(byte);
            }
        }
        let transcript = whole_and_split_agree(&input, limits);
        assert_eq!(transcript.last(), Some(&Rec::Closed));
    }
}

#[test]
fn skip_body_accounts_for_spliced_bytes_only_when_nothing_is_buffered() {
    let mut conn = H1Conn::new(Limits::default());
    conn.receive(b"PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    assert!(matches!(conn.next_event(), Ok(Event::Head(_))));
    assert_eq!(
        conn.skip_body(1).unwrap_err().op,
        "skip_body",
        "before accept_body"
    );
    conn.accept_body().unwrap();
    assert_eq!(
        conn.skip_body(1).unwrap_err().state,
        "Body",
        "bytes still buffered"
    );
    assert_eq!(
        conn.next_event(),
        Ok(Event::Data(Bytes::from_static(b"abc")))
    );
    assert_eq!(conn.next_event(), Ok(Event::NeedData));
    assert_eq!(conn.body_remaining(), Some(7));
    assert!(conn.skip_body(8).is_err(), "more than remains");
    conn.skip_body(7).unwrap();
    assert_eq!(conn.next_event(), Ok(Event::EndOfMessage));
}

/// Decodes `input` as the driver's registered-buffer path does: a buffer of `cap` bytes filled
/// by reads of `step` bytes, data handed out as ranges of it, unused framing moved to the front.
/// Returns the body, or the error.
fn external_run(
    c: &mut H1Conn,
    input: &[u8],
    cap: usize,
    step: usize,
) -> Result<Vec<u8>, ExternalError> {
    let mut buf: Vec<u8> = c.take_undecoded().expect("inside a body").to_vec();
    let mut fed = 0;
    let mut body = Vec::new();
    loop {
        let mut start = 0;
        loop {
            let (used, piece) = c.decode_external(&buf[start..])?;
            match piece {
                Piece::Data(r) => body.extend_from_slice(&buf[start + r.start..start + r.end]),
                Piece::NeedData => {
                    start += used;
                    break;
                }
                Piece::End => {
                    c.receive(&buf[start + used..]);
                    c.receive(&input[fed..]);
                    return Ok(body);
                }
            }
            start += used;
        }
        buf.drain(..start);
        if fed == input.len() {
            c.receive_eof();
            continue;
        }
        let n = step.min(cap - buf.len()).min(input.len() - fed);
        assert!(
            n > 0,
            "buffer full of framing: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
    }
}

#[test]
fn external_decoding_takes_over_from_the_connection_buffer() {
    let head = "PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    let body = "5;x=1\r\nhello\r\n1\r\n \r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nt: v\r\n\r\n";
    let next = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    // The head came with the start of the body, cut inside a chunk-size line.
    for cut in 0..body.len() {
        for (cap, step) in [(64, 64), (48, 5), (40, 1)] {
            let mut c = conn_with(format!("{head}{}", &body[..cut]).as_bytes());
            assert!(matches!(c.next_event(), Ok(Event::Head(_))));
            c.accept_body().unwrap();
            // What the decoder can use from its own buffer comes out first.
            let mut got = Vec::new();
            loop {
                match c.next_event() {
                    Ok(Event::Data(d)) => got.extend_from_slice(&d),
                    Ok(Event::NeedData) => break,
                    other => panic!("cut {cut}: {other:?}"),
                }
            }
            let rest = format!("{}{next}", &body[cut..]);
            got.extend(external_run(&mut c, rest.as_bytes(), cap, step).unwrap());
            assert_eq!(
                String::from_utf8(got).unwrap(),
                "hello abcdefghijklmnopqrstuvwxyz",
                "cut {cut}, cap {cap}, step {step}"
            );
            // Bytes after the body were handed back: the next request parses.
            let out = c.respond(&json(), DATE).unwrap();
            assert_eq!(out.close, CloseMode::KeepAlive);
            assert_eq!(pull(&mut c), vec![Ev::Head("GET", "/next"), P]);
        }
    }
}

#[test]
fn external_decoding_reports_protocol_errors_and_misuse() {
    let head = "PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut c = conn_with(head.as_bytes());
    assert!(matches!(c.next_event(), Ok(Event::Head(_))));
    // Before the decision: not inside a body.
    assert!(matches!(
        c.decode_external(b"1\r\n"),
        Err(ExternalError::WrongState(_))
    ));
    assert!(c.take_undecoded().is_err());
    c.accept_body().unwrap();
    // Bytes still buffered in the connection must be taken first.
    c.receive(b"1");
    assert!(matches!(
        c.decode_external(b"\r\n"),
        Err(ExternalError::WrongState(_))
    ));
    assert_eq!(&c.take_undecoded().unwrap()[..], b"1");
    assert_eq!(
        c.decode_external(b"zz\r\n"),
        Err(ExternalError::Protocol(BadChunkSize))
    );
    assert_eq!(pull(&mut c), vec![Ev::Err(BadChunkSize)]);

    // The peer closed inside the body.
    let mut c = conn_with(b"PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n");
    assert!(matches!(c.next_event(), Ok(Event::Head(_))));
    c.accept_body().unwrap();
    assert_eq!(c.decode_external(b"abc"), Ok((3, Piece::Data(0..3))));
    assert_eq!(c.decode_external(b""), Ok((0, Piece::NeedData)));
    c.receive_eof();
    assert_eq!(
        c.decode_external(b""),
        Err(ExternalError::Protocol(IncompleteBody))
    );
}

#[test]
fn an_informational_response_goes_out_only_while_the_final_one_is_owed() {
    let mut c = conn_with(b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab");
    // Nothing is owed before the head.
    let mut idle = H1Conn::new(Limits::default());
    assert!(idle.informational(104, &[]).is_err());
    pull(&mut c);
    let fields = [("Location", "/upload/resumable/x".to_owned())];
    let bytes = c.informational(104, &fields).unwrap().unwrap();
    assert_eq!(
        &bytes[..],
        b"HTTP/1.1 104 Upload Resumption Supported\r\nLocation: /upload/resumable/x\r\n\r\n"
    );
    // Several may go out; 100 and 101 are not this call's, nor final statuses.
    assert!(c.informational(104, &fields).unwrap().is_some());
    for status in [100, 101, 200] {
        assert!(c.informational(status, &[]).is_err(), "{status}");
    }
    c.accept_body().unwrap();
    pull(&mut c);
    c.respond(&json(), DATE).unwrap();
    assert!(
        c.informational(104, &fields).is_err(),
        "after the final response"
    );

    // An HTTP/1.0 client gets none.
    let mut old = conn_with(b"POST /a HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    pull(&mut old);
    assert_eq!(old.informational(104, &fields).unwrap(), None);
}
