use super::*;
use crate::framing::Expectation;
use ProtocolError::*;

/// What a head parses to: method as sent, `path_only()`, version.
type Want = Result<(&'static str, &'static [u8], Version), ProtocolError>;

/// Finds the end of `raw` and parses it, as `H1Conn` does.
fn parse_raw(raw: &[u8], limits: &Limits) -> Result<RequestHead, ProtocolError> {
    match find_end(raw, 0)? {
        HeadEnd::Complete(len) => parse(Bytes::copy_from_slice(&raw[..len]), limits),
        HeadEnd::Partial { .. } => panic!(
            "test head is incomplete: {:?}",
            String::from_utf8_lossy(raw)
        ),
    }
}

fn summary(head: &RequestHead) -> (String, Vec<u8>, Version) {
    (
        head.method_str().to_string(),
        head.path_only().to_vec(),
        head.version(),
    )
}

fn check_table(cases: &[(&str, &[u8], Want)], limits: &Limits) {
    for (name, raw, want) in cases {
        let got = parse_raw(raw, limits);
        match (want, &got) {
            (Ok((m, p, v)), Ok(head)) => assert_eq!(
                summary(head),
                (m.to_string(), p.to_vec(), *v),
                "{name}: {:?}",
                String::from_utf8_lossy(raw)
            ),
            (Err(e), Err(g)) => assert_eq!(e, g, "{name}: {:?}", String::from_utf8_lossy(raw)),
            _ => panic!(
                "{name}: want {want:?}, got {got:?} for {:?}",
                String::from_utf8_lossy(raw)
            ),
        }
    }
}

const V10: Version = Version::Http10;
const V11: Version = Version::Http11;

/// The request-line: method, target, version.
const REQUEST_LINE_CASES: &[(&str, &[u8], Want)] = &[
    (
        "simple get",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        Ok(("GET", b"/", V11)),
    ),
    (
        "post fast path",
        b"POST /up HTTP/1.1\r\nHost: a\r\n\r\n",
        Ok(("POST", b"/up", V11)),
    ),
    (
        "http/1.0 without host",
        b"GET /x HTTP/1.0\r\n\r\n",
        Ok(("GET", b"/x", V10)),
    ),
    (
        "query is not path",
        b"GET /a/b?c=d HTTP/1.1\r\nHost: a\r\n\r\n",
        Ok(("GET", b"/a/b", V11)),
    ),
    (
        "lowercase method is a token",
        b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
        Ok(("get", b"/", V11)),
    ),
    (
        "extension method",
        b"M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\n",
        Ok(("M-SEARCH", b"/", V11)),
    ),
    (
        "method with every tchar",
        b"!#$%&'*+-.^_`|~09az / HTTP/1.1\r\nHost: a\r\n\r\n",
        Ok(("!#$%&'*+-.^_`|~09az", b"/", V11)),
    ),
    // Methods
    (
        "method with @",
        b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadMethod),
    ),
    (
        "method with NUL",
        b"GE\0T / HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadMethod),
    ),
    (
        "method with DEL",
        b"GET\x7f / HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadMethod),
    ),
    (
        "method with colon",
        b"GE:T / HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadMethod),
    ),
    (
        "method with utf-8",
        b"G\xc3\xa9T / HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadMethod),
    ),
    // Shape of the line
    (
        "leading space",
        b" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    (
        "double space after method",
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    (
        "double space before version",
        b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    (
        "trailing space",
        b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    (
        "space inside target",
        b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    (
        "tab as separator",
        b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    ("http/0.9 line", b"GET /\r\n\r\n", Err(BadRequestLine)),
    (
        "missing version",
        b"GET / \r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    ("only a method", b"GET\r\n\r\n", Err(BadRequestLine)),
    // Versions: a well-formed other version is 505, garbage is 400
    (
        "http/1.2",
        b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
        Err(UnsupportedVersion),
    ),
    (
        "http/2.0",
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        Err(UnsupportedVersion),
    ),
    (
        "http/0.9 version",
        b"GET / HTTP/0.9\r\n\r\n",
        Err(UnsupportedVersion),
    ),
    (
        "http/9.9",
        b"GET / HTTP/9.9\r\n\r\n",
        Err(UnsupportedVersion),
    ),
    (
        "version with suffix",
        b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    (
        "version 1.10",
        b"GET / HTTP/1.10\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    (
        "version without dot",
        b"GET / HTTP/11\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    (
        "version without minor",
        b"GET / HTTP/1\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    (
        "lowercase protocol",
        b"GET / http/1.1\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    (
        "other protocol",
        b"GET / FTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    (
        "letter minor",
        b"GET / HTTP/1.x\r\nHost: a\r\n\r\n",
        Err(BadRequestLine),
    ),
    ("version 2", b"GET / HTTP/2\r\n\r\n", Err(BadRequestLine)),
    // Target forms (RFC 9112 §3.2)
    (
        "absolute-form",
        b"GET http://example.com/a/b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        Ok(("GET", b"/a/b", V11)),
    ),
    (
        "absolute-form https upper",
        b"GET HTTPS://EXAMPLE.com HTTP/1.1\r\nHost: a\r\n\r\n",
        Ok(("GET", b"/", V11)),
    ),
    (
        "absolute-form query only",
        b"GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        Ok(("GET", b"/", V11)),
    ),
    (
        "absolute-form with port",
        b"PUT http://h:8080/f HTTP/1.1\r\nHost: h:8080\r\n\r\n",
        Ok(("PUT", b"/f", V11)),
    ),
    (
        "asterisk for options",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        Ok(("OPTIONS", b"/", V11)),
    ),
    (
        "asterisk for get",
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadTarget),
    ),
    (
        "asterisk for post",
        b"POST * HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadTarget),
    ),
    (
        "authority-form",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        Err(BadTarget),
    ),
    (
        "relative path",
        b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadTarget),
    ),
    (
        "other scheme",
        b"GET ftp://h/x HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadTarget),
    ),
    (
        "absolute-form without host",
        b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadTarget),
    ),
    (
        "scheme only",
        b"GET http:// HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadTarget),
    ),
    (
        "NUL in target",
        b"GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadTarget),
    ),
    (
        "control byte in target",
        b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadTarget),
    ),
    (
        "DEL in target",
        b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadTarget),
    ),
    (
        "tab in target",
        b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadTarget),
    ),
    (
        "invalid utf-8 in target",
        b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadTarget),
    ),
];

