//! IETF resumable uploads (draft-ietf-httpbis-resumable-upload) over raw sockets against a real
//! node and a real callback app: creation on a file's address with `104` gated on the
//! client's interop version, offset retrieval, appends (each asked of the app first), the
//! offset mismatch, completion, cancellation.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::callback_app::{Answer, CallbackApp, Received};
use support::*;
use upgate::config::Config;

struct World {
    node: upgate::node::Node,
    app: CallbackApp,
}

impl World {
    fn new() -> World {
        let app = CallbackApp::start(0, |_| Answer::ok());
        let node = start(Config {
            fsync: false,
            ..test_config()
        });
        let w = World { node, app };
        let r = register_form(w.addr(), "app1", &w.app.url("/pre"), &w.app.url("/post"));
        assert_eq!(r.status, 200);
        w
    }

    fn addr(&self) -> SocketAddr {
        self.node.local_addr()
    }

    fn pre_calls(&self) -> Vec<serde_json::Value> {
        self.app.on("/pre").iter().map(Received::json).collect()
    }
}

/// Sends `head` + `body` and reads every response up to the final one.
fn send(addr: SocketAddr, head: &str, body: &[u8]) -> Vec<Wire> {
    let mut s = connect(addr);
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_all(&mut s, head.starts_with("HEAD "))
}

fn read_all(s: &mut TcpStream, to_head: bool) -> Vec<Wire> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        let w = read_response_to(s, &mut buf, to_head).expect("a response");
        let last = w.status >= 200;
        out.push(w);
        if last {
            return out;
        }
    }
}

/// The final response of `send`.
fn last(responses: Vec<Wire>) -> Wire {
    responses.into_iter().last().unwrap()
}

fn create(addr: SocketAddr, path: &str, fields: &str, body: &[u8]) -> Vec<Wire> {
    send(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: n\r\n{fields}Content-Length: {}\r\n\r\n",
            body.len()
        ),
        body,
    )
}

fn append(
    addr: SocketAddr,
    resource: &str,
    offset: u64,
    complete: bool,
    body: &[u8],
    extra: &str,
) -> Wire {
    let flag = if complete { "?1" } else { "?0" };
    last(send(
        addr,
        &format!(
            "PATCH {resource} HTTP/1.1\r\nHost: n\r\nUpload-Draft-Interop-Version: 8\r\nContent-Type: application/partial-upload\r\nUpload-Offset: {offset}\r\nUpload-Complete: {flag}\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        ),
        body,
    ))
}

fn offset_of(addr: SocketAddr, resource: &str) -> Wire {
    last(send(
        addr,
        &format!("HEAD {resource} HTTP/1.1\r\nHost: n\r\nUpload-Draft-Interop-Version: 8\r\n\r\n"),
        b"",
    ))
}

fn resource_of(location: &str) -> String {
    let i = location
        .find("/upload/resumable/")
        .expect("an upload resource");
    location[i..].to_owned()
}

#[test]
fn an_upload_in_three_requests_announces_its_resource_and_is_stored_once_complete() {
    let w = World::new();
    let a = w.addr();
    let rs = create(
        a,
        "/app1/v/clip.bin",
        "Upload-Draft-Interop-Version: 8\r\nUpload-Complete: ?0\r\nUpload-Length: 15\r\n",
        b"01234",
    );
    // The 104 comes first, with the resource, the limits and the version.
    assert_eq!(rs.len(), 2, "{rs:?}");
    let interim = &rs[0];
    assert_eq!(interim.status, 104);
    let location = interim.header("location").unwrap().to_owned();
    let limit = interim.header("upload-limit").unwrap();
    assert!(
        limit.contains("max-size=") && limit.contains("max-age="),
        "{limit}"
    );
    assert_eq!(interim.header("upload-draft-interop-version"), Some("8"));
    let created = &rs[1];
    assert_eq!(
        created.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&created.body)
    );
    assert_eq!(created.header("location"), Some(location.as_str()));
    assert_eq!(created.header("upload-offset"), Some("5"));
    assert_eq!(created.header("upload-complete"), Some("?0"));
    let res = resource_of(&location);

    // Offset retrieval.
    let h = offset_of(a, &res);
    assert_eq!(h.status, 204);
    assert_eq!(h.header("upload-offset"), Some("5"));
    assert_eq!(h.header("upload-complete"), Some("?0"));
    assert_eq!(h.header("upload-length"), Some("15"));
    assert_eq!(h.header("cache-control"), Some("no-store"));

    let r = append(a, &res, 5, false, b"56789", "");
    assert_eq!((r.status, r.header("upload-offset")), (204, Some("10")));
    assert_eq!(
        last(send(
            a,
            "GET /app1/v/clip.bin HTTP/1.1\r\nHost: n\r\n\r\n",
            b""
        ))
        .status,
        404
    );
    let r = append(a, &res, 10, true, b"abcde", "");
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("upload-complete"), Some("?1"));
    assert_eq!(r.json()["size"], 15);
    let got = last(send(
        a,
        "GET /app1/v/clip.bin HTTP/1.1\r\nHost: n\r\n\r\n",
        b"",
    ));
    assert_eq!(got.body, b"0123456789abcde");

    // Asked at creation and before each append, with the offsets.
    let pre = w.pre_calls();
    let seen: Vec<_> = pre
        .iter()
        .map(|p| (p["offset"].as_u64(), p["length"].as_u64()))
        .collect();
    assert_eq!(
        seen,
        [(Some(0), Some(5)), (Some(5), Some(5)), (Some(10), Some(5))]
    );
    assert!(pre.iter().all(|p| p["request"]["protocol"] == "resumable"));
    w.app.wait_for("/post", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.app.on("/post").len(), 1);
    // The upload is over: its resource is gone.
    assert_eq!(offset_of(a, &res).status, 404);
}

