use super::*;
use crate::ProtocolError;

const DATE: &str = "Thu, 01 Jan 2026 00:00:00 GMT";

/// (close, keep_alive_10, omit_body, framing)
type Params = (bool, bool, bool, BodyFraming);

const KEEP: Params = (false, false, false, BodyFraming::Length);
const CLOSE: Params = (true, false, false, BodyFraming::Length);

fn encode(resp: &Response, (close, keep_alive_10, omit_body, framing): Params) -> String {
    let bytes = encode_response(
        resp,
        &HeadParams {
            date: DATE,
            close,
            keep_alive_10,
            omit_body,
            framing,
        },
    );
    String::from_utf8(bytes.to_vec()).unwrap()
}

const PREFIX: &str = "Server: upgate\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n";

#[test]
fn response_encoding_table() {
    let json = || Response::json(200, &b"{}"[..]);
    let cases: Vec<(&str, Response, Params, String)> = vec![
        (
            "json keep-alive",
            json(),
            KEEP,
            format!("HTTP/1.1 200 OK\r\n{PREFIX}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"),
        ),
        (
            "json closing",
            json(),
            CLOSE,
            format!("HTTP/1.1 200 OK\r\n{PREFIX}Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
        ),
        (
            "http/1.0 keep-alive is echoed",
            json(),
            (false, true, false, BodyFraming::Length),
            format!("HTTP/1.1 200 OK\r\n{PREFIX}Content-Type: application/json\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{{}}"),
        ),
        (
            "HEAD keeps the length, drops the body",
            json(),
            (false, false, true, BodyFraming::Length),
            format!("HTTP/1.1 200 OK\r\n{PREFIX}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"),
        ),
        ("empty body", Response::new(200), KEEP, format!("HTTP/1.1 200 OK\r\n{PREFIX}Content-Length: 0\r\n\r\n")),
        (
            "extra headers in order",
            Response::new(201).header("Location", "/a").header("X-Id", "7"),
            KEEP,
            format!("HTTP/1.1 201 Created\r\n{PREFIX}Location: /a\r\nX-Id: 7\r\nContent-Length: 0\r\n\r\n"),
        ),
        ("204 has no length", Response::new(204), KEEP, format!("HTTP/1.1 204 No Content\r\n{PREFIX}\r\n")),
        (
            "304 has no length nor body",
            Response::json(304, &b"{}"[..]),
            KEEP,
            format!("HTTP/1.1 304 Not Modified\r\n{PREFIX}Content-Type: application/json\r\n\r\n"),
        ),
        (
            "sized body: the caller writes it",
            Response {
                status: 200,
                headers: vec![],
                body: ResponseBody::Sized(1048576),
            },
            KEEP,
            format!("HTTP/1.1 200 OK\r\n{PREFIX}Content-Length: 1048576\r\n\r\n"),
        ),
        (
            "chunked body",
            Response {
                status: 200,
                headers: vec![],
                body: ResponseBody::Chunked,
            },
            (false, false, false, BodyFraming::Chunked),
            format!("HTTP/1.1 200 OK\r\n{PREFIX}Transfer-Encoding: chunked\r\n\r\n"),
        ),
        (
            "chunked body to http/1.0: close-delimited",
            Response {
                status: 200,
                headers: vec![],
                body: ResponseBody::Chunked,
            },
            (true, false, false, BodyFraming::Close),
            format!("HTTP/1.1 200 OK\r\n{PREFIX}Connection: close\r\n\r\n"),
        ),
        ("unknown status", Response::new(299), KEEP, format!("HTTP/1.1 299 Unknown\r\n{PREFIX}Content-Length: 0\r\n\r\n")),
    ];
    for (name, resp, params, want) in cases {
        assert_eq!(encode(&resp, params), want, "{name}");
    }
}

/// `ProtocolError::ALL` lists every protocol error once; `exhaustive` stops compiling when a
/// variant is added, as a reminder to list it there.
#[allow(dead_code)]
fn exhaustive(e: ProtocolError) {
    use ProtocolError::*;
    match e {
        HeadTooLarge
        | TooManyHeaders
        | TargetTooLong
        | UnsupportedVersion
        | BadRequestLine
        | BadMethod
        | BadTarget
        | BadHeaderName
        | BadHeaderValue
        | ObsFold
        | BadLineEnding
        | MissingHost
        | BadHost
        | BadContentLength
        | ConflictingContentLength
        | LengthWithTransferEncoding
        | ChunkedNotFinal
        | UnknownTransferCoding
        | TransferEncodingInHttp10
        | BadChunkSize
        | ChunkSizeOverflow
        | ChunkLineTooLong
        | BadChunkEnd
        | TrailersTooLarge
        | BadTrailer
        | IncompleteHead
        | IncompleteBody => {}
    }
}

#[test]
fn every_protocol_error_has_a_status_code_and_json_body() {
    let mut codes = std::collections::HashSet::new();
    for e in ProtocolError::ALL {
        let want_status = match e {
            ProtocolError::HeadTooLarge
            | ProtocolError::TooManyHeaders
            | ProtocolError::TrailersTooLarge => 431,
            ProtocolError::TargetTooLong => 414,
            ProtocolError::UnsupportedVersion => 505,
            ProtocolError::UnknownTransferCoding => 501,
            _ => 400,
        };
        assert_eq!(e.status(), want_status, "{e:?}");
        assert!(
            codes.insert(e.code()),
            "{e:?}: code {} is used twice",
            e.code()
        );
        assert!(e
            .code()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()));
        assert!(!e.message().is_empty());
        assert!(e.to_string().contains(&e.status().to_string()));

        // The JSON body is the node's (its error funnel); here, the status line and the close.
        let resp = Response::json(e.status(), "{}");
        let body = b"{}";
        let wire = encode(&resp, CLOSE);
        let status_line = format!("HTTP/1.1 {} {}\r\n", e.status(), reason(e.status()));
        assert!(wire.starts_with(&status_line), "{e:?}: {wire}");
        assert!(wire.contains("\r\nConnection: close\r\n"), "{e:?}");
        assert!(wire.ends_with(std::str::from_utf8(body).unwrap()));
    }
}