#[test]
fn request_line_rules() {
    check_table(REQUEST_LINE_CASES, &Limits::default());
}

/// Header fields: names, values, folding, line ends, Host.
const FIELD_CASES: &[(&str, &[u8], Want)] = &[
    (
        "empty value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n",
        Ok(("GET", b"/", V11)),
    ),
    (
        "tab and obs-text in value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\x80\xff\r\n\r\n",
        Ok(("GET", b"/", V11)),
    ),
    (
        "no space after colon",
        b"GET / HTTP/1.1\r\nHost:a\r\n\r\n",
        Ok(("GET", b"/", V11)),
    ),
    (
        "blank lines are not ours to skip",
        b"\r\n\r\n",
        Err(BadRequestLine),
    ),
    // Names
    (
        "space before colon",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        Err(BadHeaderName),
    ),
    (
        "tab before colon",
        b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",
        Err(BadHeaderName),
    ),
    (
        "space inside name",
        b"GET / HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n",
        Err(BadHeaderName),
    ),
    (
        "NUL in name",
        b"GET / HTTP/1.1\r\nHost: a\r\nX\0Y: b\r\n\r\n",
        Err(BadHeaderName),
    ),
    (
        "control byte in name",
        b"GET / HTTP/1.1\r\nHost: a\r\nX\x01: b\r\n\r\n",
        Err(BadHeaderName),
    ),
    (
        "separator in name",
        b"GET / HTTP/1.1\r\nHost: a\r\nX@Y: b\r\n\r\n",
        Err(BadHeaderName),
    ),
    (
        "empty name",
        b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
        Err(BadHeaderName),
    ),
    (
        "line without colon",
        b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
        Err(BadHeaderName),
    ),
    (
        "utf-8 in name",
        b"GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: b\r\n\r\n",
        Err(BadHeaderName),
    ),
    // Values
    (
        "NUL in value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
        Err(BadHeaderValue),
    ),
    (
        "control byte in value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
        Err(BadHeaderValue),
    ),
    (
        "escape in value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[31m\r\n\r\n",
        Err(BadHeaderValue),
    ),
    (
        "DEL in value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n",
        Err(BadHeaderValue),
    ),
    (
        "NUL as the whole value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n",
        Err(BadHeaderValue),
    ),
    // obs-fold (RFC 9112 §5.2)
    (
        "obs-fold with space",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        Err(ObsFold),
    ),
    (
        "obs-fold with tab",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",
        Err(ObsFold),
    ),
    (
        "whitespace before first field",
        b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        Err(ObsFold),
    ),
    // Line ends
    (
        "bare LF after request-line",
        b"GET / HTTP/1.1\nHost: a\r\n\r\n",
        Err(BadLineEnding),
    ),
    (
        "bare LF after field",
        b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
        Err(BadLineEnding),
    ),
    (
        "bare LF terminator",
        b"GET / HTTP/1.1\r\nHost: a\r\n\n",
        Err(BadLineEnding),
    ),
    (
        "LF only head",
        b"GET / HTTP/1.1\nHost: a\n\n",
        Err(BadLineEnding),
    ),
    (
        "bare CR after request-line",
        b"GET / HTTP/1.1\rHost: a\r\n\r\n",
        Err(BadLineEnding),
    ),
    (
        "bare CR inside value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
        Err(BadLineEnding),
    ),
    (
        "CR CR LF",
        b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",
        Err(BadLineEnding),
    ),
    (
        "bare CR in target",
        b"GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n",
        Err(BadLineEnding),
    ),
    // Host (RFC 9112 §3.2)
    (
        "missing host",
        b"GET / HTTP/1.1\r\nX: a\r\n\r\n",
        Err(MissingHost),
    ),
    (
        "missing host, no fields",
        b"GET / HTTP/1.1\r\n\r\n",
        Err(MissingHost),
    ),
    (
        "missing host with absolute-form",
        b"GET http://h/ HTTP/1.1\r\n\r\n",
        Err(MissingHost),
    ),
    (
        "repeated host",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        Err(BadHost),
    ),
    (
        "repeated host any case",
        b"GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n",
        Err(BadHost),
    ),
    (
        "repeated host in 1.0",
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        Err(BadHost),
    ),
    (
        "host with space",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        Err(BadHost),
    ),
    (
        "host with slash",
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        Err(BadHost),
    ),
    (
        "host with userinfo",
        b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
        Err(BadHost),
    ),
    (
        "empty host",
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        Ok(("GET", b"/", V11)),
    ),
    (
        "host with port",
        b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
        Ok(("GET", b"/", V11)),
    ),
    (
        "ipv6 host",
        b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        Ok(("GET", b"/", V11)),
    ),
    // Framing errors surface from parse too (framing.rs has the full table).
    (
        "framing error surfaces",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        Err(ConflictingContentLength),
    ),
    (
        "unknown coding surfaces",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        Err(UnknownTransferCoding),
    ),
];

