//! The user behind an upload, over loopback with a real application server: the request in the
//! pre-callback, answers that shape the upload, `multipart/form-data` forms (by hand, by curl
//! and by Python `requests`), CORS, and the registration fields behind them.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::callback_app::{Answer, CallbackApp, Received};
use support::*;
use upgate::config::Config;

/// A node, and an app whose answers to `/pre` come from `pre` (`/post` always accepts).
struct World {
    node: upgate::node::Node,
    app: CallbackApp,
    data: PathBuf,
}

impl World {
    fn new(pre: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> World {
        let app = CallbackApp::start(0, move |r| match r.path.as_str() {
            p if p.starts_with("/pre") => pre(r),
            _ => Answer::ok(),
        });
        let config = test_config();
        let data = config.data_dir.clone();
        let node = start(Config {
            fsync: false,
            ..config
        });
        World { node, app, data }
    }

    fn addr(&self) -> SocketAddr {
        self.node.local_addr()
    }

    /// Registers `appid` with this app's callbacks and `extra` JSON fields.
    fn register(&self, appid: &str, extra: serde_json::Value) -> Wire {
        let mut body = serde_json::json!({
            "appid": appid,
            "callback_url_pre": self.app.url("/pre"),
            "callback_url_post": self.app.url("/post"),
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        register_json(self.addr(), &body.to_string())
    }

    fn pre_calls(&self) -> Vec<serde_json::Value> {
        self.app.on("/pre").iter().map(Received::json).collect()
    }

    fn post_calls(&self, n: usize) -> Vec<serde_json::Value> {
        self.app
            .wait_for("/post", n, Duration::from_secs(10))
            .iter()
            .map(Received::json)
            .collect()
    }

    fn stored(&self, appid: &str, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.data.join("files").join(appid).join(rel)).ok()
    }

    /// Files of `appid` and temporary files: what a failed upload must not leave.
    fn files(&self, appid: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.data.join("files").join(appid), &mut out);
        walk(&self.data.join("tmp"), &mut out);
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.path().is_dir() {
            walk(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

fn register_json(addr: SocketAddr, body: &str) -> Wire {
    exchange(
        addr,
        format!(
            "POST /upload/register HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .0
}

/// A request with its whole body sent at once (no `Expect`).
fn send(addr: SocketAddr, head: &str, body: &[u8]) -> Wire {
    let mut req = head.as_bytes().to_vec();
    req.extend_from_slice(body);
    exchange(addr, &req).0
}

/// A `multipart/form-data` body as browsers write it: text fields, then the file part.
fn form(boundary: &str, fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, value) in fields {
        write!(
            b,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
        .unwrap();
    }
    if let Some((filename, ctype, data)) = file {
        write!(
            b,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n"
        )
        .unwrap();
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    write!(b, "--{boundary}--\r\n").unwrap();
    b
}

fn post_form(addr: SocketAddr, appid: &str, boundary: &str, body: &[u8], extra: &str) -> Wire {
    send(
        addr,
        &format!(
            "POST /upload/form/{appid} HTTP/1.1\r\nHost: n\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        ),
        body,
    )
}

/// Bytes that are not text and contain boundary-like lines.
fn payload(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    let mut v: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    if n > 200 {
        let fake = b"\r\n--XyZbOuNdArY-not-the-end\r\n--XyZbOuNdArYx\r\n";
        v[100..100 + fake.len()].copy_from_slice(fake);
    }
    v
}

#[test]
fn the_app_sees_who_is_uploading() {
    let w = World::new(|_| Answer::ok());
    assert_eq!(
        w.register(
            "app1",
            serde_json::json!({"forward_headers": "authorization, x-user-*", "expect": "optional"})
        )
        .status,
        200
    );
    let r = send(
        w.addr(),
        "PUT /app1/docs/a.txt?token=abc&user=7 HTTP/1.1\r\nHost: n\r\nappid: app1\r\n\
         Authorization: Bearer user-7\r\nCookie: session=1\r\nX-User-Id: 7\r\nX-User-Role: a\r\n\
         X-User-Role: b\r\nContent-Length: 5\r\n\r\n",
        b"hello",
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let pre = &w.pre_calls()[0];
    let req = &pre["request"];
    assert_eq!(req["method"], "PUT");
    assert_eq!(req["path"], "/app1/docs/a.txt");
    assert_eq!(req["query"], "token=abc&user=7");
    assert_eq!(req["protocol"], "raw");
    assert_eq!(req["headers"]["authorization"], "Bearer user-7");
    assert_eq!(req["headers"]["x-user-id"], "7");
    assert_eq!(req["headers"]["x-user-role"], "a, b");
    assert!(req["headers"].get("cookie").is_none(), "{req}");
    // The query is not part of the stored path.
    assert_eq!(pre["path"], "docs/a.txt");
    assert_eq!(
        w.stored("app1", "docs/a.txt").as_deref(),
        Some(&b"hello"[..])
    );

    // Registered without forward_headers: authorization only, by default.
    w.register("app2", serde_json::json!({"expect": "optional"}));
    let r = send(
        w.addr(),
        "POST /app2/b.txt HTTP/1.1\r\nHost: n\r\nappid: app2\r\nAuthorization: Bearer t\r\nX-User-Id: 7\r\nContent-Length: 2\r\n\r\n",
        b"hi",
    );
    assert_eq!(r.status, 201);
    let headers = &w.pre_calls()[1]["request"]["headers"];
    assert_eq!(headers, &serde_json::json!({"authorization": "Bearer t"}));
    assert_eq!(
        w.pre_calls()[1]["request"]["query"],
        serde_json::Value::Null
    );
}

#[test]
fn expect_is_the_apps_choice_and_the_refusal_says_how() {
    let w = World::new(|_| Answer::ok());
    w.register("strict", serde_json::json!({}));
    w.register("relaxed", serde_json::json!({"expect": "optional"}));
    let put = |appid: &str| {
        send(
            w.addr(),
            &format!("PUT /{appid}/a.txt HTTP/1.1\r\nHost: n\r\nappid: {appid}\r\nContent-Length: 2\r\n\r\n"),
            b"hi",
        )
    };
    let r = put("strict");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "expect_required")
    );
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("expect=optional") && message.contains("/upload/form/"),
        "{message}"
    );
    assert_eq!(put("relaxed").status, 201);
}

#[test]
fn each_shaping_field_takes_effect() {
    let w = World::new(|r| {
        let info = r.json();
        match info["filename"].as_str().unwrap() {
            "avatar.bin" => Answer::json(
                200,
                r#"{"success":"true","max_bytes":1048576,"path":"avatars/7.png","content_type":"image/png","metadata":{"user":"7"}}"#,
            ),
            "bad-path.txt" => Answer::json(200, r#"{"success":"true","path":"../../etc/passwd"}"#),
            _ => Answer::json(200, r#"{"success":"true","max_bytes":1000}"#),
        }
    });
    w.register("app1", serde_json::json!({"expect": "optional"}));
    let data = payload(5000);
    let r = send(
        w.addr(),
        &format!(
            "PUT /app1/avatar.bin HTTP/1.1\r\nHost: n\r\nappid: app1\r\nContent-Length: {}\r\n\r\n",
            data.len()
        ),
        &data,
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let done = r.json();
    assert_eq!(done["path"], "avatars/7.png");
    assert_eq!(done["metadata"], serde_json::json!({"user": "7"}));
    assert_eq!(w.stored("app1", "avatars/7.png"), Some(data.clone()));
    assert_eq!(w.stored("app1", "avatar.bin"), None);
    let post = &w.post_calls(1)[0];
    assert_eq!(post["path"], "avatars/7.png");
    assert_eq!(post["content_type"], "image/png");
    assert_eq!(post["metadata"], serde_json::json!({"user": "7"}));

    // max_bytes: a declared size over it is refused on the head, before any 100 Continue.
    let (r, _) = exchange(
        w.addr(),
        b"PUT /app1/declared.bin HTTP/1.1\r\nHost: n\r\nappid: app1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n",
    );
    assert_eq!((r.status, r.error_code().as_str()), (413, "too_large"));

    // A chunked body that passes it: 413 at that byte, nothing kept.
    let mut chunked = Vec::new();
    for piece in data.chunks(700) {
        write!(chunked, "{:x}\r\n", piece.len()).unwrap();
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = send(
        w.addr(),
        "PUT /app1/chunked.bin HTTP/1.1\r\nHost: n\r\nappid: app1\r\nTransfer-Encoding: chunked\r\n\r\n",
        &chunked,
    );
    assert_eq!((r.status, r.error_code().as_str()), (413, "too_large"));
    // A form whose file passes it: the same.
    let body = form(
        "XyZbOuNdArY",
        &[("key", "form.bin")],
        Some(("form.bin", "application/octet-stream", &data)),
    );
    let r = post_form(w.addr(), "app1", "XyZbOuNdArY", &body, "");
    assert_eq!((r.status, r.error_code().as_str()), (413, "too_large"));
    assert_eq!(
        w.files("app1"),
        vec![w.data.join("files/app1/avatars/7.png")]
    );

    // An invalid path in the answer is the app's fault: 502, nothing stored.
    let r = send(
        w.addr(),
        "PUT /app1/bad-path.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nContent-Length: 2\r\n\r\n",
        b"hi",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (502, "callback_failed")
    );
    assert_eq!(w.files("app1").len(), 1);
}

#[test]
fn a_form_stores_exactly_its_file_part_and_the_app_sees_its_fields() {
    let w = World::new(|_| Answer::ok());
    w.register("app1", serde_json::json!({}));
    let data = payload(300_000);
    let body = form(
        "XyZbOuNdArY",
        &[
            ("key", "photos/${filename}"),
            ("album", "summer"),
            ("user", "7"),
        ],
        Some(("beach day.jpg", "image/jpeg", &data)),
    );
    let r = post_form(
        w.addr(),
        "app1",
        "XyZbOuNdArY",
        &body,
        "Authorization: Bearer u7\r\n",
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["path"], "photos/beach day.jpg");
    assert_eq!(w.stored("app1", "photos/beach day.jpg"), Some(data));
    let pre = &w.pre_calls()[0];
    assert_eq!(pre["size"], serde_json::Value::Null);
    assert_eq!(pre["content_type"], "image/jpeg");
    assert_eq!(pre["request"]["protocol"], "form");
    assert_eq!(pre["request"]["headers"]["authorization"], "Bearer u7");
    assert_eq!(
        pre["request"]["fields"],
        serde_json::json!({"key": "photos/beach day.jpg", "album": "summer", "user": "7"})
    );
    let post = &w.post_calls(1)[0];
    assert_eq!(
        post["metadata"],
        serde_json::json!({"album": "summer", "user": "7"})
    );
    assert_eq!(post["content_type"], "image/jpeg");
}

#[test]
fn a_veto_on_a_form_stores_nothing() {
    let w = World::new(|_| Answer::json(200, r#"{"success":"false","reason":"not this user"}"#));
    w.register("app1", serde_json::json!({}));
    let body = form(
        "b0undary",
        &[("key", "x.bin")],
        Some(("x.bin", "application/octet-stream", &payload(100_000))),
    );
    let r = post_form(w.addr(), "app1", "b0undary", &body, "");
    assert_eq!((r.status, r.error_code().as_str()), (403, "vetoed"));
    assert_eq!(r.json()["message"], "not this user");
    assert!(w.files("app1").is_empty());
}

#[test]
fn every_multipart_violation_is_bad_multipart_with_nothing_stored() {
    let w = World::new(|_| Answer::ok());
    w.register("app1", serde_json::json!({}));
    let b = "XyZbOuNdArY";
    let good = form(
        b,
        &[("key", "v.bin")],
        Some(("v.bin", "application/octet-stream", &payload(20_000))),
    );
    let mut cases: Vec<(&str, String, Vec<u8>)> = vec![
        ("no boundary", "multipart/form-data".into(), good.clone()),
        ("not multipart", "text/plain".into(), good.clone()),
        (
            "bad part headers",
            format!("multipart/form-data; boundary={b}"),
            format!("--{b}\r\nContent-Disposition form-data; name=\"key\"\r\n\r\nv.bin\r\n--{b}--\r\n").into_bytes(),
        ),
        (
            "no content-disposition",
            format!("multipart/form-data; boundary={b}"),
            format!("--{b}\r\nContent-Type: text/plain\r\n\r\nv\r\n--{b}--\r\n").into_bytes(),
        ),
        (
            "oversize part headers",
            format!("multipart/form-data; boundary={b}"),
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"key\"\r\nX-Pad: {}\r\n\r\nv.bin\r\n--{b}--\r\n",
                "p".repeat(9000)
            )
            .into_bytes(),
        ),
        ("truncated body", format!("multipart/form-data; boundary={b}"), good[..good.len() - 900].to_vec()),
        (
            "missing final boundary",
            format!("multipart/form-data; boundary={b}"),
            good[..good.len() - (b.len() + 6)].to_vec(),
        ),
        (
            "file not last",
            format!("multipart/form-data; boundary={b}"),
            {
                let mut v = form(b, &[("key", "v.bin")], Some(("v.bin", "application/octet-stream", b"data")));
                v.truncate(v.len() - (b.len() + 6));
                write!(v, "--{b}\r\nContent-Disposition: form-data; name=\"late\"\r\n\r\nx\r\n--{b}--\r\n").unwrap();
                v
            },
        ),
        (
            "no file part",
            format!("multipart/form-data; boundary={b}"),
            form(b, &[("key", "v.bin")], None),
        ),
        (
            "a second file",
            format!("multipart/form-data; boundary={b}"),
            {
                let mut v = format!(
                    "--{b}\r\nContent-Disposition: form-data; name=\"other\"; filename=\"o.txt\"\r\n\r\nx\r\n"
                )
                .into_bytes();
                v.extend_from_slice(&form(b, &[], Some(("v.bin", "text/plain", b"d"))));
                v
            },
        ),
    ];
    let mut many = Vec::new();
    for i in 0..70 {
        write!(
            many,
            "--{b}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n"
        )
        .unwrap();
    }
    many.extend_from_slice(&form(b, &[], Some(("v.bin", "text/plain", b"d"))));
    cases.push((
        "too many parts",
        format!("multipart/form-data; boundary={b}"),
        many,
    ));
    for (what, ctype, body) in cases {
        let r = send(
            w.addr(),
            &format!(
                "POST /upload/form/app1 HTTP/1.1\r\nHost: n\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ),
            &body,
        );
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "bad_multipart"),
            "{what}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(w.files("app1").is_empty(), "{what}: {:?}", w.files("app1"));
    }
    // Nothing claimed what did not happen.
    std::thread::sleep(Duration::from_millis(300));
    assert!(w.app.on("/post").is_empty());
    // The same form, whole, is fine.
    assert_eq!(post_form(w.addr(), "app1", b, &good, "").status, 201);
}

#[test]
fn a_large_forms_spliced_middle_is_checked_in_place() {
    let w = World::new(|_| Answer::ok());
    w.register("app1", serde_json::json!({}));
    w.register("small", serde_json::json!({ "max_body_bytes": 2 << 20 }));
    let b = "LaRgEbOuNdArY";
    // 3 MiB: its middle is spliced, and holds lines that only look like delimiters.
    let mut file = payload(3 << 20);
    let fakes = [
        format!("\r\n--{b}x\r\n"),
        format!("--{b}\r\n"),
        format!("\r\n--{b}-\r\n"),
        format!("\r\n--{b}  \t x"),
    ];
    for (i, fake) in fakes.iter().enumerate() {
        let at = (i + 1) * (600 << 10) - 3;
        file[at..at + fake.len()].copy_from_slice(fake.as_bytes());
    }
    let good = form(
        b,
        &[("key", "big.bin")],
        Some(("big.bin", "application/octet-stream", &file)),
    );
    let r = post_form(w.addr(), "app1", b, &good, "");
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(
        w.stored("app1", "big.bin") == Some(file.clone()),
        "the file part, byte for byte"
    );

    // A part after the file, in the spliced middle: refused, nothing stored. Wherever it lands
    // in the middle: the first piece spliced, one in the middle, the last one.
    let extra = format!("\r\n--{b}\r\nContent-Disposition: form-data; name=\"late\"\r\n\r\nx");
    for from_end in [(3 << 20) - (8 << 10), (3 << 20) / 2, 1 << 20, 64 << 10] {
        let mut late = form(
            b,
            &[("key", "late.bin")],
            Some(("late.bin", "application/octet-stream", &file)),
        );
        let at = late.len() - from_end;
        late.splice(at..at, extra.bytes());
        let r = post_form(w.addr(), "app1", b, &late, "");
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "bad_multipart"),
            "a part {from_end} bytes before the end"
        );
    }
    // An epilogue longer than the tail the node reads itself: refused the same way.
    let mut epilogue = form(
        b,
        &[("key", "epi.bin")],
        Some(("epi.bin", "application/octet-stream", &file)),
    );
    epilogue.extend_from_slice(&[b'e'; 4096]);
    let r = post_form(w.addr(), "app1", b, &epilogue, "");
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_multipart"));
    assert_eq!(w.files("app1").len(), 1, "{:?}", w.files("app1"));
    // The close delimiter cut by the end of the spliced middle (which stops `tail` bytes
    // before the body's end: max_held 50 + 4 + TAIL_SLACK 256), then an epilogue that
    // repeats it: the file ends at the first one, as a parser that saw every byte reads it.
    let close = format!("\r\n--{b}--\r\n");
    let mut cut = form(
        b,
        &[("key", "cut.bin")],
        Some(("cut.bin", "application/octet-stream", &file)),
    );
    let tail = 50 + 4 + 256;
    let epilogue_len = tail + 5 - close.len();
    cut.extend_from_slice(&vec![b'e'; epilogue_len - close.len()]);
    cut.extend_from_slice(close.as_bytes());
    let r = post_form(w.addr(), "app1", b, &cut, "");
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(
        w.stored("app1", "cut.bin") == Some(file.clone()),
        "the file part ends at the first close delimiter"
    );

    // Over the app's limit: 413, and nothing is stored; declared on the head (the app's
    // registered limit), or found before the middle is spliced (its answer's max_bytes).
    let big = form(
        b,
        &[("key", "big.bin")],
        Some(("big.bin", "application/octet-stream", &file)),
    );
    let r = post_form(w.addr(), "small", b, &big, "");
    assert_eq!(r.status, 413);
    assert!(w.files("small").is_empty());
    let shaped = World::new(|_| Answer::json(200, r#"{"success":"true","max_bytes":2097152}"#));
    shaped.register("app2", serde_json::json!({}));
    let r = post_form(shaped.addr(), "app2", b, &big, "");
    assert_eq!((r.status, r.error_code().as_str()), (413, "too_large"));
    assert!(shaped.files("app2").is_empty());
}

/// A Python that can `import requests`: the system's, or one with `target/pydeps` (where
/// `scripts/test-deps.sh` installs it when missing).
fn python_with_requests() -> Command {
    let mut c = Command::new("python3");
    let deps = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pydeps");
    c.env("PYTHONPATH", deps);
    c
}

#[test]
fn curl_and_python_requests_store_exactly_the_file_part() {
    let w = World::new(|_| Answer::ok());
    w.register("app1", serde_json::json!({}));
    let dir = tempdir();
    let file = dir.join("report.bin");
    let data = payload(2_500_000);
    std::fs::write(&file, &data).unwrap();
    let url = format!("http://{}/upload/form/app1", w.addr());

    // curl -F (it sends Expect: 100-continue for a body this size).
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "-F",
            "key=curl/${filename}",
            "-F",
            "note=from curl",
        ])
        .arg("-F")
        .arg(format!("file=@{}", file.display()))
        .arg(&url)
        .output()
        .expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(answer["path"], "curl/report.bin", "{answer}");
    assert_eq!(
        w.stored("app1", "curl/report.bin").as_deref(),
        Some(&data[..])
    );

    // Python requests with files= (a non-ASCII name, sent as filename*= or raw UTF-8).
    let script = format!(
        "import requests,sys\n\
         r = requests.post({url:?}, data={{'key': 'py/${{filename}}', 'who': 'python'}},\n\
             files={{'file': ('résumé ✓.bin', open({file:?}, 'rb'), 'application/pdf')}}, timeout=30)\n\
         sys.stdout.write(r.text)\n",
        file = file.display().to_string()
    );
    let out = python_with_requests()
        .arg("-c")
        .arg(script)
        .output()
        .expect("python runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(answer["path"], "py/résumé ✓.bin", "{answer}");
    assert_eq!(
        w.stored("app1", "py/résumé ✓.bin").as_deref(),
        Some(&data[..])
    );
    let pre = w.pre_calls();
    assert_eq!(pre[1]["content_type"], "application/pdf");
    assert_eq!(pre[1]["request"]["fields"]["who"], "python");
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "upgate-browser-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn cors_for_listed_origins_only() {
    let w = World::new(|_| Answer::ok());
    w.register(
        "app1",
        serde_json::json!({"cors_origins": "https://app.example.com", "expect": "optional"}),
    );
    w.register(
        "open",
        serde_json::json!({"cors_origins": ["*"], "expect": "optional"}),
    );
    let preflight = |path: &str, origin: &str, method: &str| {
        exchange(
            w.addr(),
            format!(
                "OPTIONS {path} HTTP/1.1\r\nHost: n\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: {method}\r\n\
                 Access-Control-Request-Headers: appid, content-type, x-secret\r\n\r\n"
            )
            .as_bytes(),
        )
        .0
    };
    for path in ["/upload/form/app1", "/app1/a.txt"] {
        let r = preflight(path, "https://app.example.com", "POST");
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            r.header("access-control-allow-headers"),
            Some("appid, content-type")
        );
        assert_eq!(r.header("access-control-max-age"), Some("600"));
        assert_eq!(r.header("vary"), Some("Origin"));
        assert!(r
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST"));
        let r = preflight(path, "https://evil.example", "POST");
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (403, "origin_not_allowed"),
            "{path}"
        );
    }
    // `*` allows downloads from anywhere, never uploads.
    assert_eq!(
        preflight("/open/a.txt", "https://any.example", "GET").status,
        204
    );
    assert_eq!(
        preflight("/open/a.txt", "https://any.example", "PUT").status,
        403
    );

    // Actual requests: the listed origin's answers are readable; others may not upload.
    let upload = |origin: &str| {
        send(
            w.addr(),
            &format!("PUT /app1/c.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nOrigin: {origin}\r\nContent-Length: 2\r\n\r\n"),
            b"hi",
        )
    };
    let r = upload("https://evil.example");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "origin_not_allowed")
    );
    assert_eq!(w.stored("app1", "c.txt"), None);
    assert!(
        w.pre_calls().is_empty(),
        "an unlisted origin never reaches the app"
    );
    let r = upload("https://app.example.com");
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let exposed = r.header("access-control-expose-headers").unwrap();
    for h in [
        "Location",
        "Upload-Offset",
        "Upload-Length",
        "Tus-Resumable",
        "Upload-Expires",
        "ETag",
    ] {
        assert!(exposed.contains(h), "{h} in {exposed}");
    }
    // Errors are readable too.
    let r = upload("https://app.example.com");
    assert_eq!(r.status, 409);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let r = get_with(
        w.addr(),
        "/app1/c.txt",
        "Origin: https://app.example.com\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    // A download for an unlisted origin is served without CORS fields (its script cannot read it).
    let r = get_with(w.addr(), "/app1/c.txt", "Origin: https://evil.example\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // OPTIONS without Origin is no preflight: what the path allows.
    let (r, _) = exchange(
        w.addr(),
        b"OPTIONS /upload/form/app1 HTTP/1.1\r\nHost: n\r\n\r\n",
    );
    assert_eq!(r.status, 204);
    assert!(r.header("allow").unwrap().contains("POST"));
}

fn get_with(addr: SocketAddr, path: &str, extra: &str) -> Wire {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: n\r\n{extra}\r\n").as_bytes(),
    )
    .0
}

#[test]
fn a_form_may_redirect_to_the_apps_own_page() {
    let w = World::new(|_| Answer::ok());
    w.register(
        "app1",
        serde_json::json!({"cors_origins": "https://app.example.com"}),
    );
    let b = "XyZbOuNdArY";
    let body = form(
        b,
        &[
            ("key", "r.txt"),
            ("success_action_redirect", "https://app.example.com/done"),
        ],
        Some(("r.txt", "text/plain", b"hello")),
    );
    let r = post_form(w.addr(), "app1", b, &body, "");
    assert_eq!(r.status, 303);
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with("https://app.example.com/done?path=r.txt&url="),
        "{loc}"
    );
    // Another site: no redirect, the completion JSON.
    let body = form(
        b,
        &[
            ("key", "s.txt"),
            ("success_action_redirect", "https://evil.example/x"),
        ],
        Some(("s.txt", "text/plain", b"hello")),
    );
    assert_eq!(post_form(w.addr(), "app1", b, &body, "").status, 201);
}

#[test]
fn registration_refuses_what_cannot_work() {
    let w = World::new(|_| Answer::ok());
    let addr = w.addr();
    let r = register_json(addr, r#"{"appid":"lonely"}"#);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "missing_callbacks")
    );
    for reserved in ["upload", "metrics", "healthz", "readyz"] {
        let r = register_json(
            addr,
            &format!(
                r#"{{"appid":"{reserved}","callback_url_pre":"{}"}}"#,
                w.app.url("/pre")
            ),
        );
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "bad_appid"),
            "{reserved}"
        );
    }
    for (field, value) in [
        ("cors_origins", "https://a.example/path"),
        ("cors_origins", "ftp://a.example"),
        ("forward_headers", "bad header"),
        ("forward_headers", "*"),
        ("expect", "sometimes"),
        ("inline_types", "html"),
    ] {
        let r = w.register("app1", serde_json::json!({ field: value }));
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "bad_field"),
            "{field}={value}"
        );
    }
    let r = w.register(
        "app1",
        serde_json::json!({"cors_origins": "https://A.example:443, http://b.example:8080",
                           "forward_headers": ["Authorization", "X-User-*"],
                           "inline_types": "text/html", "expect": "optional"}),
    );
    assert_eq!(r.status, 200);
    let (shown, _) = exchange(
        addr,
        b"GET /upload/register/app1 HTTP/1.1\r\nHost: n\r\n\r\n",
    );
    let v = shown.json();
    assert_eq!(
        v["cors_origins"],
        serde_json::json!(["https://a.example", "http://b.example:8080"])
    );
    assert_eq!(
        v["forward_headers"],
        serde_json::json!(["authorization", "x-user-*"])
    );
    assert_eq!(v["inline_types"], serde_json::json!(["text/html"]));
    assert_eq!(v["expect"], "optional");
    // Clearing the last callback is refused too.
    let r = w.register(
        "app1",
        serde_json::json!({"callback_url_pre": null, "callback_url_post": null}),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "missing_callbacks")
    );
}

fn token_for(secret: &str, key: &str, max_bytes: Option<u64>, expires_in: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    upgate_contract::token::sign_upload(
        secret,
        &upgate_contract::token::UploadPolicy {
            appid: "signed".into(),
            key: Some(key.into()),
            key_prefix: None,
            expires: (now + expires_in) as u64,
            max_bytes,
            content_types: None,
        },
    )
}

#[test]
fn signed_upload_tokens_are_checked_at_the_edge() {
    let w = World::new(|_| Answer::ok());
    // An app with no pre-callback: only a valid token lets a browser upload.
    let r = register_json(
        w.addr(),
        &serde_json::json!({"appid": "signed", "callback_url_post": w.app.url("/post"),
                            "expect": "optional"})
        .to_string(),
    );
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    let b = "XyZbOuNdArY";
    let data = payload(50_000);
    let with = |token: &str, key: &str| {
        let body = form(
            b,
            &[("key", key), ("token", token)],
            Some(("f.bin", "application/octet-stream", &data)),
        );
        post_form(w.addr(), "signed", b, &body, "")
    };
    let r = with(&token_for(&secret, "ok.bin", None, 600), "ok.bin");
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(w.stored("signed", "ok.bin"), Some(data.clone()));
    assert!(w.pre_calls().is_empty(), "no pre-callback is registered");

    let good = token_for(&secret, "x.bin", None, 600);
    let mut forged = good.clone();
    forged.pop();
    forged.push(if good.ends_with('A') { 'B' } else { 'A' });
    for (what, token, key) in [
        ("forged", forged.as_str(), "x.bin"),
        ("another key", good.as_str(), "y.bin"),
        (
            "expired",
            &token_for(&secret, "x.bin", None, -10)[..],
            "x.bin",
        ),
        ("garbage", "not-a-token", "x.bin"),
        (
            "other app's secret",
            &token_for(
                "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                "x.bin",
                None,
                600,
            )[..],
            "x.bin",
        ),
    ] {
        let r = with(token, key);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (403, "bad_token"),
            "{what}"
        );
    }
    // max_bytes of the token: cut at that byte.
    let r = with(
        &token_for(&secret, "small.bin", Some(1000), 600),
        "small.bin",
    );
    assert_eq!((r.status, r.error_code().as_str()), (413, "too_large"));
    assert_eq!(w.files("signed"), vec![w.data.join("files/signed/ok.bin")]);
    // Without a token and without a pre-callback: nobody decided.
    let body = form(
        b,
        &[("key", "none.bin")],
        Some(("f.bin", "text/plain", b"x")),
    );
    assert_eq!(post_form(w.addr(), "signed", b, &body, "").status, 404);

    // Raw uploads: ?token= and Authorization: Upload-Token.
    let t = token_for(&secret, "raw1.bin", None, 600);
    let r = send(
        w.addr(),
        &format!("PUT /signed/raw1.bin?token={t} HTTP/1.1\r\nHost: n\r\nappid: signed\r\nContent-Length: 2\r\n\r\n"),
        b"hi",
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let t = token_for(&secret, "raw2.bin", Some(1), 600);
    let r = send(
        w.addr(),
        &format!("PUT /signed/raw2.bin HTTP/1.1\r\nHost: n\r\nappid: signed\r\nAuthorization: Upload-Token {t}\r\nContent-Length: 2\r\n\r\n"),
        b"hi",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "bad_token"),
        "declared size over the token's max_bytes"
    );
    let r = send(
        w.addr(),
        &format!("PUT /signed/raw3.bin?token={t} HTTP/1.1\r\nHost: n\r\nappid: signed\r\nContent-Length: 2\r\n\r\n"),
        b"hi",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "bad_token"),
        "a token for another key"
    );
}
