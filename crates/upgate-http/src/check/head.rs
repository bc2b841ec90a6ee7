//! Invariants of request-head parsing ([`check_head`]).

use super::*;

/// `find_end`, `parse_prefix` and `parse_head` on arbitrary bytes.
///
/// - none of them panics;
/// - `find_end`: `Complete(len)` ends at the first CRLF CRLF; resuming from a prefix's
///   `Partial { resume_at }` gives the same answer as one scan; its only error is `BadLineEnding`;
/// - `parse_prefix`: a head ends with CRLF CRLF, where `find_end` says (unless blank lines
///   precede it); the bytes after it are not looked at (alone or with another tail, the same
///   head); `parse_head` gives the same head or the same error (`BadRequestLine` when
///   incomplete);
/// - a parsed head satisfies [`check_parsed_head`]; an error satisfies [`check_error`].
pub fn check_head(data: &[u8]) {
    let end = find_end(data, 0);
    match end {
        Ok(HeadEnd::Complete(len)) => {
            assert!(
                len >= 4 && len <= data.len(),
                "Complete({len}) outside {} bytes",
                data.len()
            );
            assert_eq!(&data[len - 4..len], b"\r\n\r\n");
            assert!(
                memchr::memmem::find(&data[..len - 2], b"\r\n\r\n").is_none(),
                "Complete({len}) is not the first CRLF CRLF"
            );
        }
        Ok(HeadEnd::Partial { resume_at }) => {
            assert!(resume_at <= data.len());
            assert!(resume_at == 0 || data[resume_at - 1] == b'\n');
        }
        Err(e) => {
            check_error(e);
            assert_eq!(
                e,
                ProtocolError::BadLineEnding,
                "find_end only rejects line endings"
            );
        }
    }
    // Resuming: scan a prefix, then the whole input from where the prefix scan stopped.
    for cut in [data.len() / 3, data.len() / 2, data.len().saturating_sub(1)] {
        if let Ok(HeadEnd::Partial { resume_at }) = find_end(&data[..cut], 0) {
            assert_eq!(
                find_end(data, resume_at),
                end,
                "resume_at {resume_at} from a {cut}-byte prefix"
            );
        }
    }

    for limits in limit_sets() {
        check_parse(data, end, &limits);
    }
}

/// `parse_prefix` and `parse_head` on the same bytes, against each other and `find_end`.
fn check_parse(data: &[u8], end: Result<HeadEnd, ProtocolError>, limits: &Limits) {
    let prefix = parse_prefix(data, limits);
    let prefix_len = match &prefix {
        Ok(Some(parsed)) => {
            let len = parsed.len();
            assert!(
                len >= 4 && len <= data.len(),
                "head of {len} bytes in {}",
                data.len()
            );
            assert_eq!(
                &data[len - 4..len],
                b"\r\n\r\n",
                "a head ends with CRLF CRLF"
            );
            // The bytes after the head are not looked at: alone, or followed by anything else,
            // the head parses the same.
            let head = |bytes: &[u8]| match parse_prefix(bytes, limits) {
                Ok(Some(p)) => p.into_head(Bytes::copy_from_slice(&bytes[..len])),
                other => panic!("the head alone or with another tail gives {other:?}"),
            };
            let alone = head(&data[..len]);
            let mut other_tail = data[..len].to_vec();
            other_tail.extend_from_slice(b"\n\r\0 \r\n\r\nGET / HTTP/1.1");
            assert_eq!(head(&other_tail), alone);
            // Without leading blank lines, the one-pass parse and the line scan agree on the end.
            if !data.starts_with(b"\r\n") {
                assert_eq!(end, Ok(HeadEnd::Complete(len)), "find_end vs parse_prefix");
            }
            Some(len)
        }
        Ok(None) => None,
        Err(e) => {
            check_error(*e);
            None
        }
    };
    if let Ok(HeadEnd::Complete(len)) = end {
        if !data.starts_with(b"\r\n") {
            assert!(
                !matches!(prefix, Ok(Some(_))) || prefix_len == Some(len),
                "parse_prefix ends the head elsewhere than find_end"
            );
        }
    }

    let raw = Bytes::copy_from_slice(data);
    match parse_head(raw.clone(), limits) {
        Ok(head) => {
            assert_eq!(
                Some(head.raw().len()),
                prefix_len,
                "parse_head vs parse_prefix"
            );
            check_parsed_head(&head, &raw, limits);
        }
        Err(e) => {
            check_error(e);
            match prefix {
                Ok(None) => assert_eq!(e, ProtocolError::BadRequestLine),
                Err(pe) => assert_eq!(e, pe, "parse_head vs parse_prefix"),
                Ok(Some(_)) => panic!("parse_prefix accepted what parse_head refused: {e:?}"),
            }
        }
    }
    // The head as `find_end` delimits it.
    if let Ok(HeadEnd::Complete(len)) = end {
        let raw = Bytes::copy_from_slice(&data[..len]);
        match parse_head(raw.clone(), limits) {
            Ok(head) => check_parsed_head(&head, &raw, limits),
            Err(e) => check_error(e),
        }
    }
}