#[test]
fn header_field_rules() {
    check_table(FIELD_CASES, &Limits::default());
}

#[test]
fn target_and_header_count_limits() {
    let limits = Limits {
        max_headers: 3,
        max_target_bytes: 8,
        ..Limits::default()
    };
    let cases: &[(&str, &[u8], Want)] = &[
        (
            "target at the limit",
            b"GET /1234567 HTTP/1.1\r\nHost: a\r\n\r\n",
            Ok(("GET", b"/1234567", V11)),
        ),
        (
            "target over the limit",
            b"GET /12345678 HTTP/1.1\r\nHost: a\r\n\r\n",
            Err(TargetTooLong),
        ),
        (
            "absolute-form over the limit",
            b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            Err(TargetTooLong),
        ),
        (
            "fields at the limit",
            b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n",
            Ok(("GET", b"/", V11)),
        ),
        (
            "fields over the limit",
            b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
            Err(TooManyHeaders),
        ),
    ];
    check_table(cases, &limits);
    assert_eq!(TargetTooLong.status(), 414);
    assert_eq!(TooManyHeaders.status(), 431);
}

#[test]
fn statuses_of_head_errors() {
    let cases = [
        (UnsupportedVersion, 505, "version_not_supported"),
        (BadRequestLine, 400, "bad_request_line"),
        (BadMethod, 400, "bad_method"),
        (BadTarget, 400, "bad_target"),
        (BadHeaderName, 400, "bad_header_name"),
        (BadHeaderValue, 400, "bad_header_value"),
        (ObsFold, 400, "obs_fold"),
        (BadLineEnding, 400, "bad_line_ending"),
        (MissingHost, 400, "missing_host"),
        (BadHost, 400, "bad_host"),
        (HeadTooLarge, 431, "head_too_large"),
    ];
    for (e, status, code) in cases {
        assert_eq!((e.status(), e.code()), (status, code), "{e:?}");
    }
}

#[test]
fn head_keeps_fields_as_views() {
    let raw = b"POST /app1/a.txt?x=1 HTTP/1.1\r\nHost: up.example\r\nappid:  app1 \r\nX-Two: a\r\nx-two: b\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    let head = parse_raw(raw, &Limits::default()).unwrap();
    assert_eq!(head.method(), Method::Post);
    assert_eq!(head.target(), b"/app1/a.txt?x=1");
    assert_eq!(head.path(), b"/app1/a.txt?x=1");
    assert_eq!(head.path_only(), b"/app1/a.txt");
    assert_eq!(
        head.value("APPID"),
        Some(&b"app1"[..]),
        "whitespace around values is trimmed"
    );
    assert_eq!(
        head.values("x-two").collect::<Vec<_>>(),
        vec![&b"a"[..], &b"b"[..]]
    );
    assert_eq!(head.value("missing"), None);
    assert_eq!(head.fields().count(), 6);
    assert_eq!(
        head.fields().next(),
        Some((&b"Host"[..], &b"up.example"[..])),
        "names as sent"
    );
    assert_eq!(head.info().expect, Expectation::Continue);
    assert_eq!(head.info().content_length(), Some(5));
    assert_eq!(head.raw().len(), raw.len());
    // Views into the one buffer, not copies.
    let base = head.raw().as_ptr() as usize;
    let value = head.value("host").unwrap().as_ptr() as usize;
    assert!(value > base && value < base + raw.len());
}