#[test]
fn the_104_goes_only_to_a_client_whose_interop_version_is_spoken() {
    let w = World::new();
    let a = w.addr();
    let cases = [
        ("", None, false),
        ("Upload-Draft-Interop-Version: 3\r\n", None, false),
        ("Upload-Draft-Interop-Version: x\r\n", None, false),
        ("Upload-Draft-Interop-Version: 5\r\n", Some("5"), false),
        ("Upload-Draft-Interop-Version: 6\r\n", Some("6"), true),
        ("Upload-Draft-Interop-Version: 7\r\n", Some("7"), true),
    ];
    for (i, (field, version, limit)) in cases.into_iter().enumerate() {
        let rs = create(
            a,
            &format!("/app1/g{i}.bin"),
            &format!("{field}Upload-Complete: ?1\r\n"),
            b"abc",
        );
        let interims: Vec<_> = rs.iter().filter(|r| r.status == 104).collect();
        match version {
            None => assert!(interims.is_empty(), "{field}: {rs:?}"),
            Some(v) => {
                assert_eq!(interims.len(), 1, "{field}");
                assert_eq!(interims[0].header("upload-draft-interop-version"), Some(v));
                assert_eq!(
                    interims[0].header("upload-limit").is_some(),
                    limit,
                    "{field}"
                );
            }
        }
        // Whatever the version, the upload is done in one request.
        let done = rs.last().unwrap();
        assert_eq!(
            (done.status, done.header("upload-complete")),
            (201, Some("?1")),
            "{field}"
        );
    }
    // Version 6 names the lifetime `expires`, 7 and 8 `max-age`.
    let rs = create(
        a,
        "/app1/l6.bin",
        "Upload-Draft-Interop-Version: 6\r\nUpload-Complete: ?0\r\n",
        b"",
    );
    assert!(rs[0].header("upload-limit").unwrap().contains("expires="));
}