#[test]
fn reasons() {
    let cases = [
        (100, "Continue"),
        (200, "OK"),
        (201, "Created"),
        (400, "Bad Request"),
        (404, "Not Found"),
        (408, "Request Timeout"),
        (413, "Content Too Large"),
        (414, "URI Too Long"),
        (417, "Expectation Failed"),
        (431, "Request Header Fields Too Large"),
        (501, "Not Implemented"),
        (505, "HTTP Version Not Supported"),
        (599, "Unknown"),
    ];
    for (status, want) in cases {
        assert_eq!(reason(status), want, "{status}");
    }
}

#[test]
fn chunk_framing() {
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"".to_vec(), b"".to_vec()),
        (b"hello".to_vec(), b"5\r\nhello\r\n".to_vec()),
        (
            vec![b'x'; 255],
            [&b"ff\r\n"[..], &[b'x'; 255], b"\r\n"].concat(),
        ),
        (
            vec![b'y'; 4096],
            [&b"1000\r\n"[..], &[b'y'; 4096], b"\r\n"].concat(),
        ),
    ];
    for (data, want) in cases {
        assert_eq!(chunk(&data).to_vec(), want, "{} bytes", data.len());
    }
    assert_eq!(LAST_CHUNK, b"0\r\n\r\n");
    assert_eq!(CONTINUE, b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// What the encoder writes round-trips through the node's own chunked decoder.
#[test]
fn chunks_decode_back() {
    let mut wire = Vec::new();
    for piece in [&b"ab"[..], b"", b"cde", &[0u8; 300]] {
        wire.extend_from_slice(&chunk(piece));
    }
    wire.extend_from_slice(LAST_CHUNK);
    let mut d = crate::BodyDecoder::chunked();
    let mut buf = BytesMut::from(&wire[..]);
    let mut body = Vec::new();
    let limits = crate::Limits::default();
    while let crate::Decoded::Data(b) = d.decode(&mut buf, &limits).unwrap() {
        body.extend_from_slice(&b);
    }
    assert!(d.is_done());
    assert_eq!(body, [&b"abcde"[..], &[0u8; 300]].concat());
}
