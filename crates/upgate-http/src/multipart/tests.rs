//! The parser on forms as curl, Python requests and browsers write them, on every violation,
//! and on bytes that look like a boundary but are data. Most tests go through
//! `check::check_multipart_with`, which also feeds the body byte by byte and at a few cuts and
//! asserts the runs agree.

use super::*;
use crate::check::{check_multipart_with, drive_multipart, MultipartOutcome, MultipartStep};

fn head(name: &str, filename: Option<&str>, content_type: Option<&str>) -> PartHead {
    PartHead {
        name: name.into(),
        filename: filename.map(Into::into),
        content_type: content_type.map(Into::into),
    }
}

fn text(name: &str, value: &[u8]) -> (PartHead, Vec<u8>) {
    (head(name, None, None), value.to_vec())
}

fn file(name: &str, filename: &str, content_type: &str, data: &[u8]) -> (PartHead, Vec<u8>) {
    (
        head(name, Some(filename), Some(content_type)),
        data.to_vec(),
    )
}

/// The parts of a complete form, the same whole, cut anywhere and byte by byte.
fn parts(body: &[u8], boundary: &[u8]) -> Vec<(PartHead, Vec<u8>)> {
    let run = check_multipart_with(body, boundary, &[1, 7, 50, 51, 120, 300]);
    assert_eq!(run.outcome, MultipartOutcome::Complete, "{run:?}");
    run.parts()
}