#[test]
fn every_ietf_rule_answers_its_status() {
    let w = World::new();
    let a = w.addr();
    let rs = create(
        a,
        "/app1/r.bin",
        "Upload-Draft-Interop-Version: 8\r\nUpload-Complete: ?0\r\n",
        b"0123",
    );
    let res = resource_of(rs.last().unwrap().header("location").unwrap());

    // 409: the wrong offset, with the right one and the upload not complete.
    let r = append(a, &res, 2, false, b"xx", "");
    assert_eq!(r.status, 409);
    assert_eq!(
        (r.header("upload-offset"), r.header("upload-complete")),
        (Some("4"), Some("?0"))
    );
    assert_eq!(r.error_code(), "offset_mismatch");
    // 415: an append of another media type (interop 6 on).
    let r = last(send(a, &format!("PATCH {res} HTTP/1.1\r\nHost: n\r\nUpload-Draft-Interop-Version: 8\r\nContent-Type: text/plain\r\nUpload-Offset: 4\r\nUpload-Complete: ?0\r\nContent-Length: 1\r\n\r\n"), b"x"));
    assert_eq!(r.status, 415);
    // ... but interop 5 takes any.
    let r = last(send(a, &format!("PATCH {res} HTTP/1.1\r\nHost: n\r\nUpload-Draft-Interop-Version: 5\r\nUpload-Offset: 4\r\nUpload-Complete: ?0\r\nContent-Length: 1\r\n\r\n"), b"4"));
    assert_eq!((r.status, r.header("upload-offset")), (204, Some("5")));
    // 400: Upload-Complete missing or not an sf-boolean; an unspoken version on the resource.
    for extra in ["", "Upload-Complete: yes\r\n"] {
        let r = last(send(a, &format!("PATCH {res} HTTP/1.1\r\nHost: n\r\nContent-Type: application/partial-upload\r\nUpload-Offset: 5\r\n{extra}Content-Length: 0\r\n\r\n"), b""));
        assert_eq!(r.status, 400, "{extra:?}");
    }
    let r = last(send(
        a,
        &format!("HEAD {res} HTTP/1.1\r\nHost: n\r\nUpload-Draft-Interop-Version: 3\r\n\r\n"),
        b"",
    ));
    assert_eq!(r.status, 400);
    // 400: lengths that disagree.
    let r = append(a, &res, 5, false, b"", "Upload-Length: 10\r\n");
    assert_eq!(r.status, 204);
    let r = append(a, &res, 5, false, b"", "Upload-Length: 11\r\n");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "bad_upload_length")
    );
    let r = append(a, &res, 5, true, b"56", "");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "bad_upload_length")
    );
    // 413: past the length.
    let r = append(a, &res, 5, false, b"567890abcdef", "");
    assert_eq!(r.status, 413);
    // Nothing of these is visible.
    assert_eq!(
        last(send(a, "GET /app1/r.bin HTTP/1.1\r\nHost: n\r\n\r\n", b"")).status,
        404
    );
    // Cancellation: the upload and its bytes go.
    let r = last(send(
        a,
        &format!("DELETE {res} HTTP/1.1\r\nHost: n\r\nUpload-Draft-Interop-Version: 8\r\n\r\n"),
        b"",
    ));
    assert_eq!(r.status, 204);
    assert_eq!(offset_of(a, &res).status, 404);
    assert_eq!(offset_of(a, "/upload/resumable/nosuch").status, 404);
    // A creation for an app that is not registered.
    let r = last(create(a, "/nobody/x.bin", "Upload-Complete: ?1\r\n", b"x"));
    assert_eq!(r.status, 404, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(w.app.on("/post").is_empty());
}

#[test]
fn an_append_that_reaches_a_known_length_completes_the_upload_even_with_complete_false() {
    let w = World::new();
    let a = w.addr();
    let rs = create(
        a,
        "/app1/k.bin",
        "Upload-Complete: ?0\r\nUpload-Length: 6\r\n",
        b"abc",
    );
    let res = resource_of(rs.last().unwrap().header("location").unwrap());
    let r = append(a, &res, 3, false, b"def", "");
    assert_eq!((r.status, r.header("upload-complete")), (201, Some("?1")));
    assert_eq!(r.header("upload-offset"), Some("6"));
    let got = last(send(a, "GET /app1/k.bin HTTP/1.1\r\nHost: n\r\n\r\n", b""));
    assert_eq!(got.body, b"abcdef");
    assert_eq!(w.app.wait_for("/post", 1, Duration::from_secs(10)).len(), 1);
}