#[test]
fn method_kinds() {
    let cases: &[(&[u8], Method)] = &[
        (b"GET", Method::Get),
        (b"HEAD", Method::Head),
        (b"POST", Method::Post),
        (b"PUT", Method::Put),
        (b"DELETE", Method::Delete),
        (b"OPTIONS", Method::Options),
        (b"get", Method::Other),
        (b"PATCH", Method::Patch),
        (b"patch", Method::Other),
    ];
    for (m, kind) in cases {
        let mut raw = m.to_vec();
        raw.extend_from_slice(b" / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(parse_raw(&raw, &Limits::default()).unwrap().method(), *kind);
    }
}

/// `find_end` on whole inputs.
#[test]
fn find_end_table() {
    let cases: &[(&str, &[u8], Result<HeadEnd, ProtocolError>)] = &[
        ("empty", b"", Ok(HeadEnd::Partial { resume_at: 0 })),
        (
            "half a line",
            b"GET / HT",
            Ok(HeadEnd::Partial { resume_at: 0 }),
        ),
        (
            "one line",
            b"GET / HTTP/1.1\r\n",
            Ok(HeadEnd::Partial { resume_at: 16 }),
        ),
        (
            "CR at the end",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r",
            Ok(HeadEnd::Partial { resume_at: 25 }),
        ),
        (
            "complete",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Ok(HeadEnd::Complete(27)),
        ),
        (
            "complete with body after",
            b"GET / HTTP/1.1\r\n\r\nbody\n\r",
            Ok(HeadEnd::Complete(18)),
        ),
        ("bare LF first", b"\n", Err(BadLineEnding)),
        ("bare LF", b"GET / HTTP/1.1\n", Err(BadLineEnding)),
        (
            "bare CR before LF",
            b"GET /\r HTTP/1.1\r\n",
            Err(BadLineEnding),
        ),
        (
            "bare CR in unfinished line",
            b"GET / HTTP/1.1\r\nHo\rst",
            Err(BadLineEnding),
        ),
        ("CR CR", b"GET / HTTP/1.1\r\r", Err(BadLineEnding)),
    ];
    for (name, raw, want) in cases {
        assert_eq!(&find_end(raw, 0), want, "{name}");
    }
}

/// Fed one byte at a time with `resume_at`, `find_end` reaches the same verdict as on the whole.
#[test]
fn find_end_bytewise_agrees_with_whole() {
    let inputs: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\nrest",
        b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ];
    for raw in inputs {
        let whole = find_end(raw, 0);
        let mut resume = 0;
        let mut bytewise = None;
        for n in 1..=raw.len() {
            match find_end(&raw[..n], resume) {
                Ok(HeadEnd::Partial { resume_at }) => resume = resume_at,
                other => {
                    bytewise = Some(other);
                    break;
                }
            }
        }
        assert_eq!(Some(whole), bytewise, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn overflow_names_the_target_or_the_head() {
    let limits = Limits {
        max_target_bytes: 8,
        ..Limits::default()
    };
    let cases: &[(&str, &[u8], ProtocolError)] = &[
        (
            "long target, line ended",
            b"GET /123456789 HTTP/1.1\r\nHost: a",
            TargetTooLong,
        ),
        (
            "long target, line unfinished",
            b"GET /123456789 HT",
            TargetTooLong,
        ),
        ("target unterminated", b"GET /1234", TargetTooLong),
        (
            "short target, big fields",
            b"GET /1 HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaa",
            HeadTooLarge,
        ),
        (
            "target exactly at the limit",
            b"GET /1234567 HTTP/1.1\r\nX: aaaaaaaa",
            HeadTooLarge,
        ),
        ("no space at all", b"GETGETGETGETGETGET", HeadTooLarge),
        (
            "line ended without target end",
            b"GET /x\r\nX: aaaaaaaaaaaaa",
            HeadTooLarge,
        ),
    ];
    for (name, raw, want) in cases {
        assert_eq!(overflow_error(raw, &limits), *want, "{name}");
    }
}

#[test]
fn tchar_matches_rfc_9110() {
    let tchars: Vec<u8> = (0u8..=255).filter(|&b| is_tchar(b)).collect();
    let mut want: Vec<u8> = b"!#$%&'*+-.^_`|~".to_vec();
    want.extend(b'0'..=b'9');
    want.extend(b'A'..=b'Z');
    want.extend(b'a'..=b'z');
    want.sort_unstable();
    assert_eq!(tchars, want);
}
