//! The other two parties end to end: `upgate upload` as a subprocess against a real node and the
//! reference application (`upgate_tools::demo`, in process, registered with the node), plus a raw
//! socket server for the "no answer at all" case. Every child process runs under a deadline.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;
use upgate::callback::sign;
use upgate::node::Node;
use upgate_tools::client::{self, exit, Registration};
use upgate_tools::demo::{parse_ext_list, DemoApp, DemoConfig, Rules};

const BIN: &str = env!("CARGO_BIN_EXE_upgate");

/// A node and the demo app registered with it as `demo` (jpg, png and txt up to 1 MiB).
struct System {
    node: Node,
    app: DemoApp,
    dir: PathBuf,
}

impl System {
    fn start() -> System {
        let config = test_config();
        let dir = config.data_dir.with_extension("files");
        std::fs::create_dir_all(&dir).unwrap();
        let node = start(config);
        let mut cfg = DemoConfig::new("127.0.0.1:0".parse().unwrap(), "demo");
        cfg.register_with = Some(node_url(node.local_addr()));
        cfg.expect = None; // the node's own policy, the patent's: Expect required
        cfg.rules = Rules {
            max_size: Some(1 << 20),
            allow_ext: parse_ext_list("jpg,png,txt"),
        };
        let app = DemoApp::start(cfg).expect("demo app starts and registers");
        System { node, app, dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", node_url(self.node.local_addr()))
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn stop(self) {
        self.app.shutdown();
        self.node.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn node_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Runs `upgate ARGS…` and kills it if it runs past 30 s.
fn upgate(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("upgate runs");
    let deadline = started + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("upgate {args:?} ran past 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {:?} / stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> Wire {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .0
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn upload_is_stored_downloadable_and_reported_to_the_app() {
    let sys = System::start();
    let content = pattern(700_000);
    let file = sys.file("photo.jpg", &content);
    let (out, _) = upgate(&["upload", path_str(&file), &sys.url("/demo/2024/photo.jpg")]);
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let done = stdout_json(&out);
    assert_eq!(done["success"], "true");
    assert_eq!(done["path"], "2024/photo.jpg");
    assert_eq!(done["size"], 700_000);
    assert_eq!(done["callback"], "delivered");
    assert_eq!(done["app"]["success"], "true");
    let url = done["url"].as_str().unwrap();
    assert_eq!(url, sys.url("/demo/2024/photo.jpg"));

    let got = get(sys.node.local_addr(), "/demo/2024/photo.jpg");
    assert_eq!(got.status, 200);
    assert!(got.body == content, "downloaded bytes differ");

    // The app recorded exactly this upload, once, and lists it with its link.
    let uploads = sys.app.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        uploads[0].info.upload_id,
        done["upload_id"].as_str().unwrap()
    );
    assert_eq!(uploads[0].info.url, url);
    let listed = get(sys.app.local_addr(), "/uploads.json").json();
    assert_eq!(listed["appid"], "demo");
    assert_eq!(listed["uploads"][0]["filename"], "photo.jpg");
    let page = get(sys.app.local_addr(), "/");
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains(&format!("href=\"{url}\"")), "{html}");
    sys.stop();
}

#[test]
fn an_empty_file_is_stored_too() {
    let sys = System::start();
    let file = sys.file("empty.txt", b"");
    let (out, _) = upgate(&["upload", path_str(&file), &sys.url("/demo/empty.txt")]);
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    assert_eq!(stdout_json(&out)["size"], 0);
    assert_eq!(get(sys.node.local_addr(), "/demo/empty.txt").status, 200);
    sys.stop();
}

#[test]
fn a_veto_exits_3_with_the_apps_reason_and_stores_nothing() {
    let sys = System::start();
    let file = sys.file("tool.exe", &pattern(50_000));
    let (out, _) = upgate(&["upload", path_str(&file), &sys.url("/demo/bin/tool.exe")]);
    assert_eq!(code(&out), i32::from(exit::VETOED));
    let err = stderr(&out);
    assert!(
        err.contains("vetoed by the application") && err.contains("file type .exe is not allowed"),
        "{err}"
    );
    assert!(err.contains("the body was not sent"), "{err}");
    let json = stdout_json(&out);
    assert_eq!(json["error"], "vetoed");
    assert_eq!(get(sys.node.local_addr(), "/demo/bin/tool.exe").status, 404);
    assert!(sys.app.uploads().is_empty());

    // Over the app's size limit: the same exit code, another reason.
    let big = sys.file("big.png", &pattern((1 << 20) + 1));
    let (out, _) = upgate(&["upload", path_str(&big), &sys.url("/demo/big.png")]);
    assert_eq!(code(&out), i32::from(exit::VETOED));
    assert!(
        stderr(&out).contains("accepts at most 1048576"),
        "{}",
        stderr(&out)
    );
    sys.stop();
}

#[test]
fn node_rejections_exit_4() {
    let sys = System::start();
    let file = sys.file("a.txt", b"hello");
    // Unknown appid: 404 before any callback.
    let (out, _) = upgate(&["upload", path_str(&file), &sys.url("/nobody/a.txt")]);
    assert_eq!(code(&out), i32::from(exit::REJECTED), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["error"], "unknown_appid");
    // The node requires Expect (the patent's policy).
    let (out, _) = upgate(&[
        "upload",
        path_str(&file),
        &sys.url("/demo/a.txt"),
        "--no-expect",
    ]);
    assert_eq!(code(&out), i32::from(exit::REJECTED), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["error"], "expect_required");
    // The same path twice: 409.
    let (out, _) = upgate(&["upload", path_str(&file), &sys.url("/demo/a.txt")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (out, _) = upgate(&["upload", path_str(&file), &sys.url("/demo/a.txt")]);
    assert_eq!(code(&out), i32::from(exit::REJECTED));
    assert_eq!(stdout_json(&out)["error"], "exists");
    sys.stop();
}

#[test]
fn a_failing_callback_exits_5() {
    let node = start(test_config());
    // An app whose callbacks point at a port nobody listens on.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let reg = Registration {
        appid: "deadapp".into(),
        callback_url_pre: format!("http://{dead}/pre"),
        callback_url_post: format!("http://{dead}/post"),
        ..Registration::default()
    };
    let done = client::register(
        &node_url(node.local_addr()),
        &reg,
        None,
        Duration::from_secs(5),
    )
    .expect("registers");
    assert!(done.secret.unwrap().starts_with("whsec_"));
    let dir = std::env::temp_dir().join(format!("upgate-cli-dead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("x.txt");
    std::fs::write(&file, b"x").unwrap();
    let url = format!("{}/deadapp/x.txt", node_url(node.local_addr()));
    let (out, _) = upgate(&["upload", path_str(&file), &url]);
    assert_eq!(code(&out), i32::from(exit::NODE_ERROR), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["error"], "callback_failed");
    node.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unreachable_node_exits_7_and_a_missing_file_8() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let me = std::env::current_exe().unwrap();
    let (out, _) = upgate(&[
        "upload",
        path_str(&me),
        &format!("http://{closed}/demo/x.bin"),
    ]);
    assert_eq!(code(&out), i32::from(exit::NETWORK));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());

    let (out, _) = upgate(&[
        "upload",
        "/nonexistent/upgate-test-file",
        &format!("http://{closed}/demo/x.bin"),
    ]);
    assert_eq!(code(&out), i32::from(exit::FILE));
    let (out, _) = upgate(&["upload", "/tmp", &format!("http://{closed}/demo/x.bin")]);
    assert_eq!(code(&out), i32::from(exit::FILE));
    assert!(stderr(&out).contains("not a regular file"));
    // A scheme the client does not speak (https:// is tests/client_https.rs's).
    let (out, _) = upgate(&["upload", path_str(&me), "ftp://127.0.0.1/demo/x"]);
    assert_eq!(code(&out), i32::from(exit::USAGE));
}

/// What the silent server saw: the request head, and how many bytes followed it.
struct Silent {
    head: String,
    body_bytes: usize,
}

/// Accepts one connection, reads the head, never answers, and counts every byte that follows
/// until the client closes (or 10 s pass).
fn silent_server() -> (SocketAddr, mpsc::Receiver<Silent>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = find(&buf, b"\r\n\r\n").map_or(buf.len(), |i| i + 4);
        let _ = tx.send(Silent {
            head: String::from_utf8_lossy(&buf[..end]).into_owned(),
            body_bytes: buf.len() - end,
        });
    });
    (addr, rx)
}

#[test]
fn no_answer_within_the_100_timeout_fails_without_sending_the_body() {
    let (addr, seen) = silent_server();
    let dir = std::env::temp_dir().join(format!("upgate-cli-silent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("quiet.txt");
    std::fs::write(&file, pattern(100_000)).unwrap();
    let (out, took) = upgate(&[
        "upload",
        path_str(&file),
        &format!("http://{addr}/demo/quiet.txt"),
        "--timeout-100",
        "300",
        "--pre",
        "http://app.example/pre",
        "--post",
        "http://app.example/post",
    ]);
    assert_eq!(code(&out), i32::from(exit::NO_RESPONSE), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the body was not sent"),
        "{}",
        stderr(&out)
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let seen = seen
        .recv_timeout(Duration::from_secs(15))
        .expect("server saw the connection");
    assert_eq!(seen.body_bytes, 0, "no body byte may be sent");
    for field in [
        "POST /demo/quiet.txt HTTP/1.1\r\n",
        "Expect: 100-continue\r\n",
        "appid: demo\r\n",
        "Content-Length: 100000\r\n",
        "callback_url_pre: http://app.example/pre\r\n",
        "callback_url_post: http://app.example/post\r\n",
    ] {
        assert!(seen.head.contains(field), "{field:?} in {:?}", seen.head);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn register_prints_the_secret_once() {
    let node = start(test_config());
    let (out, _) = upgate(&[
        "register",
        "--server",
        &node_url(node.local_addr()),
        "--appid",
        "cliapp",
        "--pre",
        "http://app.example/pre",
        "--post",
        "http://app.example/post",
        "--hosts",
        "app.example,cdn.example:8080",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json = stdout_json(&out);
    assert_eq!(json["appid"], "cliapp");
    let secret = json["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(all.matches(secret).count(), 1, "{all}");
    // A second registration keeps the secret and does not show it.
    let (out, _) = upgate(&[
        "register",
        "--server",
        &node_url(node.local_addr()),
        "--appid",
        "cliapp",
        "--pre",
        "http://app.example/pre",
        "--post",
        "http://app.example/post",
    ]);
    assert_eq!(code(&out), 0);
    assert!(stdout_json(&out).get("secret").is_none());
    node.shutdown();
}

/// POSTs `body` to the demo app's `path` with the given extra head fields.
fn post(addr: SocketAddr, path: &str, fields: &str, body: &str) -> Wire {
    exchange(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\n{fields}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .0
}

fn signed(secret: &str, id: &str, ts: u64, body: &str) -> String {
    format!(
        "webhook-id: {id}\r\nwebhook-timestamp: {ts}\r\nwebhook-signature: {}\r\n",
        sign::sign(secret, id, ts, body.as_bytes())
    )
}

#[test]
fn the_demo_app_refuses_unsigned_and_badly_signed_callbacks_and_deduplicates() {
    let sys = System::start();
    let addr = sys.app.local_addr();
    let secret = sys.app.state.secrets()[0].clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let first = r#"{"appid":"demo","filename":"a.txt","path":"a.txt","size":3,"content_type":"text/plain","upload_id":"u1","client_ip":"127.0.0.1"}"#;
    assert_eq!(post(addr, "/pre", "", first).status, 401);
    let wrong = signed(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "e1",
        now,
        first,
    );
    assert_eq!(post(addr, "/pre", &wrong, first).status, 401);
    let stale = signed(&secret, "e1", now - 3600, first);
    let w = post(addr, "/pre", &stale, first);
    assert_eq!(w.status, 401);
    assert!(w.json()["reason"].as_str().unwrap().contains("too old"));
    let good = post(addr, "/pre", &signed(&secret, "e1", now, first), first);
    assert_eq!(good.status, 200);
    assert_eq!(good.json()["success"], "true");

    let second = format!(
        r#"{{"appid":"demo","filename":"a.txt","path":"a.txt","size":3,"content_type":"text/plain","upload_id":"u1","success":"true","url":"{}"}}"#,
        sys.url("/demo/a.txt")
    );
    for _ in 0..2 {
        let w = post(addr, "/post", &signed(&secret, "e1", now, &second), &second);
        assert_eq!(w.status, 200);
        assert_eq!(w.json()["success"], "true");
    }
    let uploads = sys.app.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].deliveries, 2);
    sys.stop();
}

#[test]
fn a_demo_app_without_a_secret_refuses_callbacks_so_uploads_are_vetoed() {
    let node = start(test_config());
    let app = DemoApp::start(DemoConfig::new("127.0.0.1:0".parse().unwrap(), "nosecret"))
        .expect("starts");
    assert!(!app.registered());
    // Registered by someone else (the operator), so the app never learnt the secret.
    client::register(
        &node_url(node.local_addr()),
        &Registration {
            appid: "nosecret".into(),
            callback_url_pre: app.url("/pre"),
            callback_url_post: app.url("/post"),
            ..Registration::default()
        },
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("upgate-cli-nosecret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.txt");
    std::fs::File::create(&file)
        .unwrap()
        .write_all(b"abc")
        .unwrap();
    let url = format!("{}/nosecret/a.txt", node_url(node.local_addr()));
    let (out, _) = upgate(&["upload", path_str(&file), &url]);
    assert_eq!(code(&out), i32::from(exit::VETOED), "{}", stderr(&out));
    assert!(stderr(&out).contains("no secret"), "{}", stderr(&out));
    app.shutdown();
    node.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

/// Regression: `upgate upload` of a few MiB (sendfile on the client, so the node's socket
/// holds many page fragments) once failed with 400 `body_read_failed` when the node's splice
/// met a pipe with no free slot (EAGAIN) after its first MiB.
#[test]
fn multi_mib_uploads_by_the_client_are_spliced_whole() {
    let app = support::callback_app::CallbackApp::accepting();
    let config = test_config();
    let dir = config.data_dir.with_extension("big");
    std::fs::create_dir_all(&dir).unwrap();
    let node = start(config);
    let w = register_form(
        node.local_addr(),
        "bulk",
        &app.url("/pre"),
        &app.url("/post"),
    );
    assert_eq!(w.status, 200);
    for (i, len) in [3_000_000usize, 8 << 20, 5_000_001].into_iter().enumerate() {
        let content = pattern(len);
        let file = dir.join(format!("f{i}.bin"));
        std::fs::write(&file, &content).unwrap();
        let url = format!("{}/bulk/f{i}.bin", node_url(node.local_addr()));
        let (out, _) = upgate(&["upload", path_str(&file), &url]);
        assert_eq!(code(&out), 0, "{len} bytes: {}", stderr(&out));
        let got = get(node.local_addr(), &format!("/bulk/f{i}.bin"));
        assert!(got.body == content, "{len} bytes: downloaded bytes differ");
    }
    node.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
