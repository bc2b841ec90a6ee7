//! tus 1.0 over raw sockets against a real node and a real callback app: the patent's
//! pre-callback before every append, one post-callback at completion, and each rule of the
//! tus protocol with the status it names.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::callback_app::{Answer, CallbackApp, Received};
use support::*;
use upgate::config::Config;

/// `filename a.txt` in `Upload-Metadata`.
const META: &str = "filename YS50eHQ=";

struct World {
    node: upgate::node::Node,
    app: CallbackApp,
}

impl World {
    fn new(config: Config, pre: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> World {
        let app = CallbackApp::start(0, move |r| match r.path.as_str() {
            p if p.starts_with("/pre") => pre(r),
            _ => Answer::ok(),
        });
        let node = start(config);
        let w = World { node, app };
        let r = register_form(w.addr(), "app1", &w.app.url("/pre"), &w.app.url("/post"));
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        w
    }

    fn accepting() -> World {
        World::new(
            Config {
                fsync: false,
                ..test_config()
            },
            |_| Answer::ok(),
        )
    }

    fn addr(&self) -> SocketAddr {
        self.node.local_addr()
    }

    fn pre_calls(&self) -> Vec<serde_json::Value> {
        self.app.on("/pre").iter().map(Received::json).collect()
    }
}

fn request(addr: SocketAddr, head: &str, body: &[u8]) -> Wire {
    let mut req = head.as_bytes().to_vec();
    req.extend_from_slice(body);
    exchange(addr, &req).0
}

/// `POST /upload/tus/app1/` with `fields` (each ending in CRLF); returns the upload's path.
fn create(addr: SocketAddr, fields: &str) -> (Wire, String) {
    let r = request(
        addr,
        &format!("POST /upload/tus/app1/ HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\n{fields}Content-Length: 0\r\n\r\n"),
        b"",
    );
    let location = r.header("location").unwrap_or("").to_owned();
    let path = location
        .find("/upload/tus/")
        .map(|i| location[i..].to_owned())
        .unwrap_or_default();
    (r, path)
}

fn patch(addr: SocketAddr, path: &str, offset: u64, body: &[u8], extra: &str) -> Wire {
    request(
        addr,
        &format!(
            "PATCH {path} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        ),
        body,
    )
}

fn head(addr: SocketAddr, path: &str) -> Wire {
    request(
        addr,
        &format!("HEAD {path} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\n\r\n"),
        b"",
    )
}

fn download(addr: SocketAddr, path: &str) -> Wire {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: n\r\n\r\n"),
        b"",
    )
}

#[test]
fn an_upload_in_three_appends_asks_the_app_before_each_and_is_stored_once_complete() {
    let w = World::accepting();
    let a = w.addr();
    let opts = request(
        a,
        "OPTIONS /upload/tus/app1/ HTTP/1.1\r\nHost: n\r\n\r\n",
        b"",
    );
    assert_eq!(opts.status, 204);
    assert_eq!(opts.header("tus-version"), Some("1.0.0"));
    assert!(opts
        .header("tus-extension")
        .unwrap()
        .contains("creation-defer-length"));
    assert_eq!(
        opts.header("tus-checksum-algorithm"),
        Some("sha1,sha256,md5")
    );

    let (r, up) = create(
        a,
        &format!("Upload-Length: 30\r\nUpload-Metadata: {META}\r\n"),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    assert!(r.header("upload-expires").is_some());
    assert!(up.starts_with("/upload/tus/app1/"), "{up}");
    let h = head(a, &up);
    assert_eq!(h.status, 200);
    assert_eq!(h.header("upload-offset"), Some("0"));
    assert_eq!(h.header("upload-length"), Some("30"));
    assert_eq!(h.header("upload-metadata"), Some(META));
    assert_eq!(h.header("cache-control"), Some("no-store"));

    let body: Vec<u8> = (0..30u8).map(|i| b'a' + i % 26).collect();
    for (i, piece) in body.chunks(10).enumerate() {
        let r = patch(a, &up, i as u64 * 10, piece, "");
        assert_eq!(
            r.status,
            204,
            "append {i}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            r.header("upload-offset"),
            Some(((i + 1) * 10).to_string().as_str())
        );
        if i < 2 {
            assert_eq!(
                download(a, "/app1/a.txt").status,
                404,
                "visible before complete"
            );
        }
    }
    let got = download(a, "/app1/a.txt");
    assert_eq!((got.status, &got.body[..]), (200, &body[..]));

    // One pre-callback at creation and one before each append, with its offset and length.
    let pre = w.pre_calls();
    let seen: Vec<(Option<u64>, Option<u64>)> = pre
        .iter()
        .map(|p| (p["offset"].as_u64(), p["length"].as_u64()))
        .collect();
    assert_eq!(
        seen,
        [
            (Some(0), None),
            (Some(0), Some(10)),
            (Some(10), Some(10)),
            (Some(20), Some(10))
        ]
    );
    assert!(pre.iter().all(|p| p["request"]["protocol"] == "tus"));
    assert!(pre.iter().all(|p| p["size"] == 30));
    // One post-callback.
    let post = w.app.wait_for("/post", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.app.on("/post").len(), 1);
    assert_eq!(post[0].json()["size"], 30);
    // The upload is over: its resource is gone.
    assert_eq!(head(a, &up).status, 404);
}

#[test]
fn every_tus_rule_answers_its_status() {
    let w = World::accepting();
    let a = w.addr();
    let (_, up) = create(
        a,
        &format!("Upload-Length: 10\r\nUpload-Metadata: {META}\r\n"),
    );

    // 412: no or another Tus-Resumable, with the version spoken.
    let r = request(a, &format!("HEAD {up} HTTP/1.1\r\nHost: n\r\n\r\n"), b"");
    assert_eq!((r.status, r.header("tus-version")), (412, Some("1.0.0")));
    let r = request(
        a,
        "POST /upload/tus/app1/ HTTP/1.1\r\nHost: n\r\nTus-Resumable: 0.2.2\r\nUpload-Length: 1\r\nContent-Length: 0\r\n\r\n",
        b"",
    );
    assert_eq!(r.status, 412);
    // 415: an append of another type.
    let r = request(
        a,
        &format!("PATCH {up} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\nContent-Type: text/plain\r\nUpload-Offset: 0\r\nContent-Length: 2\r\n\r\nab"),
        b"",
    );
    assert_eq!(r.status, 415);
    // 409: the wrong offset, with the right one.
    let r = patch(a, &up, 3, b"ab", "");
    assert_eq!((r.status, r.header("upload-offset")), (409, Some("0")));
    // 400: a malformed offset, a creation without a length or a file name.
    assert_eq!(
        request(
            a,
            &format!("PATCH {up} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: -1\r\nContent-Length: 0\r\n\r\n"),
            b"",
        )
        .status,
        400
    );
    assert_eq!(
        create(a, &format!("Upload-Metadata: {META}\r\n")).0.status,
        400
    );
    assert_eq!(create(a, "Upload-Length: 3\r\n").0.status, 400);
    // 404: no such upload.
    assert_eq!(head(a, "/upload/tus/app1/nosuchupload").status, 404);
    // 413: past the upload's length; a length over the limit.
    let r = patch(a, &up, 0, b"0123456789ab", "");
    assert_eq!((r.status, r.error_code().as_str()), (413, "too_large"));
    let r = create(
        a,
        &format!(
            "Upload-Length: {}\r\nUpload-Metadata: {META}\r\n",
            20u64 << 30
        ),
    )
    .0;
    assert_eq!(r.status, 413);

    // Checksums: an unknown algorithm is 400, a mismatch 460 with the offset unmoved.
    let r = patch(a, &up, 0, b"01234", "Upload-Checksum: crc32 AAAAAA==\r\n");
    assert_eq!(r.status, 400);
    let r = patch(
        a,
        &up,
        0,
        b"01234",
        "Upload-Checksum: sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (460, "checksum_mismatch")
    );
    assert_eq!(head(a, &up).header("upload-offset"), Some("0"));
    // The right digest (base64 of sha1("01234")).
    let r = patch(
        a,
        &up,
        0,
        b"01234",
        "Upload-Checksum: sha1 EZBKTot39iQuLSiHBQI62tAKkxA=\r\n",
    );
    assert_eq!(r.status, 204, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("upload-offset"), Some("5"));

    // X-HTTP-Method-Override: PATCH on a POST.
    let r = request(
        a,
        &format!("POST {up} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\nX-HTTP-Method-Override: PATCH\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 5\r\nContent-Length: 5\r\n\r\n56789"),
        b"",
    );
    assert_eq!((r.status, r.header("upload-offset")), (204, Some("10")));
    assert_eq!(download(a, "/app1/a.txt").body, b"0123456789");

    // Upload-Defer-Length: the length comes with an append.
    let (_, later) = create(
        a,
        "Upload-Defer-Length: 1\r\nUpload-Metadata: filename Yi50eHQ=\r\n",
    );
    let h = head(a, &later);
    assert_eq!(
        (h.header("upload-defer-length"), h.header("upload-length")),
        (Some("1"), None)
    );
    assert_eq!(patch(a, &later, 0, b"abc", "").status, 204);
    let r = patch(a, &later, 3, b"def", "Upload-Length: 6\r\n");
    assert_eq!(r.status, 204);
    assert_eq!(download(a, "/app1/b.txt").body, b"abcdef");

    // Termination: the upload and its bytes go.
    let (_, gone) = create(
        a,
        "Upload-Length: 4\r\nUpload-Metadata: filename Yy50eHQ=\r\n",
    );
    assert_eq!(patch(a, &gone, 0, b"ab", "").status, 204);
    let r = request(
        a,
        &format!("DELETE {gone} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\n\r\n"),
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(head(a, &gone).status, 404);
    assert_eq!(patch(a, &gone, 2, b"cd", "").status, 404);

    // A file that exists already: 409 at creation (overwrite = false).
    let r = create(
        a,
        &format!("Upload-Length: 1\r\nUpload-Metadata: {META}\r\n"),
    )
    .0;
    assert_eq!((r.status, r.error_code().as_str()), (409, "exists"));
}

#[test]
fn a_veto_on_the_third_append_reads_no_body_and_keeps_the_offset() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let w = World::new(
        Config {
            fsync: false,
            ..test_config()
        },
        move |_| {
            // Creation, then appends 1 and 2 accepted; the third refused.
            match seen.fetch_add(1, Ordering::SeqCst) {
                3 => Answer::json(403, r#"{"success":"false","message":"quota"}"#),
                _ => Answer::ok(),
            }
        },
    );
    let a = w.addr();
    let (_, up) = create(
        a,
        &format!("Upload-Length: 30\r\nUpload-Metadata: {META}\r\n"),
    );
    assert_eq!(patch(a, &up, 0, b"0123456789", "").status, 204);
    assert_eq!(patch(a, &up, 10, b"0123456789", "").status, 204);
    // The head alone: the answer comes without a byte of the body sent.
    let (r, _) = exchange(
        a,
        format!("PATCH {up} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 20\r\nContent-Length: 10\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 403);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(head(a, &up).header("upload-offset"), Some("20"));
    assert_eq!(download(a, "/app1/a.txt").status, 404);
    std::thread::sleep(Duration::from_millis(300));
    assert!(w.app.on("/post").is_empty());
}

#[test]
fn a_second_append_while_one_runs_is_refused_and_never_interleaves() {
    let w = World::accepting();
    let a = w.addr();
    let (_, up) = create(
        a,
        &format!("Upload-Length: 20\r\nUpload-Metadata: {META}\r\n"),
    );
    // The first append sends half its body and waits.
    let mut first = connect(a);
    write!(
        first,
        "PATCH {up} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 20\r\n\r\nAAAAAAAAAA"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let r = patch(a, &up, 0, b"BBBBBBBBBBBBBBBBBBBB", "");
    assert_eq!((r.status, r.error_code().as_str()), (409, "upload_busy"));
    first.write_all(b"AAAAAAAAAA").unwrap();
    let mut buf = Vec::new();
    let done = read_response(&mut first, &mut buf).expect("the first append's answer");
    assert_eq!(done.status, 204);
    assert_eq!(download(a, "/app1/a.txt").body, vec![b'A'; 20]);
}

#[test]
fn after_a_restart_an_upload_resumes_at_its_acknowledged_offset() {
    let config = Config {
        fsync: true,
        ..test_config()
    };
    let w = World::new(config.clone(), |_| Answer::ok());
    let a = w.addr();
    let (_, up) = create(
        a,
        &format!("Upload-Length: 8\r\nUpload-Metadata: {META}\r\n"),
    );
    assert_eq!(patch(a, &up, 0, b"1234", "").status, 204);
    let World { node, app } = w;
    node.shutdown();
    let node = start(config);
    let a = node.local_addr();
    assert_eq!(head(a, &up).header("upload-offset"), Some("4"));
    assert_eq!(patch(a, &up, 4, b"5678", "").status, 204);
    assert_eq!(download(a, "/app1/a.txt").body, b"12345678");
    assert_eq!(app.wait_for("/post", 1, Duration::from_secs(10)).len(), 1);
    node.shutdown();
}

#[test]
fn abandoned_uploads_expire() {
    let w = World::new(
        Config {
            fsync: false,
            resumable_expiry_s: 1,
            ..test_config()
        },
        |_| Answer::ok(),
    );
    let a = w.addr();
    let (_, up) = create(
        a,
        &format!("Upload-Length: 8\r\nUpload-Metadata: {META}\r\n"),
    );
    assert_eq!(patch(a, &up, 0, b"1234", "").status, 204);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = head(a, &up).status;
        if s == 404 {
            break;
        }
        assert!(s == 200 || s == 410, "{s}");
        assert!(std::time::Instant::now() < deadline, "never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    let partial = w.node.app.config.data_dir.join("partial");
    assert_eq!(
        std::fs::read_dir(partial).unwrap().count(),
        0,
        "bytes removed"
    );
    let metrics = request(a, "GET /metrics HTTP/1.1\r\nHost: n\r\n\r\n", b"");
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(text.contains("upgate_resumable_expired_total 1"), "{text}");
}

#[test]
fn a_final_upload_is_its_finished_partial_uploads_stored_once() {
    let w = World::accepting();
    let a = w.addr();
    // Two parts without names, appended to completion: nothing is stored yet.
    let mut parts = Vec::new();
    for body in [&b"first half, "[..], b"second half"] {
        let (r, up) = create(
            a,
            &format!(
                "Upload-Concat: partial\r\nUpload-Length: {}\r\n",
                body.len()
            ),
        );
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        assert_eq!(patch(a, &up, 0, body, "").status, 204);
        let h = head(a, &up);
        assert_eq!(
            (h.status, h.header("upload-concat")),
            (200, Some("partial"))
        );
        parts.push(up);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        w.app.on("/post").is_empty(),
        "a finished part is not a file"
    );
    let (_, unfinished) = create(a, "Upload-Concat: partial\r\nUpload-Length: 5\r\n");
    let (_, whole) = create(
        a,
        &format!("Upload-Length: 1\r\nUpload-Metadata: {META}\r\n"),
    );

    let final_with = |urls: &str, extra: &str| {
        create(
            a,
            &format!(
                "Upload-Concat: final;{urls}\r\nUpload-Metadata: filename Yy50eHQ=\r\n{extra}"
            ),
        )
        .0
    };
    // What a final upload may not name or carry: 400 bad_upload_concat, or 404.
    for (urls, extra, status) in [
        (format!("{} {unfinished}", parts[0]), "", 400),
        (format!("{} {whole}", parts[0]), "", 400),
        (format!("{} {}", parts[0], parts[0]), "", 400),
        ("/upload/tus/other/x".to_owned(), "", 400),
        (
            format!("{} {}", parts[0], parts[1]),
            "Upload-Length: 23\r\n",
            400,
        ),
        (
            format!("{} /upload/tus/app1/nosuchupload", parts[0]),
            "",
            404,
        ),
    ] {
        let r = final_with(&urls, extra);
        assert_eq!(
            r.status,
            status,
            "{urls} {extra}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        if status == 400 {
            assert_eq!(r.error_code(), "bad_upload_concat");
        }
    }
    // The parts in order, one absolute URL and one path.
    let absolute = format!("http://{a}{}", parts[0]);
    let r = final_with(&format!("{absolute} {}", parts[1]), "");
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(r.header("location").is_some());
    assert_eq!(download(a, "/app1/c.txt").body, b"first half, second half");
    let post = w.app.wait_for("/post", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.app.on("/post").len(), 1);
    assert_eq!(post[0].json()["size"], 23);
    // The final upload's pre-callback named the file and its whole length.
    let last = w.pre_calls().pop().unwrap();
    assert_eq!(
        (last["path"].as_str(), last["size"].as_u64()),
        (Some("c.txt"), Some(23))
    );
    // The parts are used up.
    assert_eq!(head(a, &parts[0]).status, 404);
    assert_eq!(head(a, &parts[1]).status, 404);
}

#[test]
fn an_expired_upload_answers_410_until_the_sweep_removes_it() {
    // The default expiry: the sweep runs once a minute, long after this test.
    let w = World::accepting();
    let a = w.addr();
    let (_, up) = create(
        a,
        &format!("Upload-Length: 8\r\nUpload-Metadata: {META}\r\n"),
    );
    assert_eq!(patch(a, &up, 0, b"1234", "").status, 204);
    // The upload's expiry passes (as if a day went by without an append).
    use upgate::registry::ResumableStore;
    let id = up.rsplit('/').next().unwrap();
    let store = w.node.app.registry.resumables();
    let mut rec = store.get(id).unwrap().expect("the upload's record");
    rec.expires_ms = 1;
    store.put(&rec).unwrap();
    assert_eq!(head(a, &up).status, 410);
    let r = patch(a, &up, 4, b"5678", "");
    assert_eq!((r.status, r.error_code().as_str()), (410, "upload_expired"));
    assert_eq!(download(a, "/app1/a.txt").status, 404);
    assert!(w.app.on("/post").is_empty());
}

#[test]
fn an_app_that_stops_naming_a_pre_callback_takes_no_more_appends() {
    let w = World::accepting();
    let a = w.addr();
    let (_, up) = create(
        a,
        &format!("Upload-Length: 8\r\nUpload-Metadata: {META}\r\n"),
    );
    assert_eq!(patch(a, &up, 0, b"1234", "").status, 204);
    // Re-registered with a post-callback only: no append goes unasked.
    let r = register_form(a, "app1", "", &w.app.url("/post"));
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let r = patch(a, &up, 4, b"5678", "");
    assert_eq!((r.status, r.error_code().as_str()), (404, "unknown_appid"));
    assert_eq!(head(a, &up).header("upload-offset"), Some("4"));
    assert_eq!(download(a, "/app1/a.txt").status, 404);
}