/// What a successfully parsed head promises: it is a prefix of `raw` (same memory), every
/// accessor is a view of it, the limits hold, and the framing decisions agree with the fields
/// they came from.
pub fn check_parsed_head(head: &RequestHead, raw: &Bytes, limits: &Limits) {
    // The head is the start of `raw` (the bytes after it are the body or the next request),
    // the same memory, not a copy.
    let own = head.raw();
    assert_eq!(
        own.as_ptr(),
        raw.as_ptr(),
        "the head must keep the input, not a copy"
    );
    assert!(own.len() <= raw.len() && raw.starts_with(own));
    assert!(own.ends_with(b"\r\n\r\n"), "a head ends with CRLF CRLF");
    let raw = own;

    let method = head.method_str().as_bytes();
    assert!(!method.is_empty() && method.iter().all(|&b| is_tchar(b)));
    assert!(is_view(raw, method));
    let kind = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"PUT" => Method::Put,
        b"DELETE" => Method::Delete,
        b"OPTIONS" => Method::Options,
        b"PATCH" => Method::Patch,
        _ => Method::Other,
    };
    assert_eq!(head.method(), kind);

    let target = head.target();
    assert!(!target.is_empty() && target.len() <= limits.max_target_bytes);
    assert!(is_view(raw, target));
    let path = head.path();
    assert!(
        path == b"/" || is_view(target, path),
        "path must be a view of the target"
    );
    assert!(
        path.starts_with(b"/") || path.starts_with(b"?"),
        "path {path:?}"
    );
    let path_only = head.path_only();
    assert!(!path_only.contains(&b'?'), "path_only {path_only:?}");
    // `http://host?q` has an empty path, which is `/`.
    assert!(path.starts_with(path_only) || (path_only == b"/" && path.starts_with(b"?")));

    let mut n = 0;
    for (name, value) in head.fields() {
        n += 1;
        assert!(is_view(raw, name) && is_view(raw, value));
        assert!(
            !name.is_empty() && name.iter().all(|&b| is_tchar(b)),
            "field name {name:?}"
        );
        assert!(
            !value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
            "field value {value:?}"
        );
    }
    assert!(n <= limits.max_headers.max(1));

    let info = head.info();
    assert_eq!(info.version, head.version());
    let count = |name: &str| head.values(name).count();
    if info.version == Version::Http11 {
        assert_eq!(count("host"), 1, "HTTP/1.1 needs exactly one Host");
    }
    for name in [
        "host",
        "content-length",
        "transfer-encoding",
        "expect",
        "connection",
        "appid",
    ] {
        assert_eq!(head.value(name), head.values(name).next());
    }
    match info.framing {
        Framing::Chunked => {
            assert_eq!(info.version, Version::Http11);
            assert!(count("transfer-encoding") > 0 && count("content-length") == 0);
        }
        Framing::Length(len) => {
            assert_eq!(
                count("transfer-encoding"),
                0,
                "Transfer-Encoding must decide the framing"
            );
            for value in head.values("content-length") {
                for item in value.split(|&b| b == b',') {
                    let item = item.trim_ascii();
                    assert_eq!(parse_length(item), Ok(len), "Content-Length item {item:?}");
                }
            }
            if count("content-length") == 0 {
                assert_eq!(len, 0);
            }
        }
    }
    if info.expect == Expectation::Continue {
        assert_eq!(info.version, Version::Http11);
        assert!(head
            .values("expect")
            .any(|v| v.eq_ignore_ascii_case(b"100-continue")));
    }
    let close_token = head
        .values("connection")
        .flat_map(|v| v.split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
    if close_token {
        assert!(!info.keep_alive, "Connection: close must not keep alive");
    } else if info.version == Version::Http11 {
        assert!(info.keep_alive, "HTTP/1.1 keeps alive unless asked not to");
    }
}
