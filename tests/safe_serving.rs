//! The stored content type and safe serving, over loopback against a whole node: the type a
//! client declared is stored with the file (an extended attribute on disk) and served back;
//! every download answer carries `nosniff`; script-capable types are sandboxed attachments.

mod support;

use std::io::Write;
use std::net::SocketAddr;

use support::callback_app::CallbackApp;
use support::*;
use upgate::config::Config;

/// Stores `body` at `/app1/{name}` through a real upload, with `Content-Type: {ct}` when
/// given.
fn upload(addr: SocketAddr, app: &CallbackApp, name: &str, ct: Option<&[u8]>, body: &[u8]) {
    let mut head = format!(
        "PUT /app1/{name} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\ncallback_url_pre: {}\r\nContent-Length: {}\r\n",
        app.url("/pre"),
        body.len()
    )
    .into_bytes();
    if let Some(ct) = ct {
        head.extend_from_slice(b"Content-Type: ");
        head.extend_from_slice(ct);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut s = connect(addr);
    s.write_all(&head).unwrap();
    let mut buf = Vec::new();
    let mut answer = |s: &mut std::net::TcpStream| {
        read_response(s, &mut buf)
            .unwrap_or_else(|| panic!("no answer to the upload of {name}: {}", last_read_end()))
    };
    assert_eq!(answer(&mut s).status, 100, "{name}");
    s.write_all(body).unwrap();
    assert_eq!(answer(&mut s).status, 201, "{name}");
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> Wire {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: n\r\n{extra}\r\n").as_bytes(),
    )
    .0
}

/// The answer to a `HEAD` (whose `Content-Length` announces no body).
fn head(addr: SocketAddr, path: &str) -> Wire {
    let mut s = connect(addr);
    let req = format!("HEAD {path} HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut raw).unwrap();
    let end = find(&raw, b"\r\n\r\n").expect("a whole head");
    assert_eq!(end + 4, raw.len(), "bytes after a HEAD answer");
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Wire {
        status,
        headers,
        body: Vec::new(),
    }
}

fn node_with(config: Config) -> (upgate::node::Node, CallbackApp) {
    let app = CallbackApp::accepting();
    let node = start(Config {
        callback_allow: vec![app.addr.to_string()],
        ..config
    });
    (node, app)
}

fn node() -> (upgate::node::Node, CallbackApp) {
    node_with(test_config())
}

/// The safety fields of an answer: `(nosniff, Content-Disposition, Content-Security-Policy)`.
fn safety(w: &Wire) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        w.header("x-content-type-options"),
        w.header("content-disposition"),
        w.header("content-security-policy"),
    )
}

const ATTACHMENT_X_HTML: &str = "attachment; filename=\"x.html\"; filename*=UTF-8''x.html";

#[test]
fn html_is_served_as_a_sandboxed_attachment_with_nosniff() {
    let (node, app) = node();
    let addr = node.local_addr();
    upload(
        addr,
        &app,
        "x.html",
        Some(b"text/html"),
        b"<script>alert(1)</script>",
    );
    let w = get(addr, "/app1/x.html", "");
    assert_eq!(w.status, 200);
    assert_eq!(w.header("content-type"), Some("text/html"));
    assert_eq!(
        safety(&w),
        (Some("nosniff"), Some(ATTACHMENT_X_HTML), Some("sandbox"))
    );
    assert_eq!(w.body, b"<script>alert(1)</script>");
    let h = head(addr, "/app1/x.html");
    assert_eq!(h.header("content-type"), Some("text/html"));
    assert_eq!(
        safety(&h),
        (Some("nosniff"), Some(ATTACHMENT_X_HTML), Some("sandbox"))
    );
    node.shutdown();
}

#[test]
fn the_declared_type_is_stored_and_served_not_the_extensions() {
    let (node, app) = node();
    let addr = node.local_addr();
    upload(
        addr,
        &app,
        "a.bin",
        Some(b"image/png"),
        b"\x89PNG\r\n\x1a\n",
    );
    let w = get(addr, "/app1/a.bin", "");
    assert_eq!(w.header("content-type"), Some("image/png"));
    assert_eq!(safety(&w), (Some("nosniff"), None, None), "inline");
    // The other way round: an innocent extension does not make declared HTML inline.
    upload(
        addr,
        &app,
        "b.png",
        Some(b"Text/HTML; charset=utf-8"),
        b"<p>hi</p>",
    );
    let w = get(addr, "/app1/b.png", "");
    assert_eq!(w.header("content-type"), Some("Text/HTML; charset=utf-8"));
    assert_eq!(
        safety(&w),
        (
            Some("nosniff"),
            Some("attachment; filename=\"b.png\"; filename*=UTF-8''b.png"),
            Some("sandbox")
        )
    );
    node.shutdown();
}