/// The error a body ends in, the same whole, cut anywhere and byte by byte.
fn error(body: &[u8], boundary: &[u8]) -> MultipartError {
    match check_multipart_with(body, boundary, &[3, 40, 41]).outcome {
        MultipartOutcome::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A one-field form whose part has `headers` (each line with its CRLF).
fn with_headers(headers: &str) -> Vec<u8> {
    format!("--b\r\n{headers}\r\nvalue\r\n--b--\r\n").into_bytes()
}

// ---- Forms as clients write them ----

#[test]
fn a_curl_form_with_a_field_and_a_file() {
    // curl 8.5: curl -F key=avatars/a.txt -F file=@a.txt http://…
    let boundary = b"------------------------V2ymHFg03ehbqgZCaKO6jy";
    let body = concat!(
        "--------------------------V2ymHFg03ehbqgZCaKO6jy\r\n",
        "Content-Disposition: form-data; name=\"key\"\r\n",
        "\r\n",
        "avatars/a.txt\r\n",
        "--------------------------V2ymHFg03ehbqgZCaKO6jy\r\n",
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n",
        "Content-Type: text/plain\r\n",
        "\r\n",
        "hello\n",
        "\r\n",
        "--------------------------V2ymHFg03ehbqgZCaKO6jy--\r\n",
    );
    assert_eq!(
        parts(body.as_bytes(), boundary),
        [
            text("key", b"avatars/a.txt"),
            file("file", "a.txt", "text/plain", b"hello\n"),
        ]
    );
}

#[test]
fn a_python_requests_form_with_fields_then_a_file() {
    // requests.post(url, data={"key": "k", "note": "x"}, files={"file": ("report.csv", b, "text/csv")})
    let boundary = b"9d4e6ab0d8f04f1f8d1f3e1b8b3a5c21";
    let body = concat!(
        "--9d4e6ab0d8f04f1f8d1f3e1b8b3a5c21\r\n",
        "Content-Disposition: form-data; name=\"key\"\r\n\r\n",
        "reports/${filename}\r\n",
        "--9d4e6ab0d8f04f1f8d1f3e1b8b3a5c21\r\n",
        "Content-Disposition: form-data; name=\"note\"\r\n\r\n",
        "x\r\n",
        "--9d4e6ab0d8f04f1f8d1f3e1b8b3a5c21\r\n",
        "Content-Disposition: form-data; name=\"file\"; filename=\"report.csv\"\r\n",
        "Content-Type: text/csv\r\n\r\n",
        "a,b\r\n1,2\r\n",
        "\r\n",
        "--9d4e6ab0d8f04f1f8d1f3e1b8b3a5c21--\r\n",
    );
    assert_eq!(
        parts(body.as_bytes(), boundary),
        [
            text("key", b"reports/${filename}"),
            text("note", b"x"),
            file("file", "report.csv", "text/csv", b"a,b\r\n1,2\r\n"),
        ]
    );
}

#[test]
fn a_chrome_form_with_binary_file_bytes() {
    let boundary = b"----WebKitFormBoundaryePkpFF7tjBAqx29L";
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\r\n--\r\n-\x00\xff";
    let mut body = concat!(
        "------WebKitFormBoundaryePkpFF7tjBAqx29L\r\n",
        "Content-Disposition: form-data; name=\"key\"\r\n",
        "\r\n",
        "avatars/${filename}\r\n",
        "------WebKitFormBoundaryePkpFF7tjBAqx29L\r\n",
        "Content-Disposition: form-data; name=\"file\"; filename=\"photo.png\"\r\n",
        "Content-Type: image/png\r\n",
        "\r\n",
    )
    .as_bytes()
    .to_vec();
    body.extend_from_slice(png);
    body.extend_from_slice(b"\r\n------WebKitFormBoundaryePkpFF7tjBAqx29L--\r\n");
    assert_eq!(
        parts(&body, boundary),
        [
            text("key", b"avatars/${filename}"),
            file("file", "photo.png", "image/png", png),
        ]
    );
}

#[test]
fn a_browser_sends_raw_utf8_and_escapes_quote_cr_lf_as_percent() {
    // Firefox and Chrome: names raw UTF-8 in quotes; `"`, CR, LF as %22, %0D, %0A; `%` itself
    // and every other byte as they are.
    let body = concat!(
        "-----------------------------9051914041544843365972754266\r\n",
        "Content-Disposition: form-data; name=\"caf\u{e9} %22x%22%0D%0A\"\r\n\r\n",
        "v\r\n",
        "-----------------------------9051914041544843365972754266\r\n",
        "Content-Disposition: form-data; name=\"file\"; filename=\"r\u{e9}sum\u{e9} \u{6587}\u{4ef6} 100%.pdf\"\r\n",
        "Content-Type: application/pdf\r\n\r\n",
        "%PDF-1.7\r\n",
        "-----------------------------9051914041544843365972754266--\r\n",
    );
    let got = parts(
        body.as_bytes(),
        b"---------------------------9051914041544843365972754266",
    );
    assert_eq!(got[0], text("caf\u{e9} \"x\"\r\n", b"v"));
    assert_eq!(
        got[1],
        file(
            "file",
            "r\u{e9}sum\u{e9} \u{6587}\u{4ef6} 100%.pdf",
            "application/pdf",
            b"%PDF-1.7"
        )
    );
    // Only those three escapes are decoded.
    let body = with_headers("Content-Disposition: form-data; name=\"a%41%2522%0d%0a\"\r\n");
    assert_eq!(parts(&body, b"b")[0].0.name, "a%41%2522\r\n");
}

#[test]
fn filename_star_wins_over_filename() {
    let body = with_headers(concat!(
        "Content-Disposition: form-data; name=\"file\"; filename=\"fallback.txt\"; ",
        "filename*=UTF-8''%E6%96%87%E4%BB%B6%20%22q%22.txt\r\n",
    ));
    assert_eq!(
        parts(&body, b"b")[0].0.filename.as_deref(),
        Some("\u{6587}\u{4ef6} \"q\".txt")
    );
    // Before `filename` too, with a language tag and a lower-case charset.
    let body = with_headers(
        "Content-Disposition: form-data; filename*=utf-8'en'na%C3%AFve.txt; filename=\"x\"; name=f\r\n",
    );
    assert_eq!(
        parts(&body, b"b")[0].0.filename.as_deref(),
        Some("na\u{ef}ve.txt")
    );
    // ISO-8859-1: each byte one character.
    let body = with_headers(
        "Content-Disposition: form-data; name=f; filename*=ISO-8859-1''%A3%20rates\r\n",
    );
    assert_eq!(
        parts(&body, b"b")[0].0.filename.as_deref(),
        Some("\u{a3} rates")
    );
}

#[test]
fn quoted_strings_unescape_only_quote_and_backslash() {
    // urllib3 writes `\"` and `\\`; a browser writes a backslash in a file name as it is.
    let body = with_headers(
        "Content-Disposition: form-data; name=\"a\\\"b\"; filename=\"C:\\\\dir\\file.txt\"\r\n",
    );
    let head = &parts(&body, b"b")[0].0;
    assert_eq!(head.name, "a\"b");
    assert_eq!(head.filename.as_deref(), Some("C:\\dir\\file.txt"));
}

#[test]
fn header_names_and_parameter_names_are_case_insensitive() {
    let body = with_headers(
        "CONTENT-DISPOSITION: Form-Data; NAME=\"x\"; FileName=\"y.bin\"\r\ncontent-type:application/octet-stream \r\nX-Other: 1\r\n",
    );
    assert_eq!(
        parts(&body, b"b"),
        [file("x", "y.bin", "application/octet-stream", b"value")]
    );
}

#[test]
fn unquoted_parameters_and_optional_whitespace_are_read() {
    let body = with_headers("Content-Disposition: form-data;name=x ;filename = y.txt;\r\n");
    assert_eq!(parts(&body, b"b")[0].0, head("x", Some("y.txt"), None));
}

#[test]
fn an_empty_file_input_is_a_file_part_with_an_empty_name_and_body() {
    let body = concat!(
        "--b\r\n",
        "Content-Disposition: form-data; name=\"file\"; filename=\"\"\r\n",
        "Content-Type: application/octet-stream\r\n\r\n",
        "\r\n--b--\r\n"
    );
    let got = parts(body.as_bytes(), b"b");
    assert_eq!(got, [file("file", "", "application/octet-stream", b"")]);
    assert!(got[0].0.is_file());
    assert!(!text("key", b"").0.is_file());
}

// ---- Body bytes ----

#[test]
fn the_crlf_before_a_delimiter_belongs_to_the_delimiter() {
    for data in [
        &b"line\r\n"[..],
        b"\r\n",
        b"\r\n\r\n",
        b"\r",
        b"\n",
        b"x\r\n\r\n\r\n",
    ] {
        let mut body =
            b"--b\r\nContent-Disposition: form-data; name=f; filename=f\r\n\r\n".to_vec();
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n--b--");
        assert_eq!(parts(&body, b"b")[0].1, data, "{data:?}");
    }
}

#[test]
fn lines_that_look_like_the_boundary_are_data() {
    let boundary = b"AaB03x";
    for inside in [
        &b"\r\n--AaB03xX"[..], // more after the boundary
        b"\r\n--AaB03",        // a prefix of it
        b"\r\n--AaB03\r\n",
        b"--AaB03x\r\n",             // no CRLF before it
        b"x--AaB03x--",              // no CRLF before the close delimiter
        b"\n--AaB03x\r\n",           // a bare LF before it
        b"\r--AaB03x\r\n",           // a bare CR before it
        b"\r\n--AaB03x\rX",          // CR not followed by LF
        b"\r\n--AaB03x-X",           // one dash
        b"\r\n--AaB03x \t X\r\n",    // padding, then not CRLF
        b"\r\n--aab03x\r\n",         // boundaries are case-sensitive
        b"\r\n-AaB03x\r\n",          // one leading dash
        b"\r\n--\r\n--AaB03\r\n--A", // several near misses
    ] {
        let mut data = b"before".to_vec();
        data.extend_from_slice(inside);
        data.extend_from_slice(b"after");
        let mut body =
            b"--AaB03x\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n".to_vec();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\r\n--AaB03x--\r\n");
        assert_eq!(
            parts(&body, boundary)[0].1,
            data,
            "{:?}",
            String::from_utf8_lossy(inside)
        );
        // And at the very start of the part's body (right after its header block).
        let mut body =
            b"--AaB03x\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n".to_vec();
        body.extend_from_slice(inside);
        body.extend_from_slice(b"\r\n--AaB03x--\r\n");
        assert_eq!(parts(&body, boundary)[0].1, inside);
    }
}

#[test]
fn transport_padding_after_a_delimiter_is_allowed_up_to_its_limit() {
    let pad = " \t".repeat(MAX_TRANSPORT_PADDING / 2);
    let body = format!(
        "--b{pad}\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b{pad}\r\nContent-Disposition: form-data; name=c\r\n\r\n2\r\n--b--{pad}\r\n"
    );
    assert_eq!(
        parts(body.as_bytes(), b"b"),
        [text("a", b"1"), text("c", b"2")]
    );
    let body = format!("--b{pad} \r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--");
    assert_eq!(error(body.as_bytes(), b"b"), MultipartError::BadDelimiter);
}

#[test]
fn the_preamble_and_the_epilogue_are_ignored() {
    let body = concat!(
        "This is a preamble.\r\n-- not a delimiter --b\r\n--bb\r\n",
        "\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n",
        "--b--\r\nThis is the epilogue.\r\n--b\r\ngarbage"
    );
    assert_eq!(parts(body.as_bytes(), b"b"), [text("a", b"1")]);
    // A body may start with the CRLF of its first delimiter.
    assert_eq!(
        parts(
            b"\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--",
            b"b"
        ),
        [text("a", b"1")]
    );
}

#[test]
fn a_form_without_parts_ends_at_once() {
    let run = check_multipart_with(b"--b--\r\n", b"b", &[]);
    assert_eq!(run.steps, [MultipartStep::End]);
    assert_eq!(run.outcome, MultipartOutcome::Complete);
}

#[test]
fn data_comes_as_ranges_of_the_input_and_held_bytes_come_back() {
    let mut p = MultipartParser::new(b"b");
    let head = b"--b\r\nContent-Disposition: form-data; name=f; filename=x\r\n\r\n";
    assert_eq!(
        p.parse(head),
        Ok((
            head.len(),
            MultipartEvent::PartStart(head_of("f", Some("x")))
        ))
    );
    // A piece ending in what may be a delimiter: the data before it is a range, the rest is
    // held inside.
    let piece = b"0123\r\n--b";
    assert_eq!(p.parse(piece), Ok((4, MultipartEvent::Data(0..4))));
    assert_eq!(p.parse(&piece[4..]), Ok((5, MultipartEvent::NeedData)));
    assert_eq!(p.buffered(), 5);
    // It was not one: the held bytes come back as data, then the new piece is read.
    assert_eq!(p.parse(b"X\r\n--b--"), Ok((0, MultipartEvent::Held)));
    assert_eq!(p.held(), b"\r\n--b");
    assert_eq!(p.parse(b"X\r\n--b--"), Ok((1, MultipartEvent::Data(0..1))));
    assert!(p.held().is_empty());
    assert_eq!(p.parse(b"\r\n--b--"), Ok((7, MultipartEvent::PartEnd)));
    assert_eq!(p.finish(), Ok(()));
    assert_eq!(p.parse(b"epilogue"), Ok((8, MultipartEvent::End)));
    assert_eq!(p.parse(b"more"), Ok((4, MultipartEvent::NeedData)));
    assert_eq!(p.parts_seen(), 1);
}

#[test]
fn a_delimiter_split_across_pieces_is_found() {
    let mut p = MultipartParser::new(b"b");
    p.parse(b"--b\r\nContent-Disposition: form-data; name=f\r\n\r\n")
        .unwrap();
    assert_eq!(p.parse(b"ab\r"), Ok((2, MultipartEvent::Data(0..2))));
    assert_eq!(p.parse(b"\r"), Ok((1, MultipartEvent::NeedData)));
    assert_eq!(p.parse(b"\n-"), Ok((2, MultipartEvent::NeedData)));
    assert_eq!(p.parse(b"-b \t"), Ok((4, MultipartEvent::NeedData)));
    assert_eq!(p.parse(b"\r"), Ok((1, MultipartEvent::NeedData)));
    assert_eq!(
        p.parse(b"\nContent-Disposition: form-data; name=g\r\n\r\n"),
        Ok((1, MultipartEvent::PartEnd))
    );
    assert_eq!(p.max_held(), 5 + MAX_TRANSPORT_PADDING + 1);
}

#[test]
fn a_failed_candidate_releases_only_up_to_the_next_cr() {
    // `\r\n--b\r` then `\r`: the first CR's candidate fails; the second CR may start one.
    let mut p = MultipartParser::new(b"b");
    p.parse(b"--b\r\nContent-Disposition: form-data; name=f\r\n\r\n")
        .unwrap();
    assert_eq!(p.parse(b"\r\n--b\r"), Ok((6, MultipartEvent::NeedData)));
    assert_eq!(p.parse(b"\r\n--b--"), Ok((0, MultipartEvent::Held)));
    assert_eq!(p.held(), b"\r\n--b");
    assert_eq!(p.parse(b"\r\n--b--"), Ok((0, MultipartEvent::Held)));
    assert_eq!(p.held(), b"\r");
    assert_eq!(p.parse(b"\r\n--b--"), Ok((7, MultipartEvent::PartEnd)));
}

fn head_of(name: &str, filename: Option<&str>) -> PartHead {
    head(name, filename, None)
}

// ---- Violations ----

#[test]
fn a_body_without_its_close_delimiter_is_truncated() {
    for body in [
        &b""[..],
        b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1",
        b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b",
        b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b-",
        b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b\r\n",
        b"--b\r\nContent-Disposition: form-data; na",
        b"preamble only",
    ] {
        let run = check_multipart_with(body, b"b", &[2]);
        assert_eq!(run.outcome, MultipartOutcome::Truncated, "{body:?}");
    }
    let mut p = MultipartParser::new(b"b");
    p.parse(b"--b\r\n").unwrap();
    assert_eq!(p.finish(), Err(MultipartError::Truncated));
}

#[test]
fn each_part_needs_a_form_data_disposition_with_a_name() {
    use MultipartError::*;
    assert_eq!(
        error(&with_headers("Content-Type: text/plain\r\n"), b"b"),
        NoContentDisposition
    );
    assert_eq!(error(&with_headers(""), b"b"), NoContentDisposition);
    assert_eq!(
        error(
            &with_headers("Content-Disposition: attachment; name=\"a\"\r\n"),
            b"b"
        ),
        NotFormData
    );
    assert_eq!(
        error(
            &with_headers("Content-Disposition: form-data; filename=\"a\"\r\n"),
            b"b"
        ),
        MissingName
    );
    assert_eq!(
        error(&with_headers("Content-Disposition: ; name=a\r\n"), b"b"),
        BadPartHeaders("Content-Disposition has no disposition type")
    );
}

#[test]
fn malformed_part_headers_are_refused_with_a_reason() {
    let cases = [
        (
            "Content-Disposition: form-data; name=a\nX: y\r\n",
            "a header line does not end with CRLF",
        ),
        (
            "Content-Disposition: form-data; name=a\r\n folded\r\n",
            "a folded header line (obs-fold)",
        ),
        (
            "Content-Disposition form-data; name=a\r\n",
            "a header line has no colon",
        ),
        (
            "Content Disposition: form-data; name=a\r\n",
            "a header name is not a token",
        ),
        (
            "Content-Disposition: form-data; name=a\x01\r\n",
            "a control byte in a header value",
        ),
        (
            "Content-Disposition: form-data; name=a\rb\r\n",
            "a control byte in a header value",
        ),
        (
            "Content-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n",
            "Content-Disposition or Content-Type appears twice",
        ),
        (
            "Content-Disposition: form-data; name=a; name=b\r\n",
            "a Content-Disposition parameter appears twice",
        ),
        (
            "Content-Disposition: form-data; name=\"a\r\n",
            "a quoted string is not closed",
        ),
        (
            "Content-Disposition: form-data; name=\"a\"b\r\n",
            "a parameter is not separated by ';'",
        ),
        (
            "Content-Disposition: form-data; name\r\n",
            "a parameter has no '=' after its name",
        ),
        (
            "Content-Disposition: form-data; name=\r\n",
            "a parameter has an empty value",
        ),
        (
            "Content-Disposition: form-data; =a\r\n",
            "a parameter name is not a token",
        ),
        (
            "Content-Disposition: form-data; name=a; filename*=\"UTF-8''x\"\r\n",
            "filename* is a quoted string",
        ),
        (
            "Content-Disposition: form-data; name=a; filename*=x.txt\r\n",
            "filename* is not charset'language'value",
        ),
        (
            "Content-Disposition: form-data; name=a; filename*=UTF-8''a b\r\n",
            "a parameter is not separated by ';'",
        ),
        (
            "Content-Disposition: form-data; name=a; filename*=UTF-8''a\"b\r\n",
            "a parameter is not separated by ';'",
        ),
        (
            "Content-Disposition: form-data; name=a; filename*=UTF-8''a(b\r\n",
            "filename* has a byte that must be percent-encoded",
        ),
        (
            "Content-Disposition: form-data; name=a; filename*=UTF-8''%4\r\n",
            "filename* has a byte that must be percent-encoded",
        ),
        (
            "Content-Disposition: form-data; name=a; filename*=UTF-8''%FF\r\n",
            "filename* is not valid UTF-8",
        ),
        (
            "Content-Disposition: form-data; name=a; filename*=Shift_JIS''%82%A0\r\n",
            "filename* has a charset other than UTF-8 or ISO-8859-1",
        ),
        (
            "Content-Disposition: form-data; name=a; filename*=UTF-8'e n'x\r\n",
            "a parameter is not separated by ';'",
        ),
        (
            "Content-Disposition: form-data; name=a; filename*=UTF-8'e_n'x\r\n",
            "filename* has a malformed language tag",
        ),
        (
            "Content-Disposition: form-data; name=a\r\nContent-Type: text\r\n",
            "the part's Content-Type is not type/subtype",
        ),
        (
            "Content-Disposition: form-data; name=a\r\nContent-Type: text/plain; charset\r\n",
            "a parameter has no '=' after its name",
        ),
    ];
    for (headers, why) in cases {
        assert_eq!(
            error(&with_headers(headers), b"b"),
            MultipartError::BadPartHeaders(why),
            "{headers:?}"
        );
    }
    // Names must be UTF-8 (a browser always sends UTF-8 for a UTF-8 page).
    let mut body =
        b"--b\r\nContent-Disposition: form-data; name=\"\xe9\"\r\n\r\nv\r\n--b--".to_vec();
    assert_eq!(
        error(&body, b"b"),
        MultipartError::BadPartHeaders("the part's name is not UTF-8")
    );
    body =
        b"--b\r\nContent-Disposition: form-data; name=a; filename=\"\xff.txt\"\r\n\r\nv\r\n--b--"
            .to_vec();
    assert_eq!(
        error(&body, b"b"),
        MultipartError::BadPartHeaders("the part's filename is not UTF-8")
    );
}

#[test]
fn a_header_block_over_the_limit_is_refused() {
    let line = "Content-Disposition: form-data; name=a\r\n";
    // The block with its empty line exactly at the limit is fine; one byte more is not.
    let pad = MAX_PART_HEADER_BYTES - line.len() - "X: \r\n".len() - 2;
    let fits = with_headers(&format!("{line}X: {}\r\n", "p".repeat(pad)));
    assert_eq!(parts(&fits, b"b"), [text("a", b"value")]);
    let over = with_headers(&format!("{line}X: {}\r\n", "p".repeat(pad + 1)));
    assert_eq!(error(&over, b"b"), MultipartError::HeadersTooLarge);
    // Also without any empty line at all.
    let endless = format!("--b\r\n{}", "x".repeat(MAX_PART_HEADER_BYTES + 10));
    assert_eq!(
        error(endless.as_bytes(), b"b"),
        MultipartError::HeadersTooLarge
    );
}

fn form_of(n: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..n {
        body.extend_from_slice(
            format!("--b\r\nContent-Disposition: form-data; name=f{i}\r\n\r\n{i}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(b"--b--\r\n");
    body
}

#[test]
fn at_most_max_parts_parts() {
    assert_eq!(parts(&form_of(MAX_PARTS), b"b").len(), MAX_PARTS);
    assert_eq!(
        error(&form_of(MAX_PARTS + 1), b"b"),
        MultipartError::TooManyParts
    );
}

#[test]
fn a_preamble_over_the_limit_is_refused() {
    let form = b"\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--";
    let mut body = vec![b'p'; MAX_PREAMBLE_BYTES];
    body.extend_from_slice(form);
    assert_eq!(parts(&body, b"b"), [text("a", b"1")]);
    let mut body = vec![b'p'; MAX_PREAMBLE_BYTES + 1];
    body.extend_from_slice(form);
    assert_eq!(error(&body, b"b"), MultipartError::PreambleTooLarge);
}

#[test]
fn an_error_is_sticky_and_finish_repeats_it() {
    let mut p = MultipartParser::new(b"b");
    let body = with_headers("Content-Type: text/plain\r\n");
    let mut at = 0;
    let e = loop {
        match p.parse(&body[at..]) {
            Ok((used, _)) => at += used,
            Err(e) => break e,
        }
    };
    assert_eq!(e, MultipartError::NoContentDisposition);
    assert_eq!(p.parse(b"--b--"), Err(e));
    assert_eq!(p.finish(), Err(e));
}

#[test]
fn every_error_reads_as_a_sentence() {
    use MultipartError::*;
    for e in [
        NotMultipart,
        NoBoundary,
        BadBoundary,
        PreambleTooLarge,
        BadDelimiter,
        HeadersTooLarge,
        TooManyParts,
        BadPartHeaders("why"),
        NoContentDisposition,
        NotFormData,
        MissingName,
        Truncated,
    ] {
        let s = e.to_string();
        assert!(s.len() > 20 && !s.ends_with('.'), "{s}");
    }
    assert_eq!(
        BadPartHeaders("a header line has no colon").to_string(),
        "malformed multipart part headers: a header line has no colon"
    );
}

// ---- The boundary of a Content-Type ----

#[test]
fn boundary_of_reads_what_clients_send() {
    let ok = |ct: &str, b: &str| {
        assert_eq!(
            boundary_of(ct.as_bytes()),
            Ok(b.as_bytes().to_vec()),
            "{ct}"
        )
    };
    ok(
        "multipart/form-data; boundary=------------------------V2ymHFg03ehbqgZCaKO6jy",
        "------------------------V2ymHFg03ehbqgZCaKO6jy",
    );
    ok(
        "multipart/form-data; boundary=----WebKitFormBoundaryePkpFF7tjBAqx29L",
        "----WebKitFormBoundaryePkpFF7tjBAqx29L",
    );
    ok(
        "multipart/form-data; boundary=9d4e6ab0d8f04f1f8d1f3e1b8b3a5c21",
        "9d4e6ab0d8f04f1f8d1f3e1b8b3a5c21",
    );
    ok("Multipart/Form-Data;BOUNDARY=\"a:b=c (d)?\"", "a:b=c (d)?");
    ok(
        "multipart/form-data; charset=utf-8; boundary=x; foo=\"b;ar\"",
        "x",
    );
    ok("  multipart/form-data ; boundary = x  ", "x");
    ok(
        "multipart/form-data; boundary=----=_Part_0_1.2",
        "----=_Part_0_1.2",
    );
    ok(
        &format!("multipart/form-data; boundary={}", "7".repeat(70)),
        &"7".repeat(70),
    );
}

#[test]
fn boundary_of_refuses_other_types_and_bad_boundaries() {
    use MultipartError::*;
    let err = |ct: &[u8]| boundary_of(ct).unwrap_err();
    assert_eq!(err(b"text/plain; boundary=x"), NotMultipart);
    assert_eq!(err(b"multipart/mixed; boundary=x"), NotMultipart);
    assert_eq!(err(b"multipart/form-datax; boundary=x"), NotMultipart);
    assert_eq!(err(b""), NotMultipart);
    assert_eq!(err(b"multipart/form-data"), NoBoundary);
    assert_eq!(err(b"multipart/form-data; charset=utf-8"), NoBoundary);
    assert_eq!(err(b"multipart/form-data; boundary=\"\""), BadBoundary);
    assert_eq!(
        err(format!("multipart/form-data; boundary={}", "7".repeat(71)).as_bytes()),
        BadBoundary
    );
    assert_eq!(
        err(b"multipart/form-data; boundary=\"ends with space \""),
        BadBoundary
    );
    assert_eq!(err(b"multipart/form-data; boundary=a*b"), BadBoundary);
    assert_eq!(
        err(b"multipart/form-data; boundary=\"caf\xc3\xa9\""),
        BadBoundary
    );
    assert_eq!(
        err(b"multipart/form-data; boundary=a; boundary=a"),
        BadBoundary
    );
    assert_eq!(err(b"multipart/form-data; boundary=\"open"), BadBoundary);
    assert_eq!(err(b"multipart/form-data; boundary"), BadBoundary);
}

#[test]
fn a_one_byte_at_a_time_run_matches_the_whole_run_event_for_event() {
    // drive_multipart joins body bytes; here the raw events are compared without joining.
    let body = form_of(3);
    let whole = drive_multipart(&body, b"b", &[]);
    assert_eq!(whole.outcome, MultipartOutcome::Complete);
    assert_eq!(
        whole
            .steps
            .iter()
            .filter(|s| **s == MultipartStep::PartEnd)
            .count(),
        3
    );
}

#[test]
fn moved_body_bytes_checked_in_place_give_the_same_file() {
    let file_bytes: Vec<u8> = (0..5000u32)
        .flat_map(|i| format!("line {i}\r\n--XYZ not a delimiter\r\n").into_bytes())
        .collect();
    let mut body =
        b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n".to_vec();
    let start = body.len();
    body.extend_from_slice(&file_bytes);
    body.extend_from_slice(b"\r\n--XYZ--\r\n");
    // Moves the middle of the file, 40 bytes short of the close delimiter.
    let cut = start + 1000 + 4;
    let (data, found, ended) =
        crate::check::moved_run(&body, b"XYZ", cut, body.len() - 40).expect("in the file");
    assert!(ended, "the close delimiter was seen");
    assert!(!found, "no delimiter line inside the file");
    assert_eq!(data, file_bytes);
}

#[test]
fn a_delimiter_inside_moved_bytes_is_found() {
    let mut body =
        b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n".to_vec();
    body.extend_from_slice(&[b'x'; 300]);
    body.extend_from_slice(b"\r\n--B\r\nContent-Disposition: form-data; name=\"late\"\r\n\r\nv");
    body.extend_from_slice(&[b'y'; 300]);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let mut p = MultipartParser::new(b"B");
    let (used, ev) = p.parse(&body).unwrap();
    assert!(matches!(ev, MultipartEvent::PartStart(_)));
    assert_eq!(p.release_body(), Some(Vec::new()));
    assert_eq!(p.find_delimiter(&body[used..]).unwrap(), Some(300));
    // A line cut off by the window's end is left to the next window.
    assert_eq!(p.find_delimiter(&body[used..used + 304]).unwrap(), None);
    // Outside a body there is nothing to release.
    assert_eq!(MultipartParser::new(b"B").release_body(), None);
}

/// The in-place search switches between `memchr` for CR and the pair search as CRs come
/// often or seldom (`search.rs`): a delimiter line is found wherever it starts, whatever
/// search was running there, where the pair search's stretch ends, and across the ends of the
/// blocks the search looks ahead from (a line cut by one lies in two).
#[test]
fn the_in_place_check_finds_a_delimiter_line_wherever_the_search_switches() {
    let boundary = b"----WebKitFormBoundaryePkpFF7tjBAqx29L";
    let parser = MultipartParser::new(boundary);
    let line = [b"\r\n--".as_slice(), boundary, b"\r\n"].concat();
    // Bytes with a CR every 97 (the pair search runs), then none (memchr runs), then dense again.
    let mut bytes: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 23) as u8).collect();
    for i in (0..80_000)
        .step_by(97)
        .chain((150_000..200_000).step_by(89))
    {
        bytes[i] = b'\r';
    }
    assert_eq!(parser.find_delimiter(&bytes), Ok(None));
    // The first stretch runs from the byte after the CR at 0 for 64 KiB.
    let stretch_end = 1 + 64 * 1024;
    // Blocks of 4096 bytes from the start: one in the first stretch, one where memchr runs, one
    // in the last stretch.
    let block_ends = [8 * 4096, 25 * 4096, 40 * 4096];
    let n = line.len();
    let across_blocks = block_ends
        .into_iter()
        .flat_map(move |end| (0..n + 8).map(move |d| end - n - 4 + d));
    let places = (0..120)
        .map(|d| stretch_end - 60 + d)
        .chain(across_blocks)
        .chain([
            1,
            97,
            500,
            79_990,
            100_000,
            149_990,
            150_001,
            199_000 - line.len(),
        ]);
    for at in places {
        let mut b = bytes.clone();
        b[at..at + line.len()].copy_from_slice(&line);
        let want = parser.find_delimiter_by_cr(&b).unwrap();
        assert!(
            want.is_some_and(|w| w <= at),
            "the oracle finds the line at {at}"
        );
        assert_eq!(parser.find_delimiter(&b), Ok(want), "a line at {at}");
    }
}