#[test]
fn without_a_declared_type_the_extension_decides() {
    let (node, app) = node();
    let addr = node.local_addr();
    upload(addr, &app, "n.txt", None, b"notes");
    upload(addr, &app, "d/p.svg", None, b"<svg/>");
    let w = get(addr, "/app1/n.txt", "");
    assert_eq!(w.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(safety(&w), (Some("nosniff"), None, None));
    let w = get(addr, "/app1/d/p.svg", "");
    assert_eq!(w.header("content-type"), Some("image/svg+xml"));
    assert_eq!(
        safety(&w),
        (
            Some("nosniff"),
            Some("attachment; filename=\"p.svg\"; filename*=UTF-8''p.svg"),
            Some("sandbox")
        )
    );
    let pre = app.on("/pre");
    assert_eq!(pre[0].json()["content_type"], "text/plain; charset=utf-8");
    node.shutdown();
}

/// A declared value that is no media type (or too long to store) is replaced by the
/// extension's: the upload succeeds, the pre-callback is told the type that is stored, and the
/// download serves it. (CR and LF cannot reach this far: the head parser refuses them.)
#[test]
fn a_declared_type_that_is_no_media_type_falls_back_to_the_extension() {
    let (node, app) = node();
    let addr = node.local_addr();
    let long = format!("image/{}", "x".repeat(300));
    let garbage: [&[u8]; 5] = [
        b"not a type",
        b"text/plain; =x",
        b"image/png\tx",
        b"image/\xff\xfe",
        long.as_bytes(),
    ];
    for (i, declared) in garbage.iter().enumerate() {
        let name = format!("g{i}.html");
        upload(addr, &app, &name, Some(declared), b"<b>x</b>");
        let w = get(addr, &format!("/app1/{name}"), "");
        assert_eq!(
            w.header("content-type"),
            Some("text/html; charset=utf-8"),
            "declared {:?}",
            String::from_utf8_lossy(declared)
        );
        assert_eq!(w.header("content-security-policy"), Some("sandbox"));
        let pre = app.on("/pre");
        assert_eq!(
            pre[i].json()["content_type"],
            "text/html; charset=utf-8",
            "the app is told the type that is stored"
        );
    }
    node.shutdown();
}

#[test]
fn ranges_304_416_and_errors_carry_nosniff() {
    let (node, app) = node();
    let addr = node.local_addr();
    // Above the small-body size too, so both the cached bytes and the spliced file are seen.
    for (name, len) in [("s.html", 100usize), ("l.html", 100_000)] {
        let body: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        upload(addr, &app, name, Some(b"text/html"), &body);
        let path = format!("/app1/{name}");
        let disposition = format!("attachment; filename=\"{name}\"; filename*=UTF-8''{name}");
        let sandboxed = (Some("nosniff"), Some(disposition.as_str()), Some("sandbox"));

        let w = get(addr, &path, "Range: bytes=2-5\r\n");
        assert_eq!((w.status, &w.body[..]), (206, &body[2..6]), "{name}");
        assert_eq!(safety(&w), sandboxed, "206 {name}");
        let etag = w.header("etag").unwrap().to_string();

        let w = get(addr, &path, &format!("If-None-Match: {etag}\r\n"));
        assert_eq!(w.status, 304, "{name}");
        assert_eq!(safety(&w), sandboxed, "304 {name}");

        let w = get(addr, &path, &format!("Range: bytes={len}-\r\n"));
        assert_eq!(w.status, 416, "{name}");
        assert_eq!(w.header("x-content-type-options"), Some("nosniff"), "416");
    }
    let w = get(addr, "/app1/missing.html", "");
    assert_eq!(
        (w.status, w.header("x-content-type-options")),
        (404, Some("nosniff"))
    );
    node.shutdown();
}

#[test]
fn the_stored_type_survives_a_restart() {
    let config = test_config();
    let (node, app) = node_with(config.clone());
    upload(
        node.local_addr(),
        &app,
        "keep.bin",
        Some(b"image/webp"),
        b"RIFF",
    );
    node.shutdown();
    let (node, _app) = node_with(config.clone());
    let w = get(node.local_addr(), "/app1/keep.bin", "");
    assert_eq!(
        (w.status, w.header("content-type")),
        (200, Some("image/webp"))
    );
    node.shutdown();
    let file = config.data_dir.join("files/app1/keep.bin");
    let file = std::ffi::CString::new(file.into_os_string().into_encoded_bytes()).unwrap();
    let mut value = [0u8; 64];
    // SAFETY: a NUL-terminated path and name; `value` is writable for its length.
    let n = unsafe {
        libc::getxattr(
            file.as_ptr(),
            c"user.upgate.content_type".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    assert_eq!(
        &value[..n.max(0) as usize],
        b"image/webp",
        "kept as the file's extended attribute"
    );
}

/// Overwrites with another type are served with the new one by every connection, although
/// each thread's open-file cache held the old object (metadata included): small bodies (kept
/// in the cache as bytes) and large ones (as a descriptor).
#[test]
fn an_overwrite_with_another_type_is_served_with_the_new_one_at_once() {
    let (node, app) = node_with(Config {
        overwrite: true,
        threads: 2,
        ..test_config()
    });
    let addr = node.local_addr();
    let mut clients: Vec<(std::net::TcpStream, Vec<u8>)> =
        (0..8).map(|_| (connect(addr), Vec::new())).collect();
    let rounds: [(Option<&[u8]>, &str, bool); 4] = [
        (Some(b"image/png"), "image/png", false),
        (Some(b"text/html"), "text/html", true),
        (None, "application/octet-stream", false),
        (Some(b"image/svg+xml"), "image/svg+xml", true),
    ];
    for len in [10usize, 50_000] {
        for (round, (declared, served, confined)) in rounds.iter().enumerate() {
            let body = vec![b'0' + round as u8; len];
            upload(addr, &app, "v.bin", *declared, &body);
            // Twice: the first read caches on each thread, the second is served from it.
            for pass in 0..2 {
                for (i, (s, buf)) in clients.iter_mut().enumerate() {
                    s.write_all(b"GET /app1/v.bin HTTP/1.1\r\nHost: n\r\n\r\n")
                        .unwrap();
                    let w = read_response(s, buf).expect("an answer");
                    let what = format!("{len} bytes, round {round}, pass {pass}, client {i}");
                    assert!(w.body == body, "{what}: old bytes");
                    assert_eq!(w.header("content-type"), Some(*served), "{what}");
                    assert_eq!(
                        w.header("content-security-policy").is_some(),
                        *confined,
                        "{what}"
                    );
                }
            }
        }
    }
    node.shutdown();
}

/// A mounted ramfs: a filesystem that refuses user extended attributes. Needs root.
struct Ramfs(std::path::PathBuf);

impl Ramfs {
    fn mount() -> Ramfs {
        let dir = test_config().data_dir;
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "ramfs", "ramfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            ok.success(),
            "this test needs to mount a ramfs (run as root)"
        );
        Ramfs(dir)
    }
}

impl Drop for Ramfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Where the filesystem refuses user extended attributes the upload still succeeds; the
/// declared type is not kept and downloads derive one from the extension.
#[test]
fn without_user_xattrs_the_upload_succeeds_and_the_extension_decides() {
    let fs = Ramfs::mount();
    let (node, app) = node_with(Config {
        data_dir: fs.0.clone(),
        ..test_config()
    });
    let addr = node.local_addr();
    upload(addr, &app, "a.bin", Some(b"image/png"), b"png?");
    upload(addr, &app, "x.html", Some(b"image/png"), b"<p>html</p>");
    let w = get(addr, "/app1/a.bin", "");
    assert_eq!(
        (w.status, w.header("content-type")),
        (200, Some("application/octet-stream"))
    );
    let w = get(addr, "/app1/x.html", "");
    assert_eq!(w.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        safety(&w),
        (Some("nosniff"), Some(ATTACHMENT_X_HTML), Some("sandbox")),
        "a type the extension gives is confined like a declared one"
    );
    node.shutdown();
}
